"""Fused CUDA kernels for JointVAE's sampling, KL and loss terms, each with its NumPy reference.

    op                               kernel + Python side          the reference it must match
    Gumbel-softmax sample            gumbel.cu       gumbel.py       jointvae.latent.gumbel_softmax
    z = mu + exp(logvar/2) eps       normal.cu       normal.py       jointvae.latent.reparameterize_normal
      fused with KL to N(0, 1)                                         + refnet.kl.kl_normal
    KL to the uniform, per row       categorical.cu  categorical.py  refnet.kl.kl_categorical_uniform
    BCE on logits, per element       bce.cu          bce.py          refnet.losses.binary_cross_entropy_with_logits

Each op is a forward returning (output, cache) and a backward taking the cache, as
everywhere in refnet. The forward dispatches (dispatch.py): NumPy arrays run the
reference, CuPy arrays the kernel (set_use_kernels(False) runs the reference on
CuPy instead), and backend=cpu.CPU runs the kernel's own .cu text compiled as C++
(cpu.py, cpu_shim.h), which is how CI checks the kernels without a GPU. nvrtc.py
compiles the .cu files for the GPU, also without one.

The .cu files are templates on float/double with extern "C" instantiations
(`gumbel_softmax_forward_f32`, `..._f64`), written as grid-stride loops without
shared memory: elementwise work is one thread per element, work over a row of K
categories one thread per row.
"""
from .bce import binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward
from .categorical import kl_categorical_uniform, kl_categorical_uniform_backward
from .dispatch import GPU, set_use_kernels, sources
from .gumbel import gumbel_softmax, gumbel_softmax_backward
from .normal import reparameterize_with_kl, reparameterize_with_kl_backward

__all__ = ["GPU", "set_use_kernels", "sources", "gumbel_softmax", "gumbel_softmax_backward",
           "reparameterize_with_kl", "reparameterize_with_kl_backward", "kl_categorical_uniform",
           "kl_categorical_uniform_backward", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_backward"]
