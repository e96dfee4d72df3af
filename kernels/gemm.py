"""The matrix product on our own tiled kernel (kernels/gemm.cu): C = A B for strided A and B.

    a (M, K), b (K, N) -> c (M, N) = a @ b,     any strides: a.T or a column slice is a view, not a copy

The reference it must equal: NumPy's (or CuPy's) `a @ b`, which refnet's layers use for every product.
Equal up to rounding: both sum K products, in different orders (the kernel: k = 0, 1, ..., K - 1, in
the operands' dtype; BLAS: its own blocking), so |c - a @ b| <= K eps (|a| |b|) elementwise.
"""
import numpy as np

from refnet import get_array_module

from .dispatch import choose_backend

SOURCE = "gemm.cu"
THREADS = 16   # a block is THREADS x THREADS threads in every variant
TILE = 16      # GEMM_TILE in gemm.cu: the default kernel's block computes a TILE x TILE tile of C
# Kernel name -> the side of the C tile one block computes. "gemm" is the one a training step uses; the register-
# tiled candidates (gemm.cu: gemm_register_tiled) wait for a GPU's measurements (bench/gemm_speed.py).
VARIANTS = {"gemm": TILE, "gemm_rt2": 2 * THREADS, "gemm_rt4": 4 * THREADS}
BUSY_BLOCKS = 256      # split K until about this many blocks work at once...
MIN_K_CHUNK = 256      # ...while each block still walks at least 256 of K (16 of its 16-deep tiles)


def k_splits(m, n, k, tile=TILE):
    """How many chunks of K to sum separately: 1 unless C has few tiles and K is long (gemm.cu, split K)."""
    tiles = -(-m // tile) * -(-n // tile)
    return max(1, min(BUSY_BLOCKS // tiles, k // MIN_K_CHUNK))


def element_strides(array):
    """(row, column) strides in elements of a 2-D array (NumPy and CuPy give them in bytes)."""
    return tuple(s // array.itemsize for s in array.strides)


def matmul(a, b, out=None, backend="auto", splits=None, variant="gemm"):
    """a (M, K) @ b (K, N) -> (M, N), into `out` (C-contiguous, of a's dtype) when given.

    splits: the number of K chunks summed separately (default k_splits(M, N, K)); any value gives the
    same product up to rounding. variant: a kernel of VARIANTS (the same product, bit for bit, for the same
    splits)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not chain as (M, K) (K, N)")
    if a.dtype != b.dtype or np.dtype(a.dtype) not in (np.float32, np.float64):
        raise TypeError(f"matmul: operands must be both float32 or both float64, not {a.dtype} and {b.dtype}")
    xp, device = get_array_module(a), choose_backend(a, backend)
    (m, k), n = a.shape, b.shape[1]
    out = xp.empty((m, n), dtype=a.dtype) if out is None else out
    if out.shape != (m, n) or out.dtype != a.dtype or not out.flags.c_contiguous:
        raise ValueError(f"matmul: out must be a C-contiguous ({m}, {n}) {a.dtype} array, "
                         f"got {tuple(out.shape)} {out.dtype}")
    if device is None:
        return xp.matmul(a, b, out=out)
    if variant not in VARIANTS:
        raise ValueError(f"matmul: variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    tile = VARIANTS[variant]
    splits = k_splits(m, n, k, tile) if splits is None else max(1, min(int(splits), max(k, 1)))
    k_chunk = -(-max(k, 1) // splits)
    grid = (-(-n // tile), -(-m // tile), splits)
    operands = (a, b, m, n, k, *element_strides(a), *element_strides(b))
    if splits == 1:
        device.launch_blocks(SOURCE, variant, a.dtype, grid, (THREADS, THREADS),
                             (*operands[:2], out, *operands[2:], *element_strides(out), k_chunk, 0))
        return out
    partials = xp.empty((splits, m, n), dtype=a.dtype)   # partial matrix z: its chunk of K
    device.launch_blocks(SOURCE, variant, a.dtype, grid, (THREADS, THREADS),
                         (*operands[:2], partials, *operands[2:], n, 1, k_chunk, m * n))
    device.launch(SOURCE, "sum_splits", a.dtype, m * n, (partials, out, splits, m * n))
    return out
