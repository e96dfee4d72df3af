"""Sweep files: read, check and expand into points, each with a stable name.

A sweep file is TOML (Python 3.11+, tomllib) or JSON:

    base = "mnist"                    # a dataset's preset (the point's model picks it), or a spec file (*.json)
    folder = "images/"                # folder datasets (folder, chairs, celeba): the image folder
    out = "runs/sweep-mnist"          # the output root; relative paths are relative to the sweep file

    [settings]                        # the same for every point
    steps = 300

    [grid]                            # every combination (a list of tables, [[grid]], is their union)
    seed = [0, 1]
    lr = [0.001, 0.0005]

    [evaluate]                        # optional: what `python -m jointvae.evaluate` is given
    split = "test"                    # samples = 10000, seed = 0, votes = [10000, 5000]

Settings and grid keys are any spec key (jointvae.models.specs: model, beta, tc_gamma, cont_capacity, lr,
batch_size, init, latent_spec, ...) and the training settings seed, steps, checkpoint_every and device
("cpu" or "gpu": CuPy, one CUDA graph per step) ("-" may be
written for "_"). Every point's spec is checked like a spec file; an error is one line naming the file and the
field. A point's name is made from its grid values (keys sorted, seed last): "lr=0.001,seed=0".
"""
import copy
import hashlib
import itertools
import json
import os
import re

from ..data.registry import FOLDER_DATASETS, REGISTRY, dataset_name
from ..models.specs import DEFAULT_SPECS, MODELS, SpecError, load_spec, validate_spec

MAX_FILE_BYTES = 1 << 20
MAX_POINTS = 10000
MAX_SEED = 2**63 - 1
TRAINING_KEYS = ("seed", "steps", "checkpoint_every", "device")
DEVICES = ("cpu", "gpu")
SPEC_KEYS = ("model", "beta", "tc_gamma", "d_lr", "d_betas", "d_hidden", "d_layers", "betas", "init", "lr",
             "batch_size", "latent_spec", "cont_capacity", "disc_capacity", "image_shape", "record_loss_every",
             "epochs")
TOP_KEYS = ("base", "folder", "out", "settings", "grid", "evaluate")
EVALUATE_KEYS = {"split": ("test", "train"), "samples": None, "seed": None, "votes": None}


class SweepError(ValueError):
    """A sweep file that cannot be run: one line naming the file and the field."""


class Sweep:
    """A checked sweep file: path, out (absolute), points [{'name', 'settings', 'spec', 'seed', 'steps',
    'checkpoint_every'}], evaluate (options for jointvae.evaluate)."""

    def __init__(self, path, out, points, evaluate):
        self.path, self.out, self.points, self.evaluate = path, out, points, evaluate
        self.by_name = {p["name"]: p for p in points}

    def point(self, name):
        if name not in self.by_name:
            raise SweepError(f"{self.path}: no point named {name!r} (see {os.path.join(self.out, 'sweep.json')})")
        return self.by_name[name]

    def grid_keys(self):
        return sorted({k for p in self.points for k in p["settings"]}, key=name_order)

    def write_expanded(self):
        """sweep.json in the output root: every point, written before anything runs (atomic)."""
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, "sweep.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"sweep_file": self.path, "out": self.out, "evaluate": self.evaluate,
                       "points": self.points}, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        return path


def read_file(path):
    """The sweep file's table: TOML by tomllib (3.11+), else JSON; SweepError on anything else."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SweepError(f"{path}: no such file")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise SweepError(f"{path}: {os.path.getsize(path)} bytes; a sweep file is at most {MAX_FILE_BYTES}")
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".toml"):
        try:
            import tomllib
        except ImportError:
            raise SweepError(f"{path}: TOML needs Python 3.11+ (tomllib); write the sweep as JSON") from None
        try:
            table = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SweepError(f"{path}: not valid TOML ({str(e).splitlines()[0]})") from None
    else:
        try:
            table = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise SweepError(f"{path}: not valid JSON ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(table, dict):
        raise SweepError(f"{path}: must hold a table (an object), not {type(table).__name__}")
    return table


def load_sweep(path):
    """Read, check and expand a sweep file -> Sweep; SweepError naming the file and the field."""
    path = os.path.abspath(os.fspath(path))
    table = read_file(path)
    here = os.path.dirname(path)
    unknown = sorted(set(table) - set(TOP_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown key {unknown[0]!r} (expected {', '.join(TOP_KEYS)})")
    for key in ("base", "out"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise SweepError(f"{path}: {key!r} must be {'a preset or a spec file' if key == 'base' else 'a folder'} "
                             f"(a string), got {table.get(key)!r}")
    out = os.path.join(here, table["out"])
    settings = _keys(path, "settings", table.get("settings", {}))
    grids = table.get("grid", {})
    grids = grids if isinstance(grids, list) else [grids]
    if not grids:
        raise SweepError(f"{path}: 'grid' is an empty list")
    combos = []
    for i, grid in enumerate(grids):
        where = "grid" if len(grids) == 1 else f"grid[{i}]"
        grid = _keys(path, where, grid)
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"{path}: {where}.{key} must be a non-empty list of values, got {values!r}")
        combos += [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
        if len(combos) > MAX_POINTS:
            raise SweepError(f"{path}: the grid has more than {MAX_POINTS} points")
    base = _base(path, here, table["base"], table.get("folder"))
    points, seen = [], {}
    for combo in combos:
        point = _point(path, base, {**settings, **combo}, combo)
        key = json.dumps(combo, sort_keys=True)
        if key not in seen:
            seen[key] = point
            points.append(point)
    _unique_names(points)
    return Sweep(path, out, points, _evaluate(path, table.get("evaluate", {})))


def _keys(path, where, table):
    """A settings or grid table, keys normalised ('-' -> '_') and checked against the known ones."""
    if not isinstance(table, dict):
        raise SweepError(f"{path}: {where!r} must be a table, got {table!r}")
    out = {}
    for key, value in table.items():
        norm = key.replace("-", "_")
        if norm not in TRAINING_KEYS + SPEC_KEYS:
            raise SweepError(f"{path}: {where}.{key}: unknown key (expected a training setting "
                             f"({', '.join(TRAINING_KEYS)}) or a spec key ({', '.join(SPEC_KEYS)}))")
        out[norm] = value
    return out


def _base(path, here, base, folder):
    """-> ('preset', dataset) or ('spec', spec dict), with the folder (absolute) of a folder dataset."""
    name = dataset_name(base)
    if name in REGISTRY:
        kind, value = "preset", name
    else:
        spec_path = os.path.join(here, base)
        try:
            kind, value = "spec", load_spec(spec_path)
        except (SpecError, FileNotFoundError) as e:
            raise SweepError(f"{path}: base: {base!r} is neither a dataset ({', '.join(REGISTRY)}) nor a spec "
                             f"file ({e})") from None
        name = value.get("dataset")
    if name in FOLDER_DATASETS:
        if not isinstance(folder, str) or not os.path.isdir(os.path.join(here, folder)):
            raise SweepError(f"{path}: folder: {name} needs an existing image folder, got {folder!r}")
        folder = os.path.abspath(os.path.join(here, folder))
    elif folder is not None:
        raise SweepError(f"{path}: folder: {name} reads no folder (only {', '.join(FOLDER_DATASETS)} do)")
    return kind, value, name, folder


def _point(path, base, values, combo):
    kind, value, dataset, folder = base
    model = values.get("model", "jointvae" if kind == "preset" else value.get("model", "jointvae"))
    if model not in MODELS:
        raise SweepError(f"{path}: model: unknown model {model!r} (expected one of {', '.join(MODELS)})")
    if kind == "preset":
        spec = copy.deepcopy(DEFAULT_SPECS.get((dataset, model)) or DEFAULT_SPECS[(dataset, "jointvae")])
    else:
        spec = copy.deepcopy(value)
    training = {"seed": 0, "steps": None, "checkpoint_every": None}
    for key, v in values.items():
        if key in TRAINING_KEYS:
            training[key] = v
        else:
            spec[key] = v
    if folder is not None:
        spec.update(dataset=dataset, folder=folder)
    spec.setdefault("dataset", dataset)
    name = point_name(combo)
    if training.get("device") not in (None,) + DEVICES:
        raise SweepError(f"{path}: device must be one of {', '.join(DEVICES)}, got {training['device']!r}")
    for key, minimum, maximum in (("seed", 0, MAX_SEED), ("steps", 1, 10**9), ("checkpoint_every", 1, 10**9)):
        v = training[key]
        if v is None and key != "seed":
            if key == "steps":
                raise SweepError(f"{path}: steps: every point needs 'steps' (in settings or the grid)")
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= maximum:
            raise SweepError(f"{path}: {key} must be an integer in [{minimum}, {maximum}], got {v!r}")
    try:
        spec = validate_spec(spec)
    except SpecError as e:
        raise SweepError(f"{path}: point {name}: {e}") from None
    every = training["checkpoint_every"] or max(1, min(1000, training["steps"] // 5))
    return {"name": name, "settings": combo, "spec": spec, "seed": training["seed"], "steps": training["steps"],
            "checkpoint_every": every, "device": training.get("device") or "cpu"}


def _evaluate(path, table):
    if not isinstance(table, dict):
        raise SweepError(f"{path}: 'evaluate' must be a table, got {table!r}")
    for key, value in table.items():
        if key not in EVALUATE_KEYS:
            raise SweepError(f"{path}: evaluate.{key}: unknown key (expected {', '.join(EVALUATE_KEYS)})")
        if key == "split" and value not in EVALUATE_KEYS["split"]:
            raise SweepError(f"{path}: evaluate.split must be 'test' or 'train', got {value!r}")
        if key in ("samples", "seed") and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SweepError(f"{path}: evaluate.{key} must be an integer >= 0, got {value!r}")
        if key == "votes" and not (isinstance(value, list) and len(value) == 2
                                   and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            raise SweepError(f"{path}: evaluate.votes must be [TRAIN, EVAL], two integers > 0, got {value!r}")
    return dict(table)


def name_order(key):
    """Keys in a name: alphabetical, the seed last (runs of one setting sort together)."""
    return (key == "seed", key)


def format_value(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "_".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return "_".join(f"{k}-{format_value(v)}" for k, v in sorted(value.items()))
    return str(value)


def point_name(combo):
    """The stable folder name of a point: 'key=value' for each grid key (sorted, seed last), joined by ','."""
    if not combo:
        return "base"
    name = ",".join(f"{k}={format_value(combo[k])}" for k in sorted(combo, key=name_order))
    name = re.sub(r"[^A-Za-z0-9._+=,-]", "-", name)
    if len(name) > 120:
        name = name[:100] + "," + hashlib.sha1(json.dumps(combo, sort_keys=True).encode()).hexdigest()[:8]
    return name


def _unique_names(points):
    """Points whose names collide (values that print alike: 1 and 1.0 never do, '1' and 1 may) get a hash."""
    counts = {}
    for p in points:
        counts[p["name"]] = counts.get(p["name"], 0) + 1
    for p in points:
        if counts[p["name"]] > 1:
            p["name"] += "," + hashlib.sha1(json.dumps(p["settings"], sort_keys=True).encode()).hexdigest()[:8]
