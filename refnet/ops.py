"""The heavy array operations of refnet's layers, and how an accelerated backend takes them over.

    matmul(a, b)                               a (M, K) @ b (K, N) -> (M, N)
    im2col(x, kernel, stride, padding)         refnet.conv.im2col's semantics
    col2im(cols, x_shape, stride, padding)     refnet.conv.col2im's semantics

Linear, Conv2d and ConvTranspose2d compute every matrix product and every window gather through
these. By default they are refnet's own array code, on NumPy or CuPy alike. A backend with faster
versions of the same semantics (kernels/: CUDA kernels) hands them in for a block:

    with refnet.use_ops(kernels.OPS):          # every product and window gather on our own kernels
        out, cache = model.forward(x, noise)

refnet itself imports no backend: the switch is this context manager (a context variable, so it
holds for the `with` block of this thread only), never a global flag.
"""
import contextlib
import contextvars
import dataclasses
from typing import Callable, Optional


@dataclasses.dataclass(frozen=True)
class Ops:
    """Replacements for refnet's heavy operations, with the same semantics; None keeps refnet's own."""
    matmul: Optional[Callable] = None
    im2col: Optional[Callable] = None
    col2im: Optional[Callable] = None


_in_use = contextvars.ContextVar("refnet_ops", default=Ops())


@contextlib.contextmanager
def use_ops(ops):
    """Within the block, refnet's layers compute with `ops` (an Ops) wherever it gives an operation."""
    token = _in_use.set(ops)
    try:
        yield
    finally:
        _in_use.reset(token)


def ops_in_use():
    """The Ops of the innermost use_ops block (Ops() outside any)."""
    return _in_use.get()


def matmul(a, b):
    """a (M, K) @ b (K, N) -> (M, N): the product in use, else the array module's."""
    accelerated = _in_use.get().matmul
    return a @ b if accelerated is None else accelerated(a, b)
