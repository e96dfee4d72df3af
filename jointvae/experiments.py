"""python -m jointvae.experiments dsprites-compare --seeds N --steps S [--models M ...] [--votes TRAIN EVAL]

Trains each model on dSprites with its preset spec for S steps and N seeds,
scores every run (FactorVAE metric, β-VAE metric, MIG, reconstruction error of
the eval-mode code), prints one table, per seed and mean +- sd, and appends it
to results.md in the run folder --out (or to --results FILE: e.g. the tracked
docs/results.md, once a comparison is worth keeping). Runs live in
--out/MODEL-seedK and are reused: a finished run is only evaluated again if its
eval.json is missing, an unfinished one resumes.
"""
import argparse
import json
import os
import sys

import refnet

from . import data
from .evaluation.report import comparison_section
from .evaluation.scores import score_with_disentanglement
from .models.specs import DEFAULT_SPECS, MODELS, validate_spec


def train_and_score(model_name, seed, steps, out, votes, samples=10000, log=print):
    """Train (or resume, or reuse) one run and return its evaluation dict (also saved as eval.json)."""
    from .training.trainer import Trainer
    folder = os.path.join(out, f"{model_name}-seed{seed}")
    eval_path = os.path.join(folder, "eval.json")
    spec = validate_spec(DEFAULT_SPECS[("dsprites", model_name)])
    trainer = Trainer(spec, folder, seed=seed, max_steps=steps, print_every=max(steps // 10, 1),
                      checkpoint_every=max(min(steps // 4, 5000), 1), log=log)
    if os.path.exists(os.path.join(folder, "checkpoint.npz")):
        trainer.load_checkpoint()
    if trainer.step < steps:
        log(f"{model_name} seed {seed}: training steps {trainer.step + 1}..{steps}")
        trainer.run()
    elif os.path.exists(eval_path):
        with open(eval_path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved.get("votes") == {"train": votes[0], "eval": votes[1]} and saved.get("samples") == samples:
            return saved
    log(f"{model_name} seed {seed}: scoring")
    images, _ = data.load_dataset("dsprites")
    result = {"model": model_name, "seed": seed, "steps": trainer.step,
              **score_with_disentanglement(trainer.model, images, seed, *votes, n_samples=samples, log=log)}
    with open(eval_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return result


def append_results(path, command, results, models, steps, seeds, votes, samples, seconds):
    """Append the comparison's markdown section to the file at path; -> the text appended."""
    text = comparison_section(command, results, models, steps, seeds, votes, samples, seconds)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    return text


OUT = os.path.join("runs", "dsprites-compare")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.experiments", description=__doc__.splitlines()[0])
    p.add_argument("experiment", choices=["dsprites-compare"], help="the experiment to run")
    p.add_argument("--seeds", type=int, default=1, help="seeds per model, 0..N-1 (default: 1)")
    p.add_argument("--steps", type=int, required=True, help="training steps per run (required)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL",
                   help=f"models to compare, of {', '.join(MODELS)} (default: all of them)")
    p.add_argument("--votes", type=int, nargs=2, default=(10000, 5000), metavar=("TRAIN", "EVAL"),
                   help="training and evaluation votes of the FactorVAE and beta-VAE metrics (default: 10000 5000)")
    p.add_argument("--samples", type=int, default=10000,
                   help="images for the units' scale, MIG and reconstruction (default: 10000)")
    p.add_argument("--out", default=OUT, help=f"run folder: one MODEL-seedK folder per run (default: {OUT})")
    p.add_argument("--results", metavar="FILE",
                   help="markdown file to append the table to (default: results.md in --out; the tracked "
                        "docs/results.md only when named here)")
    return p


def main(argv=None):
    import time
    refnet.retain_freed_memory()   # refnet/memory.py
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.seeds < 1 or args.steps < 1:
        raise SystemExit("error: --seeds and --steps must be at least 1")
    start = time.perf_counter()
    try:
        results = [train_and_score(m, s, args.steps, args.out, args.votes, args.samples)
                   for s in range(args.seeds) for m in args.models]
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f"error: {e}") from None
    command = "python -m jointvae.experiments " + " ".join(sys.argv[1:] if argv is None else argv)
    results_path = args.results or os.path.join(args.out, "results.md")
    print(append_results(results_path, command, results, args.models, args.steps, args.seeds, args.votes,
                         args.samples, time.perf_counter() - start))
    print(f"appended the table to {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
