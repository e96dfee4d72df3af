"""python tools/tune_dsprites.py [--n 3000] [--seed 0] [--model DIR] [--pictures-only] [--out docs/dsprites]

Tunes the look of the procedural dSprites (jointvae.data.dsprites.Look) without the original
images: the published dSprites JointVAE was trained on them, so it reconstructs best the
generated images most like them. The score is the model's reconstruction error on a fixed
random sample of generated images: BCE summed over the 64 x 64 pixels, averaged over
images, in eval mode (model.reconstruct: posterior means, argmax category).

1. Sprite outlines (square side, ellipse axes, heart width, in pixels at scale 1): coordinate
   descent on the mean BCE of that shape's images, steps 1, 1/2, 1/4 px.
2. Position range: NOT by the mean BCE, which falls all the way as the span shrinks
   (contracted positions stay inside the training range, and central sprites are the
   easiest; the table shows it). Instead each end of each axis is found where the model
   stops following: sprites are placed ever further out, and the end is the outermost
   coordinate at which the reconstruction's centroid still sits where it did well inside
   (within EDGE_TOLERANCE px); beyond it the reconstructions are pulled back and the BCE
   climbs. span = mean of the two axes' ranges, centre_x/centre_y = their midpoints.
3. Outlines once more at the final frame: each scanned over +-1.5 px in 0.25 px steps, then
   in 0.05 px steps around the best, which is kept. Then a span table and worse looks for contrast.

It also writes docs/dsprites/contact_sheet.png (sprites spanning the factors) and
reconstructions.png (generated images above, the model's reconstructions below).
"""
import argparse
import dataclasses
import os
import sys
import time

import imageio.v2 as imageio
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import refnet  # noqa: E402
from jointvae import load_model  # noqa: E402
from jointvae.data import dsprites  # noqa: E402
from jointvae.data import to_float  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.join(HERE, "..", "..", "shared", "reference_models", "dsprites")
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "dsprites")
BATCH = 250
ALL = (0, 1, 2)
EDGE_TOLERANCE = 0.1   # px: how far the reconstruction's centroid may drift before a position counts as outside
EDGE_SPRITES = 300     # random sprites placed at each probed coordinate

# Outline coordinates: the extents in pixels at scale 1, each changing one shape.
# name -> (shapes it changes, first step in px).
OUTLINES = {"square_px": ((0,), 1.0), "ellipse_w_px": ((1,), 1.0), "ellipse_h_px": ((1,), 1.0),
            "heart_px": ((2,), 1.0)}


def to_pixels(look):
    """Look -> {coordinate: pixels}: every shape's extent absolute, so one coordinate moves one shape."""
    return {"square_px": look.size, "ellipse_w_px": look.ellipse_width * look.size,
            "ellipse_h_px": look.ellipse_height * look.size, "heart_px": look.heart * look.size}


def with_outlines(look, px):
    """`look` with the outline coordinates of `px` (the inverse of to_pixels)."""
    size = px["square_px"]
    return dataclasses.replace(look, size=size, ellipse_width=px["ellipse_w_px"] / size,
                               ellipse_height=px["ellipse_h_px"] / size, heart=px["heart_px"] / size)


def reconstruct(model, values, look):
    """float (n, 5) factor values -> (x, x_hat) float32 (n, 1, 64, 64), in batches."""
    xs, x_hats = [], []
    for start in range(0, len(values), BATCH):
        x = to_float(dsprites.render_values(values[start:start + BATCH], look))
        xs.append(x)
        x_hats.append(model.reconstruct(x))
    return np.concatenate(xs), np.concatenate(x_hats)


def bce_of(x, x_hat):
    """-> float64 (n,): BCE summed over each image's pixels."""
    loss, _ = refnet.binary_cross_entropy(x_hat, x, reduction="none")
    return loss.sum(axis=(1, 2, 3)).astype(np.float64)


def bce_per_image(model, values, look):
    return bce_of(*reconstruct(model, values, look))


def row(*cells):
    print(" | ".join(str(c) for c in cells), flush=True)


class Scorer:
    """Mean BCE per image over the fixed sample, one shape at a time."""

    def __init__(self, model, values):
        self.model, self.values = model, values
        self.shapes = np.rint(values[:, 0]).astype(int) - 1
        self.evaluations = 0

    def per_shape(self, look, shapes):
        """{shape: mean BCE of the sample's images of that shape} for the shapes in `shapes`."""
        self.evaluations += 1
        rows = np.flatnonzero(np.isin(self.shapes, shapes))
        losses = bce_per_image(self.model, self.values[rows], look)
        return {k: float(losses[self.shapes[rows] == k].mean()) for k in shapes}

    def combine(self, per_shape):
        """Per-shape means -> the mean over all their images (weighted by how many each has)."""
        counts = {k: int((self.shapes == k).sum()) for k in per_shape}
        return sum(per_shape[k] * counts[k] for k in per_shape) / sum(counts.values())

    def shape_mean(self, look, shapes):
        """Mean BCE over the sample's images of `shapes` (a tuple of shape indices)."""
        return self.combine(self.per_shape(look, shapes))

    def mean(self, look):
        self.evaluations += 1
        losses = bce_per_image(self.model, self.values, look)
        return float(losses.mean()), [float(losses[self.shapes == k].mean()) for k in ALL]


def fit_outlines(scorer, look, rounds=3):
    """Coordinate descent over OUTLINES, each scored on the images it changes; steps halve each round."""
    px = to_pixels(look)
    best = scorer.per_shape(look, ALL)
    row("round", "coordinate", "px", "mean BCE of the shapes it changes", "mean BCE, all", "")
    row(0, "start", "", "", f"{scorer.combine(best):.2f}", "")
    for r in range(1, rounds + 1):
        for name, (shapes, first_step) in OUTLINES.items():
            step = first_step / 2 ** (r - 1)
            for direction in (+1, -1):
                moved = False
                while True:
                    trial = dict(px, **{name: px[name] + direction * step})
                    scores = scorer.per_shape(with_outlines(look, trial), shapes)
                    better = scorer.combine(scores) < scorer.combine({k: best[k] for k in shapes}) - 1e-9
                    row(r, name, f"{trial[name]:.3f}", f"{scorer.combine(scores):.2f}",
                        f"{scorer.combine({**best, **scores}):.2f}", "better" if better else "")
                    if not better:
                        break
                    px, best, moved = trial, {**best, **scores}, True
                if moved:
                    break  # no need to try the other way
    return with_outlines(look, px)


def scan_outline(scorer, look, px, name, values):
    """Score one outline coordinate at each of `values` (the rest as in px); -> [(mean BCE, value)]."""
    shapes = OUTLINES[name][0]
    return [(scorer.shape_mean(with_outlines(look, dict(px, **{name: float(v)})), shapes), float(v))
            for v in values]


def refine_outlines(scorer, look, wide=1.5, coarse=0.25, fine=0.05):
    """Each outline coordinate scanned over +-wide px in `coarse` steps, then around the best in
    `fine` steps, keeping the best. The landscape is bumpy at sub-pixel scale (rasterisation;
    the square had two basins 1.3 px apart), so a local search alone can stop in the wrong one."""
    px = to_pixels(look)
    for name in OUTLINES:
        scores = scan_outline(scorer, look, px, name, px[name] + np.arange(-wide, wide + coarse / 2, coarse))
        centre = min(scores)[1]
        scores += scan_outline(scorer, look, px, name, centre + np.arange(-4, 5) * fine)
        best_score, best_value = min(scores)
        row(name, "px", "mean BCE of the shapes it changes", "")
        for score, value in sorted(dict((round(v, 3), (sc, v)) for sc, v in scores).values(), key=lambda sv: sv[1]):
            row(name, f"{value:.2f}", f"{score:.2f}", "best" if value == best_value else "")
        px[name] = round(best_value, 3)
        print()
    return with_outlines(look, px)


def place(values, look, axis, coordinate):
    """The sprites of `values` moved so that their centre is at pixel `coordinate` along axis 3 (x) or 4 (y)."""
    values = values.copy()
    centre = look.centre_x if axis == 3 else look.centre_y
    values[:, axis] = 0.5 + (coordinate - centre) / look.span
    return values


def centroid(images, axis):
    """float (n, 1, 64, 64) -> (n,) intensity-weighted centre along x (axis 3) or y (axis 4), in pixels."""
    profile = images.sum(axis=(1, 2) if axis == 3 else (1, 3))
    return (profile * (np.arange(dsprites.IMAGE_SIZE) + 0.5)).sum(axis=1) / profile.sum(axis=1)


def find_edge(model, values, look, axis, inner, outward):
    """Probe from `inner` outwards in quarter pixels; -> the outermost coordinate the model still follows."""
    row("axis", "coordinate px", "mean BCE", "centroid drift of the reconstruction px", "")
    coords = inner + outward * np.arange(0, 6.01, 0.25)
    drifts, edge = [], None
    for coordinate in coords:
        x, x_hat = reconstruct(model, place(values, look, axis, coordinate), look)
        drift = float(np.mean(centroid(x_hat, axis) - centroid(x, axis)))
        drifts.append(drift)
        reference = np.mean(drifts[:3])  # the first probes lie well inside the range
        inside = len(drifts) <= 3 or abs(drift - reference) <= EDGE_TOLERANCE
        if inside and edge is None:
            last_inside = coordinate
        elif edge is None:
            edge = last_inside
        row("xy"[axis - 3], f"{coordinate:.2f}", f"{bce_of(x, x_hat).mean():.2f}", f"{drift:+.3f}",
            "" if inside else "outside")
        if edge is not None and abs(drift - reference) > 4 * EDGE_TOLERANCE:
            break
    return edge if edge is not None else coords[-1]


def fit_frame(model, look, seed):
    """The four ends of the position range -> look with span, centre_x, centre_y set."""
    values = dsprites.factor_values(dsprites.sample_factors(EDGE_SPRITES, np.random.default_rng(seed + 1)))
    ends = {}
    for axis in (3, 4):
        centre = look.centre_x if axis == 3 else look.centre_y
        for outward in (-1, +1):
            start = centre + outward * (look.span / 2 - 3)   # 3 px inside the current end
            ends[axis, outward] = find_edge(model, values, look, axis, start, outward)
            print(f"-> {'xy'[axis - 3]} {'low' if outward < 0 else 'high'} end: {ends[axis, outward]:.2f} px\n")
    x_range, y_range = ends[3, 1] - ends[3, -1], ends[4, 1] - ends[4, -1]
    return dataclasses.replace(look, span=float(x_range + y_range) / 2,
                               centre_x=float(ends[3, 1] + ends[3, -1]) / 2,
                               centre_y=float(ends[4, 1] + ends[4, -1]) / 2)


def smallest_sprites(model, look, seed, factors=np.arange(1.3, 0.74, -0.05)):
    """Where the model stops reproducing small sprites: scale-0.5 sprites of each shape drawn
    at `factors` times their size in `look`; the reconstruction's area over the input's falls
    from ~0.99 once they are smaller than the model knows. A diagnostic for the report."""
    row("shape", "size factor", "area px^2", "mean BCE", "reconstructed / input area")
    values = {}
    for shape in ALL:
        factors_ = dsprites.sample_factors(EDGE_SPRITES, np.random.default_rng(seed + 2), fixed={0: shape, 1: 0})
        values[shape] = dsprites.factor_values(factors_)
    for shape in ALL:
        for factor in factors:
            x, x_hat = reconstruct(model, values[shape], dataclasses.replace(look, size=look.size * factor))
            area = x.sum(axis=(1, 2, 3))
            row(dsprites.SHAPE_NAMES[shape], f"{factor:.2f}", f"{area.mean():.1f}", f"{bce_of(x, x_hat).mean():.2f}",
                f"{np.mean(x_hat.sum(axis=(1, 2, 3)) / area):.3f}")
    areas = [int((dsprites.render([[k, 5, 0, 15, 15]], look) > 0).sum()) for k in ALL]
    print(f"areas at scale 1, orientation 0 (square, ellipse, heart): {areas} px^2")


def span_table(scorer, look, spans):
    """Mean BCE as the span changes, the rest fixed: it keeps falling as the span shrinks."""
    row("span px", "mean BCE", "square", "ellipse", "heart")
    for span in spans:
        mean, per_shape = scorer.mean(dataclasses.replace(look, span=float(span)))
        row(f"{span:.1f}", f"{mean:.2f}", *(f"{v:.2f}" for v in per_shape))


def contrasts(scorer, best):
    """Worse looks next to the best, for scale."""
    px = to_pixels(best)

    def resized(factor):
        return with_outlines(best, {k: v * factor for k, v in px.items()})

    settings = [
        ("best", best, 0.0),
        ("sprites 10% smaller", resized(0.9), 0.0),
        ("sprites 10% larger", resized(1.1), 0.0),
        ("sprites 25% larger", resized(1.25), 0.0),
        ("span 40 px", dataclasses.replace(best, span=40.0), 0.0),
        ("span 48 px (3/4 of the frame)", dataclasses.replace(best, span=48.0), 0.0),
        ("centre moved 2 px right and down",
         dataclasses.replace(best, centre_x=best.centre_x + 2, centre_y=best.centre_y + 2), 0.0),
        ("ellipse as high as wide (a disc)", dataclasses.replace(best, ellipse_height=best.ellipse_width), 0.0),
        ("naive first guess: size 12.8, span 48, ellipse 1 x 0.5, heart 1",
         dataclasses.replace(best, size=12.8, ellipse_width=1.0, ellipse_height=0.5, heart=1.0, span=48.0,
                             centre_x=32.0, centre_y=32.0), 0.0),
        # A turn by whole orientation steps (2 pi / 39) only relabels the same set of images: which
        # way orientation 0 points is not identifiable beyond that. Half a step off the grid is.
        ("orientation 0 turned by half a step (pi / 39)", best, np.pi / 39),
        ("orientation 0 turned by pi (19.5 steps: heart upside down at 0)", best, np.pi),
        ("orientation 0 turned by 10 whole steps (92.3 degrees)", best, 10 * 2 * np.pi / 39),
    ]
    row("setting", "mean BCE", "square", "ellipse", "heart")
    values, shapes = scorer.values, scorer.shapes
    for name, look, turn in settings:
        turned = values.copy()
        turned[:, 2] += turn
        losses = bce_per_image(scorer.model, turned, look)
        row(name, f"{losses.mean():.2f}", *(f"{losses[shapes == k].mean():.2f}" for k in ALL))


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------

def grid(images, cols, pad=2, value=128):
    """uint8 (n, 1, h, w) -> one uint8 picture, `cols` per row, grey `pad` between tiles."""
    n, _, h, w = images.shape
    rows = -(-n // cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), value, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image[0]
    return canvas


# Rows of the contact sheet: one factor swept (its classes below), the others at MIDDLE.
MIDDLE = (0, 5, 0, 15, 15)
SWEEPS = ((1, list(range(6))),                                     # scale: all 6
          (2, list(range(0, 40, 4))),                              # orientation: every 4th class, 0..332 degrees
          (3, np.linspace(0, 31, 10).round().astype(int).tolist()),  # posX: left to right
          (4, np.linspace(0, 31, 10).round().astype(int).tolist()))  # posY: top to bottom


def contact_sheet(look, cols=10):
    """For each shape, four rows: scale, orientation, posX, posY swept; grey tiles fill short rows."""
    tiles = []
    for shape in range(3):
        for factor, classes in SWEEPS:
            factors = np.tile(MIDDLE, (len(classes), 1))
            factors[:, 0], factors[:, factor] = shape, classes
            blank = np.full((cols - len(classes), 1, 64, 64), 128, dtype=np.uint8)
            tiles += [dsprites.render(factors, look), blank]
    return grid(np.concatenate(tiles), cols)


def reconstructions(model, look, n=16, seed=1):
    """Generated images (top two rows) and the model's reconstructions (bottom two rows)."""
    factors = dsprites.sample_factors(n, np.random.default_rng(seed))
    x = dsprites.render(factors, look)
    x_hat = model.reconstruct(to_float(x))
    x_hat = np.rint(np.clip(x_hat, 0, 1) * 255).astype(np.uint8)
    return grid(np.concatenate([x, x_hat]), cols=n // 2)


def write_pictures(model, look, out):
    os.makedirs(out, exist_ok=True)
    sheet = contact_sheet(look)
    recon = reconstructions(model, look)
    # Enlarged 3x (nearest neighbour) so single pixels stay visible on a screen.
    imageio.imwrite(os.path.join(out, "contact_sheet.png"), np.kron(sheet, np.ones((3, 3), np.uint8)))
    imageio.imwrite(os.path.join(out, "reconstructions.png"), np.kron(recon, np.ones((3, 3), np.uint8)))
    print(f"wrote {out}/contact_sheet.png and {out}/reconstructions.png")


def render_rate(n=8192, seed=0):
    """Images per second of CPU time (process time: fair on a busy machine) for a random batch."""
    factors = dsprites.sample_factors(n, np.random.default_rng(seed))
    dsprites.render(factors[:256])
    start = time.process_time()
    dsprites.render(factors)
    return n / (time.process_time() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="images in the fixed sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--pictures-only", action="store_true", help="only write the PNGs with the default look")
    args = parser.parse_args(argv)

    model = load_model(args.model)
    print(f"rendering rate: {render_rate():.0f} images per CPU second")
    if not args.pictures_only:
        values = dsprites.factor_values(dsprites.sample_factors(args.n, np.random.default_rng(args.seed)))
        scorer = Scorer(model, values)
        look = dsprites.Look(size=12.8, ellipse_width=1.0, ellipse_height=0.5, heart=1.0,
                             span=32.0, centre_x=32.0, centre_y=32.0)
        print(f"\n## 1. outlines, from {look}\n")
        look = fit_outlines(scorer, look)
        print(f"\n## 2. position range, from {look}\n")
        look = fit_frame(model, look, args.seed)
        print(f"\n## 3. outlines at the final frame, scanned finely, from {look}\n")
        look = refine_outlines(scorer, look)
        print(f"\nbest: {look}\n  outlines in px: {to_pixels(look)}\n")
        print("## mean BCE against the span (why the span is not set by it)\n")
        span_table(scorer, look, [20, 24, 28, 30, look.span, 34, 36, 40])
        print("\n## contrasts\n")
        contrasts(scorer, look)
        print("\n## the smallest sprites (how far the outline fit is pushed by BCE's taste for small sprites)\n")
        smallest_sprites(model, look, args.seed)
        print(f"\n{scorer.evaluations} evaluations; pictures below use the module's default look")
    write_pictures(model, dsprites.LOOK, args.out)


if __name__ == "__main__":
    main()
