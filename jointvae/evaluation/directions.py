"""Where a factor lies in a code: the direction of the active continuous units that reads it linearly.

A disentangled code reads each factor off one unit; a rotated code reads it off a mix of units, and the
FactorVAE metric, the beta-VAE metric and MIG, which all look at units one at a time, score it low although
the information is there. For the active continuous units (global std above metrics.PRUNE_STD), standardised
to Z (n, A), and a factor's values y standardised:

    w = argmin |Z w - y|^2,  d = w / |w|        the factor's direction in the units, (A,)
    r2 = 1 - mean((Z w - y)^2)                  how much of y the units hold linearly
    spearman = rho(Z d, y)                      how well the units order y along d (any monotone reading)
    largest_share = max_i d_i^2                 1: one unit reads it; 1/A: every unit alike

The angle between two factors' directions is 90 degrees when they are read along orthogonal directions, as
two independent factors are in a code that is only rotated away from the units. Meant for ordered factors
(dSprites' position and scale): a categorical or circular factor has no linear direction.

    found = factor_directions(mu (n, C), factors int (n, F), factor_names, which=("posX", "posY"))
    angle_degrees(found["factors"]["posX"]["direction"], found["factors"]["posY"]["direction"])
"""
import numpy as np

from .inspection import correlations
from .metrics import PRUNE_STD


def standardise(x):
    """x (n, ...) -> (x - mean) / std along axis 0."""
    return (x - x.mean(axis=0)) / x.std(axis=0)


def factor_directions(mu, factors, factor_names, which=None):
    """mu float (n, C) continuous codes, factors int (n, F) their factor classes -> {"units": active unit
    indices (A,), "factors": {name: {"direction" (A,), "r2", "spearman", "largest_unit", "largest_share"}}}
    for the factors named in `which` (default: all). Raises ValueError when no unit is active."""
    mu = np.asarray(mu, np.float64)
    active = np.flatnonzero(mu.std(axis=0) > PRUNE_STD)
    if len(active) == 0:
        raise ValueError(f"no continuous unit has a standard deviation above {PRUNE_STD}: nothing to read")
    z = standardise(mu[:, active])
    found = {}
    for name in which or factor_names:
        y = standardise(np.asarray(factors, np.float64)[:, list(factor_names).index(name)])
        w = np.linalg.lstsq(z, y, rcond=None)[0]
        d = w / np.linalg.norm(w)
        found[name] = {"direction": d.tolist(),
                       "r2": float(1 - np.mean((z @ w - y) ** 2)),
                       "spearman": correlations(z @ d, y)[1],
                       "largest_unit": int(active[np.argmax(d ** 2)]),
                       "largest_share": float(np.max(d ** 2))}
    return {"units": active.tolist(), "factors": found}


def angle_degrees(d1, d2):
    """The angle between two directions as lines (0 to 90 degrees): the sign of a direction is arbitrary."""
    cos = abs(float(np.dot(d1, d2))) / (np.linalg.norm(d1) * np.linalg.norm(d2))
    return float(np.degrees(np.arccos(min(cos, 1.0))))
