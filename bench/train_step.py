"""Time one full training step, ours (hand-written backward) next to PyTorch's, in one run.

    python -m bench.train_step [--device cpu|gpu] [--model jointvae|factorvae] [--img 32|64]
                               [--batch-sizes 64 256] [--steps N] [--warmup N] [--candidates ...]
                               [--json FILE] [--profile]

--profile times our step layer by layer instead (bench/layer_profile.py), no torch needed.

The model: --model jointvae is the paper's MNIST JointVAE (MNIST_SPEC, 1 x 32 x 32) or with --img 64 the
dSprites JointVAE; --model factorvae is the dSprites FactorVAE (DEFAULT_SPECS[('dsprites', 'factorvae')],
1 x 64 x 64): the VAE with gamma * TC through a 6 x 1000 discriminator, then the discriminator's own update
on a second batch. Every Trainer starts at step CAPACITY_STEP - 1, so its first step has mid-ramp capacities.
The candidates (CANDIDATES; --candidates picks them):

    ours (NumPy)                      cpu  Trainer.train_step on NumPy
    ours (graph)                      gpu  Trainer.buffered_step, the whole step replayed as one CUDA graph
    ours (eager kernels)              gpu  Trainer(graph=False).buffered_step: the same kernels, launched eagerly
    ours (CuPy, kernels on|off)       gpu  Trainer.train_step on CuPy, with our fused kernels, or the reference
    torch (eager)                          bench.torch_step.TorchTrainer: the same step in eager PyTorch
    torch.compile (...)                    the same step compiled: mode reduce-overhead (CUDA graphs) on GPU

all on fixed batches already on the device. Before any timing, ours (in each of our candidates' settings)
and torch run forward and backward once from the same weights on the same data, noise and permutations: the
losses and gradients must agree, or the benchmark stops (timing two different computations would say
nothing). Then each candidate is set up (built, then warm-up steps: NVRTC, CUDA-graph capture, torch.compile)
with its GPU memory measured around that, and the candidates take turns of BLOCK timed steps (ours, torch,
ours, ...) so that a slow spell of a shared machine falls on all of them alike; each step is timed on its
own, between two device synchronisations, and reported as median and interquartile range.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import kernels
import refnet
from bench.gpu_memory import GPUMemory, NoGPUMemory
from bench.throughput import forward_multiply_adds, matmul_peak_gflops, peak_rss_mb, rerun_with_threads
from jointvae import data
from jointvae.models import factorvae
from jointvae.models.jointvae import draw_noise
from jointvae.models.objective import objective_and_grads
from jointvae.models.specs import DEFAULT_SPECS, DSPRITES_JOINTVAE_SPEC, MNIST_SPEC, image_shape, validate_spec
from jointvae.training.trainer import Trainer

CAPACITY_STEP = 10_000   # the step t at which the capacities are taken: C(t) = 2 of 5 nats (MNIST)
SEED = 0
LOSS_RTOL = 1e-4         # agreement needed before timing: float32 sums in a different order
GRAD_RTOL = 1e-3         # per parameter, |g_ours - g_torch| / |g_torch| in the 2-norm
BLOCK = 5                # timed steps per turn (time_candidates)
MIN_SETUP_STEPS = 3      # untimed steps of each candidate's set-up at least: capture, compile, CUDA-graph recording


@dataclass(frozen=True)
class CandidateKind:
    """What --candidates can name: its label in the table and on which --device it runs."""
    label: str
    devices: tuple
    ours: bool = True


CANDIDATES = {
    "numpy": CandidateKind("ours (NumPy)", ("cpu",)),
    "graph": CandidateKind("ours (graph)", ("gpu",)),
    "eager": CandidateKind("ours (eager kernels)", ("gpu",)),
    "kernels-on": CandidateKind("ours (CuPy, kernels on)", ("gpu",)),
    "kernels-off": CandidateKind("ours (CuPy, kernels off)", ("gpu",)),
    "torch": CandidateKind("torch (eager)", ("cpu", "gpu"), ours=False),
    "compile": CandidateKind("torch.compile", ("cpu", "gpu"), ours=False),
}
DEFAULT_CANDIDATES = {"cpu": ["numpy", "torch", "compile"], "gpu": ["graph", "eager", "torch", "compile"]}
COMPILE_MODE = {"cpu": "default", "gpu": "reduce-overhead"}   # CUDA graphs exist on the GPU only
KERNEL_SETTINGS = {"on": ["kernels-on"], "off": ["kernels-off"], "both": ["kernels-on", "kernels-off"]}  # --kernels
MODELS = ("jointvae", "factorvae")


def label(key, device):
    """The table's name of candidate `key`: torch.compile's says its mode."""
    return f"torch.compile ({COMPILE_MODE[device]})" if key == "compile" else CANDIDATES[key].label


def our_setting(key):
    """The block our candidate `key` runs in: refnet's heavy ops on our kernels for the buffered step (as
    StaticStep runs them), the reference on CuPy for kernels off, else nothing to change."""
    if key in ("graph", "eager"):
        return refnet.use_ops(kernels.OPS)
    return kernels.reference_on_gpu(enabled=key == "kernels-off")


@dataclass
class Candidate:
    """One implementation to time: `run` does one training step, `sync` waits for the device."""
    key: str
    name: str
    run: Callable[[], object]
    sync: Callable[[], None]
    setting: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    memory: dict = field(default_factory=dict)


class Unavailable(Exception):
    """A candidate that cannot run here; the message (torch not installed, why torch.compile failed) is its row."""


@dataclass
class Workload:
    """What one batch size's candidates share: the spec, the fixed host batches, and the torch bench module."""
    device: str
    spec: dict
    batch_size: int
    x: np.ndarray
    x_other: np.ndarray | None   # FactorVAE's second batch (the discriminator's), else None
    ts: object = None            # bench.torch_step, or None
    torch_why: str | None = None


# ---------------------------------------------------------------------- set-up

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.train_step", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--model", choices=MODELS, default="jointvae",
                   help="jointvae (default) or factorvae: the whole FactorVAE step, discriminator's update included")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, help="one batch size (instead of --batch-sizes)")
    p.add_argument("--img", type=int, choices=(32, 64),
                   help="32: the MNIST-sized network; 64: the dSprites-sized one "
                        "(default: 32 for jointvae, 64 for factorvae)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="BLAS and torch threads, both libraries alike (default: all cores)")
    p.add_argument("--steps", type=int, default=30, help="timed steps per implementation (default 30)")
    p.add_argument("--warmup", type=int, default=5,
                   help=f"untimed steps first (default 5; at least {MIN_SETUP_STEPS} are run)")
    p.add_argument("--candidates", nargs="+", choices=tuple(CANDIDATES), metavar="NAME",
                   help="what to time, of " + ", ".join(CANDIDATES) + " (default: "
                        + "; ".join(f"{d}: {' '.join(c)}" for d, c in DEFAULT_CANDIDATES.items()) + ")")
    p.add_argument("--kernels", choices=tuple(KERNEL_SETTINGS),
                   help="GPU, the earlier form: ours by Trainer.train_step on CuPy with the fused kernels on, "
                        "off or both, and torch (eager); the same as --candidates kernels-on|kernels-off torch")
    p.add_argument("--json", metavar="FILE", help="also write the results and the environment here")
    p.add_argument("--profile", action="store_true",
                   help="instead of the comparison, time our step layer by layer (forward, backward, im2col/col2im)")
    args = p.parse_args(argv)
    if args.batch is not None:
        args.batch_sizes = [args.batch]
    if args.img is None:
        args.img = 64 if args.model == "factorvae" else 32
    if args.steps < 1 or args.warmup < 0 or min(args.batch_sizes) < 1 or args.threads < 1:
        p.error("--steps and --threads must be >= 1, --warmup >= 0 and every batch size >= 1")
    args.candidates = choose_candidates(p, args)
    return args


def choose_candidates(parser, args):
    """The candidate keys to time on args.device, from --candidates, or --kernels, or the device's default."""
    if args.candidates and args.kernels:
        parser.error("give --candidates or --kernels, not both")
    if args.kernels and args.device == "gpu":
        return KERNEL_SETTINGS[args.kernels] + ["torch"]
    chosen = list(dict.fromkeys(args.candidates or DEFAULT_CANDIDATES[args.device]))
    wrong = [key for key in chosen if args.device not in CANDIDATES[key].devices]
    if wrong:
        parser.error(f"on --device {args.device} there is no {', '.join(wrong)}: choose from "
                     + ", ".join(k for k, c in CANDIDATES.items() if args.device in c.devices))
    return chosen


def load_torch_bench(device):
    """-> (bench.torch_step, None), or (None, why there are no torch rows)."""
    try:
        from bench import torch_step
    except ModuleNotFoundError as e:
        if e.name != "torch" and not (e.name or "").startswith("torch."):
            raise
        return None, "torch not installed"
    if device == "gpu" and not torch_step.torch.cuda.is_available():
        return None, "torch has no CUDA"
    torch_step.full_float32()
    return torch_step, None


def device_sync(device):
    """Our step's synchronisation: wait for every queued CuPy kernel (nothing to wait for on CPU)."""
    if device == "cpu":
        return lambda: None
    cupy = refnet.backend.require_gpu()
    return lambda: cupy.cuda.Device().synchronize()


def make_batch(batch_size, image_shape, seed=SEED, stream=3):
    """A fixed host batch (N, C, H, W) float32 in [0, 1], made as training makes it: uint8 / 255."""
    images = np.random.default_rng([seed, stream]).integers(0, 256, (batch_size, *image_shape), dtype=np.uint8)
    return data.to_float(images)


def make_workload(args, spec, batch_size, ts, torch_why):
    """The batch (and FactorVAE's second batch, from its own stream) every candidate at this batch size steps on."""
    shape = image_shape(spec)
    x_other = make_batch(batch_size, shape, stream=5) if spec.get("tc_gamma") is not None else None
    return Workload(args.device, spec, batch_size, make_batch(batch_size, shape), x_other, ts, torch_why)


def make_trainer(work, graph=True):
    """Our Trainer at step CAPACITY_STEP - 1 (its next step is CAPACITY_STEP): every one starts from the same
    weights (the same seed). It writes nothing: only its steps are used."""
    trainer = Trainer(work.spec, out_dir=None, seed=SEED, batch_size=work.batch_size, device=work.device, graph=graph)
    trainer.step = CAPACITY_STEP - 1
    return trainer


def on_device(trainer, work):
    """The workload's batches as our arrays on the trainer's device -> (x, x_other or None)."""
    return trainer.xp.asarray(work.x), None if work.x_other is None else trainer.xp.asarray(work.x_other)


# ---------------------------------------------------------------------- the same computation?

def draw_randomness(trainer, work):
    """The step's randomness on the host, as Trainer.train_step draws it: the noise, and for FactorVAE the second
    batch's noise and one permutation per latent block -> {'noise', 'noise_other', 'permutations'}."""
    rng = np.random.default_rng([SEED, 4])
    drawn = {"noise": draw_noise(trainer.model, work.batch_size, rng), "noise_other": None, "permutations": None}
    if work.x_other is not None:
        drawn["noise_other"], drawn["permutations"] = factorvae.draw_discriminator_inputs(
            trainer.model, len(work.x_other), rng)
    return drawn


def our_losses_and_grads(trainer, x, x_other, drawn):
    """One forward and backward of ours at step CAPACITY_STEP, through the functions the steps call (no update)
    -> ({'objective'[, 'd_loss']}: floats, {name: gradient}, D's prefixed 'discriminator.')."""
    xp, dtype = refnet.get_array_module(x), x.dtype
    noise = as_arrays(drawn["noise"], xp, dtype)
    stats, grads, tc_cache = objective_and_grads(trainer.model, x, noise, trainer.spec, CAPACITY_STEP,
                                                 trainer.discriminator)
    losses = {"objective": float(stats["objective"])}
    if trainer.discriminator is not None:
        d_stats, d_grads = factorvae.discriminator_loss_and_grads(
            trainer.discriminator, tc_cache, trainer.model, x_other, as_arrays(drawn["noise_other"], xp, dtype),
            drawn["permutations"])
        losses["d_loss"] = float(d_stats["d_loss"])
        grads.update({f"discriminator.{name}": g for name, g in d_grads.items()})
    return losses, grads


def as_arrays(noise, xp, dtype):
    """draw_noise's host structure -> xp arrays of dtype."""
    return {"eps": None if noise["eps"] is None else xp.asarray(noise["eps"], dtype=dtype),
            "u": [xp.asarray(u, dtype=dtype) for u in noise["u"]]}


def torch_losses_and_grads(ts, nets, work, drawn):
    """torch's forward and backward from the same randomness -> ({'objective'[, 'd_loss']}, {name: NumPy gradient})."""
    device = next(nets["model"].parameters()).device
    x_other = noise_other = permutations = None
    if work.x_other is not None:
        x_other = ts.to_torch(work.x_other, device)
        noise_other = ts.noise_to_torch(drawn["noise_other"], device)
        permutations = ts.to_torch(np.stack(drawn["permutations"]), device)
    losses, grads = ts.loss_and_grads(nets, work.spec, CAPACITY_STEP, ts.to_torch(work.x, device),
                                      ts.noise_to_torch(drawn["noise"], device), x_other, noise_other, permutations)
    return losses, {name: g.detach().cpu().numpy() for name, g in grads.items()}


def check_agreement(trainer, nets, work, drawn):
    """Ours (in the caller's setting) against torch from the same weights, data and randomness -> the differences."""
    x, x_other = on_device(trainer, work)
    ours, our_grads = our_losses_and_grads(trainer, x, x_other, drawn)
    theirs, torch_grads = torch_losses_and_grads(work.ts, nets, work, drawn)
    grad_diffs = {name: relative_difference(refnet.to_numpy(our_grads[name]), g) for name, g in torch_grads.items()}
    worst = max(grad_diffs, key=grad_diffs.get)
    result = {"losses": {name: {"ours": ours[name], "torch": theirs[name],
                                "rel_diff": abs(ours[name] - theirs[name]) / abs(theirs[name])} for name in theirs},
              "grad_worst_rel_diff": grad_diffs[worst], "grad_worst_param": worst}
    if grad_diffs[worst] > GRAD_RTOL:
        # A gradient that nearly cancels over the batch (an untrained layer's bias, say) can differ in float32
        # between two summation orders by more than GRAD_RTOL. Then float64 arbitrates: if ours matches the
        # float64 computation of the same step, the two agree up to float32 rounding.
        result["grad_worst_vs_float64"] = float64_gradient_error(trainer, work, drawn, worst, our_grads[worst])
    return result


def relative_difference(ours, theirs):
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def float64_gradient_error(trainer, work, drawn, name, grad):
    """|g - g64| / |g64| for parameter `name`, g64 from the same step in float64 (the networks are cast back after)."""
    networks = [n for n in (trainer.model, trainer.discriminator) if n is not None]
    for network in networks:
        network.astype(np.float64)
    try:
        xp = trainer.xp   # the data where the weights are (on a GPU too: our kernels have float64 versions)
        x_other = None if work.x_other is None else xp.asarray(work.x_other, dtype=np.float64)
        _, grads64 = our_losses_and_grads(trainer, xp.asarray(work.x, dtype=np.float64), x_other, drawn)
    finally:
        for network in networks:   # float32 -> float64 -> float32 is exact: the weights are unchanged
            network.astype(np.float32)
    return relative_difference(grad, grads64[name])


def agreement_line(batch_size, name, a):
    losses = "; ".join(f"{loss} {v['ours']:.6f} vs {v['torch']:.6f}, rel diff {v['rel_diff']:.1e}"
                       for loss, v in a["losses"].items())
    return (f"agreement, batch {batch_size}, {name} vs torch: {losses}; gradients worst rel diff "
            f"{a['grad_worst_rel_diff']:.1e} ({a['grad_worst_param']})")


def require_agreement(work, key):
    """Check our candidate `key` (in its setting) against torch eager; print; stop the run if they differ."""
    name = label(key, work.device)
    trainer = make_trainer(work)
    nets = work.ts.nets_from_refnet(trainer.model, trainer.discriminator, torch_device(work.device))
    drawn = draw_randomness(trainer, work)
    with our_setting(key):
        a = check_agreement(trainer, nets, work, drawn)
    print(agreement_line(work.batch_size, name, a))
    grads_agree = a["grad_worst_rel_diff"] <= GRAD_RTOL or a.get("grad_worst_vs_float64", 1.0) <= GRAD_RTOL * 1e-2
    if "grad_worst_vs_float64" in a:
        print(f"  {a['grad_worst_param']}: ours is {a['grad_worst_vs_float64']:.1e} from the float64 computation, "
              f"so the difference to torch is float32 rounding" if grads_agree else "")
    if max(v["rel_diff"] for v in a["losses"].values()) > LOSS_RTOL or not grads_agree:
        sys.exit(f"bench.train_step: {name} and torch disagree (loss rtol {LOSS_RTOL}, gradient rtol "
                 f"{GRAD_RTOL}): they do not compute the same thing, so there is nothing to compare")
    return {"batch_size": work.batch_size, "implementation": name, **a}


def torch_device(device):
    return "cuda" if device == "gpu" else "cpu"


# ---------------------------------------------------------------------- the candidates

def our_candidate(work, key):
    """Our candidate `key`: a Trainer of its own, stepping by buffered_step (graph, eager) or train_step."""
    trainer = make_trainer(work, graph=key == "graph")
    x, x_other = on_device(trainer, work)
    step = trainer.buffered_step if key in ("graph", "eager") else trainer.train_step
    return Candidate(key, label(key, work.device), lambda: step(x, x_other), device_sync(work.device),
                     setting=lambda: our_setting(key))


def torch_candidate(work, key):
    """torch eager, or torch.compile: a TorchTrainer holding a copy of our initial weights."""
    if work.ts is None:
        raise Unavailable(work.torch_why)
    ts, device = work.ts, torch_device(work.device)
    ours = make_trainer(work)   # the initial weights, as every candidate's
    nets = ts.nets_from_refnet(ours.model, ours.discriminator, device)
    compile_mode = COMPILE_MODE[work.device] if key == "compile" else None
    trainer = ts.TorchTrainer(nets, work.spec, step=CAPACITY_STEP - 1, compile_mode=compile_mode)
    x = ts.to_torch(work.x, device)
    x_other = None if work.x_other is None else ts.to_torch(work.x_other, device)
    sync = ts.torch.cuda.synchronize if work.device == "gpu" else (lambda: None)
    return Candidate(key, label(key, work.device), lambda: trainer.train_step(x, x_other), sync)


def set_up(work, key, warmup):
    """Build candidate `key` and run its warm-up steps (at least MIN_SETUP_STEPS: our capture, torch.compile's
    compilation and CUDA-graph recording happen here, untimed). A candidate that fails is Unavailable, its
    traceback on stderr: on a GPU lent for minutes, one failing candidate must not cost the others' figures."""
    make = our_candidate if CANDIDATES[key].ours else torch_candidate
    try:
        candidate = make(work, key)
        with candidate.setting():
            for _ in range(max(warmup, MIN_SETUP_STEPS)):
                candidate.run()
            candidate.sync()
    except Unavailable:
        raise
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        if key == "compile":
            work.ts.torch.compiler.reset()
        raise Unavailable(f"{label(key, work.device)} failed: {type(e).__name__}: {first_line(e)}") from e
    return candidate


def first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def set_up_all(work, keys, warmup, memory):
    """Each candidate in turn: set up, its memory measured around the set-up -> (candidates, unavailable rows)."""
    candidates, unavailable = [], []
    for key in keys:
        before = memory.snapshot()
        try:
            candidate = set_up(work, key, warmup)
        except Unavailable as why:
            unavailable.append({"batch_size": work.batch_size, "implementation": label(key, work.device),
                                "candidate": key, "unavailable": str(why)})
            continue
        candidate.memory = memory.growth(before)
        candidates.append(candidate)
    return candidates, unavailable


def count_kernel_launches(candidate):
    """How many fused kernels (kernels/*.cu) one step of `candidate` launches on the GPU: one extra, untimed step."""
    before = kernels.GPU.launches
    with candidate.setting():
        candidate.run()
    candidate.sync()
    return kernels.GPU.launches - before


def report_kernel_use(candidates):
    """Print the fused-kernel launches per step of our eager GPU candidates (0: the step does not call kernels/)."""
    for c in candidates:
        if c.key in ("eager", "kernels-on"):
            launches = count_kernel_launches(c)
            print(f"fused-kernel launches per step, {c.name}: {launches}"
                  + ("  (the step does not call kernels/)" if not launches else ""))


# ---------------------------------------------------------------------- timing

def time_candidates(candidates, steps, block=BLOCK):
    """The candidates take turns, `block` steps each, until each has `steps` timed steps.

    -> {name: (steps,) milliseconds of each timed step}. Turns rather than single alternating steps:
    a library's worker threads keep spinning for a while after its step (OpenBLAS's, torch's OpenMP
    pool), and with two threads on two cores one step of the other library would run against them.
    The first step of every turn is left out for the same reason (measured: with step-by-step
    alternation and 2 threads, torch took 37 ms a step instead of 26 with 1 thread).
    """
    times = {c.name: [] for c in candidates}
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for c in candidates:
            with c.setting():
                for i in range(n + 1):      # + 1: the turn's first step is untimed
                    c.sync()
                    start = time.perf_counter()
                    c.run()
                    c.sync()
                    if i > 0:
                        times[c.name].append((time.perf_counter() - start) * 1e3)
        done += n
    return {name: np.array(t) for name, t in times.items()}


def summarize(ms):
    """(steps,) milliseconds -> median, quartiles and interquartile range."""
    q1, median, q3 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": float(median), "q1_ms": float(q1), "q3_ms": float(q3), "iqr_ms": float(q3 - q1)}


def result_rows(batch_size, candidates, times, unavailable):
    """One row per candidate: summary, memory, every timing; ours with torch's and torch.compile's median over
    its own (torch_over_ours, compile_over_ours: > 1 means ours is faster)."""
    medians = {c.key: float(np.median(times[c.name])) for c in candidates}
    rows = []
    for c in candidates:
        row = {"batch_size": batch_size, "implementation": c.name, "candidate": c.key,
               **summarize(times[c.name]), **c.memory, "times_ms": times[c.name].round(4).tolist()}
        if CANDIDATES[c.key].ours:
            row["torch_over_ours"] = ratio(medians.get("torch"), row["median_ms"])
            row["compile_over_ours"] = ratio(medians.get("compile"), row["median_ms"])
        rows.append(row)
    return rows + unavailable


def ratio(numerator, denominator):
    return None if numerator is None else numerator / denominator


def bench_batch(args, spec, batch_size, ts, torch_why, memory):
    """Check and time every candidate at one batch size -> (result rows, agreement records)."""
    work = make_workload(args, spec, batch_size, ts, torch_why)
    ours = [key for key in args.candidates if CANDIDATES[key].ours]
    agreements = [require_agreement(work, key) for key in ours] if ts is not None else []
    candidates, unavailable = set_up_all(work, args.candidates, args.warmup, memory)
    report_kernel_use(candidates)
    times = time_candidates(candidates, args.steps)
    return result_rows(batch_size, candidates, times, unavailable), agreements


# ---------------------------------------------------------------------- reporting

def print_table(rows):
    print(f"{'batch':>5}  {'implementation':<32} {'median ms':>10} {'IQR ms':>8}  {'q1 - q3 ms':<17} "
          f"{'GPU MB':>8} {'torch/this':>10} {'compile/this':>12}")
    for r in rows:
        if "unavailable" in r:
            print(f"{r['batch_size']:>5}  {r['implementation']:<32} {r['unavailable']}")
            continue
        quartiles = f"{r['q1_ms']:.2f} - {r['q3_ms']:.2f}"
        print(f"{r['batch_size']:>5}  {r['implementation']:<32} {r['median_ms']:10.2f} {r['iqr_ms']:8.2f}  "
              f"{quartiles:<17} {optional(r.get('gpu_mb'), 8, '.0f')} {optional(r.get('torch_over_ours'), 10)} "
              f"{optional(r.get('compile_over_ours'), 12)}")
    print("torch/this, compile/this = torch (eager)'s, torch.compile's median / this row's median in this run: "
          "> 1 means this row is faster. GPU MB: device memory the candidate's set-up and warm-up took.")


def optional(value, width, spec=".2f"):
    return f"{value:{width}{spec}}" if value is not None else f"{'-':>{width}}"


def print_ratios(rows, batch_sizes):
    """One line per batch size: torch's and torch.compile's median over our first candidate's."""
    for batch_size in batch_sizes:
        ours = first_ours(rows, batch_size)
        if ours is None:
            continue
        parts = [f"{name} / {ours['implementation']} = {ours[key]:.2f}"
                 for name, key in (("torch (eager)", "torch_over_ours"), ("torch.compile", "compile_over_ours"))
                 if ours.get(key) is not None]
        if parts:
            print(f"batch {batch_size}: " + "; ".join(parts))


def first_ours(rows, batch_size):
    """The row of our first timed candidate at batch_size (ours (graph) on GPU by default), or None."""
    return next((r for r in rows if r["batch_size"] == batch_size and "unavailable" not in r
                 and CANDIDATES[r["candidate"]].ours), None)


def row_of(rows, batch_size, key):
    return next((r for r in rows if r["batch_size"] == batch_size and r.get("candidate") == key
                 and "unavailable" not in r), None)


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


def environment(device, ts):
    """What the numbers depend on: hardware, versions, thread settings, date."""
    torch = ts.torch if ts is not None else None
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
    ts, torch_why = load_torch_bench(args.device)
    env = environment(args.device, ts)
    print_environment(env)
    if args.device == "cpu" and args.kernels:
        print("note: --kernels has no effect on CPU: NumPy arrays always take the reference path "
              "(the fused kernels run only on CuPy arrays)")
    if ts is None:
        print(f"note: {torch_why}: timing ours only")
    else:
        ts.torch.set_num_threads(args.threads)
    spec = bench_spec(args)
    memory = GPUMemory(ts.torch if ts is not None else None) if args.device == "gpu" else NoGPUMemory()
    rows, agreements = [], []
    for batch_size in args.batch_sizes:
        r, a = bench_batch(args, spec, batch_size, ts, torch_why, memory)
        rows += r
        agreements += a
    print(f"\n{spec_name(args)}: ms per training step, median and interquartile range of {args.steps} timed "
          f"steps after {max(args.warmup, MIN_SETUP_STEPS)} warm-up steps (capacities at step {CAPACITY_STEP})")
    print_table(rows)
    print_ratios(rows, args.batch_sizes)
    print()
    peak = matmul_peak_gflops()
    for batch_size in args.batch_sizes:
        line = summary_line(args, spec, batch_size, rows, peak)
        if line is not None:
            print(json.dumps(line))
    if args.json:
        write_json(args, env, spec, rows, agreements)


def write_json(args, env, spec, rows, agreements):
    result = {**env, "model": args.model, "spec": spec_name(args), "image_shape": list(image_shape(spec)),
              "capacity_step": CAPACITY_STEP, "batch_sizes": args.batch_sizes, "steps": args.steps,
              "warmup": max(args.warmup, MIN_SETUP_STEPS), "candidates": args.candidates,
              "compile_mode": COMPILE_MODE[args.device], "agreement": agreements, "results": rows}
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.json}")


def spec_name(args):
    if args.model == "factorvae":
        return f"DEFAULT_SPECS[('dsprites', 'factorvae')] at {args.img} x {args.img}"
    return "MNIST_SPEC" if args.img == 32 else "DSPRITES_JOINTVAE_SPEC"


def bench_spec(args):
    """The MNIST JointVAE (1 x 32 x 32) or the published dSprites one (1 x 64 x 64); or the dSprites FactorVAE,
    at 64 x 64 as published or with the 32 x 32 network."""
    if args.model == "factorvae":
        spec = dict(DEFAULT_SPECS[("dsprites", "factorvae")])
        if args.img == 32:
            spec["image_shape"] = [1, 32, 32]
        return validate_spec(spec)
    return validate_spec(MNIST_SPEC if args.img == 32 else DSPRITES_JOINTVAE_SPEC)


def step_multiply_adds(spec, batch_size):
    """Multiply-adds of one step, counted from the layers' shapes on a host model: 3 x each differentiated
    forward (the VAE's; FactorVAE's D on the real and on the permuted codes) and, for FactorVAE, the second
    batch's encoder, forward only."""
    trainer = Trainer(spec, out_dir=None, seed=SEED, batch_size=batch_size)
    model, discriminator = trainer.model, trainer.discriminator
    x = make_batch(batch_size, model.image_shape)
    total = 3 * forward_multiply_adds(model, x.shape,
                                      lambda: model.decode_forward(model.eval_code(model.encode(x))))
    if discriminator is not None:
        z = np.zeros((batch_size, model.latent_dim), np.float32)
        total += 2 * 3 * forward_multiply_adds(discriminator, z.shape, lambda: discriminator.forward(z))
        total += forward_multiply_adds(model, x.shape, lambda: model.encode(x))
    return total


def summary_line(args, spec, batch_size, rows, peak_gflops):
    """The one-line JSON figure of a batch size: our first candidate, and torch's and torch.compile's when they ran."""
    ours = first_ours(rows, batch_size)
    if ours is None:
        return None
    seconds = ours["median_ms"] / 1e3
    flop = 2 * step_multiply_adds(spec, batch_size)
    gflops = flop / seconds / 1e9
    line = {"img": args.img, "model": args.model, "batch": batch_size, "threads": args.threads,
            "device": args.device, "ours": ours["implementation"],
            "ms_per_step": ours["median_ms"], "ms_per_step_min": min(ours["times_ms"]),
            "ms_per_step_max": max(ours["times_ms"]), "images_per_s": batch_size / seconds,
            "gflop_per_step": flop / 1e9, "gflops": gflops, "matmul_peak_gflops": peak_gflops,
            "peak_fraction": gflops / peak_gflops, "peak_rss_mb": peak_rss_mb(), "gpu_mb": ours.get("gpu_mb")}
    for key, prefix in (("torch", "torch"), ("compile", "compile")):
        row = row_of(rows, batch_size, key)
        if row is not None:
            line[f"{prefix}_ms_per_step"] = row["median_ms"]
            line[f"{prefix}_over_ours"] = row["median_ms"] / ours["median_ms"]
            line[f"{prefix}_gpu_mb"] = row.get("gpu_mb")
    if "torch_ms_per_step" in line:
        line["ratio"] = ours["median_ms"] / line["torch_ms_per_step"]   # ours / torch, the earlier figure
    return line


def profile_main(args):
    """--profile: our step, layer by layer, for each batch size (printed, and with --json written)."""
    from bench.layer_profile import print_profile, profile_step
    spec, sync, profiles = bench_spec(args), device_sync(args.device), []
    for batch_size in args.batch_sizes:
        work = make_workload(args, spec, batch_size, None, None)
        # On a GPU: the graph's own kernels and buffers (buffered_step), launched eagerly so that each layer can
        # be timed between two syncs; the launches' host time is in the figures, the graph's would not be.
        trainer = make_trainer(work, graph=False)
        x, x_other = on_device(trainer, work)
        step = trainer.buffered_step if args.device == "gpu" else trainer.train_step
        networks = {"": trainer.model, **({"D.": trainer.discriminator} if trainer.discriminator is not None else {})}
        rows, ms = profile_step(lambda: step(x, x_other), networks, args.steps, args.warmup, sync)
        print_profile(rows, ms, batch_size, args.steps)
        profiles.append({"batch_size": batch_size, "ms_per_step": ms, "layers": rows})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"device": args.device, "model": args.model, "steps": args.steps, "warmup": args.warmup,
                       "profiles": profiles}, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    rerun_with_threads(parse_args(sys.argv[1:]).threads, sys.argv[1:])   # before any timing: BLAS threads are fixed at load
    main()
