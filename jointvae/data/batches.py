"""Batches: the order of one epoch, and uint8 images turned into the model's float input.

    for idx in iterate_batches(len(images), 64, rng):     # int64 index arrays, rng.permutation(n) in slices
        x = to_float(images[idx], xp)                      # uint8 (B, C, H, W) -> float32 (B, C, H, W) in [0, 1]

Images stay uint8 in memory (a quarter of float32) and become float32 one
batch at a time, on the batch's device:

    x = k / 255    (float32 divided by float32, as torchvision's ToTensor)
"""
from typing import Iterator

import numpy as np


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
