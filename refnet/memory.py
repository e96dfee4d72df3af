"""Keep freed memory inside the process, so that each training step does not fault in fresh pages.

A training step allocates and frees the same few dozen arrays every step (activations, im2col
columns, gradients: 0.1-8 MB each). By default glibc's malloc hands the free memory at the top of
its heap back to the kernel ("trimming") and soon asks for it again; the kernel then maps fresh
zeroed pages, one page fault per 4 KiB, on the first write of every step. Asking malloc to keep a
pad of free memory at the top of the heap (mallopt M_TOP_PAD) keeps those pages mapped from one
step to the next.

    import refnet
    refnet.retain_freed_memory()     # once, at the start of a training program

Measured on a 2-core VM, MNIST model, batch 64, one BLAS thread, ours alone, three alternating
process pairs: 43.7 ms -> 38.1 ms median per step (docs/results.md). It changes no result, only
where malloc finds memory. A process-wide setting, so library code never calls it; the training
command and the benchmark do (the benchmark's PyTorch runs in the same process and gets it too).
The environment variable MALLOC_TOP_PAD_ does the same from outside.
"""
import ctypes
import ctypes.util
import sys

M_TOP_PAD = -2               # glibc's <malloc.h> parameter number
DEFAULT_PAD_BYTES = 256 << 20


def retain_freed_memory(pad_bytes=DEFAULT_PAD_BYTES):
    """Ask glibc's malloc to keep `pad_bytes` of free memory at the heap's top. -> True if applied.

    Elsewhere (macOS, Windows, musl) this does nothing and returns False.
    """
    if isinstance(pad_bytes, bool) or not isinstance(pad_bytes, int) or not 0 <= pad_bytes < 2**31:
        raise ValueError(f"pad_bytes must be an integer in [0, 2**31), got {pad_bytes!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # no glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_TOP_PAD, pad_bytes) == 1
