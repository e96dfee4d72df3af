"""refnet's heavy operations on our kernels: the refnet.Ops that hands them to refnet's layers.

    with refnet.use_ops(kernels.OPS):            # CuPy arrays: products on gemm.cu, windows on im2col.cu
        stats, grads, _ = objective_and_grads(model, x, noise, spec, step)

kernels.OPS dispatches by array, as every op here does: NumPy arrays still take the reference (so
the block changes nothing on the CPU), CuPy arrays the CUDA kernels (unless reference_on_gpu()).
ops_on(cpu.CPU) runs them from the .cu text on the CPU instead: how the tests put a whole training
step through the kernels on a machine without a GPU.
"""
import functools

import refnet

from .gemm import matmul
from .im2col import col2im, im2col


def ops_on(backend="auto"):
    """refnet.Ops whose operations run on `backend` ('auto': by array, as everywhere in kernels/)."""
    return refnet.Ops(matmul=functools.partial(matmul, backend=backend),
                      im2col=functools.partial(im2col, backend=backend),
                      col2im=functools.partial(col2im, backend=backend))


OPS = ops_on("auto")
