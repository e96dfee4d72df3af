"""Parameters to and from .npz files, keyed by dotted names, never pickled.

save writes to a temporary file in the same folder and renames it over the
target, so a crash mid-write never leaves a half-written file where a good
one was.

load reads files from anywhere, so it trusts nothing in them: it opens
regular files only (a FIFO would block forever), and checks every member's
.npy header against the bytes the zip really holds before NumPy allocates
anything (a header can claim any shape).
"""
import math
import os
import stat
import struct
import tempfile
import zipfile
import zlib

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


class UnreadableFileError(ValueError):
    """A path that is not a regular file one may read, or too large; the message names it."""


class NpzFormatError(ValueError):
    """An .npz file that cannot be loaded; the message names the file and the problem."""


#: Most bytes of array data load_npz allocates for one file (the largest file
#: of this project, the dSprites cache, holds 377 MB).
MAX_NPZ_BYTES = 1 << 30
#: Deflate cannot expand data more than 1032 times; a member claiming more is lying.
_MAX_DEFLATE_RATIO = 1032


def open_regular_file(path, max_bytes=None):
    """Open `path` for binary reading if it is a regular file (of at most `max_bytes`).

    The file is opened without blocking and checked on the open descriptor, so
    a FIFO, a device or a folder is refused at once, never read.

    Raises:
        FileNotFoundError: no such file.
        UnreadableFileError (a ValueError): not a regular file, larger than
            `max_bytes`, or unreadable (permission denied and the like); the
            message names the file.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise UnreadableFileError(f"{path}: cannot open ({e.strerror or type(e).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else
                    "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "a device or socket")
            raise UnreadableFileError(f"{path}: {kind}, not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise UnreadableFileError(f"{path}: {info.st_size} bytes, more than the {max_bytes} allowed")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _npz_plan(archive, file_size, path, max_bytes):
    """[(name, ZipInfo)] of an .npz's members after checking each header against the zip; raises NpzFormatError."""
    def bad(problem):
        return NpzFormatError(f"{path}: {problem}")

    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise bad("two members have the same name")
    if sum(info.compress_size for info in infos) > file_size:
        raise bad("its members claim more bytes than the file holds")
    plan, total = [], 0
    for info in infos:
        member = repr(info.filename[:80]) + ("..." if len(info.filename) > 80 else "")
        if not info.filename.endswith(".npy"):
            raise bad(f"member {member} is not a .npy array")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise bad(f"member {member}: stored uncompressed, yet its two sizes differ")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
                raise bad(f"member {member}: claims {info.file_size} bytes from {info.compress_size} compressed")
        else:
            raise bad(f"member {member}: compression method {info.compress_type} (only stored or deflated)")
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise bad(f"member {member}: .npy format version {version} (1.0 and 2.0 are read)")
            header_bytes = stream.tell()
        if dtype.hasobject:
            raise bad(f"member {member} holds Python objects (a pickle); refused")
        needed = math.prod(shape) * dtype.itemsize
        if needed > info.file_size - header_bytes:
            raise bad(f"member {member}: its header claims shape {shape} of {dtype} ({needed} bytes), "
                      f"but only {info.file_size - header_bytes} bytes follow")
        total += needed
        if total > max_bytes:
            raise bad(f"more than {max_bytes} bytes of arrays")
        plan.append((info.filename[:-len(".npy")], info))
    return plan


def load_npz(path, max_bytes=MAX_NPZ_BYTES):
    """{name: numpy array} from an .npz written by save_npz (or numpy.savez); pickles refused.

    Every member's header is checked against the zip before any array is
    allocated: the data must fit in the member's bytes, and all arrays in
    `max_bytes`. A missing file raises FileNotFoundError; anything else amiss
    (not a regular file, truncated, corrupt, not .npy arrays) NpzFormatError,
    a ValueError; both with a one-line message naming the file.
    """
    path = os.fspath(path)
    with open_regular_file(path) as f:
        try:
            file_size = os.fstat(f.fileno()).st_size
            with zipfile.ZipFile(f) as archive:
                arrays = {}
                for name, info in _npz_plan(archive, file_size, path, max_bytes):
                    with archive.open(info) as stream:
                        arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
                return arrays
        except NpzFormatError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError,
                ValueError, KeyError, NotImplementedError, RuntimeError, OverflowError) as e:
            # whatever zipfile / zlib / numpy raise for bad bytes (RuntimeError: an encrypted member)
            detail = str(e).splitlines()[0][:200] if str(e) else ""
            raise NpzFormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {detail})") from None


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
