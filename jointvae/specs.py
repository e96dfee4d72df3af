"""Training specifications in the published JointVAE format (specs.json).

    {"dataset": "mnist", "latent_spec": {"cont": 10, "disc": [10]},
     "cont_capacity": [0.0, 5.0, 25000, 30.0],   # [C_min, C_max, iterations to reach C_max, gamma]
     "disc_capacity": [0.0, 5.0, 25000, 30.0],
     "lr": [0.0005], "batch_size": 64, "epochs": [100, ...], ...}

The published files carry no image size: it follows from the dataset name,
as in the paper's own loader.
"""
import json
import os

IMAGE_SHAPES = {  # (channels, height, width)
    "mnist": (1, 32, 32), "fashion_mnist": (1, 32, 32),
    "dsprites": (1, 64, 64), "chairs": (1, 64, 64),
    "celeba": (3, 64, 64),
}

MNIST_SPEC = {
    "dataset": "mnist",
    "latent_spec": {"cont": 10, "disc": [10]},
    "cont_capacity": [0.0, 5.0, 25000, 30.0],
    "disc_capacity": [0.0, 5.0, 25000, 30.0],
    "lr": [0.0005],
    "batch_size": 64,
    "epochs": [100],
    "record_loss_every": 50,
    "print_loss_every": 50,
}

DEFAULT_SPECS = {"mnist": MNIST_SPEC}


class SpecError(ValueError):
    """A specs.json that cannot describe a model: the message names the field."""


def normalise_latent_spec(latent_spec):
    """{'cont': N, 'disc': [K1, ...]} with either part optional -> {'cont': int, 'disc': [int, ...]}."""
    if not isinstance(latent_spec, dict) or not set(latent_spec) <= {"cont", "disc"}:
        raise SpecError(f"latent_spec must be a dict with keys 'cont' and/or 'disc', got {latent_spec!r}")
    cont = latent_spec.get("cont", 0)
    disc = latent_spec.get("disc", [])
    if not isinstance(cont, int) or isinstance(cont, bool) or cont < 0:
        raise SpecError(f"latent_spec['cont'] must be a non-negative integer, got {cont!r}")
    if not isinstance(disc, (list, tuple)) or not all(isinstance(k, int) and k >= 2 for k in disc):
        raise SpecError(f"latent_spec['disc'] must be a list of integers >= 2, got {disc!r}")
    if cont == 0 and not disc:
        raise SpecError("latent_spec has neither continuous nor discrete latents")
    return {"cont": cont, "disc": list(disc)}


def _capacity(spec, key):
    value = spec.get(key)
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and value[2] > 0):
        raise SpecError(f"{key} must be [C_min, C_max, iterations > 0, gamma], got {value!r}")
    return [float(value[0]), float(value[1]), int(value[2]), float(value[3])]


def validate_spec(spec):
    """Check and normalise a spec dict; raises SpecError naming the bad field."""
    if not isinstance(spec, dict):
        raise SpecError("specs.json must hold a JSON object")
    spec = dict(spec)
    if "latent_spec" not in spec:
        raise SpecError("specs.json has no 'latent_spec'")
    spec["latent_spec"] = normalise_latent_spec(spec["latent_spec"])
    for key in ("cont_capacity", "disc_capacity"):
        spec[key] = _capacity(spec, key)
    if spec["latent_spec"]["cont"] and spec["cont_capacity"] is None:
        raise SpecError("a spec with continuous latents needs 'cont_capacity'")
    if spec["latent_spec"]["disc"] and spec["disc_capacity"] is None:
        raise SpecError("a spec with discrete latents needs 'disc_capacity'")
    lr = spec.get("lr", [5e-4])
    spec["lr"] = [float(lr)] if isinstance(lr, (int, float)) else [float(v) for v in lr]
    spec["batch_size"] = int(spec.get("batch_size", 64))
    if spec.get("dataset") is not None and spec["dataset"] not in IMAGE_SHAPES and "image_shape" not in spec:
        raise SpecError(f"unknown dataset {spec['dataset']!r}: expected one of {sorted(IMAGE_SHAPES)} "
                        f"or an explicit 'image_shape'")
    return spec


def image_shape(spec):
    """(C, H, W) of the spec's data: an explicit 'image_shape', else from the dataset name."""
    if "image_shape" in spec:
        return tuple(int(v) for v in spec["image_shape"])
    if spec.get("dataset") in IMAGE_SHAPES:
        return IMAGE_SHAPES[spec["dataset"]]
    raise SpecError("spec has neither 'image_shape' nor a known 'dataset' to derive it from")


def load_spec(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: not valid JSON ({e})") from None
    try:
        return validate_spec(spec)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def save_spec(path, spec):
    """Write specs.json atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
