"""Edit one image through the latent code: encode it, set one latent to several values, decode.

    python -m jointvae.edit PATH IMAGE --unit K [--values=a,b,c,...] [--out FILE.png]
    python -m jointvae.edit PATH IMAGE --disc I [--values 0,1,2,...] [--out FILE.png]

PATH is a model folder (jointvae.load_model); IMAGE any PNG or JPEG, read at the
model's size and channels (jointvae.imagefiles: centre square, bilinear). The
PNG strip shows the input, its reconstruction, then one decoded image per value.
The code is the eval-mode one: continuous means, each discrete latent's most
probable category. --unit K sets continuous unit K (default values: the
traversal from Phi^-1(0.05) to Phi^-1(0.95)); --disc I sets discrete latent I to
each category (default: all of them). Default --out:
edit_<image stem>_unit<K>.png (or _disc<I>.png) in the current directory.
Write --values=-2,0,2 with '=' when the first value is negative (else argparse
takes it for an option).

In Python:

    strip = edit_strip(model, image_uint8, values, unit=3)   # float32 (2 + len(values), C, H, W)
"""
import argparse
import os
import sys

import imageio.v2 as imageio
import numpy as np

from . import data as datasets, evaluate, visualize
from .checkpoint import load_model
from .data.imagefiles import read_image


class LatentChoiceError(ValueError):
    """A latent index or value the model does not have; the message names it."""


def check_choice(model, unit=None, disc=None, values=None):
    """Exactly one of unit (a continuous unit) and disc (a discrete latent), in range, and, when given,
    values it can take: finite numbers for a unit, categories 0..K-1 for a discrete latent.
    Raises LatentChoiceError."""
    if (unit is None) == (disc is None):
        raise LatentChoiceError("choose exactly one of unit (continuous) and disc (discrete)")
    cont, sizes = model.latent_spec["cont"], model.latent_spec["disc"]
    if unit is not None and not 0 <= unit < cont:
        raise LatentChoiceError(f"unit {unit} is out of range: the model has {cont} continuous units"
                                + (f" (0..{cont - 1})" if cont else ""))
    if disc is not None and not 0 <= disc < len(sizes):
        raise LatentChoiceError(f"disc {disc} is out of range: the model has {len(sizes)} discrete latents"
                                + (f" (0..{len(sizes) - 1})" if sizes else ""))
    if values is None:
        return
    values = np.asarray(values)
    if unit is not None and (values.dtype.kind not in "iuf" or not np.all(np.isfinite(values))):
        raise LatentChoiceError(f"values of a continuous unit must be finite numbers, got {values.tolist()}")
    if disc is not None and (values.dtype.kind not in "iu" or np.any(values < 0) or np.any(values >= sizes[disc])):
        raise LatentChoiceError(f"discrete latent {disc} has {sizes[disc]} categories: values must be integers "
                                f"0..{sizes[disc] - 1}, got {values.tolist()}")


def edit_codes(model, z, values, unit=None, disc=None):
    """z (latent_dim,) one code -> (len(values), latent_dim): z with the chosen latent set to each value.

    Continuous unit K is column K; discrete latent I is its one-hot block, set to category `value`.
    """
    check_choice(model, unit, disc, values)
    values = np.asarray(values)
    codes = np.repeat(np.asarray(z, np.float32)[None], len(values), axis=0)
    if unit is not None:
        codes[:, unit] = values
        return codes
    sizes = model.latent_spec["disc"]
    k, start = sizes[disc], model.latent_spec["cont"] + sum(sizes[:disc])
    codes[:, start:start + k] = visualize.one_hot(values, k, len(values))
    return codes


def edit_strip(model, image, values, unit=None, disc=None):
    """image uint8 (C, H, W) at the model's shape -> float32 (2 + len(values), C, H, W) in [0, 1]:
    the input, its eval-mode reconstruction, then the decoded code with the chosen latent set to each value."""
    z = evaluate.code_of(model)(image[None])                 # (1, latent_dim): means, one-hot argmax
    decoded = visualize.decode(model, np.concatenate([z, edit_codes(model, z[0], values, unit, disc)]))
    return np.concatenate([datasets.to_float(image[None]), decoded])


def parse_values(text, integers):
    """'a,b,c' -> a list of floats (or ints); raises LatentChoiceError naming the first bad item."""
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(int(item) if integers else float(item))
        except ValueError:
            kind = "an integer category" if integers else "a number"
            raise LatentChoiceError(f"--values: {item!r} is not {kind}") from None
    return values


def default_values(model, unit=None, disc=None):
    """The traversal through the prior's bulk for a unit; every category for a discrete latent."""
    check_choice(model, unit, disc)
    if unit is not None:
        return visualize.traversal_values().tolist()
    return list(range(model.latent_spec["disc"][disc]))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.edit", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("image", help="a PNG or JPEG file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--unit", type=int, help="continuous unit to set")
    which.add_argument("--disc", type=int, help="discrete latent whose category to set")
    p.add_argument("--values", help="comma-separated values (categories for --disc); default: a traversal / all")
    p.add_argument("--out", help="PNG to write (default: edit_<image stem>_unit<K>.png here)")
    args = p.parse_args(argv)
    stem = os.path.splitext(os.path.basename(args.image))[0]
    chosen = f"unit{args.unit}" if args.unit is not None else f"disc{args.disc}"
    out = args.out or f"edit_{stem}_{chosen}.png"
    try:
        model = load_model(args.path)
        check_choice(model, args.unit, args.disc)
        values = (parse_values(args.values, integers=args.disc is not None) if args.values is not None
                  else default_values(model, args.unit, args.disc))
        check_choice(model, args.unit, args.disc, values)   # bad values fail before the image is read
        c, size, _ = model.image_shape
        strip = edit_strip(model, read_image(args.image, size, c), values, args.unit, args.disc)
        imageio.imwrite(out, visualize.tile(strip[None]))
    except (ValueError, FileNotFoundError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}: input, reconstruction, then values {', '.join(f'{v:.3g}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
