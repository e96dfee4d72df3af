"""refnet's accelerated backend: fused CUDA kernels for the latent ops, the convolutions' gathers, the matrix
product and Adam, each beside the reference it must equal.

    op                               kernel + Python side          the reference (refnet) it must equal
    Gumbel-softmax sample            gumbel.cu       gumbel.py       refnet.latent.gumbel_softmax
    z = mu + exp(logvar/2) eps       normal.cu       normal.py       refnet.latent.reparameterize_normal
      fused with KL to N(0, 1)                                         + refnet.latent.kl_normal
    KL to the uniform, per row       categorical.cu  categorical.py  refnet.latent.kl_categorical_uniform
    gather of every kernel window    im2col.cu       im2col.py       refnet.conv.im2col
      and its adjoint, a gather too                                  refnet.conv.col2im
    matrix product C = A B           gemm.cu         gemm.py         a @ b (NumPy's, as refnet's layers use it)
    Adam's update, in place, on      adam.cu         adam.py         refnet.optim.adam_update (bit for bit)
      flat buffers (refnet.flat)

refnet's layers take their products and window gathers from kernels.OPS inside
`with refnet.use_ops(kernels.OPS):` (ops.py), since refnet itself imports no backend.

Each latent op is a forward returning (output, cache) and a backward taking the cache, as everywhere in
refnet; im2col and col2im are plain functions with refnet.conv's signatures, each the other's backward;
adam_update is one in-place step. The forward (or the step) dispatches (dispatch.py): NumPy arrays run the
reference, CuPy arrays the kernel (inside `with reference_on_gpu():` the reference on CuPy instead), and
backend=cpu.CPU runs the
kernel's own .cu text compiled as C++ (cpu.py, cpu_shim.h), which is how CI checks the kernels
without a GPU. nvrtc.py compiles the .cu files for the GPU, also without one.

kernels/ imports refnet and nothing of jointvae: it is the layer library's backend, not the model's.

The .cu files are templates on float/double with extern "C" instantiations
(`gumbel_softmax_forward_f32`, `..._f64`). Most are grid-stride loops without shared
memory: elementwise work is one thread per element, work over a row of K categories one
thread per row, im2col and col2im one thread per element they write. gemm.cu is the
exception: blocks of threads share tiles in shared memory and meet at __syncthreads(),
which the CPU shim plays with fibers.
"""
from .adam import adam_update
from .categorical import kl_categorical_uniform, kl_categorical_uniform_backward
from .dispatch import GPU, reference_on_gpu, sources
from .gemm import matmul
from .gumbel import gumbel_softmax, gumbel_softmax_backward
from .im2col import col2im, im2col   # kernels.im2col is now the function; the module: `from kernels.im2col import ...`
from .normal import reparameterize_with_kl, reparameterize_with_kl_backward
from .ops import OPS, ops_on

__all__ = ["GPU", "adam_update", "reference_on_gpu", "sources", "gumbel_softmax", "gumbel_softmax_backward",
           "reparameterize_with_kl", "reparameterize_with_kl_backward", "kl_categorical_uniform",
           "kl_categorical_uniform_backward", "matmul", "im2col", "col2im", "OPS", "ops_on"]
