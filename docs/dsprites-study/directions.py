"""Where position and scale lie in the codes of dSprites models: one markdown row per model and factor.

    python docs/dsprites-study/directions.py MODEL_FOLDER [MODEL_FOLDER ...] [--images 5000] [--seed 0]

Each model encodes the same --images images, their factors drawn uniformly with --seed; the eval-mode codes'
continuous means are read by jointvae.evaluation.directions (see there for the direction, r2 and Spearman);
the two units that take most of each direction are shown with their shares. The last column is the angle
between the directions of posX and posY.
"""
import argparse
import os

import numpy as np

from jointvae import load_model
from jointvae.data import dsprites
from jointvae.evaluation.directions import angle_degrees, factor_directions
from jointvae.evaluation.inspection import eval_codes

FACTORS = ("posX", "posY", "scale")   # the ordered factors; shape is categorical, orientation circular


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folders (specs.json + weights.npz) trained on dSprites")
    p.add_argument("--images", type=int, default=5000, help="images drawn and encoded (default: 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the factors drawn (default: 0)")
    args = p.parse_args(argv)
    if args.images < 10:
        raise SystemExit(f"error: --images must be at least 10, got {args.images}")
    factors = dsprites.sample_factors(args.images, np.random.default_rng(args.seed))
    images = dsprites.render(factors)
    print("| model | active units | factor | r2 | Spearman | largest units (share) | angle posX-posY |")
    print("|---|---|---|---|---|---|---|")
    for folder in args.models:
        model = load_model(folder)
        mu = eval_codes(model, images)[:, :model.latent_spec["cont"]]
        try:
            found = factor_directions(mu, factors, dsprites.FACTOR_NAMES, FACTORS)
        except ValueError as e:     # a code that holds nothing to read (no active unit): say so in its row
            print(f"| {os.path.normpath(folder)} | 0 | {e} | | | | |")
            continue
        x, y = (found["factors"][name]["direction"] for name in ("posX", "posY"))
        angle = angle_degrees(x, y) if np.any(x) and np.any(y) else float("nan")
        for i, name in enumerate(FACTORS):
            f = found["factors"][name]
            shares = np.square(f["direction"])
            largest = ", ".join(f"cont.{found['units'][k]} {shares[k]:.2f}" for k in np.argsort(-shares)[:2]
                                if shares[k] > 0) or "none moves with it"
            print(f"| {os.path.normpath(folder) if i == 0 else ''} | {len(found['units']) if i == 0 else ''} | "
                  f"{name} | {f['r2']:.3f} | {f['spearman']:.3f} | {largest} | {f'{angle:.1f}' if i == 0 else ''} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
