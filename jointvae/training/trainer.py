"""Training JointVAE: the loop, its log, checkpoints and bit-identical resume.

Everything random in a run is derived from (seed, epoch) for the data order and
(seed, step) for the noise, so a resumed run replays exactly what an
uninterrupted one would have done: resume needs only the parameters, the Adam
state and the step counter, all in one checkpoint file written atomically.

Output folder:
    specs.json          the training spec (published format)
    train_args.json     the run's settings (seed, epochs, ...) for --resume
    weights.npz         the model, for load_model / evaluate / visualize
    checkpoint.npz      parameters + optimiser state + progress, for --resume
    log.jsonl           one line every record_loss_every steps: that step's loss parts, per-unit KL, capacities,
                        code spread (objective.code_spread; a warning is printed when it falls near 0)
    frames/             a traversal picture per epoch, for the training GIF
"""
import contextlib
import json
import math
import os
import time

import numpy as np

import refnet

from .. import data
from ..models import factorvae, objective
from ..models.jointvae import JointVAE, draw_noise
from ..models.model_folder import save_model
from ..models.specs import image_shape, save_spec
from .captured_step import CapturedStep
from .checkpoint import load_checkpoint, save_checkpoint
from .memory_check import check_memory
from .static_step import FlatNetwork, StaticStep
from .stopping import StopSignals, TrainingStopped


PROGRESS_SECONDS = 20   # the longest silence between progress lines
# The encoder has collapsed when the code spread (objective.code_spread) stays below COLLAPSED_SPREAD for
# COLLAPSED_STEPS steps of logged records. Measured (docs/results.md, "A warning when the encoder collapses"):
# the study's JointVAE on dSprites, collapsed: 0.8-1.6e-4 from step 50 to 500, 3.1-7.3e-5 at 600-800; a healthy
# MNIST JointVAE dips to 6.3e-4 for 8 steps near step 30, then rises to 0.4 by step 1,000; β-VAE on dSprites
# dips to 2.6e-3 at step 200, then rises to 1.2-1.5; FactorVAE to 5.2e-3 at 250, then 1.3 by 800.
COLLAPSED_SPREAD = 3e-4
COLLAPSED_STEPS = 200


class NonFiniteError(RuntimeError):
    """Training met a NaN or an infinity: the message names the step; the last good checkpoint is kept."""


class Trainer:
    def __init__(self, spec, out_dir, seed=0, epochs=None, max_steps=None, batch_size=None, lr=None,
                 device="cpu", checkpoint_every=1000, print_every=500, images=None, log=print, graph=True,
                 buffered=None, blas_threads=None):
        """device 'gpu': the step runs over fixed buffers on our kernels (buffered_step), replayed as one CUDA
        graph unless graph=False; buffered=True does the same on the CPU (without a graph), to check it."""
        self.spec = dict(spec)
        if batch_size is not None:
            self.spec["batch_size"] = int(batch_size)
        if lr is not None:
            self.spec["lr"] = [float(lr)]
        self.epochs = int(epochs if epochs is not None else self.spec.get("epochs", [100])[0])
        self.max_steps = max_steps
        self.out_dir, self.seed, self.device = out_dir, int(seed), device
        self.checkpoint_every, self.print_every = int(checkpoint_every), int(print_every)
        self.blas_threads = blas_threads   # recorded in train_args.json: a resume uses the same (same sums)
        self.record_every = int(self.spec.get("record_loss_every", 50))
        self.print = log
        self.xp = refnet.backend.require_gpu() if device == "gpu" else np
        self.images = images  # uint8 (N, C, H, W); loaded lazily from spec['dataset'] (or 'folder') when None
        self.model = JointVAE(image_shape(self.spec), self.spec["latent_spec"],
                              rng=np.random.default_rng([self.seed, 2]), init=self.spec.get("init", "pytorch"))
        self.optimizer = refnet.Adam(lr=self.spec["lr"][0], betas=tuple(self.spec.get("betas", (0.9, 0.999))))
        self.discriminator = self.d_optimizer = None   # FactorVAE's D and its own Adam, when the spec has tc_gamma
        if self.spec.get("tc_gamma") is not None:
            self.discriminator = factorvae.make_discriminator(
                self.model.latent_dim, np.random.default_rng([self.seed, 3]),
                hidden=self.spec.get("d_hidden", factorvae.HIDDEN),
                hidden_layers=self.spec.get("d_layers", factorvae.HIDDEN_LAYERS))
            self.d_optimizer = refnet.Adam(lr=self.spec["d_lr"], betas=tuple(self.spec["d_betas"]))
        self.step = 0                     # training steps completed
        self.low_spread_since = None      # the first logged step of the latest run of low code spreads
        self.collapse_warned = False
        self.checkpoint_step = None       # the step of the last checkpoint written or loaded
        self.buffered = device == "gpu" if buffered is None else bool(buffered)
        self.graph = bool(graph) and device == "gpu"
        self._flat_networks, self._buffered_steps, self._graph_stream = None, {}, None
        if device == "gpu":
            self.model.to("gpu")
            if self.discriminator is not None:
                self.discriminator.to("gpu")

    # ------------------------------------------------------------------ state

    def args(self):
        return {"seed": self.seed, "epochs": self.epochs, "max_steps": self.max_steps,
                "checkpoint_every": self.checkpoint_every, "print_every": self.print_every,
                "blas_threads": self.blas_threads}

    def trained(self):
        """{'model': (layer, optimizer)[, 'discriminator': (layer, optimizer)]}: what a checkpoint holds."""
        trained = {"model": (self.model, self.optimizer)}
        if self.discriminator is not None:
            trained["discriminator"] = (self.discriminator, self.d_optimizer)
        return trained

    def save_checkpoint(self):
        """checkpoint.npz (atomic) holds everything resume needs; weights.npz is the model alone.

        Never with non-finite parameters: the last good checkpoint stays, and NonFiniteError says so. The check
        runs on the host: a first use of a device kernel here could meet another run's graph capture."""
        for network, (layer, _) in self.trained().items():
            for name, value in layer.params.items():
                if not np.isfinite(refnet.to_numpy(value)).all():
                    kept = (f"the checkpoint of step {self.checkpoint_step} is kept" if self.checkpoint_step
                            else "no checkpoint was written")
                    raise NonFiniteError(f"step {self.step}: {network} parameter {name} holds NaN or infinity; "
                                         f"training stopped and {kept}")
        save_checkpoint(os.path.join(self.out_dir, "checkpoint.npz"), self.step, self.trained())
        save_model(self.out_dir, self.model, self.spec)
        self.checkpoint_step = self.step

    def load_checkpoint(self):
        self.step = load_checkpoint(os.path.join(self.out_dir, "checkpoint.npz"), self.trained(), self.xp)
        self.checkpoint_step = self.step
        self._truncate_log()

    def _truncate_log(self):
        """Drop log lines written after the checkpoint (the resumed run writes them again), and a
        last line off the record_every grid (written where an earlier --steps stopped the run)."""
        path = os.path.join(self.out_dir, "log.jsonl")
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8", errors="replace") as f:
            steps = [(line, _record_step(line)) for line in f if line.strip()]
        # A line cut off by a kill (the last one, usually) has no step: it goes, as do lines past the checkpoint.
        keep = [line for line, step in steps if step is not None and step <= self.step and step % self.record_every == 0]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(keep)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ data

    def load_data(self):
        if self.images is None:
            self.images, _ = data.load_for_spec(self.spec, "train")   # a dataset by name, or an image folder
        if tuple(self.images.shape[1:]) != self.model.image_shape:
            raise ValueError(f"training images have shape {self.images.shape[1:]}, "
                             f"the model expects {self.model.image_shape}")
        # An array of images goes to the device once, not per step; a dataset drawn on demand
        # (dSprites) is indexed on the host and each batch copied.
        self.images_on_device = self.device == "gpu" and isinstance(self.images, np.ndarray)
        if self.images_on_device:
            self.images = self.xp.asarray(self.images)

    def batches_per_epoch(self):
        return math.ceil(len(self.images) / self.spec["batch_size"])

    def epoch_order(self, epoch):
        """Batches of indices for `epoch`: a permutation seeded by (seed, epoch), last batch partial."""
        rng = np.random.default_rng([self.seed, 0, epoch])
        return list(data.iterate_batches(len(self.images), self.spec["batch_size"], rng))

    def total_steps(self):
        total = self.epochs * self.batches_per_epoch()
        return min(total, self.max_steps) if self.max_steps else total

    # ------------------------------------------------------------------ loop

    def second_batch(self):
        """FactorVAE's independent batch for the discriminator: indices seeded by (seed, step)."""
        rng = np.random.default_rng([self.seed, 4, self.step])
        return self.batch(np.sort(rng.choice(len(self.images), self.spec["batch_size"], replace=False)))

    def batch(self, idx):
        """Images at host indices idx -> float batch in [0, 1] on the device."""
        return data.to_float(self.images[self.xp.asarray(idx)] if self.images_on_device else self.images[idx],
                                 self.xp)

    def train_step(self, x, x2=None):
        """One optimisation step on a float batch x (and x2 for FactorVAE's discriminator) -> the step's stats.

        Every gradient of a step is taken at the parameters the step started from, then both
        optimisers step: the discriminator's update never touches the VAE's gradients, nor the
        VAE's update the discriminator's.
        """
        self.step += 1
        rng = np.random.default_rng([self.seed, 1, self.step])
        model, discriminator = self.model, self.discriminator
        noise = draw_noise(model, len(x), rng, self.xp)
        stats, grads, tc_cache = objective.objective_and_grads(model, x, noise, self.spec, self.step,
                                                               discriminator)             # forward, backward
        if discriminator is not None:   # FactorVAE's second update, from the same parameters
            stats.update(factorvae.update_discriminator(discriminator, self.d_optimizer, tc_cache, model, x2, rng))
        self.optimizer.step(model.params, grads)                                               # update
        return stats

    def buffered_step(self, x, x2=None):
        """train_step's numbers, computed over fixed buffers on our kernels (static_step.py): on a GPU one
        CUDA graph replay per step (captured_step.py), or the same kernels eagerly with graph=False."""
        self.step += 1
        if self._flat_networks is None:   # here, after any resume: flattening makes the parameters views
            self._flat_networks = {"model": FlatNetwork(self.model, self.optimizer)}
            self.optimizer = self._flat_networks["model"].optimizer
            if self.discriminator is not None:
                self._flat_networks["discriminator"] = FlatNetwork(self.discriminator, self.d_optimizer)
                self.d_optimizer = self._flat_networks["discriminator"].optimizer
        key = (len(x), None if x2 is None else len(x2))   # one captured step per batch shape (the last is short)
        if key not in self._buffered_steps:
            static = StaticStep(self.model, self.spec, self._flat_networks, self.seed, *key, self.discriminator)
            if self.graph:
                self._buffered_steps[key] = CapturedStep(static, self._graph_stream)
                self._graph_stream = self._buffered_steps[key].stream   # one stream for all the run's graphs
            else:
                self._buffered_steps[key] = static
        return self._buffered_steps[key](self.step, x, x2)

    def close(self):
        """Free the captured graphs and their memory now (captured_step.py: safely beside other runs' captures),
        rather than whenever the Trainer is collected. The Trainer can go on: a next step captures again."""
        for step in self._buffered_steps.values():
            if isinstance(step, CapturedStep):
                step.close()
        self._buffered_steps.clear()

    def run(self, on_epoch_end=None, stop=None):
        """Train to total_steps(); on SIGINT, SIGTERM or SIGUSR1 stop after the current step with its checkpoint
        written (TrainingStopped); on a non-finite loss stop with NonFiniteError.

        stop: a StopSignals entered by the caller, for a run in a worker thread (only the main thread can
        catch signals); by default the run catches them itself."""
        self.print(f"loading the training images ({self.spec.get('folder') or self.spec.get('dataset')}; "
                   f"cache: {data.default_data_dir()})")
        loading = time.perf_counter()
        self.load_data()    # first: data or a batch that cannot be used stops the run before anything is written
        self.print(f"loaded {len(self.images)} images in {time.perf_counter() - loading:.1f} s")
        if self.spec["batch_size"] > len(self.images):
            raise ValueError(f"batch size {self.spec['batch_size']} is larger than the {len(self.images)} training "
                             f"images: choose --batch-size {len(self.images)} or less")
        check_memory(self.model, self.spec["batch_size"], self.xp)
        os.makedirs(self.out_dir, exist_ok=True)
        remove_unfinished_files(self.out_dir)
        save_spec(os.path.join(self.out_dir, "specs.json"), self.spec)
        with open(os.path.join(self.out_dir, "train_args.json"), "w", encoding="utf-8") as f:
            json.dump(self.args(), f, indent=2)
        per_epoch, total = self.batches_per_epoch(), self.total_steps()
        start_step, start_time = self.step, time.perf_counter()
        self.print(f"training {self.spec.get('model', 'jointvae')} on {self.device}"
                   f"{' (one CUDA graph per step)' if self.graph else ''}: steps {self.step + 1}..{total} "
                   f"({per_epoch} per epoch, batch {self.spec['batch_size']}"
                   f"{f', {self.blas_threads} BLAS thread(s)' if self.blas_threads else ''}), into {self.out_dir}")
        # A fresh run starts its own log; a resumed one continues the log its checkpoint matches.
        log = open(os.path.join(self.out_dir, "log.jsonl"), "a" if self.step else "w", encoding="utf-8")
        with StopSignals() if stop is None else contextlib.nullcontext(stop) as stop:
            try:
                self._loop(log, stop, on_epoch_end, per_epoch, total, start_step, start_time)
            finally:
                log.close()
        self.save_checkpoint()
        return self

    def _loop(self, log, stop, on_epoch_end, per_epoch, total, start_step, start_time):
        if stop.received is not None:   # a signal while the run was getting ready (a run in a worker thread)
            raise TrainingStopped(self.step, stop.received)
        last_line = time.perf_counter()
        while self.step < total:
            epoch, first_batch = divmod(self.step, per_epoch)
            for idx in self.epoch_order(epoch)[first_batch:]:
                x = self.batch(idx)
                train = self.buffered_step if self.buffered else self.train_step
                stats = train(x, self.second_batch() if self.discriminator is not None else None)
                logged = self.step % self.record_every == 0 or self.step == total
                if logged or self.xp is np:   # on a GPU only where the figures are fetched anyway: no extra sync
                    self._stop_if_non_finite(stats)
                # A progress line every print_every steps, and at least every PROGRESS_SECONDS: a slow run
                # says how it goes from its first minute on, whatever print_every is.
                now = time.perf_counter()
                printed = self.step % self.print_every == 0 or self.step == total or now - last_line >= PROGRESS_SECONDS
                if logged or printed:
                    record = make_record(stats, self.step, epoch, now - start_time)
                    if logged:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        self._warn_on_collapse(record, len(x))
                    if printed:
                        self.print(self._progress_line(record, start_step, start_time, total, per_epoch))
                        last_line = now
                if self.step % self.checkpoint_every == 0 or self.step == total:
                    self.save_checkpoint()
                if stop.received is not None:
                    if self.checkpoint_step != self.step:
                        self.save_checkpoint()
                    raise TrainingStopped(self.step, stop.received)
                if self.step == total:
                    break
            if self.step % per_epoch == 0 and on_epoch_end is not None:
                on_epoch_end(self, self.step // per_epoch)

    def _stop_if_non_finite(self, stats):
        """NonFiniteError naming the step when the loss is NaN or infinite (the checkpoint before it is kept)."""
        loss = float(refnet.to_numpy(stats["loss"]))
        if not math.isfinite(loss):
            kept = (f"the checkpoint of step {self.checkpoint_step} is kept" if self.checkpoint_step
                    else "no checkpoint was written")
            raise NonFiniteError(f"step {self.step}: the loss is {loss}; training stopped and {kept} "
                                 f"(a learning rate too high, or NaN in the data or the weights?)")

    def _warn_on_collapse(self, record, batch_size):
        """Say so once the codes have stopped depending on the image for COLLAPSED_STEPS steps, and again if they
        depend on it anew: the run goes on, but meanwhile its decoder learns one average image."""
        if batch_size < 2:   # one image has no spread to measure
            return
        if record["code_spread"] < COLLAPSED_SPREAD:
            if self.low_spread_since is None:
                self.low_spread_since = self.step
            if not self.collapse_warned and self.step - self.low_spread_since >= COLLAPSED_STEPS:
                self.collapse_warned = True
                self.print(f"warning: step {self.step}: every image has got nearly the same code since step "
                           f"{self.low_spread_since} (code spread {record['code_spread']:.1e} < {COLLAPSED_SPREAD:g}, "
                           f"log.jsonl): the encoder has collapsed and the decoder learns one average image. The "
                           f"capacities may bring it back but often do not; a lower capacity weight γ may keep it "
                           f"(JointVAE on dSprites: 30 did where the published 150 did not, docs/results.md)")
            return
        if self.collapse_warned:
            self.print(f"step {self.step}: the codes depend on the image again (code spread "
                       f"{record['code_spread']:.1e}; collapsed since step {self.low_spread_since})")
        self.low_spread_since, self.collapse_warned = None, False

    def _progress_line(self, r, start_step, start_time, total, per_epoch):
        elapsed = time.perf_counter() - start_time
        rate = (self.step - start_step) / max(elapsed, 1e-9)
        eta = (total - self.step) / max(rate, 1e-9)
        tc = f"tc {r['tc']:.3f} d_acc {r['d_accuracy']:.2f} " if "tc" in r else ""
        epochs = -(-total // per_epoch)   # the epochs this run will reach: fewer than self.epochs with a step limit
        return (f"epoch {r['epoch'] + 1}/{epochs} step {self.step}/{total} loss {r['loss']:.2f} "
                f"recon {r['recon']:.2f} kl_cont {r['kl_cont']:.3f} (C {_fmt(r['C_cont'])}) "
                f"kl_disc {r['kl_disc']:.3f} (C {_fmt(r['C_disc'])}) {tc}{rate:.2f} steps/s "
                f"ETA {_duration(eta)}")


def _record_step(line):
    """The step of one log.jsonl line, or None for a line that is not a whole record."""
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def remove_unfinished_files(folder):
    """Delete the temporary files of writes a killed process left behind (`.tmp-*.npz`, `*.tmp`): an
    atomic write renames its temporary file when it is complete, so one still there is garbage."""
    for name in os.listdir(folder):
        if (name.startswith(".tmp-") and name.endswith(".npz")) or name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def make_record(stats, step, epoch, wall):
    """The JSONL record of one step: its loss parts, every unit's KL, both capacities and the code spread (fetched
    to the host); with a discriminator also the TC estimate, D's loss and its accuracy."""
    host = {k: refnet.to_numpy(stats[k]) for k in ("loss", "recon", "kl_cont", "kl_disc", "tc", "d_loss", "d_accuracy",
                                                  "code_spread") if stats.get(k) is not None}
    units = stats["kl_cont_units"]
    return {"step": step, "epoch": epoch, "wall_s": round(wall, 3), **{k: float(v) for k, v in host.items()},
            "kl_cont_units": refnet.to_numpy(units).tolist() if units is not None else [],
            "kl_disc_units": [float(refnet.to_numpy(v)) for v in stats["kl_disc_units"]],
            "C_cont": stats["C_cont"], "C_disc": stats["C_disc"]}


def _fmt(c):
    return "-" if c is None else f"{c:.2f}"


def _duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
