"""Read one latent off every image in a folder, and optionally correlate it with labels.

    python -m jointvae.infer PATH FOLDER --unit K [--labels LABELS.csv] [--out OUT.csv]
    python -m jointvae.infer PATH FOLDER --disc I [--labels LABELS.csv] [--out OUT.csv]

PATH is a model folder (jointvae.load_model). Every PNG / JPEG below FOLDER is
read at the model's size and channels (jointvae.data.imagefiles), encoded in
batches, and written as CSV `path,value`: path relative to FOLDER (with /),
value continuous unit K's mean, or with --disc the most probable category of
discrete latent I. Files that cannot be read are skipped and reported on
stderr. Default --out: infer_unit<K>.csv (or infer_disc<I>.csv) in the current
directory.

--labels names a CSV with a header and columns `path,label` (path relative to
FOLDER, label a number); the Pearson and Spearman correlations between value
and label over the images that have a label are printed, with how many matched.

In Python:

    from jointvae.evaluation.inspection import correlations, latent_values
    values = latent_values(model, images_uint8, unit=3)      # float64 (N,)
    pearson, spearman = correlations(values, labels)
"""
import argparse
import csv
import os
import sys

import numpy as np

from .models.model_folder import load_model
from .evaluation.inspection import FOLDER_BATCH, check_choice, correlations, infer_folder
from .data.imagefiles import describe_skipped


class LabelsFileError(ValueError):
    """A labels CSV that cannot be used; the message names the file, the line and the problem."""


def read_labels(path):
    """CSV with header `path,label` -> {relative path: float label}; raises LabelsFileError."""
    if not os.path.isfile(path):
        raise LabelsFileError(f"{path}: no such file")
    labels = {}
    with open(path, newline="", encoding="utf-8-sig") as f:   # -sig: a spreadsheet's byte-order mark is no column name
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "label"} <= {n.strip() for n in reader.fieldnames}:
            raise LabelsFileError(f"{path}: the first line must name the columns 'path' and 'label', "
                                  f"got {reader.fieldnames}")
        for row in reader:
            row = {(k or "").strip(): v for k, v in row.items()}
            line = reader.line_num
            name = (row.get("path") or "").strip().replace("\\", "/").removeprefix("./")
            try:
                label = float(row.get("label") or "")
            except ValueError:
                raise LabelsFileError(f"{path}, line {line}: label {row.get('label')!r} is not a number") from None
            if not name or not np.isfinite(label):
                raise LabelsFileError(f"{path}, line {line}: needs a path and a finite label")
            if name in labels:
                raise LabelsFileError(f"{path}, line {line}: {name} is labelled twice")
            labels[name] = label
    if not labels:
        raise LabelsFileError(f"{path}: no labels below the header")
    return labels


def write_csv(out, paths, values):
    """CSV `path,value`: one row per image, floats to 6 significant digits, categories as integers."""
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "value"])
        for p, v in zip(paths, values):
            writer.writerow([p, f"{v:.6g}" if isinstance(v, (float, np.floating)) else int(v)])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m jointvae.infer", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("folder", help="folder of PNG / JPEG images (searched recursively)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--unit", type=int, help="continuous unit whose mean to report")
    which.add_argument("--disc", type=int, help="discrete latent whose most probable category to report")
    p.add_argument("--labels", help="CSV with header path,label (paths relative to FOLDER)")
    p.add_argument("--out", help="CSV to write (default: infer_unit<K>.csv here)")
    p.add_argument("--batch-size", type=int, default=FOLDER_BATCH)
    args = p.parse_args(argv)
    chosen = f"unit{args.unit}" if args.unit is not None else f"disc{args.disc}"
    out = args.out or f"infer_{chosen}.csv"
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        model = load_model(args.path)
        check_choice(model, args.unit, args.disc)
        labels = read_labels(args.labels) if args.labels else None   # a bad labels file fails before the work
        paths, values, skipped, tried = infer_folder(model, args.folder, args.unit, args.disc, args.batch_size)
        if not tried:
            raise ValueError(f"{args.folder}: no .png, .jpg or .jpeg files below it")
        if skipped:
            print(describe_skipped(skipped, total=tried), file=sys.stderr)
        if not paths:
            raise ValueError(f"{args.folder}: none of the {tried} image files could be read")
        write_csv(out, paths, values)
    except (ValueError, FileNotFoundError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {out}: {len(paths)} images, {chosen}")
    if labels is not None:
        matched = [i for i, name in enumerate(paths) if name in labels]
        pearson, spearman = correlations(values[matched], [labels[paths[i]] for i in matched])
        found = f"labels: {len(matched)} of {len(paths)} images matched ({len(labels)} labelled paths)"
        if np.isnan(pearson):
            print(f"{found}; no correlation: it needs 2 or more matches and values and labels that vary")
        else:
            print(f"{found}; pearson {pearson:.4f}, spearman {spearman:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
