"""Model folders: specs.json + weights.npz (or the paper's original model.pt).

    model = load_model("../shared/reference_models/mnist")
    save_model("runs/mnist", model, spec)

A folder written here is read by the paper's own layout too: the weights keep
the PyTorch state_dict names.
"""
import os

import numpy as np

import refnet

from ..files.legacy_torch import load_legacy_torch
from .jointvae import JointVAE
from ..data.registry import IMAGE_SHAPES
from .specs import SpecError, image_shape, load_spec, save_spec


class ModelFileError(ValueError):
    """A model folder that cannot be loaded: the message names the file and the problem."""


def image_shape_from_weights(weights):
    """(C, H, W) read off the weights: 3 encoder convolutions mean 32x32, 4 mean 64x64."""
    convs = sorted(k for k in weights if k.startswith("img_to_features.") and k.endswith(".weight"))
    if not convs:
        raise ModelFileError("weights have no 'img_to_features.*.weight' entries")
    size = {3: 32, 4: 64}.get(len(convs))
    if size is None:
        raise ModelFileError(f"weights have {len(convs)} encoder convolutions; expected 3 (32x32) or 4 (64x64)")
    first = weights.get("img_to_features.0.weight")
    if first is None or first.ndim != 4:
        raise ModelFileError("weights have no 4-d 'img_to_features.0.weight' (the first convolution)")
    return (int(first.shape[1]), size, size)


def read_weights(folder):
    """{name: float32 array} from weights.npz, else from the original model.pt."""
    npz, pt = os.path.join(folder, "weights.npz"), os.path.join(folder, "model.pt")
    if os.path.exists(npz):
        weights = refnet.load_npz(npz)
        source = npz
    elif os.path.exists(pt):
        weights = load_legacy_torch(pt)
        source = pt
    else:
        raise FileNotFoundError(f"{folder}: no weights.npz or model.pt")
    for name, value in weights.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise ModelFileError(f"{source}: {name} has dtype {value.dtype}, expected floating point")
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"{source}: {name} contains NaN or infinity")
    return {k: v.astype(np.float32) for k, v in weights.items()}, source


def load_model(path, dtype=np.float32):
    """A JointVAE from a folder with specs.json and weights.npz (or model.pt); returns the model.

    The model carries its spec as `model.spec`. Errors name the file and the problem.
    """
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: not a model folder (expected specs.json + weights.npz)")
    spec = load_spec(os.path.join(folder, "specs.json"))
    weights, source = read_weights(folder)
    try:
        from_weights = image_shape_from_weights(weights)
    except ModelFileError as e:
        raise ModelFileError(f"{source}: {e}") from None
    try:
        shape = image_shape(spec)
    except SpecError:
        shape = from_weights
    if shape != from_weights:
        raise ModelFileError(f"{source}: weights are for {from_weights} images but specs.json says {shape}")
    model = JointVAE(shape, spec["latent_spec"], rng=np.random.default_rng(0))
    try:
        model.set_params(weights)
    except (KeyError, ValueError) as e:
        message = e.args[0] if e.args else str(e)
        raise ModelFileError(f"{source} does not match specs.json latent_spec {spec['latent_spec']}: "
                             f"{message}") from None
    if dtype != np.float32:
        model.astype(dtype)
    model.spec = spec
    return model


def save_model(folder, model, spec):
    """Write specs.json and weights.npz (both atomically) into `folder`."""
    os.makedirs(folder, exist_ok=True)
    spec = dict(spec)
    if spec.get("dataset") not in IMAGE_SHAPES:
        spec["image_shape"] = list(model.image_shape)
    save_spec(os.path.join(folder, "specs.json"), spec)
    refnet.save_params(os.path.join(folder, "weights.npz"), model)
