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
MIG (jointvae.metrics) of the eval-mode code.
"""
import argparse
import json
import sys

import numpy as np

import refnet

from . import data as datasets, metrics
from .checkpoint import load_model
from .data.registry import SPLIT_DATASETS, dataset_name
from .objective import kl_terms

RECON_SAMPLE = 10000   # dSprites or image-folder images for the reconstruction and KL figures


def encode_dataset(model, images_uint8, batch_size=500):
    """-> (per-image BCE summed over pixels (N,), KL per unit averaged over images, alphas of latent 0 (N, K))."""
    recon, kl_sums, alphas = [], None, []
    for start in range(0, len(images_uint8), batch_size):
        x = datasets.to_float(images_uint8[start:start + batch_size])
        dist = model.encode(x)
        x_hat, _ = model.decode_forward(model.eval_code(dist))
        per_pixel, _ = refnet.binary_cross_entropy(x_hat, x, reduction="none")
        recon.append(per_pixel.reshape(len(x), -1).sum(axis=1))
        units = _units(kl_terms(dist))
        kl_sums = units * len(x) if kl_sums is None else kl_sums + units * len(x)
        if dist["disc"]:
            alphas.append(dist["disc"][0])
    recon = np.concatenate(recon)
    return recon, kl_sums / len(images_uint8), (np.concatenate(alphas) if alphas else None)


def _units(kls):
    cont = list(kls["cont"]) if kls["cont"] is not None else []
    return np.array([float(v) for v in cont] + [float(v) for v in kls["disc"]], dtype=np.float64)


def discrete_accuracy(categories, labels, num_categories, num_labels=10):
    """Map each category to its majority label; -> (accuracy, mapping, confusion (K, num_labels))."""
    confusion = np.zeros((num_categories, num_labels), dtype=np.int64)
    np.add.at(confusion, (categories, labels), 1)
    mapping = confusion.argmax(axis=1)
    accuracy = float(confusion.max(axis=1).sum() / max(len(labels), 1))
    return accuracy, mapping, confusion


def evaluate(model, images, labels=None):
    recon, kl_units, alphas = encode_dataset(model, images)
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


def code_of(model, batch=500):
    """represent() for the metrics: uint8 images -> the eval-mode code [mean, one-hot argmax ...] on the host."""
    def represent(images_uint8):
        return np.concatenate([refnet.to_numpy(model.eval_code(model.encode(datasets.to_float(images_uint8[i:i + batch]))))
                               for i in range(0, len(images_uint8), batch)])
    return represent


class CodeTable:
    """A factor dataset whose 'images' are flat indices into a table of every image's code.

    The metrics at their default sizes look at ~3 million images of a grid of
    737,280; encoding each grid image once and looking codes up is cheaper, and
    gives the same scores (the code of an image does not depend on its batch).
    """

    def __init__(self, dataset, represent, chunk=4096):
        self.dataset = dataset
        self.factor_names, self.factor_sizes = dataset.factor_names, dataset.factor_sizes
        self.sample_factors = dataset.sample_factors
        self.codes = np.concatenate([represent(dataset[np.arange(i, min(i + chunk, len(dataset)))])
                                     for i in range(0, len(dataset), chunk)])

    def images(self, factors):
        return self.dataset.flat_index(factors)

    def represent(self, flat):
        return self.codes[flat]


def disentanglement(model, dataset, seed=0, n_train=10000, n_eval=5000, n_samples=10000):
    """The three metrics of the model's eval-mode code on a factor dataset (jointvae.metrics.all_metrics).

    n_train / n_eval: votes of the FactorVAE and β-VAE metrics; n_samples: images for
    the units' scale (FactorVAE) and for MIG. The code table is used when the metrics
    would encode more images than the grid holds.
    """
    represent, scored = code_of(model), dataset
    # FactorVAE votes of `batch` images, β-VAE pairs (2 x batch per vote), plus the scale and MIG samples.
    looked_at = (n_train + n_eval) * 64 * 3 + 2 * n_samples
    if looked_at > len(dataset):
        scored = CodeTable(dataset, represent)
        represent = scored.represent
    return metrics.all_metrics(represent, model.latent_spec, scored, seed, n_train=n_train, n_eval=n_eval,
                               n_mig=n_samples, n_scale=n_samples)


def sample_indices(n_images, n_samples, seed=0):
    """A seeded sample of min(n_samples, n_images) distinct indices, sorted (int64 (n,))."""
    rng = np.random.default_rng([seed, 5])
    return np.sort(rng.choice(n_images, min(n_samples, n_images), replace=False))


def evaluate_factors(model, dataset, seed=0, n_train=10000, n_eval=5000, n_samples=RECON_SAMPLE):
    """Reconstruction and KL on a seeded sample of n_samples images, then the disentanglement metrics."""
    flat = sample_indices(len(dataset), n_samples, seed)
    shape_labels = dataset.factors_of(flat)[:, 0]   # discrete_accuracy: how well the first discrete latent tells shapes
    result = evaluate(model, dataset[flat], shape_labels)
    scores = disentanglement(model, dataset, seed, n_train, n_eval, n_samples)
    result.update({name: scores[name]["score"] for name in ("factorvae", "betavae", "mig")},
                  votes={"train": n_train, "eval": n_eval}, samples=n_samples, metrics=scores)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the spec's)")
    p.add_argument("--folder", help="evaluate on the images of this folder (default: a folder run's own)")
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="MNIST and Fashion-MNIST: which split to score (default test)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dSprites sample and metric votes")
    p.add_argument("--votes", type=int, nargs=2, default=(10000, 5000), metavar=("TRAIN", "EVAL"),
                   help="training and evaluation votes of the FactorVAE and beta-VAE metrics (default 10000 5000)")
    p.add_argument("--samples", type=int, default=RECON_SAMPLE,
                   help="dSprites or folder images for reconstruction and KL (and dSprites: the units' scale "
                        "and MIG) (default 10000)")
    args = p.parse_args(argv)
    try:
        model = load_model(args.path)
        name = dataset_name(args.dataset or model.spec.get("dataset"))
        folder = args.folder or (model.spec.get("folder") if name in datasets.FOLDER_DATASETS else None)
        if name is None and folder is None:
            raise ValueError("the spec names no dataset: pass --dataset or --folder")
        if args.split != "test" and (folder is not None or name not in SPLIT_DATASETS):
            raise ValueError(f"--split goes with {' and '.join(SPLIT_DATASETS)}, not {folder or name}")
        if folder is not None:   # the model's own size and channels, whatever the folder holds
            channels, size, _ = model.image_shape
            images, labels = datasets.load_dataset("folder", root=folder, size=size, channels=channels)
        else:
            images, labels = datasets.load_dataset(name, args.split)
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(f"{name} images are {images.shape[1:]}, the model expects {model.image_shape}")
        if hasattr(images, "factor_sizes"):
            scores = evaluate_factors(model, images, args.seed, *args.votes, n_samples=args.samples)
        elif folder is not None:
            flat = sample_indices(len(images), args.samples, args.seed)
            scores = evaluate(model, images[flat])
        else:
            scores = evaluate(model, images, labels)
        where = {"folder": folder} if folder else {"split": args.split} if name in SPLIT_DATASETS else {}
        result = {"model": args.path, "dataset": name, **where, **scores}
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
