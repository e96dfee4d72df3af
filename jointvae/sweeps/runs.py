"""One point of a sweep: its folder, its state, and run_one (train or resume, then evaluate; idempotent).

    OUT/NAME/        the training run (specs.json, train_args.json, checkpoint.npz, weights.npz, log.jsonl)
    OUT/NAME/eval.json     `python -m jointvae.evaluate` of the finished run (its JSON, plus "sweep_step")
    OUT/NAME/screen.json   the same on the training split at the screening step (run --screen)

States, read off those files: 'pending' (no checkpoint), 'partial' (a checkpoint short of the point's steps),
'trained' (all steps, not evaluated), 'evaluated' (eval.json of the last step).
"""
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from ..data.registry import REGISTRY, SPLIT_DATASETS
from ..models.specs import load_spec, validate_spec

STATES = ("pending", "partial", "trained", "evaluated")


def run_dir(sweep, name):
    return os.path.join(sweep.out, name)


def checkpoint_step(folder):
    """The step of folder/checkpoint.npz, None without one (or with one that cannot be read)."""
    path = os.path.join(folder, "checkpoint.npz")
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return int(f["step"])
    except (OSError, ValueError, KeyError, EOFError):
        return None


def read_json(path):
    """A JSON object from path, None when missing or unreadable (a half-written file never is: writes are atomic)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.write("\n")
    os.replace(tmp, path)


def last_records(folder, count=2):
    """The last `count` whole records of folder/log.jsonl, oldest first ([] without a log)."""
    try:
        with open(os.path.join(folder, "log.jsonl"), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    records = []
    for line in reversed(lines):
        try:
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
        except ValueError:
            continue
        if len(records) == count:
            break
    return records[::-1]


def training_rate(records):
    """Steps per second between the last two records, if one training process wrote both (its wall_s grew; a
    resumed run starts its clock again), else None."""
    if len(records) < 2:
        return None
    (s0, w0), (s1, w1) = ((r["step"], r.get("wall_s")) for r in records[-2:])
    if not all(isinstance(w, (int, float)) for w in (w0, w1)) or w1 <= w0 or s1 <= s0:
        return None
    return (s1 - s0) / (w1 - w0)


def state(sweep, point):
    """{'state', 'step', 'steps', 'loss', 'rate' (steps/s of its last logged stretch, or None), 'code_spread'
    (the last record's, objective.code_spread; None in logs from before it was recorded), 'eval' (eval.json or
    None), 'screen' (screen.json or None)}."""
    folder = run_dir(sweep, point["name"])
    step = checkpoint_step(folder)
    evaluation = read_json(os.path.join(folder, "eval.json"))
    if step is None and brought_back(folder, point, evaluation):
        step = point["steps"]
    if step is None:
        name = "pending"
    elif step < point["steps"]:
        name = "partial"
    elif evaluation is not None and evaluation.get("sweep_step") == step:
        name = "evaluated"
    else:
        name = "trained"
    records = last_records(folder)
    return {"state": name, "step": step or 0, "steps": point["steps"],
            "loss": records[-1].get("loss") if records else None, "rate": training_rate(records),
            "code_spread": records[-1].get("code_spread") if records else None,
            "eval": evaluation if name == "evaluated" else None,
            "screen": read_json(os.path.join(folder, "screen.json"))}


def brought_back(folder, point, evaluation):
    """A finished run without its checkpoint, evaluated at the point's steps: trained elsewhere (bench/sweep_on_gpu.sh
    brings back a run's eval.json, specs.json, weights.npz and log.jsonl, not its optimiser state), or one whose
    weights were lost with the machine that trained it (eval.json and specs.json kept). Either is finished: its
    scores are reported and it is not trained again; without weights.npz nothing can re-score or draw it
    (weights_kept)."""
    return (evaluation is not None and evaluation.get("sweep_step") == point["steps"]
            and os.path.exists(os.path.join(folder, "specs.json")))


def weights_kept(folder):
    """Whether a run folder still has its model's weights (a finished run's may have been lost: brought_back)."""
    return os.path.exists(os.path.join(folder, "weights.npz"))


def split_description(spec, split):
    """Which images and labels an evaluation on `split` of the spec's data uses, in words."""
    dataset = spec.get("dataset")
    info = REGISTRY.get(dataset)
    if spec.get("folder") is not None:
        return f"a seeded sample of the training folder {spec['folder']} (no labels)"
    if dataset in SPLIT_DATASETS:
        return f"{dataset}'s {split} split with its {'digit' if dataset == 'mnist' else 'class'} labels"
    return f"{dataset}, its one set (the training data){' with its factor labels' if info and info.labelled else ''}"


@contextlib.contextmanager
def run_lock(folder):
    """An exclusive lock on the run folder: a second run-one of the same point (another sweep run) is refused."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{folder}: another process is running this point") from None
        yield


def train(sweep, point, target, log=print, stop=None):
    """Train the point's run to `target` steps, resuming its checkpoint; -> the step reached.
    Raises TrainingStopped on SIGINT/SIGTERM/SIGUSR1 (checkpoint written); stop: the StopSignals of the main
    thread, for a run in a worker thread (Trainer.run)."""
    from ..training.trainer import Trainer
    folder = run_dir(sweep, point["name"])
    resume = checkpoint_step(folder) is not None
    spec = point["spec"]
    if resume:
        saved = load_spec(os.path.join(folder, "specs.json"))
        check_same_spec(folder, saved, validate_spec(spec))
        spec = saved
    trainer = Trainer(spec, folder, seed=point["seed"], epochs=target, max_steps=target,
                      checkpoint_every=point["checkpoint_every"], print_every=max(1, target // 20),
                      blas_threads=1, log=log, device=point.get("device", "cpu"))
    if resume:
        trainer.load_checkpoint()
        if trainer.step >= target:
            return trainer.step
        log(f"{point['name']}: resuming at step {trainer.step}")
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            trainer.run(stop=stop)
    finally:
        trainer.close()   # its graphs' memory freed here, where it is safe beside other runs (captured_step.py)
    return trainer.step


def check_same_spec(folder, saved, wanted):
    """RuntimeError naming the first field where the run in folder differs from the sweep's point."""
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            raise RuntimeError(f"{folder} was trained with {key} = {saved.get(key)!r}, the sweep now says "
                               f"{wanted.get(key)!r}: remove the folder or choose another out")


def evaluate(sweep, point, split=None, log=print, stop=None):
    """`python -m jointvae.evaluate` of the run folder -> its JSON dict (with sweep_step). split 'train' scores
    the training data (MNIST-like: --split train; other datasets have one set, the training data).
    stop: a StopSignals to watch (a run in a worker thread): when it has received a signal, the evaluation is
    ended and _Stopped raised."""
    folder = run_dir(sweep, point["name"])
    options = dict(sweep.evaluate)
    split = split or options.pop("split", "test")
    options.pop("split", None)
    argv = [sys.executable, "-m", "jointvae.evaluate", folder]
    if point["spec"].get("dataset") in SPLIT_DATASETS and point["spec"].get("folder") is None:
        argv += ["--split", split]
    for key, value in options.items():
        argv += [f"--{key}", *map(str, value if isinstance(value, list) else [value])]
    if point.get("device") == "gpu":   # a run trained on a GPU is scored there too
        argv += ["--device", "gpu"]
    log(f"{point['name']}: evaluating ({split_description(point['spec'], split)})")
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        out = None
        while out is None:
            try:
                out, _ = child.communicate(timeout=None if stop is None else 0.5)
            except subprocess.TimeoutExpired:
                if stop.received is not None:
                    raise _Stopped(stop.received) from None
    finally:
        if child.poll() is None:   # a signal (KeyboardInterrupt, or the SIGTERM handler below) stops it too
            child.terminate()
            child.wait()
    if child.returncode != 0:
        if stop is not None and stop.received is not None:   # the signal reached the child too (Ctrl-C, timeout)
            raise _Stopped(stop.received)
        raise RuntimeError(f"{point['name']}: evaluate exited with status {child.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(sweep_step=checkpoint_step(folder), sweep_split=split,
                  sweep_data=split_description(point["spec"], split))
    return result


class _Stopped(Exception):
    def __init__(self, signum):
        self.signum = signum


def _raise_stopped(signum, frame):
    raise _Stopped(signum)


def run_one(sweep, name, screen=None, log=print, device=None, stop=None):
    """Train (or resume) the point `name` and evaluate it into eval.json; with screen=STEPS train to at most
    STEPS and evaluate on the training split into screen.json. Idempotent: finished work is not done again.
    device ('cpu' or 'gpu') overrides the point's, for a run trained on a machine lent for it.
    stop: the main thread's StopSignals, for a run in a worker thread (together.py); by default run_one catches
    the signals itself.
    -> exit status: 0, or 128 + the signal that stopped it (its checkpoint written)."""
    from ..training.stopping import TrainingStopped
    point = dict(sweep.point(name), **({"device": device} if device else {}))
    folder = run_dir(sweep, name)
    if screen is None and checkpoint_step(folder) is None and brought_back(folder, point, read_json(
            os.path.join(folder, "eval.json"))):
        log(f"{name}: already trained and evaluated elsewhere ({folder})")
        return 0
    target = point["steps"] if screen is None else min(screen, point["steps"])
    result_file = os.path.join(folder, "eval.json" if screen is None else "screen.json")
    if screen is not None and read_json(result_file) is not None:
        log(f"{name}: already screened ({result_file})")
        return 0
    with run_lock(folder):
        try:
            step = train(sweep, point, target, log=log, stop=stop)
        except TrainingStopped as stopped:
            kept = "checkpoint written" if checkpoint_step(folder) is not None else "nothing trained yet"
            log(f"{name}: {stopped}; {kept} (run the sweep again to finish it)")
            return stopped.exit_status
        saved = read_json(result_file)
        if saved is not None and saved.get("sweep_step") == step:
            log(f"{name}: step {step}, already evaluated ({os.path.basename(result_file)})")
            return 0
        # In the main thread, SIGTERM and SIGUSR1 end the evaluation as SIGINT does; a worker thread's watches stop.
        previous = {} if stop is not None else {s: signal.signal(s, _raise_stopped)
                                                for s in (signal.SIGTERM, signal.SIGUSR1)}
        try:
            result = evaluate(sweep, point, "train" if screen is not None else None, log=log, stop=stop)
        except (_Stopped, KeyboardInterrupt) as e:
            signum = getattr(e, "signum", signal.SIGINT)
            log(f"{name}: evaluation stopped by {signal.Signals(signum).name} (run the sweep again to finish it)")
            return 128 + int(signum)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        write_json(result_file, result)
        log(f"{name}: wrote {result_file}")
    return 0


def load_results(sweep, kind="eval"):
    """{name: the point's eval.json (or screen.json)} for the points that have one. An eval.json of another step
    than the point's (the sweep's steps were raised since, and the run is being trained on) is not its result."""
    found = {}
    for point in sweep.points:
        result = read_json(os.path.join(run_dir(sweep, point["name"]), f"{kind}.json"))
        if result is None or (kind == "eval" and result.get("sweep_step", point["steps"]) != point["steps"]):
            continue
        found[point["name"]] = result
    return found


def field_value(result, field):
    """A number of an evaluate JSON by name ('recon_loss', or dotted: 'seconds.total'); None if absent."""
    value = result
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

