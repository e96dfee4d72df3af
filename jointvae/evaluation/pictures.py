"""Every picture of a model: a uint8 array (H, W) or (H, W, 3) of tiles, or a file written with imageio.

    tile(images (rows, cols, C, H, W))                   the grid every picture is made of
    reconstructions(model, images)                       two rows of images, two of their reconstructions
    prior_samples(model, rng)                            codes from the prior, decoded (no data needed)
    samples_per_category(model, i, rng)                  a row per category of discrete latent i
    continuous_traversal(model, units)                   a row per unit, swept over inspection.traversal_values()
    traversal_from_image(model, image, units)            the same sweep from one image's code instead of from 0
    traversal_frames(model, units)                       the same sweep as an animation: a frame per value
    discrete_traversal(model)                            a row per discrete latent, over its categories
    save_epoch_frame(trainer, epoch)                     the trainer's epoch callback: frames/epoch_NNNN.png
    kl_plot(out_dir, path)                               each unit's KL over training (matplotlib)
    save_gif(path, frames)                               frames as a looping GIF
    write_all(out_dir, model)                            all of them, as the files jointvae.visualize lists
"""
import glob
import json
import os

import imageio.v2 as imageio
import numpy as np

from refnet import to_numpy

from .. import data
from ..models.model_folder import load_model
from .inspection import TRAVERSAL_STEPS, decode, edit_strip, model_xp, one_hot, traversal_values
from .scores import encode_dataset

SAMPLES_PER_ROW = 10
GIF_STEPS = 20          # values of the sweep in traversal.gif (there and back: 2 * GIF_STEPS - 2 frames)
GIF_COLUMNS = 8         # units side by side in a frame of traversal.gif
GIF_SECONDS = 0.1       # per frame of traversal.gif
TRAINING_GIF_SECONDS = 0.3   # per epoch frame of training.gif


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


def latent_code(model, cont, discs):
    """z = [cont, disc_1, ..., disc_n]: continuous (n, cont) and one-hot (n, K_i) parts -> float32 (n, D)."""
    parts = ([cont] if model.latent_spec["cont"] else []) + list(discs)
    return np.concatenate(parts, axis=1).astype(np.float32)


def reconstructions(model, images, n=SAMPLES_PER_ROW):
    """Two rows of originals, then two rows of their eval-mode reconstructions."""
    x = data.to_float(images[: 2 * n], model_xp(model))
    x_hat = to_numpy(model.reconstruct(x))
    x = to_numpy(x)
    return tile(np.concatenate([x, x_hat]).reshape((4, n) + x.shape[1:]))


def prior_parts(model, rng, n):
    """n draws from the prior: continuous (n, cont) from N(0, 1), and one one-hot (n, K) per discrete latent."""
    cont = rng.standard_normal((n, model.latent_spec["cont"])).astype(np.float32)
    return cont, [one_hot(rng.integers(0, k, n), k, n) for k in model.latent_spec["disc"]]


def prior_samples(model, rng, rows=4, n=SAMPLES_PER_ROW):
    """rows x n decoded codes from the prior: what a model draws when there is no data to reconstruct."""
    x = decode(model, latent_code(model, *prior_parts(model, rng, rows * n)))
    return tile(x.reshape((rows, n) + x.shape[1:]))


def samples_per_category(model, latent_index, rng, n=SAMPLES_PER_ROW):
    """Rows: the K values of discrete latent `latent_index`; columns: continuous codes from N(0, 1)."""
    k = model.latent_spec["disc"][latent_index]
    cont, others = prior_parts(model, rng, n)
    rows = []
    for value in range(k):
        discs = list(others)
        discs[latent_index] = one_hot(np.full(n, value), k, n)
        rows.append(decode(model, latent_code(model, cont, discs)))
    return tile(np.stack(rows))


def traversal_images(model, unit_order, steps=TRAVERSAL_STEPS):
    """Continuous units in `unit_order`, each swept over traversal_values(steps), the other units 0 and the
    discrete codes fixed to category 0 -> decoded float32 (len(unit_order), steps, C, H, W)."""
    cont_dim = model.latent_spec["cont"]
    discs = [one_hot(np.zeros(steps, int), k, steps) for k in model.latent_spec["disc"]]
    rows = []
    for unit in unit_order:
        cont = np.zeros((steps, cont_dim), np.float32)
        cont[:, unit] = traversal_values(steps)
        rows.append(decode(model, latent_code(model, cont, discs)))
    return np.stack(rows)


def continuous_traversal(model, unit_order, steps=TRAVERSAL_STEPS):
    """Rows: continuous units in `unit_order`; columns: that unit swept, the others 0, discrete codes fixed to 0."""
    return tile(traversal_images(model, unit_order, steps))


def traversal_from_image(model, image, unit_order, steps=TRAVERSAL_STEPS):
    """Rows: continuous units in `unit_order`; columns: the image, its eval-mode reconstruction, then its code
    with that unit swept over traversal_values(steps) and every other latent kept at the image's value.

    image uint8 (C, H, W) -> uint8 picture of len(unit_order) x (2 + steps) tiles. This is the FactorVAE paper's
    traversal: around a real code, a unit's row shows what it changes in a picture the model knows, where
    continuous_traversal's all-zero code may decode to no image of the data at all (dSprites: a faint blur).
    """
    values = traversal_values(steps)
    return tile(np.stack([edit_strip(model, image, values, unit=unit) for unit in unit_order]))


def traversal_frames(model, unit_order, steps=GIF_STEPS, columns=GIF_COLUMNS):
    """The continuous traversal as an animation: frame t shows every unit of `unit_order` (`columns` a row, in
    order) set to value t of traversal_values(steps), as continuous_traversal decodes it; the sweep goes from
    Phi^-1(0.05) to Phi^-1(0.95) and back, so the GIF loops without a jump. -> list of uint8 pictures."""
    images = traversal_images(model, unit_order, steps)            # (U, steps, C, H, W)
    units = len(images)
    cols = max(1, min(columns, units))
    rows = -(-units // cols)
    blank = np.ones((rows * cols - units,) + images.shape[1:], np.float32)
    grid = np.concatenate([images, blank]).reshape((rows, cols) + images.shape[1:])
    there_and_back = list(range(steps)) + list(range(steps - 2, 0, -1))
    return [tile(grid[:, :, t]) for t in there_and_back]


def save_gif(path, frames, seconds_per_frame=GIF_SECONDS):
    """uint8 pictures (H, W) or (H, W, 3) -> a GIF that loops forever, each frame shown seconds_per_frame.
    Written with Pillow, whose GIF duration is in milliseconds in every version (imageio's changed unit)."""
    from PIL import Image   # Pillow arrives with imageio
    first, *rest = [Image.fromarray(f) for f in frames]
    first.save(path, save_all=True, append_images=rest, duration=int(round(1000 * seconds_per_frame)), loop=0)


def discrete_traversal(model):
    """Rows: discrete latents; columns: their K values (continuous code 0, other discrete latents at 0)."""
    rows, width = [], max(model.latent_spec["disc"])
    for i, k in enumerate(model.latent_spec["disc"]):
        discs = [one_hot(np.zeros(k, int), kk, k) for kk in model.latent_spec["disc"]]
        discs[i] = one_hot(np.arange(k), k, k)
        row = decode(model, latent_code(model, np.zeros((k, model.latent_spec["cont"]), np.float32), discs))
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
    base = latent_code(model, cont, discs)
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


def write_all(out_dir, model=None, dataset=None, seed=0, units=None, source=None, note=print):
    """Write every picture into out_dir; returns the paths written. units: show only the first `units`
    continuous units of the ranking in traversal_cont.png, traversal_from_image.png and traversal.gif
    (default: all).

    source: the model's folder, where a training run keeps log.jsonl (the KL ranking and plot) and frames/
    (training.gif); default out_dir, as when the trainer writes its own run's pictures. note(line) says
    which picture was not made and why."""
    source = out_dir if source is None else source
    model = model if model is not None else load_model(source)
    name = dataset or getattr(model, "spec", {}).get("dataset")
    images = None
    rng = np.random.default_rng(seed)
    spec = getattr(model, "spec", {})
    folder_run = dataset is None and spec.get("folder") is not None and os.path.isdir(spec["folder"])
    if folder_run or name in data.BUILT_IN_DATASETS:
        images, _ = data.load_for_spec(spec) if folder_run else data.load_dataset(name, "test")
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
        order = continuous_units_ranked(model, images, source)[:units]
        save("traversal_cont.png", continuous_traversal(model, order))
        if images is not None:   # a random image, as in the FactorVAE paper's traversals; a generator of its
            anchor = images[np.random.default_rng([seed, 1]).integers(len(images))]   # own leaves rng's draws as
                                                                                      # they were
            save("traversal_from_image.png", traversal_from_image(model, anchor, order))
        path = os.path.join(out_dir, "traversal.gif")
        save_gif(path, traversal_frames(model, order))
        written.append(path)
    else:
        note("skipped traversal.gif: the model has no continuous units to sweep")
    if model.latent_spec["disc"]:
        save("traversal_disc.png", discrete_traversal(model))
    frames = sorted(glob.glob(os.path.join(source, "frames", "epoch_*.png")))
    if frames:
        path = os.path.join(out_dir, "training.gif")
        save_gif(path, [imageio.imread(f) for f in frames], TRAINING_GIF_SECONDS)
        written.append(path)
    else:
        note(f"skipped training.gif: {os.path.join(source, 'frames')} holds no epoch frames (training saves one "
             f"per finished epoch)")
    if os.path.exists(os.path.join(source, "log.jsonl")):
        path = os.path.join(out_dir, "kl_per_unit.png")
        if kl_plot(source, path):
            written.append(path)
        else:
            note("skipped kl_per_unit.png: matplotlib is not installed (pip install '.[plots]')")
    else:
        note(f"skipped kl_per_unit.png: {source} has no training log (log.jsonl)")
    return written
