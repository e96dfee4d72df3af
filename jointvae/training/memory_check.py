"""Will a training step fit in memory? Asked before anything is allocated or written.

A batch size of 100000 once grew a run to 24 GB until the kernel killed it without a word. The estimate
here is cheap and errs on the large side: the arrays of one image's forward pass (outputs and caches),
times the batch, times 3 for the backward's gradients and temporaries, against the machine's memory (or
the GPU's free memory).
"""
import contextlib
import os

import numpy as np

import kernels
import refnet

from ..models.jointvae import draw_noise
from .captured_step import DEVICE_LOCK


def check_memory(model, batch_size, xp):
    """ValueError, before anything is allocated, when a step at batch_size would not fit in memory.

    The estimate: the arrays of one image's forward (outputs and caches), times the batch, times 3 for the
    backward's gradients and temporaries, against the machine's memory (or the GPU's free memory)."""
    noise = draw_noise(model, 1, np.random.default_rng(0), xp)
    # On a GPU, on our kernels as the step runs (cuBLAS would give this thread a handle whose destruction, when
    # the thread ends, synchronizes the device), and holding DEVICE_LOCK, as the first use of our kernels loads
    # their modules: neither may happen while a run in another thread captures its graph (captured_step.py).
    with contextlib.ExitStack() as on_gpu:
        if xp is not np:
            on_gpu.enter_context(DEVICE_LOCK)
            on_gpu.enter_context(refnet.use_ops(kernels.OPS))
        out, cache = model.forward(xp.zeros((1,) + model.image_shape, np.float32), noise)
    needed = 3 * batch_size * nbytes_of((out, cache))
    if xp is np:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    else:
        available = xp.cuda.Device().mem_info[0]
    if available and needed > 0.8 * available:
        raise ValueError(f"a step at batch size {batch_size} needs about {needed / 2**30:.1f} GiB, more than this "
                         f"machine's {available / 2**30:.1f} GiB can give: choose a smaller --batch-size")


def nbytes_of(value):
    """Bytes of every array inside nested tuples, lists and dicts."""
    if hasattr(value, "nbytes") and hasattr(value, "shape"):
        return int(value.nbytes)
    if isinstance(value, dict):
        value = value.values()
    if isinstance(value, (tuple, list, type({}.values()))):
        return sum(nbytes_of(v) for v in value)
    return 0
