"""What a model scores on images: reconstruction, KL per unit, category accuracy, and disentanglement.

Every figure uses the eval-mode code z = [mu, one_hot(argmax alpha_i) ...] (inspection.py).

    score_images(model, images, labels=None)          recon loss, KL per unit ranked, discrete_accuracy with labels
    disentanglement(model, dataset)                   FactorVAE, beta-VAE and MIG (metrics.py) of the code
    score_with_disentanglement(model, dataset)        both, on a dataset with known generative factors (dSprites),
                                                      and the share of the FactorVAE votes that quiet units took

Each returns a JSON-friendly dict. With log (a function taking one line; the command-line tools pass stderr)
the encoding, which is nearly all of the time, reports its progress with rate and ETA (progress.py).
"""
import functools
import time

import numpy as np

import refnet

from .. import data
from ..models.objective import kl_terms
from . import metrics
from .inspection import eval_codes, model_xp
from .progress import EVERY, Progress

RECON_SAMPLE = 10000   # dSprites or image-folder images for the reconstruction and KL figures
QUIET_KL = 0.1         # nats: a unit under this carries almost nothing (the study's active units carry 1 to 4)
QUIET_WARNING = 0.25   # the share of the FactorVAE metric's votes taken by quiet units that gets a warning


def encode_dataset(model, images_uint8, batch_size=500, progress=None):
    """Reconstruction loss, KL and category probabilities of images under the eval-mode code.

    recon_n = sum_pixels BCE(x_hat_n, x_n); KL of each unit averaged over the images.
    images_uint8 (N, C, H, W) -> (recon (N,), KL per unit (cont + len(disc),), alphas of latent 0 (N, K) or None).
    progress: a Progress advanced by each batch, or None.
    """
    recon, kl_sums, alphas = [], None, []
    xp = model_xp(model)   # the model's device: each batch goes there, its figures come back
    for start in range(0, len(images_uint8), batch_size):
        x = data.to_float(images_uint8[start:start + batch_size], xp)
        dist = model.encode(x)
        x_hat, _ = model.decode_forward(model.eval_code(dist))
        per_pixel, _ = refnet.binary_cross_entropy(x_hat, x, reduction="none")
        recon.append(refnet.to_numpy(per_pixel.reshape(len(x), -1).sum(axis=1)))
        units = _units(kl_terms(dist))
        kl_sums = units * len(x) if kl_sums is None else kl_sums + units * len(x)
        if dist["disc"]:
            alphas.append(refnet.to_numpy(dist["disc"][0]))
        if progress is not None:
            progress.advance(len(x))
    recon = np.concatenate(recon)
    return recon, kl_sums / len(images_uint8), (np.concatenate(alphas) if alphas else None)


def _units(kls):
    cont = list(kls["cont"]) if kls["cont"] is not None else []
    return np.array([float(v) for v in cont] + [float(v) for v in kls["disc"]], dtype=np.float64)


def discrete_accuracy(categories, labels, num_categories, num_labels=10):
    """Each category mapped to the label most of its images carry; accuracy = sum_k max_l confusion[k, l] / N.

    categories, labels int (N,) -> (accuracy, mapping (K,), confusion (K, num_labels)).
    """
    confusion = np.zeros((num_categories, num_labels), dtype=np.int64)
    np.add.at(confusion, (categories, labels), 1)
    mapping = confusion.argmax(axis=1)
    accuracy = float(confusion.max(axis=1).sum() / max(len(labels), 1))
    return accuracy, mapping, confusion


def category_agreement(categories, labels):
    """How well categories (a discrete latent) tell labels apart, as befits a categorical code.

        accuracy   discrete_accuracy: each category mapped to its most frequent label
        chance     the accuracy of guessing the most frequent label for every image
        nmi        I(category; label) / ((H(category) + H(label)) / 2), plug-in (metrics.py), in [0, 1]:
                   1 when one determines the other, 0 when independent; nan when neither varies

    Labels are classes: any values (numbers or strings), compared for equality.
    categories int (n,), labels (n,) -> dict with accuracy, chance, nmi and mapping {category: label}.
    """
    categories = np.asarray(categories, np.int64)
    classes, label_index = np.unique(np.asarray(labels), return_inverse=True)
    cats, cat_index = np.unique(categories, return_inverse=True)
    accuracy, mapping, _ = discrete_accuracy(cat_index, label_index, len(cats), len(classes))
    chance = float(np.bincount(label_index).max() / len(label_index)) if len(label_index) else float("nan")
    mean_entropy = (metrics.entropy(cat_index, len(cats)) + metrics.entropy(label_index, len(classes))) / 2
    nmi = (metrics.mutual_information(cat_index, len(cats), label_index, len(classes)) / mean_entropy
           if mean_entropy > 0 else float("nan"))
    return {"accuracy": accuracy, "chance": chance, "nmi": float(nmi),
            "mapping": {int(c): classes[m].item() for c, m in zip(cats, mapping)}}


def score_images(model, images, labels=None, log=None, every=EVERY):
    """Reconstruction loss (mean over images), KL in all and per unit ranked, and with labels (N,) the
    discrete_accuracy of the first discrete latent. images uint8 (N, C, H, W) -> dict.
    log: where the encoding's progress lines go (None: silent), at most one every `every` seconds."""
    progress = Progress(len(images), "reconstruction and KL", log, every)
    recon, kl_units, alphas = encode_dataset(model, images, progress=progress)
    progress.finish()
    names = metrics.unit_names(model.latent_spec)
    ranked = sorted(zip(names, kl_units), key=lambda t: -t[1])
    result = {"images": int(len(images)), "recon_loss": float(recon.mean()),
              "kl_total": float(kl_units.sum()),
              "kl_cont": float(kl_units[:model.latent_spec["cont"]].sum()),
              "kl_disc": float(kl_units[model.latent_spec["cont"]:].sum()),
              "kl_per_unit_ranked": [{"unit": n, "kl": float(v)} for n, v in ranked]}
    if labels is not None and alphas is not None:
        acc, mapping, confusion = discrete_accuracy(alphas.argmax(axis=1), labels, alphas.shape[1],
                                                    num_labels=int(labels.max()) + 1)
        result.update(discrete_accuracy=acc, category_to_label=mapping.tolist(),
                      confusion_matrix=confusion.tolist())
    return result


class CodeTable:
    """A factor dataset whose 'images' are flat indices into a table of every image's code.

    The metrics at their default sizes look at ~3 million images of a grid of
    737,280; encoding each grid image once and looking codes up is cheaper, and
    gives the same scores (the code of an image does not depend on its batch).
    codes: (len(dataset), D), represent(images `chunk` at a time); progress: a Progress
    advanced by each chunk, or None.
    """

    def __init__(self, dataset, represent, chunk=4096, progress=None):
        self.dataset = dataset
        self.factor_names, self.factor_sizes = dataset.factor_names, dataset.factor_sizes
        self.sample_factors = dataset.sample_factors
        codes = []
        for i in range(0, len(dataset), chunk):
            codes.append(represent(dataset[np.arange(i, min(i + chunk, len(dataset)))]))
            if progress is not None:
                progress.advance(len(codes[-1]))
        self.codes = np.concatenate(codes)

    def images(self, factors):
        return self.dataset.flat_index(factors)

    def represent(self, flat):
        return self.codes[flat]


def disentanglement(model, dataset, seed=0, n_train=10000, n_eval=5000, n_samples=10000, log=None, every=EVERY):
    """The three metrics of the model's eval-mode code on a factor dataset (metrics.all_metrics).

    n_train / n_eval: votes of the FactorVAE and β-VAE metrics; n_samples: images for
    the units' scale (FactorVAE) and for MIG. The code table is used when the metrics
    would encode more images than the grid holds. log / every: the encoding's progress, as score_images.
    'seconds' gains 'code_table' (encoding every grid image once) when the table is used; the metrics'
    own seconds then are look-ups, else they include their encoding.
    """
    encode = functools.partial(eval_codes, model)
    # FactorVAE votes of `batch` images, β-VAE pairs (2 x batch per vote), plus the scale and MIG samples.
    looked_at = (n_train + n_eval) * 64 * 3 + 2 * n_samples
    table_seconds = None
    if looked_at > len(dataset):
        progress = Progress(len(dataset), "encoding every image once for the metrics (code table)", log, every)
        scored = CodeTable(dataset, encode, progress=progress)
        table_seconds = progress.finish()
        represent = scored.represent
    else:
        progress = Progress(looked_at, "encoding images for the metrics", log, every)

        def represent(images):
            codes = encode(images)
            progress.advance(len(codes))
            return codes
        scored = dataset
    scores = metrics.all_metrics(represent, model.latent_spec, scored, seed, n_train=n_train, n_eval=n_eval,
                                 n_mig=n_samples, n_scale=n_samples)
    if table_seconds is None:
        progress.finish()
    else:
        scores["seconds"] = {"code_table": round(table_seconds, 3), **scores["seconds"]}
    return scores


def quiet_unit_votes(factorvae, kl_by_unit, quiet=QUIET_KL):
    """-> (share, units): the share of the FactorVAE metric's training votes won by units that carry under `quiet`
    nats, and those units' names.

        share = sum over quiet units u of votes[:, u] / sum of all votes      votes (factors, units): train_votes

    factorvae: factorvae_metric's result; kl_by_unit: {unit name: KL}, as kl_per_unit_ranked gives it; a unit it
    does not name, or names with a NaN KL, is not counted as quiet. A continuous unit passes the metric's prune cut
    on the spread of its mean, not on its KL: when a quiet unit's mean moves a little, and mostly on a few images,
    many vote batches hold none or one of them, and in those it looks nearly fixed whatever factor a vote fixed
    (docs/results.md, "The FactorVAE metric's prune cut"). A high share says that the score may rest on such units:
    whether it does, a higher cut shows (docs/dsprites-study/pruning.py). In one study run it did (0.357, 0.585 with
    them pruned), in another it did not."""
    votes = np.asarray(factorvae.get("train_votes", []), dtype=np.int64)
    if votes.size == 0 or votes.sum() == 0:
        return 0.0, []
    won = votes.sum(axis=0)                                                   # (U,) votes per unit
    units = factorvae["units"]
    takers = [i for i, unit in enumerate(units) if kl_by_unit.get(unit, np.inf) < quiet and won[i] > 0]
    return float(won[takers].sum() / won.sum()), [units[i] for i in takers]


def sample_indices(n_images, n_samples, seed=0):
    """A seeded sample of min(n_samples, n_images) distinct indices, sorted (int64 (n,))."""
    rng = np.random.default_rng([seed, 5])
    return np.sort(rng.choice(n_images, min(n_samples, n_images), replace=False))


def score_with_disentanglement(model, dataset, seed=0, n_train=10000, n_eval=5000, n_samples=RECON_SAMPLE,
                               log=None, every=EVERY):
    """score_images on a seeded sample of n_samples images of a dataset with known generative factors
    (dSprites), the first factor (shape) as labels, then the disentanglement metrics. -> dict.

    'seconds': every stage and their total: 'reconstruction' (score_images), 'code_table' when used, then
    each metric. log / every: the encoding's progress, as score_images."""
    start = time.perf_counter()
    flat = sample_indices(len(dataset), n_samples, seed)
    shape_labels = dataset.factors_of(flat)[:, 0]   # discrete_accuracy: how well the first discrete latent tells shapes
    result = score_images(model, dataset[flat], shape_labels, log=log, every=every)
    reconstruction = time.perf_counter() - start
    scores = disentanglement(model, dataset, seed, n_train, n_eval, n_samples, log=log, every=every)
    seconds = {"reconstruction": round(reconstruction, 3), **scores["seconds"],
               "total": round(time.perf_counter() - start, 3)}
    result.update({name: scores[name]["score"] for name in metrics.METRICS},
                  votes={"train": n_train, "eval": n_eval}, samples=n_samples, seconds=seconds, metrics=scores)
    share, quiet = quiet_unit_votes(scores["factorvae"], {u["unit"]: u["kl"] for u in result["kl_per_unit_ranked"]})
    result["factorvae_quiet_votes"] = {"share": share, "units": quiet, "under_kl": QUIET_KL}
    if log is not None and share >= QUIET_WARNING:
        log(f"warning: units of under {QUIET_KL} nats ({', '.join(quiet)}) won {share:.0%} of the FactorVAE "
            f"metric's training votes; its score may rest on them: compare it at a higher prune cut "
            f"(docs/dsprites-study/pruning.py)")
    return result
