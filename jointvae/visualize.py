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
import glob
import json
import os
import sys
from statistics import NormalDist

import imageio.v2 as imageio
import numpy as np

from . import data as datasets
from .checkpoint import load_model

TRAVERSAL_STEPS = 10
SAMPLES_PER_ROW = 10


def tile(images, pad=2):
    """images (rows, cols, C, H, W) in [0, 1] -> one uint8 picture with `pad` pixels between tiles."""
    rows, cols, c, h, w = images.shape
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.float32)
    for r in range(rows):
        for k in range(cols):
            y, x = pad + r * (h + pad), pad + k * (w + pad)
            canvas[y:y + h, x:x + w] = images[r, k].transpose(1, 2, 0)
    picture = np.rint(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return picture[..., 0] if c == 1 else picture


def one_hot(index, k, n):
    out = np.zeros((n, k), np.float32)
    out[np.arange(n), index] = 1
    return out


def code(model, cont, discs):
    """Concatenate continuous (n, cont) and one-hot discrete parts into decoder inputs."""
    parts = ([cont] if model.latent_spec["cont"] else []) + list(discs)
    return np.concatenate(parts, axis=1).astype(np.float32)


def decode(model, z):
    from refnet import to_numpy
    return to_numpy(model.decode(model_xp(model).asarray(z)))


def model_xp(model):
    from refnet import get_array_module
    return get_array_module(*model.params.values())


def reconstructions(model, images, n=SAMPLES_PER_ROW):
    """Two rows of originals, then two rows of their eval-mode reconstructions."""
    x = datasets.to_float(images[: 2 * n], model_xp(model))
    from refnet import to_numpy
    x_hat = to_numpy(model.reconstruct(x))
    x = to_numpy(x)
    return tile(np.concatenate([x, x_hat]).reshape((4, n) + x.shape[1:]))


def prior_parts(model, rng, n):
    """n draws from the prior: continuous (n, cont) from N(0, 1), and one one-hot (n, K) per discrete latent."""
    cont = rng.standard_normal((n, model.latent_spec["cont"])).astype(np.float32)
    return cont, [one_hot(rng.integers(0, k, n), k, n) for k in model.latent_spec["disc"]]


def prior_samples(model, rng, rows=4, n=SAMPLES_PER_ROW):
    """rows x n decoded codes from the prior: what a model draws when there is no data to reconstruct."""
    x = decode(model, code(model, *prior_parts(model, rng, rows * n)))
    return tile(x.reshape((rows, n) + x.shape[1:]))


def samples_per_category(model, latent_index, rng, n=SAMPLES_PER_ROW):
    """Rows: the K values of discrete latent `latent_index`; columns: continuous codes from N(0, 1)."""
    k = model.latent_spec["disc"][latent_index]
    cont, others = prior_parts(model, rng, n)
    rows = []
    for value in range(k):
        discs = list(others)
        discs[latent_index] = one_hot(np.full(n, value), k, n)
        rows.append(decode(model, code(model, cont, discs)))
    return tile(np.stack(rows))


def traversal_values(steps=TRAVERSAL_STEPS):
    """Phi^-1 of evenly spaced probabilities from 0.05 to 0.95: a traversal through the prior's bulk."""
    return np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, steps)], np.float32)


def continuous_traversal(model, unit_order, steps=TRAVERSAL_STEPS):
    """Rows: continuous units in `unit_order`; columns: that unit swept, the others 0, discrete codes fixed to 0."""
    cont_dim = model.latent_spec["cont"]
    discs = [one_hot(np.zeros(steps, int), k, steps) for k in model.latent_spec["disc"]]
    rows = []
    for unit in unit_order:
        cont = np.zeros((steps, cont_dim), np.float32)
        cont[:, unit] = traversal_values(steps)
        rows.append(decode(model, code(model, cont, discs)))
    return tile(np.stack(rows))


def discrete_traversal(model):
    """Rows: discrete latents; columns: their K values (continuous code 0, other discrete latents at 0)."""
    rows, width = [], max(model.latent_spec["disc"])
    for i, k in enumerate(model.latent_spec["disc"]):
        discs = [one_hot(np.zeros(k, int), kk, k) for kk in model.latent_spec["disc"]]
        discs[i] = one_hot(np.arange(k), k, k)
        row = decode(model, code(model, np.zeros((k, model.latent_spec["cont"]), np.float32), discs))
        blank = np.ones((width - k,) + row.shape[1:], np.float32)
        rows.append(np.concatenate([row, blank]))
    return tile(np.stack(rows))


def continuous_units_by_effect(model, rng, bases=8, steps=TRAVERSAL_STEPS):
    """Rank continuous units without data -> (units, largest effect first; effect (cont,)).

    A unit's effect is how much the decoded picture moves while the unit sweeps
    traversal_values(steps): the per-pixel standard deviation over the sweep,
    averaged over pixels and over `bases` starting codes drawn from the prior.
    A unit the decoder ignores (KL near 0 in training) has effect near 0.
    """
    cont, discs = prior_parts(model, rng, bases)
    base = code(model, cont, discs)
    effect = np.zeros(model.latent_spec["cont"])
    for unit in range(len(effect)):
        z = np.repeat(base, steps, axis=0)                  # rows b*steps .. b*steps + steps-1: base b swept
        z[:, unit] = np.tile(traversal_values(steps), bases)
        x = decode(model, z).reshape(bases, steps, -1)
        effect[unit] = x.std(axis=1).mean()
    return [int(u) for u in np.argsort(-effect, kind="stable")], effect


def continuous_units_ranked(model, images=None, out_dir=None):
    """Continuous units, most used first: by KL from data when given, else by KL from the training log,
    else (a published model without data) by their effect on the decoded picture."""
    cont = model.latent_spec["cont"]
    kl = None
    if images is not None:
        from .evaluate import encode_dataset
        _, units, _ = encode_dataset(model, images[:2000])
        kl = units[:cont]
    elif out_dir and os.path.exists(os.path.join(out_dir, "log.jsonl")):
        with open(os.path.join(out_dir, "log.jsonl"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        if lines:
            kl = np.array(json.loads(lines[-1])["kl_cont_units"])
    if kl is None or len(kl) != cont:   # a fixed seed: the same model always gets the same order
        return continuous_units_by_effect(model, np.random.default_rng(0))[0]
    return list(np.argsort(-kl))


def save_epoch_frame(trainer, epoch):
    """Called by the trainer after each epoch: the continuous traversal, for the training GIF."""
    model = trainer.model
    if not model.latent_spec["cont"]:
        return
    folder = os.path.join(trainer.out_dir, "frames")
    os.makedirs(folder, exist_ok=True)
    order = continuous_units_ranked(model, out_dir=trainer.out_dir)
    imageio.imwrite(os.path.join(folder, f"epoch_{epoch:04d}.png"), continuous_traversal(model, order))


def kl_plot(out_dir, path):
    """Per-unit KL over training from log.jsonl; returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    with open(os.path.join(out_dir, "log.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(8, 4))
    for j in range(len(records[0]["kl_cont_units"])):
        ax.plot(steps, [r["kl_cont_units"][j] for r in records], lw=1, label=f"cont {j}")
    for i in range(len(records[0]["kl_disc_units"])):
        ax.plot(steps, [r["kl_disc_units"][i] for r in records], lw=2, ls="--", label=f"disc {i}")
    ax.set_xlabel("training step")
    ax.set_ylabel("KL (nats)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_all(out_dir, model=None, dataset=None, seed=0, units=None):
    """Write every picture into out_dir; returns the paths written. units: show only the first `units`
    continuous units of the ranking in traversal_cont.png (default: all)."""
    model = model if model is not None else load_model(out_dir)
    name = dataset or getattr(model, "spec", {}).get("dataset")
    images = None
    rng = np.random.default_rng(seed)
    spec = getattr(model, "spec", {})
    folder_run = dataset is None and spec.get("folder") is not None and os.path.isdir(spec["folder"])
    if folder_run or name in datasets.BUILT_IN_DATASETS:
        images, _ = datasets.load_for_spec(spec) if folder_run else datasets.load_dataset(name, "test")
        if folder_run or hasattr(images, "factor_sizes"):   # a folder or a factor grid (dSprites): a random
            images = images[np.sort(rng.choice(len(images), min(2000, len(images)), replace=False))]  # sample
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def save(filename, picture):
        path = os.path.join(out_dir, filename)
        imageio.imwrite(path, picture)
        written.append(path)

    if images is not None:
        save("reconstructions.png", reconstructions(model, images))
    else:   # no data to reconstruct (CelebA, or a dataset unknown here): show what the prior decodes to
        save("samples.png", prior_samples(model, rng))
    for i in range(len(model.latent_spec["disc"])):
        save(f"samples_disc{i}.png", samples_per_category(model, i, rng))
    if model.latent_spec["cont"]:
        order = continuous_units_ranked(model, images, out_dir)[:units]
        save("traversal_cont.png", continuous_traversal(model, order))
    if model.latent_spec["disc"]:
        save("traversal_disc.png", discrete_traversal(model))
    frames = sorted(glob.glob(os.path.join(out_dir, "frames", "epoch_*.png")))
    if frames:
        path = os.path.join(out_dir, "training.gif")
        imageio.mimsave(path, [imageio.imread(f) for f in frames], duration=0.3)
        written.append(path)
    if os.path.exists(os.path.join(out_dir, "log.jsonl")):
        path = os.path.join(out_dir, "kl_per_unit.png")
        if kl_plot(out_dir, path):
            written.append(path)
        else:
            print("skipped kl_per_unit.png: matplotlib is not installed (pip install '.[plots]')")
    return written


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
