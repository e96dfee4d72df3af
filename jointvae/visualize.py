"""python -m jointvae.visualize PATH [--out DIR] [--dataset mnist] [--units N]

Pictures of a trained model, written as PNGs and GIFs into --out:

    reconstructions.png     test images (top rows) and their reconstructions (below)
    samples.png             instead of reconstructions when there is no data (CelebA): codes from the prior
    samples_disc{i}.png     one row per value of discrete latent i, continuous codes from the prior
    traversal_cont.png      one row per continuous unit, ranked by KL, from Phi^-1(0.05) to Phi^-1(0.95);
                            without data or a training log, ranked by how much each unit changes the picture
    traversal_from_image.png  the same rows from a random data image's code: the image, its reconstruction,
                            then its code with the unit set to each value, the other latents kept (with data)
    traversal.gif           the same units side by side, swept from Phi^-1(0.05) to Phi^-1(0.95) and back
                            (every model with continuous units)
    traversal_disc.png      one row per discrete latent, over its K values
    training.gif            traversal_cont across epochs: only for a training run that saved frames/
    kl_per_unit.png         each unit's KL over training: only for a training run (log.jsonl), and with
                            matplotlib (pip install '.[plots]')

A picture that cannot be made is named on stdout with the reason ("skipped ...").

Where the pictures go: --out DIR when given. Otherwise a training run of this
project (a folder holding the trainer's log.jsonl or checkpoint.npz) gets them
in its own folder, beside the pictures the trainer wrote at the end; any other
model folder (a published model, a folder someone handed over) is input only
and is never written into: its pictures go to runs/pictures/<folder name>.
"""
import argparse
import os
import sys

from .models.model_folder import load_model
from .evaluation.pictures import write_all


def can_write_into(folder):
    """True when `folder` is a writable folder, or can be made: its nearest existing ancestor is writable."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.path.isdir(path) and os.access(path, os.W_OK)


TRAINING_FILES = ("log.jsonl", "checkpoint.npz")   # what the trainer writes into a run's folder
PICTURES = os.path.join("runs", "pictures")


def is_training_run(folder):
    """True when folder holds the trainer's own files (log.jsonl or checkpoint.npz): a run of this project."""
    return any(os.path.isfile(os.path.join(folder, name)) for name in TRAINING_FILES)


def default_out(path):
    """A training run's pictures go into its own folder; any other model folder is input only:
    runs/pictures/<its name>."""
    if is_training_run(path):
        return path
    return os.path.join(PICTURES, os.path.basename(os.path.normpath(os.path.abspath(path))))


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.visualize", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("--out", help="where to write the pictures (default: PATH itself for a training run of "
                                 "this project, which holds log.jsonl or checkpoint.npz; else "
                                 "runs/pictures/<PATH's folder name>, never into the model folder)")
    p.add_argument("--dataset", help="dataset for reconstructions and KL ranking (default: the spec's)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the prior samples and of the sample of test images shown (default: 0)")
    p.add_argument("--units", type=int, metavar="N",
                   help="traversal_cont.png, traversal_from_image.png and traversal.gif show only the N "
                        "highest-ranked continuous units (default: all)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.units is not None and args.units < 1:
        raise SystemExit(f"error: --units must be at least 1, got {args.units}")
    out = args.out or default_out(args.path)
    if not can_write_into(out):
        raise SystemExit(f"error: cannot write pictures into {out}: pass --out DIR")
    try:
        model = load_model(args.path)
        paths = write_all(out, model=model, dataset=args.dataset, seed=args.seed, units=args.units,
                          source=args.path)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
