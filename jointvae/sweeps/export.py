"""The best run of each setting of a sweep, as a model folder that anyone can load and re-score.

    python -m jointvae.sweep export SWEEP_FILE --best factorvae --to pretrained --prefix dsprites --by model

writes, per setting, DEST/PREFIX-<setting values>/ (dsprites-factorvae, ...):

    specs.json, weights.npz   the model only, saved from the loaded run (a FactorVAE's discriminator is not kept)
    eval.json, log.jsonl      the run's evaluation and training log, as they were
    *.png, traversal.gif      the pictures: reconstructions, traversals, samples, KL per unit
    README.md                 where it came from, why this seed, every seed's score

"Best" is by one evaluate field, the higher the better for metrics and accuracies and the lower for losses
(min:FIELD / max:FIELD to say), ties to the lowest seed. Each folder is built beside its destination and
renamed into place, so an export stopped half-way leaves no half folder; an existing folder is kept unless
force=True.
"""
import math
import os
import re
import shutil
import tempfile

from ..evaluation.pictures import write_all
from ..models.model_folder import load_model, save_model
from .collect import setting_label, settings
from .runs import field_value, load_results, run_dir, weights_kept
from .screen import direction

COPIED = ("eval.json", "log.jsonl")
SHOWN_FIELDS = ("factorvae", "betavae", "mig", "discrete_accuracy", "recon_loss")


def folder_name(prefix, setting):
    """'dsprites-factorvae': the prefix and the setting's values, each cut to letters, digits, '.' and '_', without
    a '.' or '-' at either end (so no part is a path or a hidden name); ValueError when nothing is left."""
    parts = [re.sub(r"[^A-Za-z0-9._]+", "-", str(v)).strip("-.") for v in [prefix, *setting.values()]]
    name = "-".join(p for p in parts if p)
    if not name:
        raise ValueError(f"the setting {setting_label(setting)} gives no folder name: pass --prefix NAME")
    return name


def best_runs(sweep, field, by=None, results=None):
    """-> [(setting dict, best point, [every point of the setting evaluated with a finite value of the field])];
    settings without such a run are left out. results: load_results(sweep), when the caller has it already."""
    way, name = direction(field)
    results = load_results(sweep) if results is None else results
    by, groups = settings(sweep, by)
    chosen = []
    for key, points in groups.items():
        value = {p["name"]: field_value(results.get(p["name"], {}), name) for p in points}
        scored = [p for p in points if value[p["name"]] is not None and math.isfinite(value[p["name"]])]
        if not scored:
            continue
        best = min(scored, key=lambda p: (value[p["name"]] if way == "min" else -value[p["name"]], p["seed"]))
        chosen.append((dict(zip(by, key)), best, scored))
    return chosen


def readme(sweep, setting, point, scored, field, results):
    """The folder's README.md: where the run came from, why this seed, each seed's scores."""
    way, name = direction(field)
    evaluation = results[point["name"]]
    shown = [f for f in SHOWN_FIELDS if field_value(evaluation, f) is not None]
    lines = [f"# {setting_label(setting)}: the best of {len(scored)} run(s) by {name}", "",
             f"Seed {point['seed']} of the sweep `{os.path.relpath(sweep.path)}`, point `{point['name']}`: "
             f"{point['steps']} steps, {point['spec'].get('model')} on {point['spec'].get('dataset')}.",
             f"Chosen by {name} ({'higher' if way == 'max' else 'lower'} is better) of `eval.json`, which "
             f"`python -m jointvae.evaluate` wrote ({evaluation.get('sweep_data', 'its data')}).", "",
             "| run | seed | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    for run in scored:
        evaluation = results[run["name"]]
        cells = [f"{field_value(evaluation, f):.4g}" if field_value(evaluation, f) is not None else "" for f in shown]
        mark = " (this one)" if run["name"] == point["name"] else ""
        lines.append(f"| `{run['name']}`{mark} | {run['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "```bash",
              "python -m jointvae.evaluate THIS_FOLDER                   # re-score it",
              "python -m jointvae.visualize THIS_FOLDER --out pictures   # the pictures again",
              "python -m jointvae.explore THIS_FOLDER                    # the latent explorer",
              "```", "",
              "weights.npz holds the model only: a FactorVAE's discriminator is needed neither to use it nor to score it."]
    return "\n".join(lines) + "\n"


def export_best(sweep, field, dest, prefix="", by=None, force=False, pictures=True, log=print):
    """Write the best run of each setting into dest/<folder_name(prefix, setting)>; -> the folders written."""
    results = load_results(sweep)
    chosen = best_runs(sweep, field, by, results)
    if not chosen:
        raise ValueError(f"no evaluated run of {sweep.path} has the field {direction(field)[1]!r}")
    targets = [os.path.join(dest, folder_name(prefix, setting)) for setting, _, _ in chosen]
    if len(set(targets)) != len(targets):
        raise ValueError("two settings give the same folder name: pass --by with the keys that tell them apart")
    lost = [point["name"] for _, point, _ in chosen if not weights_kept(run_dir(sweep, point["name"]))]
    if lost:
        raise ValueError(f"the best run {lost[0]} has no weights.npz (only its eval.json was kept): it cannot be "
                         "exported; train it again or export by another field")
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not force:
        raise ValueError(f"{existing[0]} exists: remove it or pass --force")
    os.makedirs(dest, exist_ok=True)
    written = []
    for (setting, point, scored), target in zip(chosen, targets):
        source = run_dir(sweep, point["name"])
        building = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=dest)
        try:
            model = load_model(source)
            save_model(building, model, model.spec)
            for name in COPIED:
                if os.path.exists(os.path.join(source, name)):
                    shutil.copyfile(os.path.join(source, name), os.path.join(building, name))
            if pictures:
                write_all(building, model=model, source=source, note=log)
            with open(os.path.join(building, "README.md"), "w", encoding="utf-8") as f:
                f.write(readme(sweep, setting, point, scored, field, results))
            os.chmod(building, 0o755)
            if os.path.exists(target):   # force: the old folder goes only once the new one is whole
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old.", dir=dest)
                os.replace(target, os.path.join(old, "folder"))
                os.replace(building, target)
                shutil.rmtree(old)
            else:
                os.replace(building, target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        value = field_value(results[point["name"]], direction(field)[1])
        log(f"{setting_label(setting)}: seed {point['seed']} ({direction(field)[1]} {value:.4g}) -> {target}")
        written.append(target)
    return written
