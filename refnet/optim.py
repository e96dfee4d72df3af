"""Adam with torch.optim.Adam's exact update, on {name: array} dicts.

For each parameter p with gradient g, at step t = 1, 2, ...:
    g = g + weight_decay * p                      (only if weight_decay != 0)
    m = m + (1 - beta1) (g - m)                   (torch's lerp form)
    v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
Parameters are updated in place, so layers holding them see the new values.
"""
import math

from .backend import get_array_module


class Adam:
    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.step_count = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        """Update every params[name] in place with grads[name]."""
        missing = sorted(set(params) - set(grads))
        if missing:
            raise KeyError(f"Adam.step: no gradient for {missing}")
        self.step_count += 1
        beta1, beta2 = self.betas
        t = self.step_count
        step_size = self.lr / (1.0 - beta1 ** t)
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** t)
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if name not in self.m:
                xp = get_array_module(p)
                self.m[name], self.v[name] = xp.zeros_like(p), xp.zeros_like(p)
            m, v = self.m[name], self.v[name]
            m += (1.0 - beta1) * (g - m)
            v *= beta2
            v += (1.0 - beta2) * g * g
            denom = get_array_module(v).sqrt(v) / bias_correction2_sqrt + self.eps
            p -= step_size * m / denom

    def state_dict(self):
        """Flat {key: array} for an .npz: 'step', 'm.<name>', 'v.<name>', hyper-parameters."""
        import numpy as np
        from .backend import to_numpy
        state = {"step": np.array(self.step_count, dtype=np.int64),
                 "lr": np.array(self.lr), "betas": np.array(self.betas),
                 "eps": np.array(self.eps), "weight_decay": np.array(self.weight_decay)}
        for name in self.m:
            state[f"m.{name}"] = to_numpy(self.m[name])
            state[f"v.{name}"] = to_numpy(self.v[name])
        return state

    def load_state_dict(self, state, device_like=None):
        """Restore from state_dict(); moments go to the array module of `device_like` arrays."""
        xp = get_array_module(*(device_like or {}).values()) if device_like else None
        self.step_count = int(state["step"])
        self.lr, self.eps = float(state["lr"]), float(state["eps"])
        self.betas = tuple(float(b) for b in state["betas"])
        self.weight_decay = float(state["weight_decay"])
        self.m, self.v = {}, {}
        for key, value in state.items():
            if key.startswith(("m.", "v.")):
                arr = xp.asarray(value) if xp is not None else value
                (self.m if key[0] == "m" else self.v)[key[2:]] = arr
        return self
