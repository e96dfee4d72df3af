"""Where arrays live: the one place that decides NumPy or CuPy.

`xp` always comes from the data, never from a global flag, so every layer
runs unchanged on CPU and GPU:

    xp = get_array_module(x)      # numpy for numpy arrays, cupy for cupy arrays
"""
import numpy as np

try:  # CuPy is the optional extra [gpu]; without it everything is NumPy.
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy whose CUDA libraries are missing
    _cupy = None


def get_array_module(*arrays):
    """numpy, or cupy when any argument is a CuPy array."""
    if _cupy is not None:
        return _cupy.get_array_module(*arrays)
    return np


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def require_gpu():
    """Return the cupy module, or raise one clear error saying what is missing."""
    if _cupy is None:
        raise RuntimeError("--device gpu needs CuPy: pip install '.[gpu]' (CuPy is not installed)")
    if not gpu_available():
        raise RuntimeError("--device gpu: CuPy is installed but no CUDA GPU is visible")
    return _cupy


def to_device(array, device):
    """Copy an array to 'cpu' (numpy) or 'gpu' (cupy); no copy when it is already there."""
    if device == "cpu":
        return to_numpy(array)
    if device == "gpu":
        return require_gpu().asarray(array)
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'gpu'")


def to_numpy(array):
    """A NumPy array from a NumPy or CuPy array (or a Python scalar)."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return array.get()
    return np.asarray(array)


def params_to(params, device):
    """{name: array} -> the same names with every array on `device`."""
    return {name: to_device(value, device) for name, value in params.items()}
