"""Read a state_dict from a legacy (pre-zip, 2018) `torch.save` file without torch.

The published JointVAE weights are a `torch.save(model.state_dict(), "model.pt")`
file from PyTorch 0.3/0.4. Before PyTorch 1.6 that format was a plain
concatenation, which this module reads step by step:

1. a pickle of the magic number 0x1950a86a20f9469cfc6c,
2. a pickle of the format version (1001),
3. a pickle of `sys_info` (byte order, sizes of C types),
4. the pickled object itself -- here an OrderedDict of tensors. A tensor is
   pickled as a call `torch._utils._rebuild_tensor(storage, offset, size,
   stride)` (or `_rebuild_tensor_v2` with extra arguments we ignore). The
   storage is not inside the pickle: it is a *persistent id*
   `('storage', storage_type, key, location, size, view_metadata)`,
5. a pickle of the list of storage keys, in the order their data follows,
6. for each key: an 8-byte little-endian element count, then the raw
   little-endian elements.

Tensors are rebuilt from (storage, offset, size, stride) with NumPy stride
tricks and copied into fresh C-contiguous arrays, so
`load_legacy_torch(path)["fc_mean.weight"]` is an ordinary `np.ndarray` of
shape (out, in).

Nothing from torch is imported or needed: `torch.FloatStorage` and friends are
replaced by `StorageType` markers and `_rebuild_tensor` by a function that only
records its arguments. Any other global in the file is refused (see
`safe_unpickle`), so a malicious file cannot run code.

Nor can it make the reader work without end: the file must be a regular file
of at most MAX_FILE_BYTES, each pickle passes `safe_unpickle.check_pickle`
(bounded opcodes and depth, no shared containers) before it is unpickled, and
what comes out is checked by type before it is used; no message shows the
repr of anything read from the file.
"""

from __future__ import annotations

import collections
import io
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from refnet.serialization import open_regular_file

from .safe_unpickle import (PickleRefusedError, PickleTooComplexError, RefusedGlobalError,
                            check_pickle, restricted_load)

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
#: The paper's model.pt files are a few MB; the whole file is read into memory.
MAX_FILE_BYTES = 256 << 20
#: Opcodes allowed in each of the three small header pickles (the paper's have 3, 3 and 27).
MAX_HEADER_OPCODES = 1000
#: Sizes, strides and offsets are int64 in torch.
_MAX_COUNT = 2**63 - 1


class LegacyTorchFormatError(ValueError):
    """The file is not a readable legacy torch.save file (truncated, corrupt, other format)."""


@dataclass(frozen=True, slots=True)   # slots: no __dict__ a pickle's BUILD could rewrite
class StorageType:
    """Stand-in for a torch storage class such as `torch.FloatStorage`.

    It only tells which NumPy dtype the raw bytes of the storage hold.
    """

    name: str
    dtype: np.dtype


# torch storage class name -> dtype of its elements as written to disk
# (always little-endian here: we refuse files saved on big-endian machines).
STORAGE_TYPES: dict[str, StorageType] = {
    name: StorageType(name, np.dtype(code))
    for name, code in [
        ("DoubleStorage", "<f8"),
        ("FloatStorage", "<f4"),
        ("HalfStorage", "<f2"),
        ("LongStorage", "<i8"),
        ("IntStorage", "<i4"),
        ("ShortStorage", "<i2"),
        ("CharStorage", "i1"),
        ("ByteStorage", "u1"),
        ("BoolStorage", "?"),
    ]
}


@dataclass(frozen=True)
class _StorageRef:
    """What a persistent id in the pickle says about one storage.

    The storage `key` is a whole ("root") storage of `size` elements; when
    `view` is not None the tensor uses only elements
    [view_offset, view_offset + view_size) of it.
    """

    key: str
    storage_type: StorageType
    size: int
    view: tuple[int, int] | None  # (view_offset, view_size)


@dataclass(frozen=True)
class _TensorRecipe:
    """The arguments of one `_rebuild_tensor` call, kept until the storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride):
    """Stand-in for `torch._utils._rebuild_tensor`: only records its arguments."""
    return _TensorRecipe(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """Stand-in for `torch._utils._rebuild_tensor_v2` (torch >= 0.4).

    requires_grad, backward_hooks and metadata do not change the numbers, so they are dropped.
    """
    return _rebuild_tensor(storage, storage_offset, size, stride)


# Everything the state_dict pickle may name. The storage classes map to
# markers, the rebuild functions to the recorders above: no torch object is
# ever created, and nothing else can be imported.
_STATE_DICT_ALLOWLIST: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): storage_type for name, storage_type in STORAGE_TYPES.items()},
}


def _is_count(value: Any) -> bool:
    """True for a Python int in [0, 2**63) (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT


def _name(text: str) -> str:
    """A name read from the file, for a message: repr (one line), at most 80 characters of it."""
    return repr(text[:80]) + ("..." if len(text) > 80 else "")


def _parse_persistent_id(pid: Any, source: str) -> _StorageRef:
    """Check a torch persistent id tuple and turn it into a `_StorageRef`."""
    ok = isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
    if ok:
        _, storage_type, key, _location, size, view_metadata = pid
        ok = isinstance(storage_type, StorageType) and isinstance(key, str) and _is_count(size)
    if ok and view_metadata is not None:
        ok = (isinstance(view_metadata, tuple) and len(view_metadata) == 3
              and _is_count(view_metadata[1]) and _is_count(view_metadata[2]))
    if not ok:
        raise LegacyTorchFormatError(f"{source}: malformed storage reference (a {type(pid).__name__})")
    view = None if view_metadata is None else (view_metadata[1], view_metadata[2])
    return _StorageRef(key, storage_type, size, view)


def _load_pickle(f: io.BytesIO, allowed: dict, source: str, what: str, persistent_load=None,
                 max_opcodes: int | None = None) -> Any:
    """One pickle of the stream; any failure except a refusal becomes a one-line error."""
    # Walk the opcodes once before unpickling. pickletools checks every
    # length field against the bytes actually present, so a corrupt file
    # fails here with a short message, instead of making the C unpickler try
    # to allocate a buffer of whatever size a damaged length field claims;
    # check_pickle also bounds what the unpickler may build.
    limits = {} if max_opcodes is None else {"max_opcodes": max_opcodes}
    try:
        check_pickle(f, what=source, **limits)
    except PickleTooComplexError as exc:
        raise LegacyTorchFormatError(f"{source}: {what} pickle refused: {exc.reason}") from None
    except PickleRefusedError as exc:
        raise LegacyTorchFormatError(f"{source}: truncated or corrupt {what} pickle ({exc.reason})") from None
    try:
        # Python 2 `str` objects (all names in a 2018 file) are decoded as UTF-8, as torch does.
        return restricted_load(f, allowed, persistent_load, what=source, encoding="utf-8")
    except (RefusedGlobalError, LegacyTorchFormatError):
        raise
    except RecursionError:
        raise LegacyTorchFormatError(f"{source}: {what} pickle nested too deeply") from None
    except Exception as exc:  # EOFError, UnpicklingError, ValueError, TypeError ... from bad bytes
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise LegacyTorchFormatError(
            f"{source}: truncated or corrupt {what} pickle ({type(exc).__name__}: {detail})"
        ) from None


def _check_header(f: io.BytesIO, source: str) -> None:
    """Read and check pickles 1-3: magic number, format version, sys_info."""
    start = f.read(4)
    f.seek(0)
    if start == b"PK\x03\x04":
        raise LegacyTorchFormatError(
            f"{source}: this is the zip-based torch.save format (torch >= 1.6), not the legacy one")
    if start[:1] != b"\x80":
        raise LegacyTorchFormatError(f"{source}: not a legacy torch.save file (no pickle at start)")

    # Each value is checked by its type before anything else is done with it:
    # the file decides what the pickles hold, and a repr or a comparison of a
    # hostile object could take any time.
    magic = _load_pickle(f, {}, source, "magic number", max_opcodes=MAX_HEADER_OPCODES)
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
        raise LegacyTorchFormatError(f"{source}: wrong magic number (not a legacy torch.save file)")
    version = _load_pickle(f, {}, source, "protocol version", max_opcodes=MAX_HEADER_OPCODES)
    if type(version) is not int or version != LEGACY_PROTOCOL_VERSION:
        shown = f" {version}" if type(version) is int and abs(version) < 10**12 else ""
        raise LegacyTorchFormatError(f"{source}: unsupported legacy format version{shown}")
    sys_info = _load_pickle(f, {}, source, "sys_info", max_opcodes=MAX_HEADER_OPCODES)
    if type(sys_info) is not dict:
        raise LegacyTorchFormatError(f"{source}: corrupt sys_info pickle")
    if not sys_info.get("little_endian", True):
        raise LegacyTorchFormatError(f"{source}: saved on a big-endian machine; not supported")


def _read_storages(f: io.BytesIO, keys: list, refs: dict[str, _StorageRef],
                   source: str) -> dict[str, np.ndarray]:
    """Read the raw data of every storage, in the order of `keys`, starting at `f.tell()`.

    Returns key -> 1-D read-only array of the storage's elements (a view into `f`'s buffer).
    """
    buffer = f.getbuffer()
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in refs:
            raise LegacyTorchFormatError(f"{source}: storage key {_name(key)} is not used by any tensor")
        ref = refs[key]
        count_bytes = f.read(8)
        if len(count_bytes) < 8:
            raise LegacyTorchFormatError(f"{source}: truncated storage header for key {_name(key)}")
        count = int.from_bytes(count_bytes, "little")
        if count != ref.size:
            raise LegacyTorchFormatError(
                f"{source}: storage {_name(key)} holds {count} elements, the pickle says {ref.size}")
        n_bytes = count * ref.storage_type.dtype.itemsize
        left = len(buffer) - f.tell()
        if n_bytes > left:
            raise LegacyTorchFormatError(
                f"{source}: truncated storage data for key {_name(key)} "
                f"(needs {n_bytes} bytes, {left} left in file)")
        storages[key] = np.frombuffer(buffer, dtype=ref.storage_type.dtype,
                                      count=count, offset=f.tell())
        f.seek(n_bytes, io.SEEK_CUR)
    missing = sorted(set(refs) - set(storages))
    if missing:
        shown = ", ".join(map(_name, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise LegacyTorchFormatError(f"{source}: no data for storage key(s) {shown}")
    return storages


def _build_tensor(name: str, recipe: _TensorRecipe, storages: dict[str, np.ndarray],
                  source: str) -> np.ndarray:
    """Apply (offset, size, stride) to the storage: a fresh C-contiguous array of shape `size`."""
    if not isinstance(recipe.storage, _StorageRef):
        raise LegacyTorchFormatError(f"{source}: tensor {name} is not built on a storage")
    data = storages[recipe.storage.key]
    if recipe.storage.view is not None:
        view_offset, view_size = recipe.storage.view
        if view_offset + view_size > data.size:
            raise LegacyTorchFormatError(f"{source}: storage view of {name} runs past its storage")
        data = data[view_offset:view_offset + view_size]

    size, stride, offset = recipe.size, recipe.stride, recipe.offset
    if not (len(size) == len(stride) and all(map(_is_count, size + stride)) and _is_count(offset)):
        raise LegacyTorchFormatError(f"{source}: bad size/stride/offset for {name}")
    # A state_dict tensor never has more elements than its storage; checking
    # it keeps a corrupt size from making us allocate a huge array below.
    # (Expanded tensors, with stride 0, would be the exception: not supported.)
    if math.prod(size) > data.size:
        raise LegacyTorchFormatError(
            f"{source}: tensor {name} of size {size if len(size) <= 8 else f'{len(size)}-d'} "
            f"is larger than its storage ({data.size})")
    # Index of the last element the tensor touches: it must lie inside the storage
    # (otherwise as_strided would read foreign memory).
    if math.prod(size) > 0:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= data.size:
            raise LegacyTorchFormatError(
                f"{source}: tensor {name} reaches element {last} of a storage of {data.size}")
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False)
    # Copy: the result owns its memory, is contiguous and in native byte order.
    return np.array(view, dtype=data.dtype.newbyteorder("="), order="C", copy=True)


def load_legacy_torch(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a legacy-format `torch.save(state_dict)` file into NumPy arrays.

    Args:
        path: the .pt / .pth / .tar file.

    Returns:
        dict from parameter name (e.g. "img_to_features.0.weight") to an array
        with the tensor's shape and dtype (float32 for a FloatStorage), in the
        file's order.

    Raises:
        LegacyTorchFormatError (a ValueError): truncated, corrupt or other-format file.
        RefusedGlobalError (a ValueError and a pickle.UnpicklingError): the file
            names a global outside the allowlist; the message names the file and the global.
        UnreadableFileError (a ValueError): not a regular file, too large, or unreadable.
        FileNotFoundError: no such file.
    """
    source = os.fspath(path)
    refs: dict[str, _StorageRef] = {}

    def persistent_load(pid: Any) -> _StorageRef:
        ref = _parse_persistent_id(pid, source)
        known = refs.setdefault(ref.key, ref)
        if (known.storage_type, known.size) != (ref.storage_type, ref.size):
            raise LegacyTorchFormatError(f"{source}: storage {_name(ref.key)} is described inconsistently")
        return ref

    # The whole file goes into memory (weights files of this era are a few MB):
    # every length read from the file can then be checked against what is
    # really there before anything is allocated for it.
    with open_regular_file(source, MAX_FILE_BYTES) as file:
        f = io.BytesIO(file.read())
    _check_header(f, source)
    state_dict = _load_pickle(f, _STATE_DICT_ALLOWLIST, source, "state_dict", persistent_load)
    if not isinstance(state_dict, dict):
        raise LegacyTorchFormatError(
            f"{source}: holds a {type(state_dict).__name__}, not a state_dict")
    keys = _load_pickle(f, {}, source, "storage key list")
    if not (type(keys) is list and all(type(k) is str for k in keys)):
        raise LegacyTorchFormatError(f"{source}: corrupt storage key list")
    storages = _read_storages(f, keys, refs, source)

    arrays: dict[str, np.ndarray] = {}
    for name, value in state_dict.items():
        if type(name) is not str:
            raise LegacyTorchFormatError(f"{source}: a state_dict key is a {type(name).__name__}, not a name")
        if not isinstance(value, _TensorRecipe):
            raise LegacyTorchFormatError(f"{source}: entry {_name(name)} is not a tensor")
        arrays[name] = _build_tensor(_name(name), value, storages, source)
    return arrays
