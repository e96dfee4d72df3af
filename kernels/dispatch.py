"""Where a fused op runs, and how a .cu kernel is launched on the GPU.

Each op in kernels/ has one entry point per direction, for example

    y, cache = kernels.gumbel_softmax(alpha, u, tau)         # forward
    dalpha = kernels.gumbel_softmax_backward(dy, cache)      # backward

and the forward picks a backend from its arguments (backend="auto"):
- NumPy arrays: the reference, i.e. the layer library's own functions;
- CuPy arrays: the CUDA kernel; inside `with kernels.reference_on_gpu():` the
  same reference code runs on CuPy instead (to compare the two, or to time them);
- or the backend passed explicitly: "reference", GPU, or kernels.cpu.CPU, which
  runs the .cu text compiled as C++ on the host (how the tests check the kernels
  without a GPU).
The forward puts the backend into its cache, so the backward takes the same path.

The backends agree to rounding, with one known edge: in float32 CUDA's expf is built
on ex2.approx.ftz.f32, so a result below the smallest normal float (1.2e-38, e.g. a
softmax probability of exp(-90)) is 0 on the GPU and a subnormal on the CPU.

A backend has two methods,

    launch(source, name, dtype, n_threads, args)
    launch_blocks(source, name, dtype, grid, block, args)

which run the kernel `{name}_f32` or `{name}_f64` of kernels/{source}: the first as a
grid-stride loop over n_threads iterations, the second on a grid (gx, gy) of blocks of
(bx, by) threads, for kernels that share memory within a block. args are, in the kernel's order,
arrays of the backend's kind (C-contiguous, of dtype), Python floats (passed as
the kernel's T) and Python ints (passed as long long). The GPU backend counts its
launches (`GPU.launches`), so a benchmark can say how many kernels a step runs.
"""
import contextlib
import contextvars
import threading
from pathlib import Path

import numpy as np

from refnet import get_array_module

KERNEL_DIR = Path(__file__).parent
# CuPy's RawModule and the NVRTC test compile with the same options. CuPy adds -ftz=true to every RawModule
# anyway (float32 subnormals flush to zero): named here, so the PTX the tests read is what runs.
NVRTC_OPTIONS = ("-std=c++14", "-ftz=true")
SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

# A context variable, not a module global: the switch holds for the `with` block of this thread only.
_kernels_on_gpu = contextvars.ContextVar("kernels_on_gpu", default=True)


@contextlib.contextmanager
def reference_on_gpu(enabled=True):
    """Within the block, CuPy arrays run the NumPy reference code (on CuPy) instead of the CUDA kernels.

        with kernels.reference_on_gpu():
            stats = train_step(x)            # the same step, written in array operations
    `enabled=False` makes the block use the kernels, so a caller can choose with one `with`.
    """
    token = _kernels_on_gpu.set(not enabled)
    try:
        yield
    finally:
        _kernels_on_gpu.reset(token)


def sources():
    """The names of every kernels/*.cu file."""
    return sorted(p.name for p in KERNEL_DIR.glob("*.cu"))


def source_text(source):
    return (KERNEL_DIR / source).read_text()


def kernel_name(name, dtype):
    """'gumbel_softmax_forward', float32 -> 'gumbel_softmax_forward_f32': the extern "C" instantiations."""
    try:
        return f"{name}_{SUFFIX[np.dtype(dtype)]}"
    except KeyError:
        raise TypeError(f"{name}: the kernels take float32 or float64, not {np.dtype(dtype)}") from None


def choose_backend(array, backend="auto"):
    """None for the reference, else the backend object that runs the kernel (see the module docstring)."""
    if isinstance(backend, str):
        if backend == "reference":
            return None
        if backend != "auto":
            raise ValueError(f"backend must be 'auto', 'reference' or a backend object, not {backend!r}")
        if get_array_module(array) is np or not _kernels_on_gpu.get():
            return None
        return GPU
    return backend


def prepare(*arrays, like=None, shape=None):
    """The inputs of a kernel: (xp, dtype, arrays), every array C-contiguous, of one dtype, on one device.

    A forward passes only its inputs: the dtype is NumPy's promotion of them, what the
    reference would compute in. A backward passes like=an array its forward cached, whose
    module and dtype the gradients must take (an upstream gradient may be a Python
    float), and shape= to broadcast scalars to full arrays: a kernel reads one value per element.
    """
    xp = get_array_module(*arrays) if like is None else get_array_module(like)
    dtype = np.dtype(xp.result_type(*arrays) if like is None else like.dtype)
    if dtype not in SUFFIX:
        raise TypeError(f"the kernels take float32 or float64 arrays, not {dtype}")
    out = []
    for a in arrays:
        if shape is not None and scalar_kind(a) != "array":
            out.append(xp.full(shape, a, dtype=dtype))   # a fill, not a copy from the host: capturable
            continue
        a = xp.asarray(a, dtype=dtype)
        out.append(xp.ascontiguousarray(a if shape is None else xp.broadcast_to(a, shape)))
    return xp, dtype, out


def scalar_kind(value):
    """'real', 'index' or 'array': how a launch argument is passed (T, long long or a pointer)."""
    if isinstance(value, (float, np.floating)):
        return "real"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return "index"
    return "array"


class GpuBackend:
    """Runs the kernels with CuPy: RawModule compiles each .cu once with NVRTC (CuPy caches it on disk)."""

    threads_per_block = 256
    max_blocks = 4096       # the grid-stride loop covers any n with a bounded grid

    def __init__(self):
        self._modules, self._functions = {}, {}
        self._loading = threading.Lock()   # threads' first uses of a kernel compile and load it once
        self.launches = 0       # kernels launched so far, for benchmarks

    def _function(self, source, name, dtype, args):
        """The compiled kernel {name}_f32/_f64 of `source` and `args` as C types (NumPy scalars, arrays as they are)."""
        import cupy  # here, not at the top: nothing else in kernels/ needs CuPy
        key = (source, kernel_name(name, dtype))
        function = self._functions.get(key)
        if function is None:
            with self._loading:   # one compile and load, however many threads ask at once
                if source not in self._modules:
                    self._modules[source] = cupy.RawModule(code=source_text(source), options=NVRTC_OPTIONS)
                function = self._functions.setdefault(key, self._modules[source].get_function(key[1]))
        # NumPy scalars, which CuPy passes as the C types T and long long; arrays as they are.
        as_c_type = {"real": np.dtype(dtype).type, "index": np.int64, "array": lambda a: a}
        return function, tuple(as_c_type[scalar_kind(a)](a) for a in args)

    def launch(self, source, name, dtype, n_threads, args):
        """A grid-stride kernel over n_threads iterations, on a bounded 1-D grid."""
        function, typed = self._function(source, name, dtype, args)
        blocks = max(1, min(-(-n_threads // self.threads_per_block), self.max_blocks))
        function((blocks,), (self.threads_per_block,), typed)
        self.launches += 1

    def launch_blocks(self, source, name, dtype, grid, block, args):
        """A kernel with its own geometry: grid (gx, gy) of blocks (bx, by) (shared memory, __syncthreads)."""
        function, typed = self._function(source, name, dtype, args)
        function(tuple(grid), tuple(block), typed)
        self.launches += 1

    def __repr__(self):
        return "GPU"


GPU = GpuBackend()
