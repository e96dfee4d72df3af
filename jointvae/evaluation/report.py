"""The markdown report of a comparison: one row per scored run, then mean +- sd per model.

    results_table(results, models)   results: dicts with 'model', 'seed' and the COLUMNS keys -> markdown
    comparison_section(...)          a dated '### dSprites comparison' section: how it was run, then the table
"""
import datetime
import os
import platform

import numpy as np

COLUMNS = (("factorvae", "FactorVAE metric"), ("betavae", "β-VAE metric"), ("mig", "MIG"),
           ("recon_loss", "recon (BCE / image)"))


def results_table(results, models):
    """Markdown: one row per run, then mean +- sd per model (np.std: the population sd)."""
    header = "| model | seed | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for r in results:
        lines.append(f"| {r['model']} | {r['seed']} | " + " | ".join(f"{r[k]:.3f}" for k, _ in COLUMNS) + " |")
    for name in models:
        runs = [r for r in results if r["model"] == name]
        if runs:
            cells = [f"{np.mean([r[k] for r in runs]):.3f} ± {np.std([r[k] for r in runs]):.3f}" for k, _ in COLUMNS]
            lines.append(f"| **{name}** | mean ± sd ({len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_section(command, results, models, steps, seeds, votes, samples, seconds):
    """The section experiments appends to a results file (its run folder's results.md, or docs/results.md
    when named): today's date, the command, this machine, the settings, the table."""
    return (f"\n### dSprites comparison, {datetime.date.today().isoformat()}\n\n"
            f"`{command}` on {platform.node()} ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores), {seconds / 60:.0f} min in all. {steps} training steps per run "
            f"(the papers: 300k), {seeds} seed(s); metrics with {votes[0]} training and {votes[1]} evaluation "
            f"votes; scale, MIG and reconstruction on {samples} images.\n\n{results_table(results, models)}\n")
