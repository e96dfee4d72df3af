"""Edit one image through the latent code: encode it, set one latent to several values, decode.

    python -m jointvae.edit PATH IMAGE --unit K [--values=a,b,c,...] [--out FILE.png]
    python -m jointvae.edit PATH IMAGE --disc I [--values 0,1,2,...] [--out FILE.png]

PATH is a model folder (jointvae.load_model); IMAGE any PNG or JPEG, read at the
model's size and channels (jointvae.data.imagefiles: centre square, bilinear). The
PNG strip shows the input, its reconstruction, then one decoded image per value.
The code is the eval-mode one: continuous means, each discrete latent's most
probable category. --unit K sets continuous unit K (default values: the
traversal from Phi^-1(0.05) to Phi^-1(0.95)); --disc I sets discrete latent I to
each category (default: all of them). Default --out:
edit_<image stem>_unit<K>.png (or _disc<I>.png) in the current directory.
Write --values=-2,0,2 with '=' when the first value is negative (else argparse
takes it for an option).

In Python:

    from jointvae.evaluation.inspection import edit_strip
    strip = edit_strip(model, image_uint8, values, unit=3)   # float32 (2 + len(values), C, H, W)
"""
import argparse
import os
import sys

import imageio.v2 as imageio

from .models.model_folder import load_model
from .evaluation.inspection import TRAVERSAL_STEPS, LatentChoiceError, check_choice, default_values, edit_strip
from .evaluation.pictures import tile
from .data.imagefiles import read_image


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


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.edit", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("image", help="a PNG or JPEG file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--unit", type=int, help="continuous unit to set (this or --disc)")
    which.add_argument("--disc", type=int, help="discrete latent whose category to set")
    p.add_argument("--values", help="comma-separated values, categories for --disc; write --values=-2,0,2 when "
                                    f"the first is negative (default: for --unit the {TRAVERSAL_STEPS} values from "
                                    "Phi^-1(0.05) to Phi^-1(0.95), for --disc every category)")
    p.add_argument("--out", help="PNG to write (default: edit_<image stem>_unit<K>.png, or _disc<I>.png, "
                                 "in the current directory)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
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
        imageio.imwrite(out, tile(strip[None]))
    except (ValueError, FileNotFoundError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}: input, reconstruction, then values {', '.join(f'{v:.3g}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
