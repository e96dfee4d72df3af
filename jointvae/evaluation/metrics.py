"""Disentanglement metrics on data with known factors: FactorVAE, beta-VAE and MIG.

Every metric scores a representation, not a model, so an encoder, an oracle or noise can be scored alike:

    represent(images) -> codes   float (n, D); D = cont + sum(disc)
    layout                       {'cont': C, 'disc': [K1, ...]}: codes are [C continuous values, then one block
                                 of K_i columns per discrete latent, one-hot or probabilities]
    dataset                      .factor_names, .factor_sizes (F classes counts), .images(factors),
                                 .sample_factors(n, rng) -> int (n, F), uniform and independent
    rng                          a np.random.Generator or an int seed: the same seed gives the same result

A *unit* is one continuous column or one whole discrete block, whose value is the block's argmax: layout
{'cont': 6, 'disc': [3]} has 7 units, cont.0 ... cont.5, disc.0. For a JointVAE:

    represent = functools.partial(inspection.eval_codes, model)   # means, one-hot argmax (inspection.py)

    factorvae_metric  Kim & Mnih 2018, "Disentangling by Factorising", section 4 and appendix B
    betavae_metric    Higgins et al. 2017, "beta-VAE", section 3
    mig               Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", section 5
    all_metrics       the three, each with its own generator drawn from rng

Every function returns a JSON-friendly dict (floats, ints, lists, names) whose 'score' is the metric.
Images are rendered and represented `chunk` at a time; all factors are drawn before any is rendered,
so the result does not depend on `chunk`.
"""
import time

import numpy as np

from refnet.backend import to_numpy

from ..models.specs import normalise_latent_spec

CHUNK = 1024        # images per represent() call: 16 votes of 64; a JointVAE on 64 x 64 needs ~0.5 GB for it
MIG_BINS = 20       # equal-width bins per continuous unit (Chen et al.; disentanglement_lib's default)
PRUNE_STD = 0.05    # Kim & Mnih: units with a global std below this have collapsed to the prior
LOGREG_L2 = 1e-4    # = 1 / n_train at the defaults: sklearn's LogisticRegression(C=1.0), which the
                    # reference implementation (disentanglement_lib) uses for the beta-VAE metric


# ---------------------------------------------------------------- inputs


def unit_names(layout):
    """['cont.0', ..., 'disc.0', ...]: the names scores.py gives the same units."""
    layout = normalise_latent_spec(layout)
    return [f"cont.{j}" for j in range(layout["cont"])] + [f"disc.{i}" for i in range(len(layout["disc"]))]


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_dataset(dataset):
    """-> (factor names, factor sizes int64 (F,)); every factor needs at least two classes to be varied."""
    names = tuple(str(n) for n in dataset.factor_names)
    sizes = np.array([int(s) for s in dataset.factor_sizes], dtype=np.int64)
    if len(names) != len(sizes) or len(sizes) == 0:
        raise ValueError(f"dataset has {len(names)} factor names but {len(sizes)} factor sizes")
    if sizes.min() < 2:
        bad = int(np.argmin(sizes))
        raise ValueError(f"factor {names[bad]!r} has {sizes[bad]} class(es): every factor needs at least 2")
    return names, sizes


def _sample_factors(dataset, n, rng, sizes):
    """n uniform factor rows (n, F) int64 from the dataset, checked against its factor sizes."""
    factors = to_numpy(dataset.sample_factors(n, rng))
    if factors.shape != (n, len(sizes)) or factors.dtype.kind not in "iu":
        raise ValueError(f"dataset.sample_factors({n}) returned {factors.dtype} {factors.shape}, "
                         f"expected integers ({n}, {len(sizes)})")
    if (factors < 0).any() or (factors >= sizes).any():
        raise ValueError("dataset.sample_factors returned class indices outside the factor sizes")
    return factors.astype(np.int64)


def represent_factors(represent, layout, dataset, factors, chunk=CHUNK):
    """factors int (n, F) -> codes float64 (n, D): rendered and represented `chunk` images at a time.

    Raises ValueError when represent returns codes of the wrong shape for the layout, or NaN / inf.
    """
    width = layout["cont"] + sum(layout["disc"])
    out = np.empty((len(factors), width))
    for start in range(0, len(factors), chunk):
        part = factors[start:start + chunk]
        codes = to_numpy(represent(dataset.images(part)))
        if codes.shape != (len(part), width):
            raise ValueError(f"represent returned codes of shape {codes.shape}, the layout {layout} "
                             f"needs ({len(part)}, {width})")
        if codes.dtype.kind not in "biuf":
            raise ValueError(f"represent returned codes of dtype {codes.dtype}, expected numbers")
        if not np.isfinite(codes).all():
            raise ValueError("represent returned codes containing NaN or inf")
        out[start:start + len(part)] = codes
    return out


def split_units(codes, layout):
    """codes (..., D) -> (continuous units (..., C) float, discrete units (..., B) int, each block's argmax)."""
    layout = normalise_latent_spec(layout)
    cont = codes[..., :layout["cont"]]
    blocks, start = [], layout["cont"]
    for k in layout["disc"]:
        blocks.append(codes[..., start:start + k].argmax(axis=-1))
        start += k
    disc = np.stack(blocks, axis=-1) if blocks else np.zeros(codes.shape[:-1] + (0,), dtype=np.int64)
    return cont, disc


def _prepare(layout, dataset, rng):
    return normalise_latent_spec(layout), *_check_dataset(dataset), np.random.default_rng(rng)


# ---------------------------------------------------------------- FactorVAE metric


def gini_variance(values, num_classes):
    """Gini's variance of categorical values along the last axis: (..., n) int in [0, K) -> (...).

        Var = 1/(2 n^2) sum_{i,j} d(x_i, x_j),  d(a, b) = [a != b]   (i, j over all n^2 ordered pairs)
            = (1 - sum_k p_k^2) / 2,                                  p_k = fraction of the values equal to k

    With d(a, b) = (a - b)^2 the same sum is the ordinary variance with ddof = 0 (the mean over ordered pairs of
    half the squared difference), so the continuous units use np.var(ddof=0) and both kinds share one formula.
    0 for a constant block, at most (1 - 1/K) / 2.
    """
    flat = values.reshape(-1, values.shape[-1])
    rows = len(flat)
    # One bincount for all rows: row r's class k lands in cell r * K + k.
    cells = (flat + np.arange(rows)[:, None] * num_classes).ravel()
    counts = np.bincount(cells, minlength=rows * num_classes).reshape(rows, num_classes)
    p = counts / values.shape[-1]
    return ((1.0 - (p * p).sum(axis=1)) / 2.0).reshape(values.shape[:-1])


def unit_variances(codes, layout):
    """codes (..., n, D) -> each unit's variance over the n samples (..., U).

    Continuous units: np.var (ddof = 0); discrete blocks: gini_variance of the argmax.
    """
    layout = normalise_latent_spec(layout)
    cont, disc = split_units(codes, layout)
    parts = [cont.var(axis=-2)]
    parts += [gini_variance(disc[..., i], k)[..., None] for i, k in enumerate(layout["disc"])]
    return np.concatenate(parts, axis=-1)


def _fixed_factor_votes(dataset, sizes, n_votes, batch, rng):
    """-> (fixed factor k (V,), factors (V, batch, F)): factor k[v] takes one value across vote v's batch.

    Drawing every factor uniformly and then copying sample 0's value of factor k over the batch is the same
    distribution as sample_factors(batch, fixed={k: uniform value}), in one call for all votes.
    """
    k = rng.integers(len(sizes), size=n_votes)
    factors = _sample_factors(dataset, n_votes * batch, rng, sizes).reshape(n_votes, batch, len(sizes))
    v = np.arange(n_votes)
    factors[v, :, k] = factors[v, 0, k][:, None]
    return k, factors


def _factorvae_votes(represent, layout, dataset, sizes, global_var, active, n_votes, batch, rng, chunk):
    """-> votes int64 (F, U): votes[f, u] = how many votes fixing factor f had unit u as their argmin."""
    k, factors = _fixed_factor_votes(dataset, sizes, n_votes, batch, rng)
    per_group = max(1, chunk // batch)
    argmin = np.empty(n_votes, dtype=np.int64)
    for start in range(0, n_votes, per_group):
        group = factors[start:start + per_group]
        codes = represent_factors(represent, layout, dataset, group.reshape(-1, len(sizes)), chunk)
        local = unit_variances(codes.reshape(len(group), batch, -1), layout)          # (G, U)
        # Pruned units can never be the argmin; the others are compared in units of their global variance.
        ratio = np.where(active, local / np.where(active, global_var, 1.0), np.inf)
        argmin[start:start + len(group)] = ratio.argmin(axis=1)
    votes = np.zeros((len(sizes), len(global_var)), dtype=np.int64)
    np.add.at(votes, (k, argmin), 1)
    return votes


def factorvae_metric(represent, layout, dataset, rng, n_train=10000, n_eval=5000, batch=64,
                     n_scale=10000, prune_std=PRUNE_STD, chunk=CHUNK):
    """FactorVAE metric (Kim & Mnih 2018): accuracy of a majority-vote classifier from argmin units to factors.

        scale:  Var_u over n_scale uniform samples (continuous: np.var; discrete block: gini_variance);
                unit u is pruned when sqrt(Var_u) < prune_std (collapsed to the prior; for a discrete block
                sqrt(Gini variance) < 0.05, i.e. it leaves its usual value in fewer than ~1 in 400 samples)
        vote:   factor k uniform, `batch` samples with factor k at one random value and the others uniform;
                d = argmin over unpruned u of Var_u(batch) / Var_u(scale)
        train:  votes[k, d] counted over n_train votes; classifier(d) = argmax_k votes[k, d]
        score:  fraction of n_eval fresh votes with classifier(d) == k

    Continuous and discrete variances are the same sum over pairs (see gini_variance), so the ratios of the
    two kinds are comparable. A unit that no training vote chose maps to factor 0 (argmax of zeros).
    With no unpruned unit the score is 0. -> dict with 'score', 'train_accuracy', the vote matrices
    (F, U) as lists, the classifier as factor names, each unit's global variance and activity, and
    'score_by_factor' (factorvae_score_by_factor: which factors the score comes from).
    """
    layout, names, sizes, rng = _prepare(layout, dataset, rng)
    for name, value, minimum in (("n_train", n_train, 1), ("n_eval", n_eval, 1), ("batch", batch, 2),
                                 ("n_scale", n_scale, 2), ("chunk", chunk, 1)):
        _check_count(name, value, minimum)
    units = unit_names(layout)

    scale_codes = represent_factors(represent, layout, dataset, _sample_factors(dataset, n_scale, rng, sizes),
                                    chunk)
    global_var = unit_variances(scale_codes, layout)
    active = np.sqrt(global_var) >= prune_std
    result = {"metric": "factorvae", "units": units, "factors": list(names),
              "global_variance": global_var.tolist(), "active": active.tolist(),
              "n_train": int(n_train), "n_eval": int(n_eval), "batch": int(batch), "n_scale": int(n_scale)}
    if not active.any():
        return {"score": 0.0, "train_accuracy": 0.0, **result, "score_by_factor": factorvae_score_by_factor(result)}

    train = _factorvae_votes(represent, layout, dataset, sizes, global_var, active, n_train, batch, rng, chunk)
    evals = _factorvae_votes(represent, layout, dataset, sizes, global_var, active, n_eval, batch, rng, chunk)
    classifier = train.argmax(axis=0)                                        # (U,) factor of each unit
    train_accuracy = train.max(axis=0).sum() / n_train
    score = evals[classifier, np.arange(len(units))].sum() / n_eval
    result = {"score": float(score), "train_accuracy": float(train_accuracy), **result,
              "classifier": {u: names[f] for u, f, a in zip(units, classifier, active) if a},
              "train_votes": train.tolist(), "eval_votes": evals.tolist()}
    return {**result, "score_by_factor": factorvae_score_by_factor(result)}


def factorvae_score_by_factor(result):
    """{factor: correct_k / votes_k}: the share of the evaluation votes fixing factor k that the classifier got right.

        score = sum_k correct_k / n_eval, and each vote fixes a factor drawn uniformly, so the score is about
        the mean of these; a factor no evaluation vote fixed gets None.

    A factor the code does not hold still gets some of its votes right when a unit that looks still by chance
    in them is mapped to it. `result` is a factorvae_metric dict, or the one in an eval.json written before this
    field existed: it needs only 'factors', 'units', 'classifier' and 'eval_votes'.
    """
    if "eval_votes" not in result:                              # no unit passed the prune: no vote was cast
        return {name: 0.0 for name in result["factors"]}
    factor_of_unit = [result["classifier"].get(unit) for unit in result["units"]]   # None: pruned, never voted
    by_factor = {}
    for name, row in zip(result["factors"], result["eval_votes"]):
        votes = sum(row)
        correct = sum(n for n, mapped in zip(row, factor_of_unit) if mapped == name)
        by_factor[name] = correct / votes if votes else None
    return by_factor


# ---------------------------------------------------------------- beta-VAE metric


def _betavae_features(represent, layout, dataset, sizes, n_votes, batch, rng, chunk):
    """-> (features (V, U), fixed factor k (V,)).

    Vote v: factor k uniform; `batch` pairs (x1, x2) drawn uniformly except that factor k is equal within each
    pair (its value varies from pair to pair). Feature u = mean over pairs of |z1_u - z2_u| for a continuous
    unit, of [argmax1 != argmax2] for a discrete block (one feature per block, as for the other metrics).
    """
    num = len(sizes)
    k = rng.integers(num, size=n_votes)
    first = _sample_factors(dataset, n_votes * batch, rng, sizes).reshape(n_votes, batch, num)
    second = _sample_factors(dataset, n_votes * batch, rng, sizes).reshape(n_votes, batch, num)
    v = np.arange(n_votes)
    second[v, :, k] = first[v, :, k]
    per_group = max(1, chunk // (2 * batch))
    features = np.empty((n_votes, layout["cont"] + len(layout["disc"])))
    for start in range(0, n_votes, per_group):
        pair = np.stack([first[start:start + per_group], second[start:start + per_group]])   # (2, G, L, F)
        codes = represent_factors(represent, layout, dataset, pair.reshape(-1, num), chunk)
        cont, disc = split_units(codes.reshape(pair.shape[:3] + (-1,)), layout)
        features[start:start + pair.shape[1]] = np.concatenate(
            [np.abs(cont[0] - cont[1]).mean(axis=1), (disc[0] != disc[1]).mean(axis=1)], axis=1)
    return features, k


def _softmax_loss(xb, y, w, l2):
    """-> (loss, gradient (d, K), probabilities (N, K)) of mean cross-entropy + l2/2 ||W||^2."""
    logits = xb @ w
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    n = len(xb)
    loss = -logp[np.arange(n), y].mean() + 0.5 * l2 * (w * w).sum()
    p_minus_y = p.copy()
    p_minus_y[np.arange(n), y] -= 1.0
    return loss, xb.T @ p_minus_y / n + l2 * w, p


def _softmax_hessian(xb, p, l2):
    """Hessian of _softmax_loss in W.ravel() order (index i * K + a), (dK, dK):

        H[(i,a),(j,b)] = 1/N sum_n x_ni x_nj (p_na [a = b] - p_na p_nb) + l2 [(i,a) = (j,b)]
    """
    n, d = xb.shape
    k = p.shape[1]
    h = np.zeros((d, k, d, k))
    for a in range(k):
        h[:, a, :, a] = (xb * p[:, a:a + 1]).T @ xb
    z = (xb[:, :, None] * p[:, None, :]).reshape(n, d * k)                 # z[n, (i,a)] = x_ni p_na
    return (h.reshape(d * k, d * k) - z.T @ z) / n + l2 * np.eye(d * k)


def fit_logistic(x, y, num_classes, l2=LOGREG_L2, iterations=100, tol=1e-9):
    """Multinomial logistic regression by Newton's method with step halving -> W (d + 1, K), bias last row.

        minimise  L(W) = -1/N sum_n log softmax([x_n, 1] W)_{y_n} + l2/2 ||W||^2

    l2 > 0 (bias included) makes L strictly convex, so its one minimum does not depend on the solver, and the
    Hessian positive definite, so each Newton step is a plain solve. Stops when max |dL/dW| < tol.
    """
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros((xb.shape[1], num_classes))
    loss, grad, p = _softmax_loss(xb, y, w, l2)
    for _ in range(iterations):
        if np.abs(grad).max() < tol:
            break
        step = np.linalg.solve(_softmax_hessian(xb, p, l2), grad.ravel()).reshape(w.shape)
        t, slope = 1.0, (grad * step).sum()
        # Armijo step halving: a full Newton step can overshoot far from the optimum.
        while True:
            new = _softmax_loss(xb, y, w - t * step, l2)
            if new[0] <= loss - 1e-4 * t * slope or t < 1e-10:
                break
            t /= 2
        w = w - t * step
        loss, grad, p = new
    return w


def _standardise(train, *others):
    """Centre and scale by the training mean and std (a constant feature keeps scale 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train,) + others]


def betavae_metric(represent, layout, dataset, rng, n_train=10000, n_eval=5000, batch=64,
                   l2=LOGREG_L2, chunk=CHUNK):
    """beta-VAE metric (Higgins et al. 2017): accuracy of a linear classifier from |z1 - z2| to the fixed factor.

        vote:   factor k uniform; `batch` pairs agreeing on factor k, the rest uniform;
                feature_u = mean over pairs of |z1_u - z2_u| (discrete block: mean of [argmax1 != argmax2])
        train:  multinomial logistic regression (fit_logistic) on n_train votes, features standardised
                with the training mean and std
        score:  accuracy on n_eval fresh votes

    -> dict with 'score', 'train_accuracy' and the evaluation confusion matrix (rows: true factor,
    columns: predicted).
    """
    layout, names, sizes, rng = _prepare(layout, dataset, rng)
    for name, value, minimum in (("n_train", n_train, 1), ("n_eval", n_eval, 1), ("batch", batch, 1),
                                 ("chunk", chunk, 1)):
        _check_count(name, value, minimum)
    x_train, y_train = _betavae_features(represent, layout, dataset, sizes, n_train, batch, rng, chunk)
    x_eval, y_eval = _betavae_features(represent, layout, dataset, sizes, n_eval, batch, rng, chunk)
    x_train, x_eval = _standardise(x_train, x_eval)
    w = fit_logistic(x_train, y_train, len(sizes), l2=l2)

    def predict(x):
        return (np.concatenate([x, np.ones((len(x), 1))], axis=1) @ w).argmax(axis=1)

    predicted = predict(x_eval)
    confusion = np.zeros((len(sizes), len(sizes)), dtype=np.int64)
    np.add.at(confusion, (y_eval, predicted), 1)
    return {"score": float((predicted == y_eval).mean()),
            "train_accuracy": float((predict(x_train) == y_train).mean()),
            "metric": "betavae", "units": unit_names(layout), "factors": list(names),
            "eval_confusion": confusion.tolist(), "n_train": int(n_train), "n_eval": int(n_eval), "batch": int(batch),
            "l2": float(l2)}


# ---------------------------------------------------------------- MIG


def discretise(codes, layout, bins=MIG_BINS):
    """codes (n, D) -> (unit values int (n, U), number of values of each unit (U,)).

    Continuous unit: `bins` equal-width bins over its range on these n samples,
        b = min(floor(bins * (z - min) / (max - min)), bins - 1)   (a constant unit: all in bin 0);
    discrete block: its argmax.
    """
    layout = normalise_latent_spec(layout)
    cont, disc = split_units(codes, layout)
    low, high = cont.min(axis=0), cont.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    binned = np.minimum(np.floor(bins * (cont - low) / width), bins - 1).astype(np.int64)
    values = np.concatenate([binned, disc.astype(np.int64)], axis=1)
    return values, np.array([bins] * layout["cont"] + list(layout["disc"]), dtype=np.int64)


def mutual_information(a, num_a, b, num_b):
    """Plug-in mutual information in nats of int arrays a (n,) in [0, num_a) and b (n,) in [0, num_b):

        I(a; b) = sum_{i,j} p_ij log(p_ij / (p_i. p_.j)),   p_ij = joint histogram / n   (0 log 0 = 0)
    """
    joint = np.bincount(a * num_b + b, minlength=num_a * num_b).reshape(num_a, num_b) / len(a)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


def entropy(a, num_a):
    """Plug-in entropy in nats of int values a (n,) in [0, num_a): -sum_i p_i log p_i."""
    p = np.bincount(a, minlength=num_a) / len(a)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mig(represent, layout, dataset, rng, n=10000, bins=MIG_BINS, chunk=CHUNK):
    """Mutual Information Gap (Chen et al. 2018) from n uniform samples:

        I[u, k] = mutual_information(unit u discretised, factor k)     (discretise: 20 equal-width bins)
        gap_k   = (I[u1, k] - I[u2, k]) / H(k),   u1, u2 the units with the largest and second largest I[., k]
                                                  (a code with a single unit has I[u2, k] = 0)
        MIG     = mean over factors of gap_k

    H(k) is the plug-in entropy of the sampled factor, so I[u, k] <= H(k) and gap_k lies in [0, 1]. A unit
    of `bins` values carries at most log(bins) nats, so a factor with more classes than bins cannot reach
    gap 1 even with a perfect unit (orientation's 40 classes in 20 bins: about log 20 / log 40 = 0.81).
    -> dict with 'score', per-factor 'gaps', the matrix 'mutual_information' (U, F) in nats, the factor
    entropies and the best unit of each factor.
    """
    layout, names, sizes, rng = _prepare(layout, dataset, rng)
    for name, value, minimum in (("n", n, 2), ("bins", bins, 2), ("chunk", chunk, 1)):
        _check_count(name, value, minimum)
    factors = _sample_factors(dataset, n, rng, sizes)
    values, counts = discretise(represent_factors(represent, layout, dataset, factors, chunk), layout, bins)
    info = np.array([[mutual_information(values[:, u], counts[u], factors[:, k], sizes[k])
                      for k in range(len(sizes))] for u in range(values.shape[1])])     # (U, F)
    entropies = np.array([entropy(factors[:, k], sizes[k]) for k in range(len(sizes))])
    if entropies.min() <= 0:
        raise ValueError(f"factor {names[int(entropies.argmin())]!r} took one value in all {n} samples")
    top = -np.sort(-info, axis=0)                                           # descending per factor
    second = top[1] if len(top) > 1 else np.zeros(len(sizes))
    gaps = (top[0] - second) / entropies
    units = unit_names(layout)
    return {"score": float(gaps.mean()), "metric": "mig", "units": units, "factors": list(names),
            "gaps": {name: float(g) for name, g in zip(names, gaps)},
            "best_unit": {name: units[int(u)] for name, u in zip(names, info.argmax(axis=0))},
            "mutual_information": info.tolist(), "factor_entropy": entropies.tolist(), "n": int(n), "bins": int(bins)}


# ---------------------------------------------------------------- all three


METRICS = ("factorvae", "betavae", "mig")


def metric_seeds(rng):
    """{metric name: the seed all_metrics gives it}, so that one metric can be scored again, alone, with the votes
    all_metrics drew for it:

        seeds = default_rng(rng).integers(0, 2**63 - 1, size=3), in the order of METRICS

    rng: an int seed (the same seeds each call) or a Generator, which the draw advances, as in all_metrics."""
    drawn = np.random.default_rng(rng).integers(0, 2**63 - 1, size=len(METRICS))
    return dict(zip(METRICS, (int(s) for s in drawn)))


def all_metrics(represent, layout, dataset, rng, n_train=10000, n_eval=5000, batch=64, n_mig=10000,
                chunk=CHUNK, n_scale=10000):
    """{'factorvae': ..., 'betavae': ..., 'mig': ..., 'seconds': {...}}.

    Each metric gets its own generator seeded from rng, so each result is the one it would give alone
    with that seed, whatever runs before it.
    """
    seeds = metric_seeds(rng)
    runs = {"factorvae": lambda r: factorvae_metric(represent, layout, dataset, r, n_train, n_eval, batch,
                                                    n_scale=n_scale, chunk=chunk),
            "betavae": lambda r: betavae_metric(represent, layout, dataset, r, n_train, n_eval, batch,
                                                chunk=chunk),
            "mig": lambda r: mig(represent, layout, dataset, r, n=n_mig, chunk=chunk)}
    result, seconds = {}, {}
    for name in METRICS:
        run = runs[name]
        start = time.perf_counter()
        result[name] = {"seed": seeds[name], **run(np.random.default_rng(seeds[name]))}
        seconds[name] = round(time.perf_counter() - start, 3)
    return {**result, "seconds": seconds}
