"""The study's scores over training, from the weights kept every 10,000 steps: a CSV table and a PNG.

    python docs/dsprites-study/over_training.py SNAPSHOTS [--out docs/dsprites-study]

SNAPSHOTS holds one folder per run (model=betavae,seed=0, ...) with one folder per kept step (step-40000, ...);
a step that has been scored holds eval-small.log, the output of

    python -m jointvae.evaluate SNAPSHOTS/RUN/step-N --votes 1000 500 --samples 3000

(small votes, so as to take a core from the study for 5 minutes, not 11; on the same weights at step 100,000 they
gave scores within about 0.03 of full votes). Steps not scored yet are left out. Writes OUT/over-training.csv (one
row per run and step: recon, the three metrics, the units above 0.5 nats, and the share of each factor's
FactorVAE votes that the metric got right, metrics.factorvae_score_by_factor) and, with matplotlib,
OUT/over-training.png: the FactorVAE metric against the step, one line per run, and a panel per factor.
"""
import argparse
import csv
import json
import os
import re

from jointvae.data.dsprites import FACTOR_NAMES
from jointvae.evaluation.metrics import factorvae_score_by_factor

FIELDS = ("recon_loss", "factorvae", "betavae", "mig")
ACTIVE_KL = 0.5   # nats: the study counts a unit above this as active


def last_json(path):
    """The last line of a log that is a JSON object (evaluate prints one; progress lines go before it), or None."""
    found = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("{"):
                found = json.loads(line)
    return found


def scored_steps(snapshots):
    """-> [(run, step, scores)] for every scored step, by run then step; scores gains score_by_factor."""
    rows = []
    for run in sorted(os.listdir(snapshots)):
        folder = os.path.join(snapshots, run)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            match = re.fullmatch(r"step-(\d+)", name)
            log = os.path.join(folder, name, "eval-small.log")
            if match and os.path.exists(log) and (scores := last_json(log)) is not None:
                scores["score_by_factor"] = factorvae_score_by_factor(scores["metrics"]["factorvae"])
                rows.append((run, int(match.group(1)), scores))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def setting_of(run):
    """A run's name without its seed: 'model=betavae,seed=1' -> 'model=betavae'."""
    return ",".join(part for part in run.split(",") if not part.startswith("seed="))


def plot(path, rows):
    """The FactorVAE metric against the step, one line per run, then one panel per factor: the share of that factor's
    votes the metric got right. -> path, or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.5), sharex=True)
    runs = list(dict.fromkeys(r[0] for r in rows))
    settings = list(dict.fromkeys(setting_of(run) for run in runs))
    panels = [("FactorVAE metric (small votes)", lambda scores: scores["factorvae"])] + [
        (f"{factor}: share of its votes right",
         lambda scores, factor=factor: scores["score_by_factor"][factor])
        for factor in FACTOR_NAMES]
    for ax, (title, value) in zip(axes.flat, panels):
        for run in runs:   # a colour per setting, a line style per run within it (by seed)
            mine = [(step, value(scores)) for name, step, scores in rows if name == run]
            nth = runs.index(run) - runs.index(next(r for r in runs if setting_of(r) == setting_of(run)))
            ax.plot(*zip(*mine), marker="o", markersize=3, label=run,
                    color=f"C{settings.index(setting_of(run)) % 10}", linestyle=("-", "--", ":", "-.")[nth % 4])
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("the study's runs over training: kept weights every 10,000 steps, small votes", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshots", help="the folder of kept weights: RUN/step-N/eval-small.log")
    p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="where the CSV and PNG go")
    args = p.parse_args(argv)
    if not os.path.isdir(args.snapshots):
        raise SystemExit(f"error: {args.snapshots} is not a folder")
    rows = scored_steps(args.snapshots)
    if not rows:
        raise SystemExit(f"error: no step under {args.snapshots} has an eval-small.log with scores")
    table = os.path.join(args.out, "over-training.csv")
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("run", "step") + FIELDS + ("units above 0.5 nats",)
                        + tuple(f"factorvae {factor}" for factor in FACTOR_NAMES))
        for run, step, scores in rows:
            active = sum(u["kl"] > ACTIVE_KL for u in scores["kl_per_unit_ranked"])
            writer.writerow((run, step) + tuple(f"{scores[k]:.4g}" for k in FIELDS) + (active,)
                            + tuple(f"{scores['score_by_factor'][factor]:.2f}" for factor in FACTOR_NAMES))
    picture = plot(os.path.join(args.out, "over-training.png"), rows)
    print(f"wrote {table}" + (f" and {picture}" if picture else " (no matplotlib: no PNG)") + f": {len(rows)} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
