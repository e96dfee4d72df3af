"""The eval-mode code of images, and one latent of it chosen, set or read: what edit and infer share.

The eval-mode code of an image is z = [mu, one_hot(argmax alpha_1), ..., one_hot(argmax alpha_n)],
(D,) with D = cont + sum(disc). A latent is continuous unit K (column K of z) or discrete latent I
(its block of K_I one-hot columns).

    codes = eval_codes(model, images_uint8)                  # (N, D) on the host
    strip = edit_strip(model, image_uint8, values, unit=3)   # float32 (2 + len(values), C, H, W)
    values = latent_values(model, images_uint8, unit=3)      # float64 (N,)
    pearson, spearman = correlations(values, labels)
"""
import os
from statistics import NormalDist

import numpy as np

from refnet import get_array_module, to_numpy

from .. import data
from ..data.imagefiles import find_images, read_images
from .metrics import split_units

TRAVERSAL_STEPS = 10   # values of one latent swept through the prior's bulk
FOLDER_BATCH = 256     # images read and encoded at a time: a folder never has to fit in memory at once


# ---------------------------------------------------------------- codes


def model_xp(model):
    """The array module (numpy or cupy) of the model's parameters."""
    return get_array_module(*model.params.values())


def eval_codes(model, images_uint8, batch=500):
    """z = [mu, one_hot(argmax alpha_i) ...] of each image, encoded `batch` images at a time.

    images_uint8 (N, C, H, W) -> codes (N, D) on the host, D = cont + sum(disc); encoded on the model's device.
    """
    xp = model_xp(model)
    return np.concatenate([to_numpy(model.eval_code(model.encode(data.to_float(images_uint8[i:i + batch], xp))))
                           for i in range(0, len(images_uint8), batch)])


def one_hot(index, k, n):
    """index int (n,) in 0..k-1 -> float32 (n, k) rows of zeros with a 1 at `index`."""
    out = np.zeros((n, k), np.float32)
    out[np.arange(n), index] = 1
    return out


def decode(model, z):
    """Decoder probabilities of codes z (N, D) -> (N, C, H, W) on the host."""
    return to_numpy(model.decode(model_xp(model).asarray(z)))


def traversal_values(steps=TRAVERSAL_STEPS):
    """Phi^-1(p) for p evenly spaced from 0.05 to 0.95: a sweep through the prior's bulk, float32 (steps,)."""
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, steps)], np.float32)


# ---------------------------------------------------------------- choosing and setting a latent


class LatentChoiceError(ValueError):
    """A latent index or value the model does not have; the message names it."""


def check_choice(model, unit=None, disc=None, values=None):
    """Exactly one of unit (a continuous unit) and disc (a discrete latent), in range, and, when given,
    values it can take: finite numbers for a unit, categories 0..K-1 for a discrete latent.
    Raises LatentChoiceError."""
    if (unit is None) == (disc is None):
        raise LatentChoiceError("choose exactly one of unit (continuous) and disc (discrete)")
    cont, sizes = model.latent_spec["cont"], model.latent_spec["disc"]
    if unit is not None and not 0 <= unit < cont:
        raise LatentChoiceError(f"unit {unit} is out of range: the model has {cont} continuous units"
                                + (f" (0..{cont - 1})" if cont else ""))
    if disc is not None and not 0 <= disc < len(sizes):
        raise LatentChoiceError(f"disc {disc} is out of range: the model has {len(sizes)} discrete latents"
                                + (f" (0..{len(sizes) - 1})" if sizes else ""))
    if values is None:
        return
    values = np.asarray(values)
    if unit is not None and (values.dtype.kind not in "iuf" or not np.all(np.isfinite(values))):
        raise LatentChoiceError(f"values of a continuous unit must be finite numbers, got {values.tolist()}")
    if disc is not None and (values.dtype.kind not in "iu" or np.any(values < 0) or np.any(values >= sizes[disc])):
        raise LatentChoiceError(f"discrete latent {disc} has {sizes[disc]} categories: values must be integers "
                                f"0..{sizes[disc] - 1}, got {values.tolist()}")


def default_values(model, unit=None, disc=None):
    """The values to set a latent to: traversal_values() for a unit; every category 0..K-1 for a discrete latent."""
    check_choice(model, unit, disc)
    if unit is not None:
        return traversal_values().tolist()
    return list(range(model.latent_spec["disc"][disc]))


def edit_codes(model, z, values, unit=None, disc=None):
    """z (D,) one code -> (len(values), D): z with the chosen latent set to each value.

    Continuous unit K is column K; discrete latent I is its one-hot block, set to category `value`.
    """
    check_choice(model, unit, disc, values)
    values = np.asarray(values)
    codes = np.repeat(np.asarray(z, np.float32)[None], len(values), axis=0)
    if unit is not None:
        codes[:, unit] = values
        return codes
    sizes = model.latent_spec["disc"]
    k, start = sizes[disc], model.latent_spec["cont"] + sum(sizes[:disc])
    codes[:, start:start + k] = one_hot(values, k, len(values))
    return codes


def edit_strip(model, image, values, unit=None, disc=None):
    """image uint8 (C, H, W) at the model's shape -> float32 (2 + len(values), C, H, W) in [0, 1]:
    the input, its eval-mode reconstruction, then the decoded code with the chosen latent set to each value."""
    z = eval_codes(model, image[None])                       # (1, D): means, one-hot argmax
    decoded = decode(model, np.concatenate([z, edit_codes(model, z[0], values, unit, disc)]))
    return np.concatenate([data.to_float(image[None]), decoded])


# ---------------------------------------------------------------- reading a latent


def latent_values(model, images, unit=None, disc=None):
    """uint8 (N, C, H, W) -> float64 (N,) continuous unit `unit`'s mean, or int64 (N,) discrete latent
    `disc`'s most probable category (the eval-mode code, as scores.py encodes)."""
    check_choice(model, unit, disc)
    cont, categories = split_units(eval_codes(model, images), model.latent_spec)
    return cont[:, unit].astype(np.float64) if unit is not None else categories[:, disc].astype(np.int64)


def relative_path(path, folder):
    """path below folder -> 'sub/name.png', the same on every operating system."""
    return os.path.relpath(path, folder).replace(os.sep, "/")


def infer_folder(model, folder, unit=None, disc=None, batch=FOLDER_BATCH):
    """latent_values of every image below folder, read and encoded `batch` at a time.

    -> (relative paths with '/' (N,), values (N,), skipped [(path, reason)], number of image files tried).
    """
    check_choice(model, unit, disc)
    paths = find_images(folder)
    c, size, _ = model.image_shape
    kept, values, skipped = [], [], []
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        images, bad = read_images(chunk, size, c)
        skipped += bad
        bad_paths = {p for p, _ in bad}
        kept += [relative_path(p, folder) for p in chunk if p not in bad_paths]
        if len(images):
            values.append(latent_values(model, images, unit, disc))
    values = np.concatenate(values) if values else np.zeros(0)
    return kept, values, skipped, len(paths)


def ranks(x):
    """Ranks 1..n of x (n,), tied values sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # The mean rank of a run of ties = (first + last position of the run) / 2, 1-based.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)] - 1
    mean_rank = (starts + ends) / 2 + 1
    out = np.empty(len(x))
    out[order] = np.repeat(mean_rank, ends - starts + 1)
    return out


def correlations(values, labels):
    """Pearson r = cov(v, l) / (sd(v) sd(l)) and Spearman rho = Pearson r of their ranks.

    values, labels (n,) -> (r, rho); nan where either side is constant or n < 2.
    """
    values, labels = np.asarray(values, np.float64), np.asarray(labels, np.float64)
    if len(values) < 2 or np.ptp(values) == 0 or np.ptp(labels) == 0:
        return float("nan"), float("nan")
    return float(np.corrcoef(values, labels)[0, 1]), float(np.corrcoef(ranks(values), ranks(labels))[0, 1])
