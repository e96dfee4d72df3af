"""Datasets as the model sees them: uint8 images (N, C, H, W) at the model's size, and labels.

    images, labels = load_dataset("fashion-mnist", "test")    # uint8 (10000, 1, 32, 32), int64 (10000,)
    images, _ = load_dataset("folder", root="photos/", size=64, channels=3)   # no labels: None
    images, labels = load_for_spec(spec, "train")              # what a training spec names
    x = to_float(images[idx])                                  # float32 (B, C, H, W) in [0, 1], one batch

Which names exist and what each gives: the registry (jointvae.data.registry,
re-exported here). Each loader is imported when its dataset is first loaded,
so importing this package costs little.

    registry.py        REGISTRY: name -> DatasetInfo (image shape, labelled, splits, from a folder)
    batches.py         iterate_batches, to_float
    idx.py             the IDX pipeline (decode, encode, check, download, cache) of MNIST-like files
    mnist.py           MNIST and its 28 -> 32 resize; fashion_mnist.py: Fashion-MNIST
    dsprites.py        dSprites, drawn from its factors
    imagefiles.py      image files -> uint8 (C, size, size); folder.py: a folder of them, cached
"""
import numpy as np

from .batches import iterate_batches, to_float
from .registry import (BUILT_IN_DATASETS, DATASET_ALIASES, FOLDER_DATASETS, IMAGE_SHAPES, REGISTRY, SPLIT_DATASETS,
                       DatasetInfo, dataset_info, dataset_name, default_data_dir, image_shape_of)

__all__ = ["load_dataset", "load_for_spec", "iterate_batches", "to_float",
           "REGISTRY", "DatasetInfo", "dataset_info", "dataset_name", "image_shape_of", "default_data_dir",
           "BUILT_IN_DATASETS", "FOLDER_DATASETS", "SPLIT_DATASETS", "IMAGE_SHAPES", "DATASET_ALIASES"]


def load_dataset(name, split="train", **kwargs):
    """-> (images uint8 (N, C, H, W), labels int64 (N,) or None) for a known dataset name.

    kwargs go to the loader: data_dir / idx_dir for the MNIST-like sets, root, size
    and channels (and data_dir) for the folder sets, which have no split and no labels.
    """
    info = dataset_info(name)
    if info.name in ("mnist", "fashion-mnist"):   # 28x28 digits or clothes, resized to 32x32 as published
        from .mnist import load_mnist, resize_32
        from .fashion_mnist import load_fashion_mnist
        images, labels = (load_mnist if info.name == "mnist" else load_fashion_mnist)(split, **kwargs)
        return resize_32(images), np.asarray(labels, dtype=np.int64)
    if info.name == "dsprites":  # one set, no split: a DSprites renders uint8 (737280, 1, 64, 64) on demand
        from .dsprites import load_dsprites
        return load_dsprites(**kwargs)   # labels: the shape class of each image
    if info.from_folder:
        if kwargs.get("root") is None:
            raise ValueError(f"{info.name} images come from a folder: name it (python -m jointvae.train {info.name} "
                             f"PATH, or evaluate --folder PATH)")
        from .folder import load_folder
        return load_folder(**kwargs), None
    raise ValueError(f"no loader for the dataset {info.name!r}")


def load_for_spec(spec, split="train"):
    """The data a training spec names: its image folder (spec['folder']) at the spec's image shape, else its dataset."""
    if spec.get("folder") is not None:
        shape = image_shape_of(spec.get("dataset"), spec.get("image_shape"))
        if shape is None:
            raise ValueError("a folder spec needs an 'image_shape' or a dataset with a known one")
        channels, size, _ = shape
        return load_dataset("folder", split, root=spec["folder"], size=size, channels=channels)
    return load_dataset(spec["dataset"], split)
