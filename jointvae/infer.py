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
FOLDER), and how the value goes with the label, over the images that have one,
is printed with how many matched:

    --unit K   label a number: the Pearson and Spearman correlations of value and label
    --disc I   label a class (any text; numbers are compared as numbers): a category index is a name,
               not a quantity, so no correlation: the accuracy of mapping each category to its most
               frequent label (beside chance, always guessing the most frequent label), the normalised
               mutual information of category and label (0 independent, 1 one determines the other),
               and the mapping itself

In Python:

    from jointvae.evaluation.inspection import correlations, latent_values
    from jointvae.evaluation.scores import category_agreement
    values = latent_values(model, images_uint8, unit=3)      # float64 (N,)
    pearson, spearman = correlations(values, labels)
    agreement = category_agreement(latent_values(model, images_uint8, disc=0), labels)
"""
import argparse
import csv
import os
import sys

import numpy as np

from .models.model_folder import load_model
from .evaluation.inspection import FOLDER_BATCH, check_choice, correlations, infer_folder
from .evaluation.scores import category_agreement
from .data.imagefiles import describe_skipped


class LabelsFileError(ValueError):
    """A labels CSV that cannot be used; the message names the file, the line and the problem."""


def read_labels(path, classes=False):
    """CSV with header `path,label` -> {relative path: float label}; raises LabelsFileError.
    classes: labels are classes (for --disc): a number is read as a number, any other text kept as text."""
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
            text = (row.get("label") or "").strip()
            try:
                label = float(text)
            except ValueError:
                if not classes:
                    raise LabelsFileError(f"{path}, line {line}: label {row.get('label')!r} is not a number") from None
                label = text
            if not name or not text or (isinstance(label, float) and not np.isfinite(label)):
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


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.infer", description=__doc__.splitlines()[0])
    p.add_argument("path", help="model folder: specs.json + weights.npz (or model.pt)")
    p.add_argument("folder", help="folder of PNG / JPEG images (searched recursively)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--unit", type=int, help="continuous unit whose mean to report (this or --disc)")
    which.add_argument("--disc", type=int, help="discrete latent whose most probable category to report")
    p.add_argument("--labels", help="CSV with header path,label (paths relative to FOLDER): with --unit, "
                                    "correlations with a numeric label; with --disc, accuracy and NMI against "
                                    "a class label (default: none)")
    p.add_argument("--out", help="CSV to write (default: infer_unit<K>.csv or infer_disc<I>.csv here)")
    p.add_argument("--batch-size", type=int, default=FOLDER_BATCH,
                   help=f"images read and encoded at a time (default: {FOLDER_BATCH})")
    return p


def report_labels(values, paths, labels, disc):
    """The line printed for --labels: correlations for a unit, category measures for a discrete latent."""
    matched = [i for i, name in enumerate(paths) if name in labels]
    found = f"labels: {len(matched)} of {len(paths)} images matched ({len(labels)} labelled paths)"
    truth = [labels[paths[i]] for i in matched]
    if disc:
        if not matched:
            return f"{found}; no agreement to measure: no image has a label"
        agree = category_agreement(values[matched], truth)
        mapping = ", ".join(f"{c}->{_label(v)}" for c, v in agree["mapping"].items())
        nmi = "nan (neither varies)" if np.isnan(agree["nmi"]) else f"{agree['nmi']:.4f}"
        return (f"{found}; accuracy {agree['accuracy']:.4f} (each category -> its most frequent label; chance "
                f"{agree['chance']:.4f}), NMI {nmi}; categories -> labels: {mapping}")
    pearson, spearman = correlations(values[matched], truth)
    if np.isnan(pearson):
        return f"{found}; no correlation: it needs 2 or more matches and values and labels that vary"
    return f"{found}; pearson {pearson:.4f}, spearman {spearman:.4f}"


def _label(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv=None):
    args = build_parser().parse_args(argv)
    chosen = f"unit{args.unit}" if args.unit is not None else f"disc{args.disc}"
    out = args.out or f"infer_{chosen}.csv"
    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        model = load_model(args.path)
        check_choice(model, args.unit, args.disc)
        disc = args.disc is not None
        labels = read_labels(args.labels, classes=disc) if args.labels else None   # fails before the work
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
        print(report_labels(values, paths, labels, disc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
