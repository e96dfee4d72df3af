"""python -m jointvae.evaluate PATH [--dataset mnist|fashion-mnist|dsprites] [--folder DIR] [--seed S] ...

Prints one JSON object for the model folder PATH on the dataset's test split (or --split train):
reconstruction loss (BCE summed over pixels, mean over images, eval-mode codes:
z = mean and the argmax one-hot), KL per unit ranked, and, for labelled data
(MNIST's digits, Fashion-MNIST's 10 clothing classes), `discrete_accuracy`:
each category of the first discrete latent is mapped to the label most of its
images carry, and the accuracy of that mapping is reported with the confusion
matrix (rows: categories, columns: labels). `--split train` scores the training
images instead: a way to compare runs (seeds) without looking at the test set.

A run trained on an image folder (chairs, celeba, folder) is evaluated on a
seeded sample of that folder's images (recorded in its specs.json, or
--folder DIR): reconstruction and KL only, as there are no labels.

On dSprites (known factors, no test split) the same figures come from a seeded
sample of 10,000 images, followed by the FactorVAE metric, the β-VAE metric and
MIG (jointvae.evaluation.metrics) of the eval-mode code, and `factorvae_quiet_votes`:
the share of the FactorVAE metric's training votes won by units of under 0.1 nats
(a warning on stderr when it is a quarter or more). At the default votes
the metrics encode every one of dSprites' 737,280 images once (a code table
they look codes up in): several minutes on a CPU, nearly all of the run.

While it encodes, a progress line with rate and ETA goes to stderr every few
seconds (--progress-every), so stdout stays one JSON object. Its "seconds"
are the whole run's, stage by stage: "load" (model and data), "reconstruction",
on dSprites "code_table" (when the table is used) and each metric, and "total".
"""
import argparse
import json
import sys
import time

import refnet

from . import data
from .data.registry import SPLIT_DATASETS, dataset_name
from .evaluation.progress import EVERY, stderr_line
from .evaluation.scores import RECON_SAMPLE, sample_indices, score_images, score_with_disentanglement
from .models.model_folder import load_model


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the spec's)")
    p.add_argument("--folder", help="evaluate on the images of this folder (default: a folder run's own)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="MNIST and Fashion-MNIST: which split to score (default: test)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the dSprites or folder sample and of the metric votes (default: 0)")
    p.add_argument("--votes", type=int, nargs=2, default=(10000, 5000), metavar=("TRAIN", "EVAL"),
                   help="training and evaluation votes of the FactorVAE and beta-VAE metrics (default: 10000 5000)")
    p.add_argument("--samples", type=int, default=RECON_SAMPLE,
                   help="dSprites or folder images for reconstruction and KL (and dSprites: the units' scale "
                        f"and MIG) (default: {RECON_SAMPLE})")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="where the model encodes and decodes; the metrics' votes stay on the host (default: cpu)")
    p.add_argument("--progress-every", type=float, default=EVERY, metavar="SECONDS",
                   help=f"seconds between progress lines on stderr while encoding; 0: after every batch "
                        f"(default: {EVERY:g})")
    return p


def main(argv=None):
    start = time.perf_counter()
    args = build_parser().parse_args(argv)
    log, every = stderr_line, args.progress_every
    try:
        if every < 0:
            raise ValueError(f"--progress-every must be 0 or more, got {every:g}")
        model = load_model(args.path)
        if args.device == "gpu":
            refnet.backend.require_gpu()   # a one-line error without CuPy or a GPU
            model.to("gpu")
        name = dataset_name(args.dataset or model.spec.get("dataset"))
        folder = args.folder or (model.spec.get("folder") if name in data.FOLDER_DATASETS else None)
        if name is None and folder is None:
            raise ValueError("the spec names no dataset: pass --dataset or --folder")
        if args.split != "test" and (folder is not None or name not in SPLIT_DATASETS):
            raise ValueError(f"--split goes with {' and '.join(SPLIT_DATASETS)}, not {folder or name}")
        if folder is not None:   # the model's own size and channels, whatever the folder holds
            channels, size, _ = model.image_shape
            images, labels = data.load_dataset("folder", root=folder, size=size, channels=channels)
        else:
            images, labels = data.load_dataset(name, args.split)
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(f"{name} images are {images.shape[1:]}, the model expects {model.image_shape}")
        loaded = time.perf_counter()
        if hasattr(images, "factor_sizes"):
            scores = score_with_disentanglement(model, images, args.seed, *args.votes, n_samples=args.samples,
                                                log=log, every=every)
        else:
            if folder is not None:
                images, labels = images[sample_indices(len(images), args.samples, args.seed)], None
            scores = score_images(model, images, labels, log=log, every=every)
            scores["seconds"] = {"reconstruction": round(time.perf_counter() - loaded, 3)}
        # The whole run: loading the model and the data, then every stage scored.
        scores["seconds"] = {"load": round(loaded - start, 3), **scores["seconds"],
                             "total": round(time.perf_counter() - start, 3)}
        where = {"folder": folder} if folder else {"split": args.split} if name in SPLIT_DATASETS else {}
        result = {"model": args.path, "dataset": name, **where, **scores}
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
