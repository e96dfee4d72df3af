"""python -m jointvae.evaluate PATH [--dataset mnist]

Prints one JSON object for the model folder PATH on the dataset's test split:
reconstruction loss (BCE summed over pixels, mean over images, eval-mode codes:
z = mean and the argmax one-hot), KL per unit ranked, and, for labelled data,
`discrete_accuracy`: each category of the first discrete latent is mapped to the
label most of its images carry, and the accuracy of that mapping is reported
with the confusion matrix (rows: categories, columns: labels).
"""
import argparse
import json
import sys

import numpy as np

import refnet

from . import datasets
from .checkpoint import load_model
from .objective import kl_terms


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


def unit_names(model):
    return ([f"cont.{j}" for j in range(model.latent_spec["cont"])] +
            [f"disc.{i}" for i in range(len(model.latent_spec["disc"]))])


def discrete_accuracy(categories, labels, num_categories, num_labels=10):
    """Map each category to its majority label; -> (accuracy, mapping, confusion (K, num_labels))."""
    confusion = np.zeros((num_categories, num_labels), dtype=np.int64)
    np.add.at(confusion, (categories, labels), 1)
    mapping = confusion.argmax(axis=1)
    accuracy = float(confusion.max(axis=1).sum() / max(len(labels), 1))
    return accuracy, mapping, confusion


def evaluate(model, images, labels=None):
    recon, kl_units, alphas = encode_dataset(model, images)
    names = unit_names(model)
    ranked = sorted(zip(names, kl_units), key=lambda t: -t[1])
    result = {"images": int(len(images)), "recon_loss": float(recon.mean()),
              "kl_total": float(kl_units.sum()),
              "kl_cont": float(kl_units[:model.latent_spec["cont"]].sum()),
              "kl_disc": float(kl_units[model.latent_spec["cont"]:].sum()),
              "kl_per_unit_ranked": [{"unit": n, "kl": float(v)} for n, v in ranked]}
    if labels is not None and alphas is not None:
        acc, mapping, confusion = discrete_accuracy(alphas.argmax(axis=1), labels, alphas.shape[1])
        result.update(discrete_accuracy=acc, category_to_label=mapping.tolist(),
                      confusion_matrix=confusion.tolist())
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the spec's)")
    args = p.parse_args(argv)
    try:
        model = load_model(args.path)
        name = args.dataset or model.spec.get("dataset")
        if name is None:
            raise ValueError("the spec names no dataset: pass --dataset")
        images, labels = datasets.load_dataset(name, "test")
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(f"{name} images are {images.shape[1:]}, the model expects {model.image_shape}")
        result = {"model": args.path, "dataset": name, **evaluate(model, images, labels)}
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
