"""Parameters to and from .npz files, keyed by dotted names, never pickled.

save writes to a temporary file in the same folder and renames it over the
target, so a crash mid-write never leaves a half-written file where a good
one was.
"""
import os
import tempfile
import zipfile

import numpy as np

from .backend import to_numpy


def save_npz(path, arrays):
    """Write {name: array} (NumPy or CuPy) to `path` atomically, creating its folder if needed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{name: to_numpy(value) for name, value in arrays.items()})
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make weights private to their writer
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_npz(path):
    """{name: numpy array} from an .npz written by save_npz (or numpy.savez); pickles refused.

    A missing, truncated or corrupt file raises ValueError/FileNotFoundError with
    a one-line message naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def save_params(path, layer_or_params):
    """Save a layer's params (or a params dict) to .npz."""
    params = getattr(layer_or_params, "params", layer_or_params)
    save_npz(path, params)


def load_params(path, layer=None, dtype=None):
    """Load params from .npz; with `layer`, also set them on it (names and shapes checked)."""
    params = load_npz(path)
    if dtype is not None:
        params = {k: v.astype(dtype) for k, v in params.items()}
    if layer is not None:
        layer.set_params(params)
    return params
