"""python -m jointvae.visualize PATH [--out DIR] [--dataset mnist] [--units N]

Pictures of a trained model, written as PNG (and one GIF) with imageio:

    reconstructions.png     test images (top rows) and their reconstructions (below)
    samples.png             instead of reconstructions when there is no data (CelebA): codes from the prior
    samples_disc{i}.png     one row per value of discrete latent i, continuous codes from the prior
    traversal_cont.png      one row per continuous unit, ranked by KL, from Phi^-1(0.05) to Phi^-1(0.95);
                            without data or a training log, ranked by how much each unit changes the picture
    traversal_disc.png      one row per discrete latent, over its K values
    training.gif            traversal_cont across epochs (from the frames saved during training)
    kl_per_unit.png         each unit's KL over training (needs matplotlib: pip install '.[plots]')
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


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.visualize", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("--out", help="where to write the pictures (default: PATH itself)")
    p.add_argument("--dataset", help="dataset for reconstructions and KL ranking (default: the spec's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--units", type=int, metavar="N",
                   help="traversal_cont.png shows only the N highest-ranked continuous units (default: all)")
    args = p.parse_args(argv)
    if args.units is not None and args.units < 1:
        raise SystemExit(f"error: --units must be at least 1, got {args.units}")
    out = args.out or args.path
    if not can_write_into(out):
        raise SystemExit(f"error: cannot write pictures into {out}: pass --out DIR")
    try:
        model = load_model(args.path)
        paths = write_all(out, model=model, dataset=args.dataset, seed=args.seed, units=args.units)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
