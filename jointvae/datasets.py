"""Datasets as the model sees them: uint8 images (N, C, H, W) at the model's size, and labels.

Images stay uint8 in memory (a quarter of float32) and become float32 in
[0, 1] one batch at a time, on the batch's device.
"""
import numpy as np

DATASETS = ("mnist",)


def load_dataset(name, split="train", **kwargs):
    """-> (images uint8 (N, C, H, W), labels int64 (N,)) for a known dataset name."""
    if name == "mnist":
        from .mnist import load_mnist, resize_32
        images, labels = load_mnist(split, **kwargs)
        return to_uint8(resize_32(images)), np.asarray(labels, dtype=np.int64)
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")


def to_uint8(images01):
    """float images in [0, 1] that were k / 255 -> the bytes k, exactly."""
    return np.rint(np.asarray(images01) * 255.0).astype(np.uint8)


def to_float(batch_uint8, xp=np):
    """uint8 (N, C, H, W) -> float32 in [0, 1] on xp's device (the torchvision ToTensor scaling, /255)."""
    return xp.asarray(batch_uint8).astype(xp.float32) / xp.float32(255.0)
