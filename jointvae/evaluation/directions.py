"""Where a factor lies in a code: the direction in which the active continuous units move with it.

A disentangled code holds each factor in one unit; a rotated code holds it in a mix of units, and the FactorVAE
metric, the beta-VAE metric and MIG, which all look at units one at a time, score it low although the
information is there. For the active continuous units (global std >= metrics.PRUNE_STD, as the FactorVAE
metric prunes), centred to z (n, A) but not rescaled (every unit is on its prior's N(0, 1) scale), and a
factor's values standardised to y:

    d = cov(z, y) / |cov(z, y)|                 the factor's direction: how the code moves as the factor grows
    r2 = 1 - min_w mean((z w - y)^2)            how much of y the units hold linearly (least squares)
    spearman = rho(z d, y)                      how well the code orders y along d (any monotone reading)
    largest_share = max_i d_i^2                 1: one unit holds it; 1/A: every unit alike

A factor no unit moves with (|cov(z, y)| below 1e-9 of the units' spread) gets the zero direction, a largest
share of 0, no largest unit (None) and a Spearman of nan.

Two independent factors coded by units rotated by theta get directions 90 degrees apart, with largest shares
max(cos^2 theta, sin^2 theta), whatever their spreads; a nearly dead unit gets a weight as small as its spread.
Meant for ordered factors (dSprites' position and scale): a categorical or circular factor has no direction.

    found = factor_directions(mu (n, C), factors int (n, F), factor_names, which=("posX", "posY"))
    angle_degrees(found["factors"]["posX"]["direction"], found["factors"]["posY"]["direction"])

Whether a total-correlation penalty (FactorVAE) can see such a rotation: rotation_dependence(z (n, 2), degrees)
gives the mutual information between two units of sampled codes after turning their plane by each angle. TC
prefers the angle of least dependence; where that is not the factor-aligned angle, the penalty has no reason to
turn the code to the factors. Independent uniform units depend on each other once rotated; independent Gaussian
units of equal spread do not, at any angle.
"""
import numpy as np

from .inspection import correlations, ranks
from .metrics import PRUNE_STD, mutual_information

DEPENDENCE_BINS = 20    # equal-frequency bins of each turned axis in rotation_dependence


def factor_directions(mu, factors, factor_names, which=None):
    """mu float (n, C) continuous codes, factors int (n, F) their factor classes -> {"units": active unit
    indices (A,), "factors": {name: {"direction" (A,), "r2", "spearman", "largest_unit", "largest_share"}}}
    for the factors named in `which` (a name or names; default: all). Raises ValueError, naming the problem,
    when no unit is active, a name is not a factor, or a factor takes one value only."""
    names = list(factor_names)
    which = names if which is None else [which] if isinstance(which, str) else list(which)
    unknown = [name for name in which if name not in names]
    if unknown:
        raise ValueError(f"no factor named {', '.join(map(repr, unknown))}: the factors are {', '.join(names)}")
    mu = np.asarray(mu, np.float64)
    if not np.isfinite(mu).all():
        raise ValueError(f"the codes hold {np.size(mu) - np.isfinite(mu).sum()} values that are NaN or infinite")
    active = np.flatnonzero(mu.std(axis=0) >= PRUNE_STD)
    if len(active) == 0:
        raise ValueError(f"no continuous unit has a standard deviation of {PRUNE_STD} or more: nothing to read")
    z = mu[:, active] - mu[:, active].mean(axis=0)
    factors = np.asarray(factors, np.float64)
    found = {}
    for name in which:
        y = factors[:, names.index(name)]
        if y.std() == 0:
            raise ValueError(f"factor {name} takes one value only in these codes: it has no direction")
        y = (y - y.mean()) / y.std()
        d = z.T @ y / len(y)                                # cov(z, y), (A,)
        moves = np.linalg.norm(d) > 1e-9 * np.linalg.norm(z.std(axis=0))   # |cov| <= std: else rounding only
        d = d / np.linalg.norm(d) if moves else np.zeros_like(d)
        w = np.linalg.lstsq(z, y, rcond=None)[0]
        found[name] = {"direction": d.tolist(),
                       "r2": float(1 - np.mean((z @ w - y) ** 2)),
                       "spearman": correlations(z @ d, y)[1],
                       "largest_unit": int(active[np.argmax(d ** 2)]) if moves else None,
                       "largest_share": float(np.max(d ** 2))}
    return {"units": active.tolist(), "factors": found}


def angle_degrees(d1, d2):
    """The angle between two directions as lines, 0 to 90 degrees: the sign of a direction is arbitrary."""
    n1, n2 = np.linalg.norm(d1), np.linalg.norm(d2)
    if n1 == 0 or n2 == 0:
        raise ValueError("a direction of length 0 has no angle")
    return float(np.degrees(np.arccos(min(abs(float(np.dot(d1, d2))) / (n1 * n2), 1.0))))


def equal_frequency_bins(values, bins):
    """values (n,) -> int (n,) in [0, bins): the bin of each value's rank, n / bins values to a bin. A monotone
    rescaling of the values leaves the bins as they are, so an MI over them does not depend on a unit's scale."""
    return np.minimum(((ranks(values) - 1) * bins / len(values)).astype(np.int64), bins - 1)


def turn(z, degrees):
    """z (n, 2) -> [u, v] (n, 2), its plane turned by `degrees`: u = z_1 cos t + z_2 sin t, v = -z_1 sin t + z_2 cos t."""
    t = np.radians(degrees)
    return z @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def rotation_dependence(z, degrees, bins=DEPENDENCE_BINS):
    """z float (n, 2) two units of sampled codes, degrees (k,) -> MI in nats (k,) of the plane turned by each angle:

        [u, v] = turn(z, t) = [z_1 cos t + z_2 sin t,  -z_1 sin t + z_2 cos t]    I(u; v), equal-frequency bins

    The plug-in estimate is biased up by about dependence_bias(n, bins) nats, alike at every angle. I(t + 90) = I(t).
    """
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"expected the codes of two units, shape (n, 2), got {z.shape}")
    if len(z) < bins * bins:
        raise ValueError(f"{len(z)} codes are too few for {bins} x {bins} bins: give at least {bins * bins}")
    if not np.isfinite(z).all():
        raise ValueError("the codes hold values that are NaN or infinite")
    z = z - z.mean(axis=0)
    out = []
    for deg in np.atleast_1d(np.asarray(degrees, np.float64)):
        u, v = turn(z, deg).T
        out.append(mutual_information(equal_frequency_bins(u, bins), bins, equal_frequency_bins(v, bins), bins))
    return np.array(out)


def dependence_bias(n, bins=DEPENDENCE_BINS):
    """The plug-in MI's upward bias for n independent samples over bins x bins cells: (bins - 1)^2 / (2 n) nats."""
    return (bins - 1) ** 2 / (2 * n)
