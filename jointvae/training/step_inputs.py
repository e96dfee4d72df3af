"""A step's small inputs in one device buffer, sent from the host in one copy per step.

A captured step (static_step.py) reads what changes from step to step from buffers at fixed addresses: the
noise, FactorVAE's permutations, the capacities C(t) and each Adam's two scalars. Written one by one, each
of those is a host-to-device copy plus a copy kernel launched from Python, about 6 per JointVAE step and 20
per FactorVAE step, all host time on the step's critical path. Here they are views of one device buffer:
the host fills the same layout in a mirror (page-locked on a GPU), and one asynchronous copy sends it.

    inputs = StepInputs(xp, {"eps": ((64, 10), np.float32), "perm.0": ((64,), np.int64), ...})
    inputs.device["eps"]          # (64, 10) view of the device buffer: what the step reads
    host = inputs.host()          # {name: view} of a host mirror, to fill
    inputs.upload()               # mirror -> device buffer, one copy queued on the current stream

Two mirrors take turns. A GPU copies from a mirror after upload() returns, so a mirror is filled again only
once its last copy is done (host() waits for it, which is at most the step before last). The copy is
ordered after the work queued before it on the same stream, so a replay still reading the buffer is never
overwritten. On NumPy the "device" buffer is host memory and upload() copies at once.
"""
import numpy as np

import refnet

ALIGN = 16   # bytes: every field starts on a multiple, so any dtype's view of the buffer is aligned


class StepInputs:
    def __init__(self, xp, fields):
        """fields {name: (shape, dtype)}, in the order they are laid out."""
        self.xp, self.layout, offset = xp, {}, 0
        for name, (shape, dtype) in fields.items():
            dtype, shape = np.dtype(dtype), tuple(int(s) for s in shape)
            if any(s < 0 for s in shape):
                raise ValueError(f"StepInputs: field {name!r} has a negative dimension: {shape}")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            self.layout[name] = (offset, shape, dtype, nbytes)
            offset += -(-nbytes // ALIGN) * ALIGN
        self.nbytes = max(offset, ALIGN)
        self.on_gpu = xp is not np
        self.buffer = xp.zeros(self.nbytes, dtype=np.uint8)
        self.device = self._views(self.buffer)
        if self.on_gpu:
            import cupyx
            self.mirrors = [cupyx.empty_pinned(self.nbytes, dtype=np.uint8) for _ in range(2)]
            for mirror in self.mirrors:
                mirror[...] = 0   # page-locked memory comes uninitialised; a field never written stays 0
            self.copied = [None, None]   # the event after each mirror's last copy
        else:
            self.mirrors = [np.zeros(self.nbytes, dtype=np.uint8) for _ in range(2)]
        self.turn = 0

    def _views(self, flat):
        return {name: flat[offset:offset + nbytes].view(dtype).reshape(shape)
                for name, (offset, shape, dtype, nbytes) in self.layout.items()}

    def host(self):
        """{name: view} of the mirror whose turn it is, once no copy reads it any more."""
        if self.on_gpu and self.copied[self.turn] is not None:
            self.copied[self.turn].synchronize()
        return self._views(self.mirrors[self.turn])

    def upload(self):
        """Send this turn's mirror to the device buffer (asynchronously on a GPU, on the current stream)."""
        mirror = self.mirrors[self.turn]
        if self.on_gpu:
            import cupy
            stream = cupy.cuda.get_current_stream()
            self.buffer.set(mirror, stream=stream)
            event = self.copied[self.turn] or cupy.cuda.Event(block=False, disable_timing=True)
            event.record(stream)
            self.copied[self.turn] = event
        else:
            self.buffer[...] = mirror
        self.turn = 1 - self.turn


def noise_fields(prefix, noise):
    """The fields of draw_noise's {'eps': (N, cont) or None, 'u': [(N, K_i)]}: '<prefix>eps', '<prefix>u.<i>'."""
    fields = {}
    if noise["eps"] is not None:
        fields[prefix + "eps"] = (noise["eps"].shape, noise["eps"].dtype)
    for i, u in enumerate(noise["u"]):
        fields[f"{prefix}u.{i}"] = (u.shape, u.dtype)
    return fields


def noise_views(prefix, views, like):
    """draw_noise's dict with the arrays of `views` in it (None where `like` has none)."""
    return {"eps": views[prefix + "eps"] if like["eps"] is not None else None,
            "u": [views[f"{prefix}u.{i}"] for i in range(len(like["u"]))]}


def fill_noise(prefix, host, noise):
    """Copy a host draw of draw_noise into the mirror's views."""
    if noise["eps"] is not None:
        host[prefix + "eps"][...] = refnet.to_numpy(noise["eps"])
    for i, u in enumerate(noise["u"]):
        host[f"{prefix}u.{i}"][...] = refnet.to_numpy(u)
