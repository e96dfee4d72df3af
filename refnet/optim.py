"""Adam with torch.optim.Adam's exact update, on {name: array} dicts or on one flat buffer.

For each parameter p with gradient g, at step t = 1, 2, ...:
    g = g + weight_decay * p                      (only if weight_decay != 0)
    m = m + (1 - beta1) (g - m)                   (torch's lerp form)
    v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
Parameters are updated in place, so layers holding them see the new values.

The update is elementwise, so it is one function, `adam_update`, applied per tensor by `step` and
once to a whole flat buffer by `step_flat` (refnet/flat.py; kernels/adam.cu is the same function
as one GPU launch). Both give the same bits.
"""
import math

from .backend import get_array_module


def adam_update(p, g, m, v, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay):
    """One Adam update of p, m, v in place (same shapes), elementwise: the reference kernels/adam.cu equals.

    step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t). The scalars are Python
    floats: NumPy rounds a Python float to the array's dtype before each operation, so in float32 every
    product below is float32(scalar) * array, which is what the kernel computes from scalars passed as T.
    """
    # Python floats even if NumPy scalars were passed: an np.float64 would turn a float32 update into float64.
    step_size, bias_correction2_sqrt = float(step_size), float(bias_correction2_sqrt)
    beta1, beta2, eps, weight_decay = float(beta1), float(beta2), float(eps), float(weight_decay)
    if weight_decay:
        g = g + weight_decay * p          # a new array: the caller's gradient is left alone
    m += (1.0 - beta1) * (g - m)
    v *= beta2
    v += (1.0 - beta2) * g * g
    denom = get_array_module(v).sqrt(v) / bias_correction2_sqrt + eps
    p -= step_size * m / denom


class Adam:
    """Adam on a {name: array} dict (`step`), or with a FlatLayout on flat buffers (`step_flat`).

    With `layout`, the moments are two flat buffers, `flat_m` and `flat_v`, and `m`, `v` hold views
    into them by name: `state_dict` writes 'm.<name>', 'v.<name>' either way, so checkpoints load
    into either kind of Adam.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, layout=None):
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.layout = layout
        self.step_count = 0
        self.m, self.v = {}, {}
        self.flat_m = self.flat_v = None   # with a layout: allocated at the first step or load
        self.step_scalars = None           # with a layout: [step_size, bias_correction2_sqrt] of the step

    def count_step(self):
        """Count a step -> (step_size, bias_correction2_sqrt) for it, as Python floats. A caller that sends them
        to self.step_scalars itself (a captured step, with its other inputs in one copy) counts with this."""
        self.step_count += 1
        beta1, beta2 = self.betas
        t = self.step_count
        return self.lr / (1.0 - beta1 ** t), math.sqrt(1.0 - beta2 ** t)

    def _hyper_parameters(self):
        return (*self.betas, self.eps, self.weight_decay)

    def _allocate_flat(self, xp, dtype):
        """Zero flat moments, and m, v as their views by name."""
        self.flat_m = xp.zeros(self.layout.size, dtype=dtype)
        self.flat_v = xp.zeros(self.layout.size, dtype=dtype)
        self.step_scalars = xp.zeros(2, dtype=dtype)
        self.m, self.v = self.layout.views(self.flat_m), self.layout.views(self.flat_v)

    def step(self, params, grads):
        """Update every params[name] in place with grads[name]."""
        missing = sorted(set(params) - set(grads))
        if missing:
            raise KeyError(f"Adam.step: no gradient for {missing}")
        step_size, bias_correction2_sqrt = self.count_step()
        for name, p in params.items():
            if self.layout is not None and self.flat_m is None:
                self._allocate_flat(get_array_module(p), p.dtype)
            if name not in self.m:
                if self.layout is not None:
                    raise KeyError(f"Adam.step: {name!r} is not in the layout")
                xp = get_array_module(p)
                self.m[name], self.v[name] = xp.zeros_like(p), xp.zeros_like(p)
            adam_update(p, grads[name], self.m[name], self.v[name], step_size, bias_correction2_sqrt,
                        *self._hyper_parameters())

    def step_flat(self, flat_params, flat_grads, update=adam_update):
        """Update the flat parameter buffer in place with the flat gradient buffer (both in self.layout's order).

        `update` has adam_update's signature: kernels.adam_update makes the step one GPU launch.
        The step is advance() (on the host) then apply_flat() (on the buffers' device).
        """
        self.advance(flat_params)
        self.apply_flat(flat_params, flat_grads, update)

    def advance(self, flat_params):
        """Count a step and write its step_size and sqrt(1 - beta2^t) into self.step_scalars, a buffer on
        flat_params' device: what a captured step (a CUDA graph) reads, written before each replay."""
        if self.layout is None:
            raise ValueError("Adam's flat step needs Adam(layout=...): the moments' flat layout")
        if self.flat_m is None:
            self._allocate_flat(get_array_module(flat_params), flat_params.dtype)
        xp = get_array_module(self.step_scalars)
        self.step_scalars[...] = xp.asarray(self.count_step(), dtype=self.step_scalars.dtype)

    def read_step_scalars_from(self, buffer):
        """From now on apply_flat reads the step's two scalars from `buffer` (2,), of the moments' device and
        dtype, which the caller fills with count_step()'s values: a view of a captured step's input block."""
        if self.layout is None:
            raise ValueError("Adam.read_step_scalars_from: the flat step needs Adam(layout=...)")
        if buffer.shape != (2,):
            raise ValueError(f"Adam.read_step_scalars_from: the buffer must have shape (2,), got {buffer.shape}")
        if self.flat_m is None:   # a fresh run: zero moments, beside the buffer
            self._allocate_flat(get_array_module(buffer), buffer.dtype)
        if buffer.dtype != self.flat_m.dtype or type(buffer) is not type(self.flat_m):
            raise ValueError(f"Adam.read_step_scalars_from: the buffer must be a {type(self.flat_m).__name__} of "
                             f"{self.flat_m.dtype}, as the moments are; got a {type(buffer).__name__} of {buffer.dtype}")
        self.step_scalars = buffer

    def apply_flat(self, flat_params, flat_grads, update=adam_update):
        """The update of the step advance() counted, its two per-step scalars read from self.step_scalars."""
        for what, buffer in (("parameters", flat_params), ("gradients", flat_grads)):
            if buffer.shape != (self.layout.size,):
                raise ValueError(f"Adam.step_flat: flat {what} of shape {buffer.shape}, "
                                 f"the layout holds ({self.layout.size},)")
        update(flat_params, flat_grads, self.flat_m, self.flat_v, self.step_scalars[0], self.step_scalars[1],
               *self._hyper_parameters())

    def state_dict(self):
        """Flat {key: array} for an .npz: 'step', 'm.<name>', 'v.<name>', hyper-parameters.

        The moments are copies: stepping on afterwards does not change a state already taken.
        """
        import numpy as np
        from .backend import to_numpy
        state = {"step": np.array(self.step_count, dtype=np.int64),
                 "lr": np.array(self.lr), "betas": np.array(self.betas),
                 "eps": np.array(self.eps), "weight_decay": np.array(self.weight_decay)}
        for name in self.m:
            state[f"m.{name}"] = np.array(to_numpy(self.m[name]))
            state[f"v.{name}"] = np.array(to_numpy(self.v[name]))
        return state

    def load_state_dict(self, state, device_like=None):
        """Restore from state_dict(); moments go to the array module of `device_like` arrays.

        With a layout the moments are copied into the flat buffers (a name the state lacks starts at
        zero, as it would at its first step); a name the layout lacks is a KeyError.
        """
        xp = get_array_module(*(device_like or {}).values()) if device_like else None
        self.step_count = int(state["step"])
        self.lr, self.eps = float(state["lr"]), float(state["eps"])
        self.betas = tuple(float(b) for b in state["betas"])
        self.weight_decay = float(state["weight_decay"])
        moments = {key: (xp.asarray(value) if xp is not None else value)
                   for key, value in state.items() if key.startswith(("m.", "v."))}
        self.m, self.v = {}, {}
        self.flat_m = self.flat_v = None
        if self.layout is None:
            for key, value in moments.items():
                (self.m if key[0] == "m" else self.v)[key[2:]] = value
        elif moments:
            unknown = sorted({key[2:] for key in moments} - set(self.layout.names))
            if unknown:
                raise KeyError(f"Adam.load_state_dict: moments for {unknown}, which the layout does not hold")
            first = next(iter(moments.values()))
            self._allocate_flat(xp if xp is not None else get_array_module(first), first.dtype)
            for key, value in moments.items():
                (self.m if key[0] == "m" else self.v)[key[2:]][...] = value
        return self
