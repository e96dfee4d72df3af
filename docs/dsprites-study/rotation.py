"""Can FactorVAE's TC penalty see that a code holds position rotated? One markdown table per model.

    python docs/dsprites-study/rotation.py MODEL_FOLDER [MODEL_FOLDER ...] [--units A B] [--images 40000] [--seed 1]

Each model encodes --images images (factors drawn uniformly with --seed) into training-mode codes z ~ q(z|x),
the samples its discriminator saw. The plane of two continuous units (default: the largest unit of posX's
direction and the largest other unit of posY's, jointvae.evaluation.directions) is turned by 0, 5, ..., 85
degrees; each row gives the mutual information between the two turned axes (rotation_dependence) and how each
axis orders posX and posY (|Spearman|). The factor-aligned angle is where the first axis orders posX and the
second posY best (or the other way round: turning by 90 degrees swaps the axes, so angles are given in
(-45, 45]). A TC penalty prefers the angle of least mutual information. The heading also says how much of posX's and
posY's directions (directions.py's shares) the plane holds: where it holds much less than all, position spreads
over more than two units, and no turn of the plane lines its axes up with the factors.
"""
import argparse
import os

import numpy as np

from jointvae import load_model
from jointvae.data import dsprites, to_float
from jointvae.evaluation.directions import (DEPENDENCE_BINS, dependence_bias, factor_directions,
                                            rotation_dependence, turn)
from jointvae.evaluation.inspection import correlations, eval_codes, model_xp
from jointvae.models.jointvae import draw_noise
from refnet import to_numpy

DEGREES = np.arange(0, 90, 5)
BATCH = 500


def sampled_codes(model, factors, rng):
    """Training-mode codes z ~ q(z|x) (n, D) of the rendered factors, noise drawn from rng."""
    xp, out = model_xp(model), []
    for i in range(0, len(factors), BATCH):
        x = to_float(dsprites.render(factors[i:i + BATCH]), xp)
        out.append(to_numpy(model.sample(x, draw_noise(model, len(x), rng, xp))))
    return np.concatenate(out)


def position_directions(model, factors):
    """factor_directions of posX and posY in the mean codes of the rendered factors. Raises ValueError, naming
    the problem, where fewer than two units are active."""
    mu = eval_codes(model, dsprites.render(factors))[:, :model.latent_spec["cont"]]
    found = factor_directions(mu, factors, dsprites.FACTOR_NAMES, ("posX", "posY"))
    if len(found["units"]) < 2:
        raise ValueError(f"only {len(found['units'])} continuous unit is active: no plane to turn")
    return found


def position_units(found):
    """The largest unit of posX's direction, and the largest other unit of posY's."""
    units = np.array(found["units"])
    first = units[np.argmax(np.square(found["factors"]["posX"]["direction"]))]
    shares = np.square(found["factors"]["posY"]["direction"])
    shares[units == first] = -1
    return int(first), int(units[np.argmax(shares)])


def share_in_plane(found, name, plane):
    """How much of factor `name`'s direction lies in the plane of the units `plane`: 1 where the two units
    hold all of it, so that turning the plane can line an axis up with it."""
    return float(sum(d * d for unit, d in zip(found["units"], found["factors"][name]["direction"]) if unit in plane))


def signed(degrees):
    """An angle of the plane's period of 90 degrees, in (-45, 45]: 85 is -5 (the axes swapped)."""
    return int(degrees - 90) if degrees > 45 else int(degrees)


def kurtosis(v):
    """E[(v - mean)^4] / var^2: 3 for a Gaussian, 1.8 for a uniform."""
    return float(np.mean((v - v.mean()) ** 4) / v.var() ** 2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folders (specs.json + weights.npz) trained on dSprites")
    p.add_argument("--units", type=int, nargs=2, metavar=("A", "B"), help="the two continuous units (default: "
                   "the largest units of posX's and posY's directions)")
    p.add_argument("--images", type=int, default=40000, help="images drawn and encoded (default: 40000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the factors and the noise (default: 1)")
    args = p.parse_args(argv)
    if args.images < DEPENDENCE_BINS ** 2:
        raise SystemExit(f"error: --images must be at least {DEPENDENCE_BINS ** 2} ({DEPENDENCE_BINS} x "
                         f"{DEPENDENCE_BINS} bins), got {args.images}")
    for folder in args.models:
        model = load_model(folder)
        rng = np.random.default_rng(args.seed)
        factors = dsprites.sample_factors(args.images, rng)
        try:
            found = position_directions(model, factors[:5000])
        except ValueError as e:     # a code with fewer than two active units has no plane to turn: say so
            print(f"{os.path.normpath(folder)}: {e}\n")
            continue
        a, b = args.units or position_units(found)
        if not all(0 <= u < model.latent_spec["cont"] for u in (a, b)) or a == b:
            raise SystemExit(f"error: --units must be two different continuous units of {folder}, got {a} {b}")
        z = sampled_codes(model, factors, rng)[:, [a, b]].astype(np.float64)
        mi = rotation_dependence(z, DEGREES)
        pos = [factors[:, dsprites.FACTOR_NAMES.index(name)] for name in ("posX", "posY")]
        rows = []
        for deg, dependence in zip(DEGREES, mi):
            rhos = [abs(correlations(axis, factor)[1]) for axis in turn(z, deg).T for factor in pos]
            rows.append((deg, dependence, rhos))
        aligned = max(rows, key=lambda r: max(r[2][0] + r[2][3], r[2][1] + r[2][2]))[0]
        least = DEGREES[np.argmin(mi)]
        print(f"{os.path.normpath(folder)}: cont.{a} and cont.{b} of {args.images} sampled codes; kurtosis "
              f"{kurtosis(z[:, 0]):.2f} and {kurtosis(z[:, 1]):.2f}; least dependent at {signed(least)} degrees, "
              f"factor-aligned at {signed(aligned)}; estimate bias about {dependence_bias(len(z)):.4f} nats; the "
              f"plane holds {share_in_plane(found, 'posX', (a, b)):.2f} of posX's direction and "
              f"{share_in_plane(found, 'posY', (a, b)):.2f} of posY's\n")
        print("| turned by (degrees) | MI (nats) | axis 1: posX, posY | axis 2: posX, posY |")
        print("|---|---|---|---|")
        for deg, dependence, rhos in rows:
            print(f"| {deg} | {dependence:.4f} | {rhos[0]:.2f}, {rhos[1]:.2f} | {rhos[2]:.2f}, {rhos[3]:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
