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
TILE = 16   # GEMM_TILE in gemm.cu: a block is TILE x TILE threads computing a TILE x TILE tile of C
BUSY_BLOCKS = 256      # split K until about this many blocks work at once...
MIN_K_CHUNK = 16 * TILE   # ...while each block still walks at least 16 tiles of K


def k_splits(m, n, k):
    """How many chunks of K to sum separately: 1 unless C has few tiles and K is long (gemm.cu, split K)."""
    tiles = -(-m // TILE) * -(-n // TILE)
    return max(1, min(BUSY_BLOCKS // tiles, k // MIN_K_CHUNK))


def element_strides(array):
    """(row, column) strides in elements of a 2-D array (NumPy and CuPy give them in bytes)."""
    return tuple(s // array.itemsize for s in array.strides)


def matmul(a, b, out=None, backend="auto", splits=None):
    """a (M, K) @ b (K, N) -> (M, N), into `out` (C-contiguous, of a's dtype) when given.

    splits: the number of K chunks summed separately (default k_splits(M, N, K)); any value gives the
    same product up to rounding."""
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
    splits = k_splits(m, n, k) if splits is None else max(1, min(int(splits), max(k, 1)))
    k_chunk = -(-max(k, 1) // splits)
    grid = (-(-n // TILE), -(-m // TILE), splits)
    operands = (a, b, m, n, k, *element_strides(a), *element_strides(b))
    if splits == 1:
        device.launch_blocks(SOURCE, "gemm", a.dtype, grid, (TILE, TILE),
                             (*operands[:2], out, *operands[2:], *element_strides(out), k_chunk, 0))
        return out
    partials = xp.empty((splits, m, n), dtype=a.dtype)   # partial matrix z: its chunk of K
    device.launch_blocks(SOURCE, "gemm", a.dtype, grid, (TILE, TILE),
                         (*operands[:2], partials, *operands[2:], n, 1, k_chunk, m * n))
    device.launch(SOURCE, "sum_splits", a.dtype, m * n, (partials, out, splits, m * n))
    return out
