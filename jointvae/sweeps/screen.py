"""Screening: every point trained to a few steps and scored on the training split; only the best K go on.

The choice is written to OUT/screen.json (steps, field, direction, the split and labels it used, every run's
score, the kept names), so that a rerun continues the same K runs.
"""
import json
import os

from .runs import field_value, load_results, split_description, write_json


LOWER_IS_BETTER = ("loss", "recon", "kl", "seconds")


def direction(field):
    """'min:FIELD' or 'max:FIELD' as given; else min for losses, KL and times, max for accuracies and metrics."""
    if field.startswith(("min:", "max:")):
        return field[:3], field[4:]
    return ("min" if any(word in field for word in LOWER_IS_BETTER) else "max"), field


def select(sweep, steps, keep, field):
    """-> the screening record: the kept names (best `keep` by field on the training split) and why."""
    way, name = direction(field)
    results = load_results(sweep, "screen")
    scores, missing = {}, []
    for point in sweep.points:
        value = field_value(results.get(point["name"], {}), name)
        if value is None:
            missing.append(point["name"])
        else:
            scores[point["name"]] = value
    if missing and len(missing) == len(sweep.points):
        raise ValueError(f"--select {name}: no screened run has that field (evaluate gives e.g. recon_loss"
                         f"{', discrete_accuracy' if sweep.points[0]['spec'].get('dataset') in ('mnist', 'fashion-mnist') else ''})")
    ranked = sorted(scores, key=lambda n: (scores[n] if way == "min" else -scores[n], n))
    spec = sweep.points[0]["spec"]
    record = {"steps": steps, "keep": keep, "select": name, "direction": way,
              "split": "train", "data": split_description(spec, "train"),
              "scores": {n: scores[n] for n in ranked}, "unscored": missing, "kept": ranked[:keep],
              "steps_at": {n: results[n].get("sweep_step") for n in scores}}
    write_json(os.path.join(sweep.out, "screen.json"), record)
    return record


def describe(record):
    way = "lower" if record["direction"] == "min" else "higher"
    lines = [f"screening: {len(record['scores'])} run(s) at step {record['steps']} scored on the training split "
             f"({record['data']}; never the test split) by {record['select']} ({way} is better); "
             f"kept the best {record['keep']}:"]
    for n, value in record["scores"].items():
        at = record["steps_at"].get(n)
        late = f" (step {at}: trained further before this screening)" if at is not None and at > record["steps"] else ""
        lines.append(f"  {'kept   ' if n in record['kept'] else 'dropped'} {n}  {record['select']} {value:.4g}{late}")
    lines += [f"  unscored {n} (no screen.json: its screening run failed)" for n in record["unscored"]]
    return "\n".join(lines)


def read(sweep):
    path = os.path.join(sweep.out, "screen.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
