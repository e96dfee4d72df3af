"""The registry of datasets: every name this package knows, and what the rest of it needs to know about each.

    REGISTRY["mnist"]      DatasetInfo(name="mnist", image_shape=(1, 32, 32), labelled=True,
                                       splits=("train", "test"), from_folder=False)
    REGISTRY["folder"]     DatasetInfo(name="folder", image_shape=None, labelled=False, splits=(), from_folder=True)

    name           image_shape (C, H, W)   labels          splits          from a folder
    mnist          (1, 32, 32)             digit 0..9      train, test     no
    fashion-mnist  (1, 32, 32)             class 0..9      train, test     no
    dsprites       (1, 64, 64)             shape 0..2      one set         no
    folder         the spec's              none            one set         yes
    chairs         (1, 64, 64)             none            one set         yes
    celeba         (3, 64, 64)             none            one set         yes

Specs, the command lines and the loaders read these facts here and nowhere
else. The published Fashion-MNIST spec spells its dataset "fashion_mnist", the
command line "fashion-mnist": `dataset_name` maps both to "fashion-mnist".

Cheap to import: no loader is imported here (jointvae.data.load_dataset
imports the one a name needs when it is called).
"""
import dataclasses
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What every place outside the loaders needs to know about one dataset."""
    name: str                                   # the one spelling used everywhere
    image_shape: tuple[int, int, int] | None    # (C, H, W) the model takes; None: the spec's "image_shape"
    labelled: bool                              # load_dataset returns labels int64 (N,) (else None)
    splits: tuple[str, ...]                     # the splits load_dataset tells apart; (): one set
    from_folder: bool                           # images read from a folder the user names (root=)


REGISTRY = {info.name: info for info in (   # name -> DatasetInfo, in the order messages list them
    DatasetInfo("mnist", (1, 32, 32), labelled=True, splits=("train", "test"), from_folder=False),
    DatasetInfo("fashion-mnist", (1, 32, 32), labelled=True, splits=("train", "test"), from_folder=False),
    DatasetInfo("dsprites", (1, 64, 64), labelled=True, splits=(), from_folder=False),
    DatasetInfo("folder", None, labelled=False, splits=(), from_folder=True),
    DatasetInfo("chairs", (1, 64, 64), labelled=False, splits=(), from_folder=True),
    DatasetInfo("celeba", (3, 64, 64), labelled=False, splits=(), from_folder=True),
)}

BUILT_IN_DATASETS = tuple(name for name, info in REGISTRY.items() if not info.from_folder)  # loaded by name alone
FOLDER_DATASETS = tuple(name for name, info in REGISTRY.items() if info.from_folder)       # need root=
SPLIT_DATASETS = tuple(name for name, info in REGISTRY.items() if info.splits)            # train and test
IMAGE_SHAPES = {name: info.image_shape for name, info in REGISTRY.items()                 # name -> (C, H, W)
                if info.image_shape is not None}

DATASET_ALIASES = {"fashion_mnist": "fashion-mnist"}   # the published specs' spelling -> ours


def dataset_name(name):
    """The one spelling of a dataset name used everywhere here ('fashion_mnist' -> 'fashion-mnist')."""
    return DATASET_ALIASES.get(name, name)


def dataset_info(name):
    """The DatasetInfo of a name (either spelling); ValueError naming the known ones for any other."""
    info = REGISTRY.get(dataset_name(name))
    if info is None:
        raise ValueError(f"unknown dataset {name!r}: expected one of {tuple(REGISTRY)}")
    return info


def image_shape_of(name, given=None):
    """(C, H, W) of a dataset's images: `given` (a spec's "image_shape") when there is one, else the
    registry's for `name` (either spelling); None when neither says (a folder, or an unknown name)."""
    if given is not None:
        return tuple(int(v) for v in given)
    return IMAGE_SHAPES.get(dataset_name(name))


def default_data_dir():
    """Where downloaded and built data are kept: $JOINTVAE_DATA, else ~/.cache/jointvae."""
    return Path(os.environ.get("JOINTVAE_DATA") or Path.home() / ".cache" / "jointvae")
