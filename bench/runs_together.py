"""How many training steps per second one machine gives when K runs share it: K threads of one process (a CUDA
stream each on a GPU, as `sweep run-one SWEEP NAME...` runs them), or K processes (as K `run-one`s).

    python -m bench.runs_together --device gpu --counts 1 2 4 8 --modes threads processes [--json FILE]
    python -m bench.runs_together --spec dsprites-factorvae --device gpu --counts 1 4

Each run is a Trainer of its own (seed k) stepping on random images the shape its spec wants, as in training
(buffered_step: one CUDA graph per step on a GPU; train_step on the CPU). Each warms up (capture, compile),
waits at a barrier for the others, then takes --steps timed steps and waits for its device work:

    total rate = K x steps / (last end - first start)          speed-up = total rate(K) / rate(1)

Processes share a GPU by taking turns (no MPS); the streams of one process can run their kernels at the same
time. What fits in a call: runs_that_fit() turns the table into how many runs of S steps end within a limit.
"""
import argparse
import multiprocessing
import os
import queue
import threading
import time
import traceback

import numpy as np

import refnet
from jointvae.models.specs import DEFAULT_SPECS, MNIST_SPEC, image_shape, validate_spec
from jointvae.sweeps.runs import write_json
from jointvae.sweeps.together import own_stream
from jointvae.training.trainer import Trainer

SPECS = {"mnist": MNIST_SPEC, **{f"dsprites-{model}": DEFAULT_SPECS[("dsprites", model)]
                                 for model in ("betavae", "factorvae", "jointvae", "joint-factorvae")}}
IMAGES = 2048   # random images per run: the step's cost does not depend on what they show
BARRIER_SECONDS = 600   # the longest a run waits for the others to be ready (or a dead one's result)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.runs_together", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--spec", choices=sorted(SPECS), default="mnist")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="K: runs at once (default 1 2 4)")
    p.add_argument("--modes", nargs="+", choices=("threads", "processes"), default=["threads", "processes"])
    p.add_argument("--steps", type=int, default=2000, help="timed steps per run (default 2000)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps per run first (default 20)")
    p.add_argument("--real-data", action="store_true",
                   help="the spec's dataset, as training reads it (dSprites: drawn on the host each step), instead "
                        "of random images on the device")
    p.add_argument("--json", metavar="FILE", help="also write the table here")
    args = p.parse_args(argv)
    if min(args.counts) < 1 or args.steps < 1 or args.warmup < 3:
        p.error("--counts and --steps must be >= 1, --warmup >= 3 (the capture needs its first steps)")
    return args


def one_run(spec_name, device, seed, warmup, steps, barrier, real_data=False):
    """Build a Trainer, warm it up, wait at the barrier, take `steps` steps -> (start, end) on CLOCK_MONOTONIC,
    which every process of the machine shares. Each step takes its batch (and FactorVAE's second batch) as
    training does: gathered from the images on the device, or drawn on the host for dSprites with real_data."""
    spec = validate_spec(SPECS[spec_name])
    images = None if real_data else np.random.default_rng(seed).integers(
        0, 256, (IMAGES, *image_shape(spec)), dtype=np.uint8)
    with own_stream(device):
        trainer = Trainer(spec, out_dir=None, seed=seed, images=images, device=device)
        try:
            return _timed_steps(trainer, spec, seed, warmup, steps, barrier)
        finally:
            trainer.close()   # its graphs' memory freed under the device lock (captured_step.py)


def _timed_steps(trainer, spec, seed, warmup, steps, barrier):
    """One run's part of one_run: warm up, wait at the barrier, time `steps` steps -> (start, end)."""
    trainer.load_data()
    step = trainer.buffered_step if trainer.buffered else trainer.train_step
    order = [idx for idx in trainer.epoch_order(0) if len(idx) == spec["batch_size"]]   # one graph: full batches

    def next_step(i):
        trainer.step = i % len(order)   # the second batch's generator is seeded by the step
        other = trainer.second_batch() if trainer.discriminator is not None else None
        return step(trainer.batch(order[i % len(order)]), other)
    for i in range(warmup):
        stats = next_step(i)
    refnet.to_numpy(stats["loss"])          # waits for this run's device work
    barrier.wait()
    start = time.monotonic()
    for i in range(warmup, warmup + steps):
        stats = next_step(i)
    loss = float(refnet.to_numpy(stats["loss"]))
    end = time.monotonic()
    if not np.isfinite(loss):
        raise RuntimeError(f"run {seed}: the loss is {loss}")
    return start, end


def _process_main(spec_name, device, seed, warmup, steps, barrier, results, real_data):
    try:
        results.put((seed, one_run(spec_name, device, seed, warmup, steps, barrier, real_data), None))
    except BaseException:   # the others must not wait at the barrier for ever; the parent says why
        barrier.abort()
        results.put((seed, None, traceback.format_exc()))


def time_together(spec_name, device, count, mode, warmup, steps, real_data=False):
    """K runs at once in threads or processes -> {'count', 'mode', 'rate' (steps/s, all runs), 'per_run'}."""
    spans = {}
    if mode == "threads":
        barrier, errors = threading.Barrier(count, timeout=BARRIER_SECONDS), []

        def target(seed):
            try:
                spans[seed] = one_run(spec_name, device, seed, warmup, steps, barrier, real_data)
            except BaseException as e:   # the others must not wait at the barrier for ever
                errors.append(e.with_traceback(None))   # not its frames: they hold the run's device memory
                barrier.abort()
        threads = [threading.Thread(target=target, args=(seed,)) for seed in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:   # the first that failed: the others broke at the barrier because of it
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    else:
        context = multiprocessing.get_context("spawn")   # CUDA cannot be forked
        barrier, results = context.Barrier(count, timeout=BARRIER_SECONDS), context.Queue()
        procs = [context.Process(target=_process_main,
                                 args=(spec_name, device, seed, warmup, steps, barrier, results, real_data))
                 for seed in range(count)]
        for p in procs:
            p.start()
        failures = []
        for _ in procs:
            try:
                seed, span, failure = results.get(timeout=BARRIER_SECONDS + 60)
            except queue.Empty:   # a process died without a word (killed, crashed)
                codes = [p.exitcode for p in procs]
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a run's process ended without a result (exit codes {codes})") from None
            spans[seed] = span
            failures += [failure] if failure else []
        for p in procs:
            p.join()
        if failures:   # the first that failed: the others broke at the barrier because of it
            raise RuntimeError("a run failed:\n" + min(failures, key=lambda f: "BrokenBarrierError" in f))
    first, last = min(s for s, _ in spans.values()), max(e for _, e in spans.values())
    rate = count * steps / (last - first)
    return {"count": count, "mode": mode, "rate": rate, "per_run": rate / count, "seconds": last - first}


def runs_that_fit(rows, steps, limit_s, overhead_s=30.0, slack=1.0):
    """The most runs of `steps` steps that end within limit_s, by the measured table: K at once take
    slack x K x steps / rate(K) + overhead_s (start, capture, evaluation; slack > 1 for what the timed steps
    leave out: logging, checkpoints) -> (K, mode), or (0, None)."""
    fitting = [row for row in rows if slack * row["count"] * steps / row["rate"] + overhead_s <= limit_s]
    best = max(fitting, key=lambda row: (row["count"], row["rate"]), default=None)   # the most; then the faster
    return (best["count"], best["mode"]) if best else (0, None)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("CUDA_MODULE_LOADING", "EAGER")   # as run-one NAME... runs (jointvae/sweeps/together.py)
    rows = []
    print(f"{args.spec} on the {args.device} ({'its dataset' if args.real_data else 'random images'}): "
          f"{args.steps} timed steps per run after {args.warmup} untimed")
    print(f"{'mode':<10} {'K':>3} {'steps/s (all)':>14} {'per run':>9} {'speed-up':>9}")
    for mode in args.modes:
        for count in args.counts:
            row = time_together(args.spec, args.device, count, mode, args.warmup, args.steps, args.real_data)
            rows.append(row)
            alone = next((r["rate"] for r in rows if r["count"] == 1), None)
            speedup = f"{row['rate'] / alone:8.2f}x" if alone else "        -"
            print(f"{mode:<10} {count:>3} {row['rate']:>14.1f} {row['per_run']:>9.1f} {speedup}", flush=True)
            if args.json:   # after every row: a run stopped by a time limit keeps what it measured
                write_json(args.json, {"spec": args.spec, "device": args.device, "steps": args.steps,
                                       "real_data": args.real_data, "rows": rows})
    if args.json:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
