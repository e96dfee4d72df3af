"""Fashion-MNIST (Xiao et al. 2017): MNIST's format, clothes instead of digits.

    from jointvae.data.fashion_mnist import load_fashion_mnist, CLASS_NAMES
    images, labels = load_fashion_mnist("test")   # uint8 (10000, 28, 28), uint8 (10000,) in 0..9

The files, sizes and layout are MNIST's, so the whole pipeline is
jointvae.data.idx's, given the `IdxDataset` below: the same checks, the same
cache ($JOINTVAE_DATA/fashion-mnist/<split>.npz, default under
~/.cache/jointvae), the same 28 -> 32 bilinear resize (`mnist.resize_32`).
Sources, the first that works:

1. IDX files you already have: `idx_dir=` or $FASHION_MNIST_IDX_DIR (gzipped or not);
2. /usr/share/datasets/fashion-mnist, where Debian's package
   `dataset-fashion-mnist` installs the four .gz files;
3. the official files over HTTP(S) from GitHub and Zalando's S3 bucket
   (short connect timeout, so an offline machine moves on at once).
"""
from __future__ import annotations

import os

import numpy as np

from .idx import IdxDataset, load_idx_dataset
from .mnist import SPLIT_SIZES

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# SHA-256 of the official IDX files after gunzip. Obtained by hashing the
# decompressed files of Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
# Cross-check against Zalando's own publication: Debian's .gz files are the
# originals run through strip-nondeterminism, which drops the gzip header's file
# name and replaces its time stamp, leaving the deflate stream and its CRC-32
# untouched. Putting the name back and searching the time stamp
# (2017-08-31 10:50:06 / 10:50:27 UTC) rebuilds, byte for byte, .gz files whose
# MD5s are the four in Zalando's README (8d4fb7e6..., 25c81989..., bef4ecab...,
# bb300cfd...) and whose SHA-256s are those torchvision and TensorFlow Datasets
# list (3aede38d..., a04f1713..., 346e55b9..., 67da17c7...). So these are the
# bytes Zalando published.
FASHION_MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    # S3 website endpoints speak plain HTTP only; the SHA-256 check makes that safe.
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST = IdxDataset(
    name="Fashion-MNIST", cache_folder="fashion-mnist", idx_sha256=FASHION_MNIST_IDX_SHA256,
    split_sizes=SPLIT_SIZES,                        # 60000 / 10000, as MNIST
    first_labels={"train": 9, "test": 9},           # both splits open with an ankle boot
    mirrors=MIRRORS, idx_dir_env="FASHION_MNIST_IDX_DIR", system_dirs=(SYSTEM_DIR,))


def load_fashion_mnist(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The official Fashion-MNIST split as arrays.

    Args:
        split: "train" (60000 images) or "test" (10000 images).
        data_dir: cache root; default $JOINTVAE_DATA or ~/.cache/jointvae.
        idx_dir: folder of IDX files to try first; default $FASHION_MNIST_IDX_DIR.

    Returns:
        images uint8 (N, 28, 28), 0 = background; labels uint8 (N,), indices into CLASS_NAMES.

    Raises:
        idx.MnistDataError (ValueError): bad argument.
        idx.MnistUnavailableError (RuntimeError): no source worked; says why each failed.
    """
    return load_idx_dataset(FASHION_MNIST, split, data_dir, idx_dir)
