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
import json
import multiprocessing
import threading
import time
import traceback

import numpy as np

import refnet
from jointvae.models.specs import DEFAULT_SPECS, MNIST_SPEC, image_shape, validate_spec
from jointvae.sweeps.together import own_stream
from jointvae.training.trainer import Trainer

SPECS = {"mnist": MNIST_SPEC, **{f"dsprites-{model}": DEFAULT_SPECS[("dsprites", model)]
                                 for model in ("betavae", "factorvae", "jointvae", "joint-factorvae")}}
IMAGES = 2048   # random images per run: the step's cost does not depend on what they show


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.runs_together", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--spec", choices=sorted(SPECS), default="mnist")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="K: runs at once (default 1 2 4)")
    p.add_argument("--modes", nargs="+", choices=("threads", "processes"), default=["threads", "processes"])
    p.add_argument("--steps", type=int, default=2000, help="timed steps per run (default 2000)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps per run first (default 20)")
    p.add_argument("--json", metavar="FILE", help="also write the table here")
    args = p.parse_args(argv)
    if min(args.counts) < 1 or args.steps < 1 or args.warmup < 3:
        p.error("--counts and --steps must be >= 1, --warmup >= 3 (the capture needs its first steps)")
    return args


def one_run(spec_name, device, seed, warmup, steps, barrier):
    """Build a Trainer, warm it up, wait at the barrier, take `steps` steps -> (start, end) on CLOCK_MONOTONIC,
    which every process of the machine shares."""
    spec = validate_spec(SPECS[spec_name])
    images = np.random.default_rng(seed).integers(0, 256, (IMAGES, *image_shape(spec)), dtype=np.uint8)
    with own_stream(device):
        trainer = Trainer(spec, out_dir=None, seed=seed, images=images, device=device)
        trainer.load_data()
        step = trainer.buffered_step if trainer.buffered else trainer.train_step
        batches = [trainer.batch(idx) for idx in trainer.epoch_order(0)[:8]]
        other = trainer.second_batch() if trainer.discriminator is not None else None
        for i in range(warmup):
            stats = step(batches[i % 8], other)
        refnet.to_numpy(stats["loss"])          # waits for this run's device work
        barrier.wait()
        start = time.monotonic()
        for i in range(steps):
            stats = step(batches[i % 8], other)
        loss = float(refnet.to_numpy(stats["loss"]))
        end = time.monotonic()
    if not np.isfinite(loss):
        raise RuntimeError(f"run {seed}: the loss is {loss}")
    return start, end


def _process_main(spec_name, device, seed, warmup, steps, barrier, results):
    try:
        results.put((seed, one_run(spec_name, device, seed, warmup, steps, barrier), None))
    except BaseException:   # the others must not wait at the barrier for ever; the parent says why
        barrier.abort()
        results.put((seed, None, traceback.format_exc()))


def time_together(spec_name, device, count, mode, warmup, steps):
    """K runs at once in threads or processes -> {'count', 'mode', 'rate' (steps/s, all runs), 'per_run'}."""
    spans = {}
    if mode == "threads":
        barrier, errors = threading.Barrier(count), []

        def target(seed):
            try:
                spans[seed] = one_run(spec_name, device, seed, warmup, steps, barrier)
            except BaseException as e:   # the others must not wait at the barrier for ever
                errors.append(e)
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
        barrier, results = context.Barrier(count), context.Queue()
        procs = [context.Process(target=_process_main,
                                 args=(spec_name, device, seed, warmup, steps, barrier, results))
                 for seed in range(count)]
        for p in procs:
            p.start()
        failures = []
        for _ in procs:
            seed, span, failure = results.get(timeout=3600)
            spans[seed] = span
            failures += [failure] if failure else []
        for p in procs:
            p.join()
        if failures:   # the first that failed: the others broke at the barrier because of it
            raise RuntimeError("a run failed:\n" + min(failures, key=lambda f: "BrokenBarrierError" in f))
    first, last = min(s for s, _ in spans.values()), max(e for _, e in spans.values())
    rate = count * steps / (last - first)
    return {"count": count, "mode": mode, "rate": rate, "per_run": rate / count, "seconds": last - first}


def runs_that_fit(rows, steps, limit_s, overhead_s=30.0):
    """The most runs of `steps` steps that end within limit_s, by the measured table: K at once take
    K x steps / rate(K) + overhead_s (start, capture, evaluation) -> (K, mode), or (0, None)."""
    fitting = [row for row in rows if row["count"] * steps / row["rate"] + overhead_s <= limit_s]
    best = max(fitting, key=lambda row: (row["count"], row["rate"]), default=None)   # the most; then the faster
    return (best["count"], best["mode"]) if best else (0, None)


def main(argv=None):
    args = parse_args(argv)
    rows = []
    print(f"{args.spec} on the {args.device}: {args.steps} timed steps per run after {args.warmup} untimed")
    print(f"{'mode':<10} {'K':>3} {'steps/s (all)':>14} {'per run':>9} {'speed-up':>9}")
    for mode in args.modes:
        for count in args.counts:
            row = time_together(args.spec, args.device, count, mode, args.warmup, args.steps)
            rows.append(row)
            alone = next((r["rate"] for r in rows if r["count"] == 1), None)
            speedup = f"{row['rate'] / alone:8.2f}x" if alone else "        -"
            print(f"{mode:<10} {count:>3} {row['rate']:>14.1f} {row['per_run']:>9.1f} {speedup}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"spec": args.spec, "device": args.device, "steps": args.steps, "rows": rows}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
