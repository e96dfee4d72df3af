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


def element_strides(array):
    """(row, column) strides in elements of a 2-D array (NumPy and CuPy give them in bytes)."""
    return tuple(s // array.itemsize for s in array.strides)


def matmul(a, b, out=None, backend="auto"):
    """a (M, K) @ b (K, N) -> (M, N), into `out` (C-contiguous, of a's dtype) when given."""
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
    grid = (-(-n // TILE), -(-m // TILE))
    device.launch_blocks(SOURCE, "gemm", a.dtype, grid, (TILE, TILE),
                         (a, b, out, m, n, k, *element_strides(a), *element_strides(b), *element_strides(out)))
    return out
