"""python -m jointvae.sweep run|run-one|status|collect|export SWEEP_FILE ...

Trains a grid of runs from one sweep file (TOML or JSON; jointvae/sweeps/sweep_file.py describes it), each in
its own folder OUT/NAME, and evaluates each into OUT/NAME/eval.json.

    python -m jointvae.sweep run sweep.toml                 # train what is missing, resume what was cut short
    python -m jointvae.sweep run sweep.toml --workers 4     # the local engine: 4 processes, 1 BLAS thread each
    python -m jointvae.sweep run sweep.toml --screen 200 --keep 2 --select discrete_accuracy
    python -m jointvae.sweep run-one sweep.toml NAME1 NAME2 --device gpu     # these points at once, one process
    python -m jointvae.sweep status sweep.toml              # one line per run
    python -m jointvae.sweep collect sweep.toml --fields discrete_accuracy recon_loss --by lr
    python -m jointvae.sweep collect sweep.toml --scatter recon_loss factorvae   # one dot per run
    python -m jointvae.sweep collect sweep.toml --scatter recon_loss factorvae --reference "a paper" 45 0.82
    python -m jointvae.sweep export sweep.toml --best factorvae --to pretrained --prefix dsprites --by model

`run` is idempotent: run it again and only the missing work runs. With --screen STEPS every point trains to
STEPS and is scored on the training split (never the test split); only the best --keep K by --select FIELD
(min:FIELD or max:FIELD to say which way; by default losses go down, accuracies and metrics up) train on.
"""
import argparse
import os
import sys

from . import data
from .evaluation.progress import duration
from .sweeps import screen as screening
from .sweeps.collect import collect
from .sweeps.engines import ENGINES, EngineUnavailable, Task, make_engine
from .sweeps.export import export_best
from .sweeps.runs import run_one, state
from .sweeps.sweep_file import SweepError, load_sweep
from .sweeps.together import combined_status, run_together
from .training.trainer import COLLAPSED_SPREAD


def positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="python -m jointvae.sweep", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate every point that is not finished")
    run.add_argument("sweep_file")
    run.add_argument("--engine", choices=sorted(ENGINES), default="local", help="where the runs go (default local)")
    run.add_argument("--workers", type=positive, help="local: worker processes (default: one per core)")
    run.add_argument("--local-gpus", type=positive, metavar="N",
                     help="local, on a GPU machine: use GPUs 0..N-1, --per-gpu processes each (points with device gpu)")
    run.add_argument("--per-gpu", type=positive, metavar="K", help="local: processes per GPU (default 1)")
    run.add_argument("--partition", help="slurm: the partition")
    run.add_argument("--time", type=positive, metavar="MINUTES", help="slurm: each task's time limit")
    run.add_argument("--gpus", type=int, help="slurm: GPUs per task")
    run.add_argument("--array-parallelism", type=positive, metavar="K", help="slurm: tasks at once")
    run.add_argument("--screen", type=positive, metavar="STEPS", help="train every point to STEPS first")
    run.add_argument("--keep", type=positive, metavar="K", help="with --screen: how many go on")
    run.add_argument("--select", metavar="FIELD", help="with --screen: the evaluate field that ranks them")
    one = sub.add_parser("run-one", help="one point: train or resume, then evaluate (what the engines run); "
                                         "several names: at once in one process, a thread (and GPU stream) each")
    one.add_argument("sweep_file")
    one.add_argument("names", nargs="+", metavar="name")
    one.add_argument("--screen", type=positive, metavar="STEPS", help="train to STEPS, score on the training split")
    one.add_argument("--device", choices=("cpu", "gpu"), help="train on this device, whatever the sweep file says")
    status = sub.add_parser("status", help="one line per run: state, step, last loss, metric")
    status.add_argument("sweep_file")
    col = sub.add_parser("collect", help="a table per setting: median, IQR and each seed; Markdown, CSV, PNG")
    col.add_argument("sweep_file")
    col.add_argument("--fields", nargs="+", help="evaluate fields (default: the accuracy or metrics, recon_loss)")
    col.add_argument("--by", nargs="+", help="keys that make a setting (default: the grid's, but the seed)")
    col.add_argument("--hist", metavar="FIELD",
                     help="also collect-hist.png: FIELD's distribution over the runs, one histogram per setting")
    col.add_argument("--scatter", nargs=2, metavar=("X", "Y"),
                     help="also collect-scatter.png: field Y against field X, one dot per run, a colour per setting")
    col.add_argument("--reference", nargs=3, action="append", default=[], metavar=("LABEL", "X", "Y"),
                     help="with --scatter: a point from elsewhere (a paper, a published model) drawn as a labelled "
                          "star; repeat for more (the axes grow to hold it)")
    exp = sub.add_parser("export", help="the best run of each setting as a model folder (specs.json, weights.npz, "
                                        "eval.json, pictures, README.md)")
    exp.add_argument("sweep_file")
    exp.add_argument("--best", required=True, metavar="FIELD",
                     help="the evaluate field that picks the run (min:FIELD / max:FIELD to say which way)")
    exp.add_argument("--to", required=True, metavar="DIR", help="where the folders go, DIR/PREFIX-<setting>")
    exp.add_argument("--prefix", default="", help="the folders' name before the setting's values")
    exp.add_argument("--by", nargs="+", help="keys that make a setting (default: the grid's, but the seed)")
    exp.add_argument("--force", action="store_true", help="replace folders that exist (each once the new one is whole)")
    exp.add_argument("--no-pictures", action="store_true", help="only the model, its eval.json, log.jsonl and README")
    return p


def task(sweep, name, screen=None):
    argv = [sys.executable, "-m", "jointvae.sweep", "run-one", sweep.path, name]
    return Task(name, argv + (["--screen", str(screen)] if screen else []))


def warm_data(sweep):
    """Load each dataset once here, so that parallel workers find it cached rather than all building it."""
    seen = set()
    for point in sweep.points:
        spec = point["spec"]
        key = (spec.get("dataset"), spec.get("folder"), str(spec.get("image_shape")))
        if key not in seen and spec.get("dataset") != "dsprites":
            seen.add(key)
            data.load_for_spec(spec, "train")


def run_all(sweep, engine, tasks):
    """engine.run(tasks); -> exit status: 0, 1 when a task failed, 128 + signal when the engine was stopped."""
    if not tasks:
        return 0
    results = engine.run(tasks)
    stopped = getattr(engine, "stopped", None)
    if stopped:
        print(f"stopped: run `python -m jointvae.sweep run {sweep.path}` again to finish", file=sys.stderr)
        return 128 + int(stopped)
    failed = sorted(n for n, rc in results.items() if rc != 0)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)} (logs: {os.path.join(sweep.out, 'logs')})",
              file=sys.stderr)
        return 1
    return 0


def cmd_run(args):
    if (args.keep is not None or args.select is not None) and args.screen is None:
        raise ValueError("--keep and --select go with --screen STEPS")
    if args.screen is not None and (args.keep is None or args.select is None):
        raise ValueError("--screen STEPS needs --keep K and --select FIELD")
    sweep = load_sweep(args.sweep_file)
    print(f"{len(sweep.points)} point(s), listed in {sweep.write_expanded()}")
    args.log_dir = os.path.join(sweep.out, "logs")
    engine = make_engine(args.engine, args)
    if args.engine == "local":
        warm_data(sweep)
    if args.screen is not None:
        todo = [task(sweep, p["name"], args.screen) for p in sweep.points
                if not os.path.exists(os.path.join(sweep.out, p["name"], "screen.json"))]
        status = run_all(sweep, engine, todo)
        if status:
            return status
        record = screening.select(sweep, args.screen, args.keep, args.select)
        print(screening.describe(record))
        points = [sweep.point(n) for n in record["kept"]]
    else:
        points = sweep.points
    todo = [task(sweep, p["name"]) for p in points if state(sweep, p)["state"] != "evaluated"]
    print(f"{len(points) - len(todo)} of {len(points)} run(s) already evaluated; {len(todo)} to run"
          f"{f' on {args.engine}' if todo else ''}")
    status = run_all(sweep, engine, todo)
    if status == 0:
        print(f"done: python -m jointvae.sweep status {args.sweep_file}; "
              f"python -m jointvae.sweep collect {args.sweep_file}")
    return status


def metric_text(evaluation):
    for field in ("discrete_accuracy", "factorvae", "mig", "recon_loss"):
        if isinstance(evaluation.get(field), (int, float)):
            return f"{field} {evaluation[field]:.4g}"
    return ""


def cmd_status(args):
    sweep = load_sweep(args.sweep_file)
    record = screening.read(sweep)
    width = max(len(p["name"]) for p in sweep.points)
    counts = {}
    for point in sweep.points:
        s = state(sweep, point)
        name = s["state"]
        if record and point["name"] not in record.get("kept", []) and name != "evaluated":
            name = "screened-out" if point["name"] in record.get("scores", {}) else name
        counts[name] = counts.get(name, 0) + 1
        loss = f"loss {s['loss']:.2f}" if isinstance(s["loss"], (int, float)) else "loss -"
        metric = metric_text(s["eval"]) if s["eval"] else (
            f"screen: {metric_text(s['screen'])}" if s["screen"] else "")
        if name == "partial" and s["rate"]:   # at the rate of its last logged stretch (it may be stopped now)
            metric = f"{s['rate']:.2f} steps/s, {duration((s['steps'] - s['step']) / s['rate'])} to go {metric}"
        if isinstance(s["code_spread"], (int, float)) and s["code_spread"] < COLLAPSED_SPREAD:
            metric = f"{metric.rstrip()} collapsed: one code for every image (code spread {s['code_spread']:.1e})"
        print(f"{point['name']:<{width}}  {name:<12} step {s['step']:>6}/{s['steps']:<6}  {loss:<12} {metric}".rstrip())
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return 0


def cmd_run_one(args):
    sweep = load_sweep(args.sweep_file)
    if len(args.names) == 1:
        return run_one(sweep, args.names[0], screen=args.screen, device=args.device)
    if args.screen is not None:
        raise ValueError("--screen goes with one name (the engines screen one point per process)")
    warm_data(sweep)   # once, before the threads, rather than by each of them
    statuses = run_together(sweep, args.names, device=args.device)
    for name in args.names:
        print(f"{name}: exit {statuses.get(name, 1)}")
    return combined_status(statuses)


def cmd_collect(args):
    sweep = load_sweep(args.sweep_file)
    print(collect(sweep, args.fields, args.by, args.scatter, log=lambda line: print(line, file=sys.stderr),
                  hist_field=args.hist, references=args.reference), end="")
    print(f"wrote {os.path.join(sweep.out, 'collect.md')} and collect.csv", file=sys.stderr)
    return 0


def cmd_export(args):
    sweep = load_sweep(args.sweep_file)
    export_best(sweep, args.best, args.to, args.prefix, args.by, force=args.force, pictures=not args.no_pictures,
                log=lambda line: print(line, file=sys.stderr))
    return 0


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "run-one":
            return cmd_run_one(args)
        return {"run": cmd_run, "status": cmd_status, "collect": cmd_collect, "export": cmd_export}[args.command](args)
    except (SweepError, EngineUnavailable, ValueError, RuntimeError, OSError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
