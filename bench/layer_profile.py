"""Where a training step's time goes: forward and backward per layer, and the copies around the matmuls.

    python -m bench.train_step --profile [--batch-sizes 64] [--steps N] [--warmup N]

Every leaf layer of the model (Conv2d, Linear, ReLU, ...) is timed in forward and in backward by
wrapping its two methods on the instance (the layers' code is untouched and the wrappers are removed
afterwards), and so are refnet's im2col and col2im, the gather and scatter-add copies a convolution does
around its one matrix product. Whatever a step does outside the layers (the loss, sampling and KL terms,
Adam, the noise) is the step's time minus the layers'. Timings nest: a convolution's time includes its
im2col/col2im, reported again on their own rows to show the share spent outside the matmul.
"""
import time
from collections import defaultdict

from refnet import conv
from refnet.layer import Container

COPIES = ("im2col", "col2im")


def leaf_layers(layer, prefix=""):
    """(dotted name, layer) for every layer that is not a container, in order."""
    if isinstance(layer, Container):
        for name, child in layer.children.items():
            yield from leaf_layers(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), layer


def network_layers(networks):
    """(dotted name, layer) of every leaf of `networks`: one model, or {prefix: model} (a FactorVAE's
    discriminator as {"": vae, "D.": discriminator})."""
    networks = networks if isinstance(networks, dict) else {"": networks}
    for prefix, network in networks.items():
        for name, layer in leaf_layers(network):
            yield prefix + name, layer


class LayerProfile:
    """Context manager: while active, every call of a wrapped function adds its duration to `seconds[key]`."""

    def __init__(self, model, sync=lambda: None):
        self.model, self.sync = model, sync   # model: one network, or {prefix: network}
        self.active = set()                    # the layers whose timed method is running now
        self.seconds = defaultdict(float)
        self._restore = []

    def _timed(self, fn, key):
        def timed(*args, **kwargs):
            if key[0] in self.active:   # Linear.backward calls its own backward_input: counted once, outside
                return fn(*args, **kwargs)
            self.active.add(key[0])
            try:
                self.sync()
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                self.sync()
                self.seconds[key] += time.perf_counter() - start
            finally:
                self.active.discard(key[0])
            return out
        return timed

    def __enter__(self):
        for name, layer in network_layers(self.model):
            for method in ("forward", "backward", "backward_input"):
                if not hasattr(layer, method):
                    continue
                setattr(layer, method, self._timed(getattr(layer, method), (name, method)))
                self._restore.append(lambda layer=layer, method=method: delattr(layer, method))
        for fn in COPIES:   # the layers call the module's functions: patch them where they are looked up
            original = getattr(conv, fn)
            setattr(conv, fn, self._timed(original, (fn, "copy")))
            self._restore.append(lambda fn=fn, original=original: setattr(conv, fn, original))
        return self

    def __exit__(self, *exc):
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()


def profile_step(step, model, steps, warmup, sync=lambda: None):
    """Run `step()` warmup + steps times, the timed ones under a LayerProfile -> (rows, ms per step).

    rows: dicts with layer, kind, forward_ms, backward_ms, total_ms, share (of the step), per step.
    """
    for _ in range(warmup):
        step()
    kinds = dict((name, type(layer).__name__) for name, layer in network_layers(model))
    with LayerProfile(model, sync) as profile:
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        total = (time.perf_counter() - start) / steps
    per_step = {key: s / steps for key, s in profile.seconds.items()}
    rows, in_layers = [], 0.0
    for name, kind in kinds.items():
        fwd = per_step.get((name, "forward"), 0.0)
        bwd = per_step.get((name, "backward"), 0.0) + per_step.get((name, "backward_input"), 0.0)
        in_layers += fwd + bwd
        rows.append(_row(name, kind, fwd, bwd, total))
    rows.append(_row("(outside the layers)", "loss, latents, Adam, noise", total - in_layers, 0.0, total))
    for fn in COPIES:
        rows.append(_row(f"of which {fn}", "copies", per_step.get((fn, "copy"), 0.0), 0.0, total))
    return rows, total * 1e3


def _row(name, kind, fwd, bwd, total):
    return {"layer": name, "kind": kind, "forward_ms": fwd * 1e3, "backward_ms": bwd * 1e3,
            "total_ms": (fwd + bwd) * 1e3, "share": (fwd + bwd) / total if total > 0 else 0.0}


def print_profile(rows, ms_per_step, batch_size, steps):
    print(f"\nper-layer profile, batch {batch_size}: {ms_per_step:.2f} ms per step (mean of {steps} profiled steps; "
          f"the wrappers' own cost is included)")
    print(f"{'layer':<28}{'kind':<28}{'forward ms':>11}{'backward ms':>12}{'total ms':>10}{'share':>8}")
    for r in rows:
        print(f"{r['layer']:<28}{r['kind']:<28}{r['forward_ms']:>11.3f}{r['backward_ms']:>12.3f}"
              f"{r['total_ms']:>10.3f}{r['share']:>8.1%}")
