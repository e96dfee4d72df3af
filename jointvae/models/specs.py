"""Training specifications in the published JointVAE format (specs.json).

    {"dataset": "mnist", "latent_spec": {"cont": 10, "disc": [10]},
     "cont_capacity": [0.0, 5.0, 25000, 30.0],   # [C_min, C_max, iterations to reach C_max, gamma]
     "disc_capacity": [0.0, 5.0, 25000, 30.0],
     "lr": [0.0005], "batch_size": 64, "epochs": [100, ...], ...}

The published files carry no image size: it follows from the dataset name,
as in the paper's own loader. The published Fashion-MNIST spec spells its
dataset "fashion_mnist", the command line "fashion-mnist": `dataset_name`
maps both to "fashion-mnist", and validate_spec stores that spelling.

Beyond the published format, a spec may name its model (default "jointvae"):
    "model": "betavae", "beta": 4.0            β-VAE: beta * KL instead of capacities
    "model": "factorvae", "beta": 1.0, "tc_gamma": 40.0, "d_lr": 1e-4, "d_betas": [0.5, 0.9]
                                               (optional "d_hidden": 1000, "d_layers": 6: D's width, depth)
    "betas": [0.9, 0.999]                      the VAE's Adam betas
    "init": "pytorch-0.4"                      the 2018 initialisation of transposed convolutions (model.py)
    "folder": "/abs/path", "image_shape": [C, H, W]   images from a folder (jointvae.data.folder), for the
                                               datasets "folder", "chairs" and "celeba"
"""
import json
import math
import os

from ..data.registry import IMAGE_SHAPES, dataset_name, image_shape_of


MNIST_SPEC = {
    "dataset": "mnist",
    "latent_spec": {"cont": 10, "disc": [10]},
    "cont_capacity": [0.0, 5.0, 25000, 30.0],
    "disc_capacity": [0.0, 5.0, 25000, 30.0],
    "lr": [0.0005],
    "batch_size": 64,
    "epochs": [100],
    "record_loss_every": 50,
}

# The published Fashion-MNIST JointVAE: MNIST's set-up with higher capacities over 50k steps, gamma 100.
FASHION_MNIST_SPEC = {
    **MNIST_SPEC,
    "dataset": "fashion-mnist",
    "cont_capacity": [0.0, 5.0, 50000, 100.0],
    "disc_capacity": [0.0, 10.0, 50000, 100.0],
}

# The published chairs and CelebA JointVAEs (celeba: ../shared/reference_models/celeba/specs.json), 64x64.
# The chairs epochs are not published; 100, as for the others.
CHAIRS_SPEC = {
    "dataset": "chairs",
    "latent_spec": {"cont": 32, "disc": [2, 2, 2]},
    "cont_capacity": [0.0, 30.0, 100000, 300.0],
    "disc_capacity": [0.0, 5.0, 100000, 300.0],
    "lr": [0.0001],
    "batch_size": 64,
    "epochs": [100],
    "record_loss_every": 50,
}
CELEBA_SPEC = {
    **CHAIRS_SPEC,
    "dataset": "celeba",
    "latent_spec": {"cont": 32, "disc": [10]},
    "cont_capacity": [0.0, 50.0, 100000, 100.0],
    "disc_capacity": [0.0, 10.0, 100000, 100.0],
    "lr": [0.0005],
}
# Any other image folder: the CelebA spec (the published one for the most varied images), with the
# image shape the command line gives (default RGB 64x64).
FOLDER_SPEC = {**CELEBA_SPEC, "dataset": "folder", "image_shape": [3, 64, 64]}

# The published dSprites JointVAE (../shared/reference_models/dsprites/specs.json).
DSPRITES_JOINTVAE_SPEC = {
    "dataset": "dsprites",
    "latent_spec": {"cont": 6, "disc": [3]},
    "cont_capacity": [0.0, 40.0, 300000, 150.0],
    "disc_capacity": [0.0, 1.1, 300000, 150.0],
    "lr": [0.0005],
    "batch_size": 64,
    "epochs": [30],
    "record_loss_every": 1000,
}

# Kim & Mnih (2018), 2D Shapes: 10 latents, Adam 1e-4, batch 64, 300k steps (27 epochs of 737,280 images
# at batch 64 = 311k steps); FactorVAE gamma 40 with D's Adam(1e-4, betas 0.5/0.9), beta-VAE beta 4.
_FACTORVAE_PAPER = {"dataset": "dsprites", "latent_spec": {"cont": 10}, "lr": [1e-4], "betas": [0.9, 0.999],
                    "batch_size": 64, "epochs": [27], "record_loss_every": 1000}
_DISCRIMINATOR = {"tc_gamma": 40.0, "d_lr": 1e-4, "d_betas": [0.5, 0.9]}

MODELS = ("jointvae", "betavae", "capacity-vae", "factorvae", "joint-factorvae")

DEFAULT_SPECS = {  # (dataset, model) -> spec
    ("mnist", "jointvae"): MNIST_SPEC,
    ("fashion-mnist", "jointvae"): FASHION_MNIST_SPEC,
    ("chairs", "jointvae"): CHAIRS_SPEC,
    ("celeba", "jointvae"): CELEBA_SPEC,
    ("folder", "jointvae"): FOLDER_SPEC,
    ("dsprites", "jointvae"): DSPRITES_JOINTVAE_SPEC,
    ("dsprites", "betavae"): {**_FACTORVAE_PAPER, "model": "betavae", "beta": 4.0},
    ("dsprites", "factorvae"): {**_FACTORVAE_PAPER, **_DISCRIMINATOR, "model": "factorvae", "beta": 1.0},
    # Burgess et al. (2018): C from 0 to 25 nats over 100k steps, gamma 1000, lr 5e-4.
    ("dsprites", "capacity-vae"): {**_FACTORVAE_PAPER, "model": "capacity-vae", "lr": [5e-4],
                                   "cont_capacity": [0.0, 25.0, 100000, 1000.0]},
    # JointVAE x FactorVAE: the published JointVAE dSprites spec plus FactorVAE's TC penalty.
    ("dsprites", "joint-factorvae"): {**DSPRITES_JOINTVAE_SPEC, **_DISCRIMINATOR, "model": "joint-factorvae"},
}


class SpecError(ValueError):
    """A specs.json that cannot describe a model: the message names the field."""


# Bounds that keep a spec from asking for absurd memory before anything is allocated (a latent_spec
# 'cont' of 10**11 once tried to allocate 186 TiB): far above any published or sensible model.
MAX_UNITS = 4096           # continuous units, and categories of one discrete latent
MAX_DISCRETE = 256         # discrete latents
MAX_BATCH = 65536
MAX_SPEC_BYTES = 1 << 20
MAX_IMAGE_SIDE = 4096   # image_shape's bound: far above the 32 and 64 this network takes
MAX_D_HIDDEN, MAX_D_LAYERS = 16384, 64


def normalise_latent_spec(latent_spec):
    """{'cont': N, 'disc': [K1, ...]} with either part optional -> {'cont': int, 'disc': [int, ...]}."""
    if not isinstance(latent_spec, dict) or not set(latent_spec) <= {"cont", "disc"}:
        raise SpecError(f"latent_spec must be a dict with keys 'cont' and/or 'disc', got {latent_spec!r}")
    cont = latent_spec.get("cont", 0)
    disc = latent_spec.get("disc", [])
    if not isinstance(cont, int) or isinstance(cont, bool) or not 0 <= cont <= MAX_UNITS:
        raise SpecError(f"latent_spec['cont'] must be an integer in [0, {MAX_UNITS}], got {cont!r}")
    if (not isinstance(disc, (list, tuple)) or len(disc) > MAX_DISCRETE
            or not all(isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= MAX_UNITS for k in disc)):
        raise SpecError(f"latent_spec['disc'] must be a list of at most {MAX_DISCRETE} integers in "
                        f"[2, {MAX_UNITS}], got {disc!r}")
    if cont == 0 and not disc:
        raise SpecError("latent_spec has neither continuous nor discrete latents")
    return {"cont": cont, "disc": list(disc)}


def _is_number(value):
    """A finite int or float (JSON's numbers) that fits a float, not a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:             # an int of 400 digits
        return False


def _capacity(spec, key):
    value = spec.get(key)
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_number(v) and v >= 0 for v in value)
            and value[2] >= 1 and float(value[2]).is_integer()):
        raise SpecError(f"{key} must be [C_min, C_max, iterations >= 1, gamma], numbers >= 0, got {value!r}")
    return [float(value[0]), float(value[1]), int(value[2]), float(value[3])]


def _non_negative(spec, key):
    value = spec[key]
    if not _is_number(value) or value < 0:
        raise SpecError(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _betas(value, key):
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(b) and 0 <= b < 1 for b in value)):
        raise SpecError(f"{key} must be [beta1, beta2] in [0, 1), got {value!r}")
    return [float(b) for b in value]


def _learning_rates(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_is_number(v) and 0 < v <= 1 for v in values):
        raise SpecError(f"lr must be a number in (0, 1] or a list of them, got {value!r}")
    return [float(v) for v in values]


def validate_spec(spec):
    """Check and normalise a spec dict; raises SpecError naming the bad field."""
    if not isinstance(spec, dict):
        raise SpecError("specs.json must hold a JSON object")
    spec = dict(spec)
    if "latent_spec" not in spec:
        raise SpecError("specs.json has no 'latent_spec'")
    spec["latent_spec"] = normalise_latent_spec(spec["latent_spec"])
    spec["model"] = spec.get("model", "jointvae")
    if spec["model"] not in MODELS:
        raise SpecError(f"unknown model {spec['model']!r}: expected one of {MODELS}")
    for key in ("cont_capacity", "disc_capacity"):
        spec[key] = _capacity(spec, key)
    for key in ("beta", "tc_gamma", "d_lr"):
        if spec.get(key) is not None:
            spec[key] = _non_negative(spec, key)
    if spec.get("beta") is None:
        for part in ("cont", "disc"):
            if spec["latent_spec"][part] and spec[f"{part}_capacity"] is None:
                raise SpecError(f"a spec with {'continuous' if part == 'cont' else 'discrete'} latents needs "
                                f"'{part}_capacity' (or 'beta')")
    if spec["model"] in ("factorvae", "joint-factorvae"):
        if spec.get("tc_gamma") is None:
            raise SpecError(f"model {spec['model']!r} needs 'tc_gamma'")
        spec.setdefault("d_lr", _DISCRIMINATOR["d_lr"])
        spec["d_betas"] = _betas(spec.get("d_betas", _DISCRIMINATOR["d_betas"]), "d_betas")
        for key, maximum in (("d_hidden", MAX_D_HIDDEN), ("d_layers", MAX_D_LAYERS)):   # D's width, depth
            value = spec.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum):
                raise SpecError(f"{key} must be an integer in [1, {maximum}], got {value!r}")
    elif spec.get("tc_gamma") is not None:
        raise SpecError(f"'tc_gamma' needs model 'factorvae' or 'joint-factorvae', not {spec['model']!r}")
    if spec.get("init", "pytorch") not in ("pytorch", "pytorch-0.4"):
        raise SpecError(f"init must be 'pytorch' or 'pytorch-0.4', got {spec['init']!r}")
    if "betas" in spec:
        spec["betas"] = _betas(spec["betas"], "betas")
    spec["lr"] = _learning_rates(spec.get("lr", [5e-4]))
    batch_size = spec.get("batch_size", 64)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise SpecError(f"batch_size must be an integer in [1, {MAX_BATCH}], got {batch_size!r}")
    spec["batch_size"] = batch_size
    if spec.get("dataset") is not None:
        if not isinstance(spec["dataset"], str):
            raise SpecError(f"dataset must be a name (a string), got {spec['dataset']!r}")
        spec["dataset"] = dataset_name(spec["dataset"])
    if spec.get("folder") is not None and not isinstance(spec["folder"], str):
        raise SpecError(f"folder must be a path (a string), got {spec['folder']!r}")
    if spec.get("image_shape") is not None:
        shape = spec["image_shape"]
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_IMAGE_SIDE for v in shape)):
            raise SpecError(f"image_shape must be [channels, height, width], integers in [1, {MAX_IMAGE_SIDE}], "
                            f"got {shape!r}")
        spec["image_shape"] = list(shape)
    if spec.get("dataset") is not None and spec["dataset"] not in IMAGE_SHAPES and "image_shape" not in spec:
        raise SpecError(f"unknown dataset {spec['dataset']!r}: expected one of {sorted(IMAGE_SHAPES)} "
                        f"or an explicit 'image_shape'")
    return spec


def image_shape(spec):
    """(C, H, W) of the spec's data: an explicit 'image_shape', else from the dataset name."""
    shape = image_shape_of(spec.get("dataset"), spec.get("image_shape"))
    if shape is not None:
        return shape
    raise SpecError("spec has neither 'image_shape' nor a known 'dataset' to derive it from")


def load_spec(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise SpecError(f"{path}: not a regular file")
    if os.path.getsize(path) > MAX_SPEC_BYTES:   # read nothing unbounded from outside
        raise SpecError(f"{path}: {os.path.getsize(path)} bytes; a spec is at most {MAX_SPEC_BYTES}")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: not valid JSON ({e})") from None
    except ValueError as e:           # an integer of more than 4300 digits
        raise SpecError(f"{path}: not a spec ({str(e).splitlines()[0][:200]})") from None
    except RecursionError:
        raise SpecError(f"{path}: not a spec (JSON nested too deeply)") from None
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
