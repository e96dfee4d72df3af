"""Which units win the FactorVAE metric's votes, and its score as it prunes more: one markdown table per model.

    python docs/dsprites-study/pruning.py MODEL_FOLDER [MODEL_FOLDER ...] [--thresholds 0.05 0.1 0.2 0.5]
                                          [--votes 10000 5000] [--samples 10000] [--seed 0 [1 2 ...]]
    python docs/dsprites-study/pruning.py --screen MODEL_FOLDER ...    # from each eval.json alone: seconds

The FactorVAE metric leaves out a unit whose eval-mode code has a global standard deviation under 0.05
(disentanglement_lib's default, metrics.PRUNE_STD), and compares the others by their variance within a vote's
batch over their global variance. A unit that carries almost nothing can still pass: its mean moves by a tenth of
the prior's spread (KL about 0.005 nats) and passes the cut, and if that small spread comes mostly from a few
images, many batches hold none or one of them, and in those votes the unit looks nearly fixed, whatever factor
was fixed.

Each model encodes all 737,280 dSprites images once (evaluate's code table: 11-12 minutes a model on one
core beside the study's two runs, about 1,080 images/s), then scores the metric at each threshold with the votes
`python -m jointvae.evaluate MODEL --seed S` draws, so the row at 0.05 and seed 0 is evaluate's score. Several
seeds give the metric's own noise on one model: the same code, other votes. The heading gives each unit's global
standard deviation and, when an eval.json lies beside the model, its KL; each row the units kept, the score, the
share of each factor's evaluation votes it got right, and the share of the training votes that went to units of
under 0.1 nats (scores.quiet_unit_votes; when the KL is known).

--screen encodes nothing: one row per model from the eval.json beside it: which factors' votes the metric got
right (a factor the code does not hold can still score when a unit that looks still by chance is mapped to it),
and the share of its votes that quiet units won, and which, to choose the runs worth the full check. report.sh
writes it as factorvae-votes.md.
"""
import argparse
import json
import os

import numpy as np

from jointvae import data, load_model
from jointvae.data.dsprites import FACTOR_NAMES
from jointvae.evaluation import metrics
from jointvae.evaluation.inspection import eval_codes
from jointvae.evaluation.progress import Progress, stderr_line
from jointvae.evaluation.scores import QUIET_KL, CodeTable, quiet_unit_votes


def read_eval(folder):
    """The eval.json beside the model, or {} without one."""
    path = os.path.join(folder, "eval.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def unit_kl(evaluated):
    """{unit name: KL} of an eval.json's kl_per_unit_ranked ({} without it)."""
    return {u["unit"]: u["kl"] for u in evaluated.get("kl_per_unit_ranked", [])}


def screen(folders, factors=FACTOR_NAMES):
    """One markdown row per model from its eval.json: the FactorVAE metric, the share of each factor's evaluation
    votes it got right (metrics.factorvae_score_by_factor), and the training votes quiet units won."""
    print(f"| run | FactorVAE metric | {' | '.join(factors)} | training votes won by units under {QUIET_KL} nats "
          "| those units |")
    print("|---|---|" + "---|" * len(factors) + "---|---|")
    for folder in folders:
        evaluated = read_eval(folder)
        factorvae = evaluated.get("metrics", {}).get("factorvae")
        if factorvae is None:
            print(f"| {os.path.normpath(folder)} | no eval.json with the FactorVAE metric beside it |"
                  + " |" * len(factors) + " | |")
            continue
        by_factor = metrics.factorvae_score_by_factor(factorvae)
        right = " | ".join("-" if by_factor.get(f) is None else f"{by_factor[f]:.2f}" for f in factors)
        share, units = quiet_unit_votes(factorvae, unit_kl(evaluated))
        print(f"| {os.path.normpath(folder)} | {factorvae['score']:.4f} | {right} | {share:.2f} "
              f"| {' '.join(units) or '-'} |")


def score_cuts(table, layout, thresholds, seeds, votes=(10000, 5000), samples=10000):
    """[(threshold, seed, factorvae_metric's result)] for each prune cut and each seed, on one code table.

    table: a factor dataset with represent(images) (scores.CodeTable); seed S draws the votes that
    `python -m jointvae.evaluate MODEL --seed S` draws (metrics.metric_seeds)."""
    return [(threshold, seed, metrics.factorvae_metric(
                table.represent, layout, table, np.random.default_rng(metrics.metric_seeds(seed)["factorvae"]),
                *votes, n_scale=samples, prune_std=threshold))
            for threshold in thresholds for seed in seeds]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="model folders (specs.json + weights.npz) trained on dSprites")
    p.add_argument("--thresholds", type=float, nargs="+", default=[metrics.PRUNE_STD, 0.1, 0.2, 0.5],
                   help="global standard deviations under which a unit is pruned (default: 0.05 0.1 0.2 0.5)")
    p.add_argument("--votes", type=int, nargs=2, default=[10000, 5000], metavar=("TRAIN", "EVAL"),
                   help="training and evaluation votes, as evaluate's --votes (default: 10000 5000)")
    p.add_argument("--samples", type=int, default=10000, help="images for the units' scale, as evaluate's "
                   "--samples (default: 10000)")
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="evaluate's --seed, whose votes are drawn; several: the metric's noise (default: 0)")
    p.add_argument("--screen", action="store_true", help="encode nothing: one row per model from its eval.json")
    args = p.parse_args(argv)
    if args.screen:
        screen(args.models)
        return 0
    if not all(np.isfinite(t) and t >= 0 for t in args.thresholds):
        raise SystemExit(f"error: --thresholds must be finite and at least 0, got {args.thresholds}")
    if min(args.votes) < 1 or args.samples < 2:
        raise SystemExit(f"error: --votes must be at least 1 and --samples at least 2, got {args.votes} and "
                         f"{args.samples}")
    dataset, _ = data.load_dataset("dsprites")
    for folder in args.models:
        model = load_model(folder)
        progress = Progress(len(dataset), f"{folder}: encoding every image once (code table)", stderr_line)
        table = CodeTable(dataset, lambda images: eval_codes(model, images), progress=progress)
        progress.finish()
        kl = unit_kl(read_eval(folder))
        scored = score_cuts(table, model.latent_spec, args.thresholds, args.seed, args.votes, args.samples)
        units = scored[0][2]["units"]
        spread = np.sqrt(scored[0][2]["global_variance"])
        print(f"{os.path.normpath(folder)}: global standard deviation (KL in nats) of each unit: " + ", ".join(
            f"{u} {s:.3f}" + (f" ({kl[u]:.3f})" if u in kl else "") for u, s in zip(units, spread)) + "\n")
        factors = scored[0][2]["factors"]
        print(f"| prune under | vote seed | units kept | FactorVAE metric | {' | '.join(factors)} | training votes "
              f"won by units under {QUIET_KL} nats |")
        print("|---|---|---|---|" + "---|" * len(factors) + "---|")
        for threshold, seed, result in scored:
            kept = [u for u, a in zip(units, result["active"]) if a]
            by_factor = result["score_by_factor"]
            right = " | ".join("-" if by_factor[f] is None else f"{by_factor[f]:.2f}" for f in factors)
            share = f"{quiet_unit_votes(result, kl)[0]:.2f}" if kl else "(no KL per unit beside the model)"
            print(f"| {threshold:g} | {seed} | {len(kept)}: {' '.join(kept) or '-'} | {result['score']:.4f} | {right} "
                  f"| {share} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
