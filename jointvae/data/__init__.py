"""Datasets as the model sees them: uint8 images (N, C, H, W) at the model's size, and labels.

Images stay uint8 in memory (a quarter of float32) and become float32 in
[0, 1] one batch at a time, on the batch's device.

    images, labels = load_dataset("fashion-mnist", "test")    # uint8 (10000, 1, 32, 32), int64 (10000,)
    images, _ = load_dataset("folder", root="photos/", size=64, channels=3)   # no labels: None
    images, labels = load_for_spec(spec, "train")              # what a training spec names
"""
from typing import Iterator

import numpy as np

from ..specs import dataset_name, image_shape

DATASETS = ("mnist", "fashion-mnist", "dsprites")   # loaded by name alone
FOLDER_DATASETS = ("folder", "chairs", "celeba")    # images from a folder: need its path (root=)


def load_dataset(name, split="train", **kwargs):
    """-> (images uint8 (N, C, H, W), labels int64 (N,) or None) for a known dataset name.

    kwargs go to the loader: data_dir / idx_dir for the MNIST-like sets, root, size
    and channels (and data_dir) for the folder sets, which have no split and no labels.
    """
    name = dataset_name(name)
    if name in ("mnist", "fashion-mnist"):   # 28x28 digits or clothes, resized to 32x32 as published
        from .mnist import load_mnist, resize_32
        from .fashion_mnist import load_fashion_mnist
        images, labels = (load_mnist if name == "mnist" else load_fashion_mnist)(split, **kwargs)
        return to_uint8(resize_32(images)), np.asarray(labels, dtype=np.int64)
    if name == "dsprites":  # one set, no split: a DSprites renders uint8 (737280, 1, 64, 64) on demand
        from .dsprites import load_dsprites
        return load_dsprites(**kwargs)   # labels: the shape class of each image
    if name in FOLDER_DATASETS:
        if kwargs.get("root") is None:
            raise ValueError(f"{name} images come from a folder: name it (python -m jointvae.train {name} PATH, "
                             f"or evaluate --folder PATH)")
        from .folder import load_folder
        return load_folder(**kwargs), None
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS + FOLDER_DATASETS}")


def load_for_spec(spec, split="train"):
    """The data a training spec names: its image folder (spec['folder']) at the spec's image shape, else its dataset."""
    if spec.get("folder") is not None:
        channels, size, _ = image_shape(spec)
        return load_dataset("folder", split, root=spec["folder"], size=size, channels=channels)
    return load_dataset(spec["dataset"], split)


def to_uint8(images01):
    """float images in [0, 1] that were k / 255 -> the bytes k, exactly."""
    return np.rint(np.asarray(images01) * 255.0).astype(np.uint8)


def to_float(batch_uint8, xp=np):
    """uint8 (N, C, H, W) -> float32 in [0, 1] on xp's device (the torchvision ToTensor scaling, /255)."""
    return xp.asarray(batch_uint8).astype(xp.float32) / xp.float32(255.0)


def iterate_batches(
    n: int,
    batch_size: int,
    rng: np.random.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays that split range(n) into mini-batches (one epoch).

    With shuffle, the order is `rng.permutation(n)`, so the same seed gives the
    same batches. Every index appears exactly once, except that drop_last=True
    leaves out the final batch when it has fewer than batch_size indices.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if shuffle:
        if not isinstance(rng, np.random.Generator):
            raise ValueError("shuffle=True needs rng, a np.random.Generator (e.g. np.random.default_rng(0))")
        order = rng.permutation(n)
    else:
        order = np.arange(n)
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        if drop_last and len(batch) < batch_size:
            return
        yield batch
