"""Running kernels/*.cu on the CPU: the same source text, compiled as C++ with cpu_shim.h.

    CPU.launch("gumbel.cu", "gumbel_softmax_forward", np.float64, n, (alpha, u, y, 0.67, n, k))

compiles gumbel.cu once with the system C++ compiler (`$CXX`, else `c++`) into a
shared library in the cache folder (`$JOINTVAE_KERNEL_CACHE`, else
~/.cache/jointvae/kernels, keyed by a hash of compiler, flags, shim and source),
loads it with ctypes and calls gumbel_softmax_forward_f64 as one block of one
thread: the kernel's grid-stride loop then walks every row. This is how the tests
and the verify suite check the kernels' own text against the NumPy references,
and their backward against finite differences, on a machine without a GPU.

CpuBackend(sources={"gumbel.cu": text}) compiles `text` in place of the file
(the mutation tests), and CpuBackend(grid=(blocks, threads)) plays a larger launch,
one thread after another, so that the loops' indexing is exercised too.

Kernels with shared memory and __syncthreads() (the tiled matrix product) go through
launch_blocks(source, name, dtype, grid, block, args) with the GPU's own geometry: the blocks
run one after another and each block's threads run as fibers that meet at every
__syncthreads() (cpu_shim.h). For that, build() appends to the text one C entry point per
kernel, `cpu_shim_blocks_<kernel>(args, gx, gy, bx, by)`, which runs the whole grid in C++.
"""
import ctypes
import hashlib
import os
import shutil
import re
import subprocess
from pathlib import Path

import numpy as np

from .dispatch import KERNEL_DIR, kernel_name, scalar_kind, source_text

SHIM = KERNEL_DIR / "cpu_shim.h"
# -ffp-contract=off: no fused multiply-add, so each float operation rounds as NumPy's does.
FLAGS = ("-std=c++14", "-O2", "-fPIC", "-shared", "-ffp-contract=off")


class CompilerMissing(RuntimeError):
    """No C++ compiler: the kernels cannot run on the CPU (this must fail checks, never skip them)."""


class CompileError(RuntimeError):
    """The .cu text does not compile as C++ with the shim; the message holds the compiler's output."""


class DivergentBarrier(RuntimeError):
    """Some threads of a block returned while others waited at a __syncthreads(): undefined on a GPU."""


def grid_entry_points(text):
    """C++ appended to a .cu text: for each extern "C" kernel K, `cpu_shim_blocks_K(args, gx, gy, gz, bx, by)`
    running the grid of blocks as fibers (cpu_shim.h), args[i] pointing to the i-th argument's value."""
    names = re.findall(r'extern "C" __global__ void (\w+)\(', text)
    return "".join(f'\nextern "C" int cpu_shim_blocks_{name}(void** args, unsigned int gx, unsigned int gy, '
                   f'unsigned int gz, unsigned int bx, unsigned int by) '
                   f'{{ return cpu_shim_launch(&{name}, args, gx, gy, gz, bx, by); }}'
                   for name in names)


def compiler():
    """Full path of the C++ compiler: $CXX, else c++."""
    name = os.environ.get("CXX") or "c++"
    path = shutil.which(name)
    if path is None:
        raise CompilerMissing(f"no C++ compiler {name!r} found (install g++ or set CXX): "
                              "running kernels/*.cu on the CPU needs one")
    return path


def cache_dir():
    default = Path.home() / ".cache" / "jointvae" / "kernels"
    return Path(os.environ.get("JOINTVAE_KERNEL_CACHE") or default)


def build(source, text=None):
    """Compile kernels/<source> (or `text` in its place) as C++ -> path of the shared library, cached."""
    text = source_text(source) if text is None else text
    cxx = compiler()
    key = hashlib.sha256("\0".join([cxx, *FLAGS, SHIM.read_text(), text]).encode()).hexdigest()[:16]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(source).stem}-{key}"
    library = folder / f"{stem}.so"
    if library.exists():
        return library
    # Written under a private name and renamed: two processes may build the same library at once.
    cu, unfinished = folder / f"{stem}.{os.getpid()}.cu", folder / f"{stem}.{os.getpid()}.so"
    cu.write_text(text + grid_entry_points(text))
    try:
        result = subprocess.run([cxx, *FLAGS, "-x", "c++", "-include", str(SHIM), str(cu), "-o", str(unfinished)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError(f"{source} does not compile as C++ with cpu_shim.h:\n{result.stderr}")
        os.replace(unfinished, library)
    finally:
        cu.unlink(missing_ok=True)
        unfinished.unlink(missing_ok=True)
    return library


class CpuBackend:
    """Runs the kernels on the host through ctypes (see the module docstring)."""

    def __init__(self, sources=None, grid=(1, 1)):
        self.sources = dict(sources or {})   # file name -> text to compile instead of the file
        self.grid = grid                     # (blocks, threads per block) played one thread at a time
        self._libraries = {}

    def library(self, source):
        """The loaded library of `source`; a failed build is remembered, not retried on every call."""
        if source not in self._libraries:
            try:
                self._libraries[source] = ctypes.CDLL(str(build(source, self.sources.get(source))))
            except (CompilerMissing, CompileError) as e:
                self._libraries[source] = e
        library = self._libraries[source]
        if isinstance(library, Exception):
            raise type(library)(str(library))  # a new one each time: re-raising one object grows its traceback
        return library

    def _function(self, source, name, dtype, args, contiguous=True):
        """(library, the kernel {name}_f32/_f64, its ctypes arguments) for `args` as described in dispatch.py.

        contiguous=False admits strided arrays, for kernels that are given the strides (gemm.cu)."""
        library = self.library(source)
        function = getattr(library, kernel_name(name, dtype))
        real = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
        c_args = []
        for a in args:
            kind = scalar_kind(a)
            if kind == "real":
                c_args.append(real(a))
            elif kind == "index":
                c_args.append(ctypes.c_longlong(a))
            else:
                if not isinstance(a, np.ndarray) or a.dtype != dtype or (contiguous and not a.flags.c_contiguous):
                    raise TypeError(f"{name}: arguments must be {'C-contiguous ' if contiguous else ''}"
                                    f"NumPy {np.dtype(dtype)} arrays")
                c_args.append(ctypes.c_void_p(a.ctypes.data))   # `args` keeps the arrays alive
        function.argtypes = [type(c) for c in c_args]
        function.restype = None
        return library, function, c_args

    def launch(self, source, name, dtype, n_threads, args):
        """Call {name}_f32/_f64 for every thread of self.grid; n_threads is the GPU's concern, not ours."""
        library, function, c_args = self._function(source, name, dtype, args)
        blocks, threads = self.grid
        for block in range(blocks):
            for thread in range(threads):
                library.cpu_shim_set_thread(thread, 0, block, 0, threads, 1, blocks, 1)
                function(*c_args)

    def launch_blocks(self, source, name, dtype, grid, block, args):
        """Run {name}_f32/_f64 on a grid (gx, gy[, gz]) of blocks (bx, by), as the GPU would: the blocks one after
        another, each block's threads as fibers meeting at every __syncthreads(). Arrays may be strided:
        such kernels take their strides as arguments."""
        library, _, c_args = self._function(source, name, dtype, args, contiguous=False)
        values = [ctypes.c_void_p(a.value) if isinstance(a, ctypes.c_void_p) else a for a in c_args]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        run_grid = getattr(library, f"cpu_shim_blocks_{kernel_name(name, dtype)}")
        run_grid.restype = ctypes.c_int
        (gx, gy, gz), (bx, by) = (*grid, 1)[:3], block
        if run_grid(pointers, *(ctypes.c_uint(v) for v in (gx, gy, gz, bx, by))):
            raise DivergentBarrier(f"{source} {name}: some threads of a block returned while others waited "
                                   f"at __syncthreads()")

    def __repr__(self):
        return f"CpuBackend(grid={self.grid}{', with replaced sources' if self.sources else ''})"


CPU = CpuBackend()
