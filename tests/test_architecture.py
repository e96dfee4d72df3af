"""The import rules of docs/architecture.md, read off the source with `ast` so that they stay true.

    refnet  <-  kernels  <-  jointvae.files  <-  jointvae.data  <-  jointvae.models  <-  jointvae.training
                                                                                     <-  jointvae.evaluation
    jointvae.sweeps (above training and evaluation) <- the package top <- the front doors
    CLI front doors (jointvae/train.py, evaluate.py, ...) import the rooms and never one another.

A module may import its own room and the rooms before it; training and evaluation do not import each
other; nothing imports a front door, and nothing in a room imports the package's top (jointvae/__init__.py,
the public API). Imports inside functions count too.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each room's rank: a module may import its own room and lower ranks. Equal ranks are siblings.
RANKS = {"refnet": 0, "kernels": 1, "jointvae.files": 2, "jointvae.data": 3, "jointvae.models": 4,
         "jointvae.training": 5, "jointvae.evaluation": 5, "jointvae.sweeps": 6}
TOP, FRONT_DOOR = "jointvae", "front door"   # the package's __init__ (or anything loose in it); the CLI modules
RANKS.update({TOP: 7, FRONT_DOOR: 8})
FRONT_DOORS = {f"jointvae.{name}" for name in ("train", "evaluate", "visualize", "edit", "infer", "experiments", "sweep", "explore")}


def module_name(path):
    """jointvae/models/objective.py -> 'jointvae.models.objective'; a package's __init__ -> the package."""
    parts = list(Path(path).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module):
    """The room of a project module ('jointvae.models', FRONT_DOOR, TOP...), None outside the project."""
    if module in FRONT_DOORS:
        return FRONT_DOOR
    for room in sorted(RANKS, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return None


def imported_modules(name, source, is_package):
    """Every module `source` (module `name`) imports, relative imports resolved.

    'from X import a' counts as X.a when that names a room or a front door (a submodule), else as X.
    """
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(sub if room_of(sub) not in (None, TOP) else base)
    return found


def violations(sources):
    """sources {path relative to the root: text} -> one line per import that breaks a rule."""
    found = []
    for path, source in sorted(sources.items()):
        name = module_name(path)
        here = room_of(name)
        for target in sorted(set(imported_modules(name, source, path.endswith("__init__.py")))):
            there = room_of(target)
            if there is None:
                continue
            if there == FRONT_DOOR and name != target:
                found.append(f"{path}: imports the front door {target}")
            elif there == TOP and here != TOP:
                found.append(f"{path}: imports the package top ({target}); import the room instead")
            elif there != here and RANKS[there] >= RANKS[here]:
                found.append(f"{path}: {here} imports {target} ({there} may not be imported from {here})")
    return found


def project_sources():
    files = [p for top in ("refnet", "kernels", "jointvae") for p in (ROOT / top).rglob("*.py")]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in files}


def test_imports_flow_one_way():
    assert violations(project_sources()) == []


def test_every_module_is_in_a_room():
    """A file at jointvae/'s top is a front door or the package's __init__; anything else is out of place."""
    loose = [path for path in project_sources() if room_of(module_name(path)) == TOP and path != "jointvae/__init__.py"]
    assert loose == []


@pytest.mark.parametrize("path, source, expected", [
    ("refnet/conv.py", "import jointvae.models\n", "refnet imports jointvae.models"),
    ("kernels/gumbel.py", "def f():\n    from jointvae import latent\n", "imports the package top (jointvae)"),
    ("jointvae/data/mnist.py", "from ..models.specs import image_shape\n", "jointvae.data imports jointvae.models"),
    ("jointvae/evaluation/scores.py", "from ..training import trainer\n", "jointvae.evaluation imports jointvae.training"),
    ("jointvae/infer.py", "from .edit import check_choice\n", "imports the front door jointvae.edit"),
    ("jointvae/models/specs.py", "from jointvae import load_model\n", "imports the package top"),
])
def test_the_checker_catches_each_kind_of_violation(path, source, expected):
    """A rule test that cannot fail proves nothing: each rule, broken once, is reported."""
    found = violations({path: source})
    assert len(found) == 1 and expected in found[0], found


def test_allowed_imports_pass():
    allowed = {"jointvae/training/trainer.py": "from ..models import objective\nimport refnet\nimport numpy\n",
               "jointvae/evaluate.py": "from .evaluation import scores\nfrom .data import load_dataset\n",
               "kernels/normal.py": "from refnet import latent\n"}
    assert violations(allowed) == []
