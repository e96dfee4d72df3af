"""The table of a sweep: per setting (the grid values other than the seed, or --by) and per evaluate field, the
median, the interquartile range and each seed's value; as Markdown, CSV and (with matplotlib, the [plots]
extra) a PNG plot.
"""
import csv
import importlib.util
import io
import os

import numpy as np

from .runs import field_value, load_results

DEFAULT_FIELDS = ("discrete_accuracy", "recon_loss", "factorvae", "betavae", "mig")

# What a figure's axis says for the usual evaluate fields; any other field is named as it is.
FIELD_LABELS = {
    "recon_loss": "reconstruction error (BCE summed over pixels)",
    "factorvae": "FactorVAE metric",
    "betavae": "β-VAE metric",
    "mig": "MIG",
    "discrete_accuracy": "accuracy of the discrete latent (categories mapped to labels)",
}


def default_fields(results):
    """The usual evaluate fields that the results have (at least recon_loss)."""
    found = [f for f in DEFAULT_FIELDS if any(field_value(r, f) is not None for r in results.values())]
    return found or ["recon_loss"]


def settings(sweep, by=None):
    """-> (by keys, {setting key tuple: [points]}): the points grouped by the values of `by` (default: every grid
    key but the seed), in the sweep's order."""
    by = list(by) if by else [k for k in sweep.grid_keys() if k != "seed"]
    for key in by:   # a typo would make every point one setting, silently
        if not any(key in p["settings"] or key in ("seed", "steps") or key in p["spec"] for p in sweep.points):
            raise ValueError(f"--by {key}: no point of {sweep.path} has that key (its grid keys: "
                             f"{', '.join(sweep.grid_keys())})")
    groups = {}
    for point in sweep.points:
        groups.setdefault(tuple(setting_value(point, k) for k in by), []).append(point)
    return by, groups


def gather(sweep, fields=None, by=None):
    """-> (by keys, fields, rows): one row per (setting, field) with values {seed: value} of the evaluated runs."""
    results = load_results(sweep)
    fields = list(fields or default_fields(results))
    by, groups = settings(sweep, by)
    rows = []
    for key, points in groups.items():
        points = [p for p in points if p["name"] in results]
        if not points:
            continue
        seeds = [p["seed"] for p in points]
        if len(set(seeds)) != len(seeds):   # a column per seed: one run each
            raise ValueError(f"--by {' '.join(by) or '(none)'} puts several runs of one seed in the setting "
                             f"{setting_label(dict(zip(by, key)))}: add the grid keys that tell them apart")
        for field in fields:
            values = {p["seed"]: field_value(results[p["name"]], field) for p in points}
            values = {s: v for s, v in sorted(values.items()) if v is not None}
            if not values:   # a field this setting's runs do not have (a β-VAE's discrete accuracy)
                continue
            # Median and IQR over the finite values (n counts those); a run that diverged shows as nan.
            numbers = np.array([v for v in values.values() if np.isfinite(v)], dtype=float)
            q1, median, q3 = np.percentile(numbers, [25, 50, 75]) if len(numbers) else (np.nan,) * 3
            rows.append({"setting": dict(zip(by, key)), "field": field, "n": len(numbers), "median": median,
                         "iqr": q3 - q1, "seeds": values})
    return by, fields, rows


def setting_value(point, key):
    """A point's value of key: its grid value, else its training setting or spec value (as text)."""
    if key in point["settings"]:
        value = point["settings"][key]
    elif key in ("seed", "steps"):
        value = point[key]
    else:
        value = point["spec"].get(key)
    if value is None:
        return "-"
    return value if isinstance(value, (int, float, str)) else str(value)


def _fmt(value):
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4g}"


def tables(by, rows):
    """(markdown, csv text) of the rows: one line per (setting, field), a column per seed."""
    seeds = sorted({s for r in rows for s in r["seeds"]})
    header = [*by, "field", "n", "median", "IQR", *[f"seed {s}" for s in seeds]]
    lines = [[*(str(r["setting"][k]) for k in by), r["field"], str(r["n"]), _fmt(r["median"]), _fmt(r["iqr"]),
              *(_fmt(r["seeds"].get(s)) for s in seeds)] for r in rows]
    markdown = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                         + ["| " + " | ".join(line) + " |" for line in lines]) + "\n"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return markdown, text.getvalue()


def _pyplot():
    """matplotlib.pyplot drawing into files (Agg), or None without matplotlib (the [plots] extra)."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(path, by, fields, rows):
    """A PNG: one panel per field, each setting's seeds as dots and its median as a bar. -> path, or None
    (and a line saying so) without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(fields), figsize=(4 + 2 * len(fields), 4), squeeze=False)
    for ax, field in zip(axes[0], fields):
        mine = [r for r in rows if r["field"] == field]
        for x, r in enumerate(mine):
            ax.scatter([x] * len(r["seeds"]), list(r["seeds"].values()), s=14, color="tab:blue")
            ax.hlines(r["median"], x - 0.3, x + 0.3, color="black")
        ax.set_xticks(range(len(mine)))
        ax.set_xticklabels([setting_label(r["setting"]) for r in mine],
                           rotation=30, ha="right", fontsize=7)
        ax.set_title(field)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def setting_label(setting):
    """'model=factorvae,tc_gamma=40', or 'all' for a sweep of seeds only."""
    return ",".join(f"{k}={v}" for k, v in setting.items()) or "all"


def scatter_points(sweep, x, y, by=None):
    """-> {setting label: [(x, y, seed), ...]}: one point per evaluated run that has both fields."""
    results = load_results(sweep)
    by, groups = settings(sweep, by)
    found = {}
    for key, points in groups.items():
        pairs = [(field_value(results[p["name"]], x), field_value(results[p["name"]], y), p["seed"])
                 for p in points if p["name"] in results]
        pairs = [pair for pair in pairs if None not in pair[:2]]
        if pairs:
            found[setting_label(dict(zip(by, key)))] = pairs
    return found


def check_references(references):
    """[(label, x, y), ...] with x and y given as numbers or text -> the same with x and y as finite floats; a
    one-line ValueError naming the point otherwise."""
    points = []
    for label, x, y in references:
        try:
            point = (str(label), float(x), float(y))
        except (TypeError, ValueError):
            raise ValueError(f"reference {label!r}: X and Y must be numbers, got {x!r} and {y!r}") from None
        if not (np.isfinite(point[1]) and np.isfinite(point[2])):
            raise ValueError(f"reference {label!r}: X and Y must be finite, got {x!r} and {y!r}")
        points.append(point)
    return points


def scatter(path, sweep, x, y, by=None, references=()):
    """A PNG with one dot per evaluated run, field x across and field y up, a colour per setting (as the FactorVAE
    paper's figures 4 and 5 put reconstruction error against the disentanglement metric), and each of
    `references`, (label, x, y) points from elsewhere (a paper's figure, a published model), as a labelled grey
    star. -> path, or None without matplotlib or without runs that have both fields."""
    references = check_references(references)
    found = scatter_points(sweep, x, y, by)
    plt = _pyplot()
    if not found or plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, pairs in found.items():
        xs, ys, seeds = zip(*pairs)
        dots = ax.scatter(xs, ys, s=28, label=label, alpha=0.85)
        for px, py, seed in pairs:
            ax.annotate(str(seed), (px, py), xytext=(3, 3), textcoords="offset points", fontsize=6,
                        color=dots.get_facecolor()[0])
    for label, px, py in references:
        ax.scatter([px], [py], s=90, marker="*", color="0.35", zorder=3)
    middle = sum(ax.get_xlim()) / 2          # the axes' limits once every point is drawn
    for label, px, py in references:
        right = px <= middle   # the label on the side with room, so that it stays inside the axes
        ax.annotate(label, (px, py), xytext=(6 if right else -6, -3), textcoords="offset points", fontsize=6,
                    color="0.25", ha="left" if right else "right")
    ax.set_xlabel(FIELD_LABELS.get(x, x))
    ax.set_ylabel(FIELD_LABELS.get(y, y))
    ax.set_title("one dot per run (seed beside it)" + ("; stars: figures from elsewhere" if references else ""),
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def histogram(path, sweep, field, by=None, bins=12):
    """A PNG of field's distribution over the evaluated runs, one outlined histogram per setting on shared bins,
    each setting's median marked. -> path, or None without matplotlib or without runs that have the field."""
    results = load_results(sweep)
    by, groups = settings(sweep, by)
    values = {}
    for key, points in groups.items():
        found = [field_value(results[p["name"]], field) for p in points if p["name"] in results]
        found = [v for v in found if v is not None and np.isfinite(v)]
        if found:
            values[setting_label(dict(zip(by, key)))] = found
    plt = _pyplot()
    if not values or plt is None:
        return None
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, found) in enumerate(values.items()):
        color = f"C{i % 10}"
        ax.hist(found, bins=edges, histtype="step", linewidth=1.8, color=color,
                label=f"{label} (n={len(found)}, median {np.median(found):.4g})")
        ax.axvline(np.median(found), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel(field)
    ax.set_ylabel("runs")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def unit_table(sweep):
    """Markdown: each evaluated run's KL per unit, largest first (evaluate's kl_per_unit_ranked), and its total."""
    results = load_results(sweep)
    lines = ["| run | KL total | KL per unit, largest first |", "|---|---|---|"]
    for point in sweep.points:
        result = results.get(point["name"])
        if result is None or not isinstance(result.get("kl_per_unit_ranked"), list):
            continue
        units = ", ".join(f"{u.get('unit')} {_fmt(field_value(u, 'kl'))}" for u in result["kl_per_unit_ranked"]
                          if isinstance(u, dict))
        total = field_value(result, "kl_total")
        lines.append(f"| {point['name']} | {_fmt(total)} | {units} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def collect(sweep, fields=None, by=None, scatter_fields=None, log=print, hist_field=None, references=()):
    """Write collect.md, collect.csv, collect-units.md (each run's KL per unit) and, with matplotlib, collect.png,
    collect-scatter.png (scatter_fields=(x, y), with the (label, x, y) `references` as stars) and collect-hist.png
    (hist_field) into the sweep's out; -> the markdown table. references without scatter_fields: a ValueError."""
    if references and not scatter_fields:
        raise ValueError("--reference goes with --scatter X Y (it is a point on that figure)")
    references = check_references(references)
    by, fields, rows = gather(sweep, fields, by)
    markdown, text = tables(by, rows)
    os.makedirs(sweep.out, exist_ok=True)
    for name, content in (("collect.md", markdown), ("collect.csv", text)):
        with open(os.path.join(sweep.out, name), "w", encoding="utf-8") as f:
            f.write(content)
    png = plot(os.path.join(sweep.out, "collect.png"), by, fields, rows) if rows else None
    if png is None:
        log("no plot: matplotlib is not installed (pip install 'jointvae[plots]'); skipped collect.png"
            if rows else "no evaluated runs yet: nothing to plot")
    units = unit_table(sweep)
    if units:
        with open(os.path.join(sweep.out, "collect-units.md"), "w", encoding="utf-8") as f:
            f.write(units)
    if hist_field:
        path = histogram(os.path.join(sweep.out, "collect-hist.png"), sweep, hist_field, by)
        log(f"wrote {path}" if path else f"no histogram: no evaluated run has {hist_field}, or no matplotlib")
    if scatter_fields:
        x, y = scatter_fields
        path = scatter(os.path.join(sweep.out, "collect-scatter.png"), sweep, x, y, by, references)
        log(f"wrote {path}" if path else f"no scatter: no evaluated run has both {x} and {y}, or no matplotlib")
    return markdown
