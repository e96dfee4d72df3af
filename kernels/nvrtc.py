"""A small ctypes binding to NVRTC, the CUDA runtime compiler that CuPy's RawModule uses.

NVRTC compiles CUDA C++ to PTX on the host: it needs no GPU and no driver, only
libnvrtc.so.12, which the pip package `nvidia-cuda-nvrtc-cu12` ships in
site-packages/nvidia/cuda_nvrtc/lib/. So CI can prove that every kernels/*.cu
compiles for the GPU on a machine that has none.

    ptx = compile_to_ptx(source_text, "gumbel.cu", options=("-std=c++14",))

Only five entry points are used (the C API, nvrtc.h):
    nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL)
    nvrtcCompileProgram(prog, n_options, options)
    nvrtcGetProgramLogSize / nvrtcGetProgramLog    the compiler's messages
    nvrtcGetPTXSize / nvrtcGetPTX                  the result
    nvrtcDestroyProgram(&prog)
"""
import ctypes
import functools
import importlib.util
from pathlib import Path

LIBRARY_NAME = "libnvrtc.so.12"   # CUDA 12's ABI; cupy-cuda12x loads the same one


class NvrtcUnavailable(ImportError):
    """libnvrtc could not be found or loaded (the package is not installed, or another OS)."""


class NvrtcError(RuntimeError):
    """NVRTC refused the source; the message holds the compiler's log."""


def library_path():
    """Path of libnvrtc.so.12 inside the installed nvidia-cuda-nvrtc-cu12 package."""
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
    except ModuleNotFoundError:  # not even the `nvidia` namespace package
        spec = None
    if spec is not None:
        for folder in spec.submodule_search_locations or ():
            candidate = Path(folder) / "lib" / LIBRARY_NAME
            if candidate.exists():
                return candidate
    raise NvrtcUnavailable(f"{LIBRARY_NAME} not found: pip install nvidia-cuda-nvrtc-cu12")


@functools.lru_cache(maxsize=None)
def _library():
    path = library_path()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise NvrtcUnavailable(f"cannot load {path}: {e}") from e
    p, c = ctypes.c_void_p, ctypes.c_char_p
    size = ctypes.POINTER(ctypes.c_size_t)
    signatures = {  # every function returns an nvrtcResult (int, 0 = success)
        "nvrtcCreateProgram": [ctypes.POINTER(p), c, c, ctypes.c_int, ctypes.POINTER(c), ctypes.POINTER(c)],
        "nvrtcCompileProgram": [p, ctypes.c_int, ctypes.POINTER(c)],
        "nvrtcGetProgramLogSize": [p, size],
        "nvrtcGetProgramLog": [p, c],
        "nvrtcGetPTXSize": [p, size],
        "nvrtcGetPTX": [p, c],
        "nvrtcDestroyProgram": [ctypes.POINTER(p)],
        "nvrtcVersion": [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)],
    }
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = ctypes.c_int
    lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
    lib.nvrtcGetErrorString.restype = c
    return lib


def available():
    """True when libnvrtc can be loaded (tests skip the NVRTC check only when it cannot)."""
    try:
        _library()
        return True
    except NvrtcUnavailable:
        return False


def version():
    """(major, minor) of the loaded NVRTC."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(_library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _check(result, what):
    if result != 0:
        message = _library().nvrtcGetErrorString(result).decode()
        raise NvrtcError(f"{what} failed: {message}")


def _read(prog, size_fn, read_fn):
    """NVRTC's two-call pattern: ask for the size, then fill a buffer of that size."""
    n = ctypes.c_size_t()
    _check(size_fn(prog, ctypes.byref(n)), size_fn.__name__)
    buffer = ctypes.create_string_buffer(n.value)
    _check(read_fn(prog, buffer), read_fn.__name__)
    return buffer.value.decode(errors="replace")


def compile_to_ptx(source, name="kernel.cu", options=()):
    """CUDA C++ source text -> PTX text. Raises NvrtcError with the compiler log if it does not compile."""
    lib = _library()
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        encoded = [o.encode() for o in options]
        argv = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
        result = lib.nvrtcCompileProgram(prog, len(encoded), argv)
        log = _read(prog, lib.nvrtcGetProgramLogSize, lib.nvrtcGetProgramLog)
        if result != 0:
            message = lib.nvrtcGetErrorString(result).decode()
            raise NvrtcError(f"{name} does not compile ({message}):\n{log}")
        return _read(prog, lib.nvrtcGetPTXSize, lib.nvrtcGetPTX)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
