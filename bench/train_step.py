"""Time one full JointVAE training step: ours (hand-written backward) next to eager PyTorch, in one run.

    python -m bench.train_step [--device cpu|gpu] [--batch-sizes 64 256] [--steps N] [--warmup N]
                               [--kernels on|off|both] [--json FILE] [--profile]

--profile times our step layer by layer instead (bench/layer_profile.py), no torch needed.

The model is the paper's MNIST JointVAE (jointvae.models.specs.MNIST_SPEC: 1 x 32 x 32, cont 10, disc [10],
Adam 5e-4), at training step CAPACITY_STEP so that both capacities are mid-ramp. A step is

    ours   jointvae.training.trainer.Trainer.train_step: draw_noise (host RNG), JointVAE.forward,
           the loss and its backward, JointVAE.backward (objective_and_grads), refnet.Adam.step
    torch  bench.torch_jointvae.TorchTrainer.train_step: zero_grad, forward with torch.randn/rand
           noise, the same loss, loss.backward(), torch.optim.Adam.step

on one fixed batch already on the device. Before any timing, both run forward and backward once from
the same weights on the same data and noise: the losses and gradients must agree, or the benchmark
stops (timing two different computations would say nothing). Then every implementation does
`--warmup` untimed steps and `--steps` timed ones, taken in turns of BLOCK steps (ours, torch, ours,
...) so that a slow spell of a shared machine falls on all of them alike; each step is timed on its
own, between two device synchronisations, and reported as median and interquartile range.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import kernels
import refnet
from bench.throughput import forward_multiply_adds, matmul_peak_gflops, peak_rss_mb, rerun_with_threads
from jointvae import data
from jointvae.models.jointvae import draw_noise
from jointvae.models.objective import objective_and_grads
from jointvae.models.specs import DSPRITES_JOINTVAE_SPEC, MNIST_SPEC, validate_spec
from jointvae.training.trainer import Trainer

CAPACITY_STEP = 10_000   # the step t at which the capacities are taken: C(t) = 2 of 5 nats
SEED = 0
LOSS_RTOL = 1e-4         # agreement needed before timing: float32 sums in a different order
GRAD_RTOL = 1e-3         # per parameter, |g_ours - g_torch| / |g_torch| in the 2-norm
KERNEL_SETTINGS = {"on": [True], "off": [False], "both": [True, False]}
TORCH = "torch (eager)"   # the torch candidate's name in the table
BLOCK = 5                 # timed steps per turn (time_candidates)


@dataclass
class Candidate:
    """One implementation to time: `run` does one training step, `sync` waits for the device."""
    name: str
    run: Callable[[], object]
    sync: Callable[[], None]
    kernels: bool | None = None   # ours on GPU: the fused kernels on (True) or the reference on CuPy (False)

    def kernel_setting(self):
        """The block this candidate runs in: kernels.reference_on_gpu() when its kernels are off."""
        return kernels.reference_on_gpu(enabled=self.kernels is False)


# ---------------------------------------------------------------------- set-up

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, help="one batch size (instead of --batch-sizes)")
    p.add_argument("--img", type=int, choices=(32, 64), default=32,
                   help="32: the MNIST model (default); 64: the 64x64 dSprites model")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="BLAS and torch threads, both libraries alike (default: all cores)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per implementation (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--kernels", choices=tuple(KERNEL_SETTINGS), default="both",
                   help="GPU: time ours with the fused kernels on, off or both (no effect on CPU)")
    p.add_argument("--json", metavar="FILE", help="also write the results and the environment here")
    p.add_argument("--profile", action="store_true",
                   help="instead of the comparison, time our step layer by layer (forward, backward, im2col/col2im)")
    args = p.parse_args(argv)
    if args.batch is not None:
        args.batch_sizes = [args.batch]
    if args.steps < 1 or args.warmup < 0 or min(args.batch_sizes) < 1 or args.threads < 1:
        p.error("--steps and --threads must be >= 1, --warmup >= 0 and every batch size >= 1")
    return args


def load_torch_bench(device):
    """-> (bench.torch_jointvae, None), or (None, why the torch column is empty)."""
    try:
        from bench import torch_jointvae
    except ModuleNotFoundError as e:
        if e.name != "torch" and not (e.name or "").startswith("torch."):
            raise
        return None, "torch not installed"
    if device == "gpu" and not torch_jointvae.torch.cuda.is_available():
        return None, "torch has no CUDA"
    torch_jointvae.full_float32()
    return torch_jointvae, None


def device_sync(device):
    """Our step's synchronisation: wait for every queued CuPy kernel (nothing to wait for on CPU)."""
    if device == "cpu":
        return lambda: None
    cupy = refnet.backend.require_gpu()
    return lambda: cupy.cuda.Device().synchronize()


def make_batch(batch_size, image_shape, seed=SEED):
    """A fixed host batch (N, C, H, W) float32 in [0, 1], made as training makes it: uint8 / 255."""
    images = np.random.default_rng([seed, 3]).integers(0, 256, (batch_size, *image_shape), dtype=np.uint8)
    return data.to_float(images)


# ---------------------------------------------------------------------- the same computation?

def count_kernel_launches(fn):
    """Run fn() and return how many fused kernels (kernels/*.cu) it launched on the GPU (0 on NumPy arrays)."""
    before = kernels.GPU.launches
    fn()
    return kernels.GPU.launches - before


def report_kernel_use(candidate):
    """Print how many fused kernels one step of `candidate` (ours, kernels on) launches: one extra, untimed step."""
    with candidate.kernel_setting():
        launches = count_kernel_launches(candidate.run)
    print(f"fused-kernel launches per step, {candidate.name}: {launches}"
          + ("  (the step does not call kernels/: on and off time the same code)" if not launches else ""))


def check_agreement(trainer, tj, net, x, x_torch):
    """One forward and backward of both from the same weights, data and noise -> the differences.

    Ours is called through the very functions Trainer.train_step calls; no optimiser step is taken.
    """
    model, spec, step = trainer.model, trainer.spec, CAPACITY_STEP
    noise = draw_noise(model, len(x), np.random.default_rng([SEED, 4]), trainer.xp)
    stats, grads, _ = objective_and_grads(model, x, noise, spec, step)
    ours = {"loss": float(stats["objective"]), "grads": grads}
    torch_loss, torch_grads = tj.loss_and_grads(net, x_torch, tj.noise_to_torch(noise, x_torch.device), spec, step)
    grad_diffs = {}
    for name, g in torch_grads.items():
        g = g.detach().cpu().numpy()
        grad_diffs[name] = float(np.linalg.norm(refnet.to_numpy(ours["grads"][name]) - g) / np.linalg.norm(g))
    worst = max(grad_diffs, key=grad_diffs.get)
    result = {"loss_ours": ours["loss"], "loss_torch": torch_loss,
              "loss_rel_diff": abs(ours["loss"] - torch_loss) / abs(torch_loss),
              "grad_worst_rel_diff": grad_diffs[worst], "grad_worst_param": worst}
    if grad_diffs[worst] > GRAD_RTOL and trainer.xp is np:
        # A gradient that nearly cancels over the batch (an untrained layer's bias, say) can differ in float32
        # between two summation orders by more than GRAD_RTOL. Then float64 arbitrates: if ours matches the
        # float64 computation of the same step, the two agree up to float32 rounding.
        result["grad_worst_vs_float64"] = float64_gradient_error(trainer, x, noise, worst, ours["grads"][worst])
    return result


def float64_gradient_error(trainer, x, noise, name, grad):
    """|g - g64| / |g64| for parameter `name`, g64 from the same step in float64 (the model is cast back after)."""
    model = trainer.model
    model.astype(np.float64)
    try:
        noise64 = {"eps": None if noise["eps"] is None else noise["eps"].astype(np.float64),
                   "u": [u.astype(np.float64) for u in noise["u"]]}
        _, grads64, _ = objective_and_grads(model, x.astype(np.float64), noise64, trainer.spec, CAPACITY_STEP)
        g64 = grads64[name]
    finally:
        model.astype(np.float32)   # float32 -> float64 -> float32 is exact: the weights are unchanged
    return float(np.linalg.norm(grad - g64) / np.linalg.norm(g64))


def agreement_line(batch_size, label, a):
    return (f"agreement, batch {batch_size}, {label} vs torch: loss {a['loss_ours']:.6f} vs {a['loss_torch']:.6f}, "
            f"rel diff {a['loss_rel_diff']:.1e}; gradients worst rel diff {a['grad_worst_rel_diff']:.1e} "
            f"({a['grad_worst_param']})")


# ---------------------------------------------------------------------- timing

def time_candidates(candidates, warmup, steps, block=BLOCK):
    """The candidates take turns, `block` steps each, until each has `steps` timed steps.

    -> {name: (steps,) milliseconds of each timed step}. Turns rather than single alternating steps:
    a library's worker threads keep spinning for a while after its step (OpenBLAS's, torch's OpenMP
    pool), and with two threads on two cores one step of the other library would run against them.
    The first step of every turn is left out for the same reason (measured: with step-by-step
    alternation and 2 threads, torch took 37 ms a step instead of 26 with 1 thread).
    """
    times = {c.name: [] for c in candidates}
    done = -warmup                      # steps per candidate so far; negative: still warming up
    while done < steps:
        n = min(block, steps - done) if done >= 0 else -done
        for c in candidates:
            with c.kernel_setting():
                for i in range(n + 1):      # + 1: the turn's first step is untimed
                    c.sync()
                    start = time.perf_counter()
                    c.run()
                    c.sync()
                    if done >= 0 and i > 0:
                        times[c.name].append((time.perf_counter() - start) * 1e3)
        done += n
    return {name: np.array(t) for name, t in times.items()}


def summarize(ms):
    """(steps,) milliseconds -> median, quartiles and interquartile range."""
    q1, median, q3 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3), "iqr_ms": float(q3 - q1)}


def our_label(device, use_kernels):
    return "ours (NumPy)" if device == "cpu" else f"ours (CuPy, kernels {'on' if use_kernels else 'off'})"


def make_ours(device, spec, batch_size):
    """Our Trainer at step CAPACITY_STEP - 1 (its next step is CAPACITY_STEP) and the fixed host batch."""
    trainer = Trainer(spec, out_dir=None, seed=SEED, batch_size=batch_size, device=device)  # writes nothing:
    trainer.step = CAPACITY_STEP - 1                                                      # only train_step is used
    return trainer, make_batch(batch_size, trainer.model.image_shape)


def make_torch(tj, device, model, spec, host):
    """torch's trainer holding a copy of `model`'s weights, the batch as a tensor, and torch's sync."""
    torch_device = "cuda" if device == "gpu" else "cpu"
    net = tj.from_refnet(model, torch_device)
    trainer = tj.TorchTrainer(net, spec, step=CAPACITY_STEP - 1)
    sync = tj.torch.cuda.synchronize if device == "gpu" else (lambda: None)
    return trainer, tj.torch.from_numpy(host).to(torch_device), sync


def require_agreement(trainer, tj, torch_trainer, x, x_torch, candidate):
    """Check ours (in the candidate's kernels setting) against torch; print; stop the run if they differ."""
    with candidate.kernel_setting():
        a = check_agreement(trainer, tj, torch_trainer.net, x, x_torch)
    print(agreement_line(len(x), candidate.name, a))
    grads_agree = a["grad_worst_rel_diff"] <= GRAD_RTOL or a.get("grad_worst_vs_float64", 1.0) <= GRAD_RTOL * 1e-2
    if "grad_worst_vs_float64" in a:
        print(f"  {a['grad_worst_param']}: ours is {a['grad_worst_vs_float64']:.1e} from the float64 computation, "
              f"so the difference to torch is float32 rounding" if grads_agree else "")
    if a["loss_rel_diff"] > LOSS_RTOL or not grads_agree:
        sys.exit(f"bench.train_step: {candidate.name} and torch disagree (loss rtol {LOSS_RTOL}, gradient rtol "
                 f"{GRAD_RTOL}): they do not compute the same thing, so there is nothing to compare")
    return {"batch_size": len(x), "implementation": candidate.name, **a}


def result_rows(batch_size, candidates, times, torch_why):
    """One row per candidate: summary, every timing, and for ours the ratio torch median / our median."""
    torch_median = summarize(times[TORCH])["median_ms"] if TORCH in times else None
    rows = []
    for c in candidates:
        row = {"batch_size": batch_size, "implementation": c.name, "kernels": c.kernels,
               **summarize(times[c.name]), "times_ms": times[c.name].round(4).tolist()}
        if c.name != TORCH:
            row["torch_over_ours"] = torch_median / row["median_ms"] if torch_median is not None else None
        rows.append(row)
    if torch_median is None:
        rows.append({"batch_size": batch_size, "implementation": "torch", "unavailable": torch_why})
    return rows


def bench_batch(args, spec, batch_size, tj, torch_why):
    """Check and time every implementation at one batch size -> (result rows, agreement records)."""
    trainer, host = make_ours(args.device, spec, batch_size)
    x = trainer.xp.asarray(host)                                            # (N, 1, 32, 32) on the device
    settings = [None] if args.device == "cpu" else KERNEL_SETTINGS[args.kernels]
    sync = device_sync(args.device)
    candidates = [Candidate(our_label(args.device, k), lambda: trainer.train_step(x), sync, kernels=k)
                  for k in settings]
    for c in candidates:
        if c.kernels:
            report_kernel_use(c)
    agreements = []
    if tj is not None:
        torch_trainer, x_torch, torch_sync = make_torch(tj, args.device, trainer.model, spec, host)
        agreements = [require_agreement(trainer, tj, torch_trainer, x, x_torch, c) for c in candidates]
        candidates.append(Candidate(TORCH, lambda: torch_trainer.train_step(x_torch), torch_sync))
    times = time_candidates(candidates, args.warmup, args.steps)
    return result_rows(batch_size, candidates, times, torch_why), agreements


# ---------------------------------------------------------------------- reporting

def print_table(rows):
    print(f"{'batch':>5}  {'implementation':<28} {'median ms':>10} {'IQR ms':>8}  {'q1 - q3 ms':<21} {'torch/ours':>10}")
    for r in rows:
        if "unavailable" in r:
            print(f"{r['batch_size']:>5}  {r['implementation']:<28} {r['unavailable']}")
            continue
        ratio = r.get("torch_over_ours")
        ratio = f"{ratio:10.2f}" if ratio is not None else f"{'':>10}"
        quartiles = f"{r['q1_ms']:.2f} - {r['q3_ms']:.2f}"
        print(f"{r['batch_size']:>5}  {r['implementation']:<28} {r['median_ms']:10.2f} {r['iqr_ms']:8.2f}  "
              f"{quartiles:<21} {ratio}")
    print("torch/ours = torch median / our median in this run: > 1 means our step is faster.")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_name():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:   # an older or unusual NumPy build: the name is a nicety
        return None


def environment(device, tj):
    """What the numbers depend on: hardware, versions, thread settings, date."""
    torch = tj.torch if tj is not None else None
    cupy = refnet.backend.require_gpu() if device == "gpu" else None
    gpu_name = cupy.cuda.runtime.getDeviceProperties(0)["name"] if cupy is not None else None
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": device,
            "device_name": gpu_name.decode() if isinstance(gpu_name, bytes) else (gpu_name or cpu_model()),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "cupy": cupy.__version__ if cupy is not None else None,
                         "torch": torch.__version__ if torch is not None else None},
            "blas": blas_name(),
            "threads": {"OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                        "torch_num_threads": torch.get_num_threads() if torch is not None else None},
            "torch_tf32": False if torch is not None and device == "gpu" else None}


def print_environment(env):
    v, t = env["versions"], env["threads"]
    print(f"{env['device']}: {env['device_name']}; numpy {v['numpy']} ({env['blas']}), cupy {v['cupy']}, "
          f"torch {v['torch']}; OPENBLAS_NUM_THREADS={t['OPENBLAS_NUM_THREADS']} "
          f"OMP_NUM_THREADS={t['OMP_NUM_THREADS']} torch threads {t['torch_num_threads']}")


def main(argv=None):
    args = parse_args(argv)
    refnet.retain_freed_memory()   # as the training command does; torch, in this process, gets it too
    try:
        device_sync(args.device)          # fails early, in one line, without CuPy or a GPU
    except RuntimeError as e:
        sys.exit(f"bench.train_step: {e}")
    if args.profile:
        return profile_main(args)
    tj, torch_why = load_torch_bench(args.device)
    env = environment(args.device, tj)
    print_environment(env)
    if args.device == "cpu":
        print("note: --kernels has no effect on CPU: NumPy arrays always take the reference path "
              "(the fused kernels run only on CuPy arrays)")
    if tj is None:
        print(f"note: {torch_why}: timing ours only")
    spec = bench_spec(args)
    if tj is not None:
        tj.torch.set_num_threads(args.threads)
    rows, agreements = [], []
    for batch_size in args.batch_sizes:
        r, a = bench_batch(args, spec, batch_size, tj, torch_why)
        rows += r
        agreements += a
    print(f"\nms per training step, median and interquartile range of {args.steps} timed steps "
          f"after {args.warmup} warm-up steps (capacities at step {CAPACITY_STEP})")
    print_table(rows)
    print()
    peak = matmul_peak_gflops()
    for batch_size in args.batch_sizes:
        print(json.dumps(summary_line(args, spec, batch_size, rows, peak)))
    if args.json:
        result = {**env, "spec": spec_name(args), "capacity_step": CAPACITY_STEP,
                  "batch_sizes": args.batch_sizes, "steps": args.steps, "warmup": args.warmup,
                  "kernels": args.kernels if args.device == "gpu" else None,
                  "agreement": agreements, "results": rows}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")


def spec_name(args):
    return "jointvae.models.specs.MNIST_SPEC" if args.img == 32 else "jointvae.models.specs.DSPRITES_JOINTVAE_SPEC"


def bench_spec(args):
    """The MNIST model (1 x 32 x 32) or the published dSprites model (1 x 64 x 64)."""
    return validate_spec(MNIST_SPEC if args.img == 32 else DSPRITES_JOINTVAE_SPEC)


def summary_line(args, spec, batch_size, rows, peak_gflops):
    """The one-line JSON figure of a batch size: ours (first candidate), and torch's when it ran."""
    ours = next(r for r in rows if r["batch_size"] == batch_size and r["implementation"].startswith("ours"))
    trainer, host = make_ours("cpu", spec, batch_size)
    x = host
    macs = forward_multiply_adds(trainer.model, x.shape,
                                 lambda: trainer.model.decode_forward(trainer.model.eval_code(trainer.model.encode(x))))
    seconds = ours["median_ms"] / 1e3
    gflops = 6 * macs / seconds / 1e9
    line = {"img": args.img, "batch": batch_size, "threads": args.threads, "device": args.device,
            "ms_per_step": ours["median_ms"], "ms_per_step_min": min(ours["times_ms"]),
            "ms_per_step_max": max(ours["times_ms"]), "images_per_s": batch_size / seconds,
            "gflop_per_step": 6 * macs / 1e9, "gflops": gflops, "matmul_peak_gflops": peak_gflops,
            "peak_fraction": gflops / peak_gflops, "peak_rss_mb": peak_rss_mb()}
    torch_row = next((r for r in rows if r["batch_size"] == batch_size and r["implementation"] == TORCH), None)
    if torch_row is not None:
        line.update(torch_ms_per_step=torch_row["median_ms"], ratio=ours["median_ms"] / torch_row["median_ms"])
    return line


def profile_main(args):
    """--profile: our step, layer by layer, for each batch size (printed, and with --json written)."""
    from bench.layer_profile import print_profile, profile_step
    spec, sync, profiles = bench_spec(args), device_sync(args.device), []
    for batch_size in args.batch_sizes:
        trainer, host = make_ours(args.device, spec, batch_size)
        x = trainer.xp.asarray(host)
        rows, ms = profile_step(lambda: trainer.train_step(x), trainer.model, args.steps, args.warmup, sync)
        print_profile(rows, ms, batch_size, args.steps)
        profiles.append({"batch_size": batch_size, "ms_per_step": ms, "layers": rows})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": args.device, "steps": args.steps, "warmup": args.warmup, "profiles": profiles},
                      f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    rerun_with_threads(parse_args(sys.argv[1:]).threads, sys.argv[1:])   # before any timing: BLAS threads are fixed at load
    main()
