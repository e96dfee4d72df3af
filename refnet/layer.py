"""The layer contract shared by every piece of refnet.

    y, cache = layer.forward(x)           # cache: whatever backward needs
    dx, grads = layer.backward(dy, cache) # grads: same keys as layer.params
    dx = layer.backward_input(dy, cache)  # dx only, for a layer whose parameters are not trained
                                          # by this loss (FactorVAE's TC term reaches the encoder
                                          # through the discriminator without training it)

A layer never keeps a cache on itself, so the same layer may run forward
several times before any backward (the FactorVAE discriminator sees real and
permuted codes in one step). Parameters live in `layer.params`; gradients are
returned, never accumulated on the layer.
"""


def _some(names, first=8):
    """Names (maybe read from a file) for a one-line message: "['a', 'b', ...] and 3 more"."""
    shown = [name if len(name) <= 80 else name[:80] + "..." for name in names[:first]]
    return f"{shown}" + (f" and {len(names) - first} more" if len(names) > first else "")


class Layer:
    """Base class: `params` maps a name to an array; subclasses add forward/backward."""

    def __init__(self):
        self.params = {}

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy, cache):
        raise NotImplementedError

    def backward_input(self, dy, cache):
        """dx alone. Layers whose parameter gradients cost a matmul override this to skip it."""
        dx, _ = self.backward(dy, cache)
        return dx

    def set_params(self, new_params, strict=True):
        """Replace parameter arrays by name, checking names and shapes.

        The one way to load, cast or move parameters: `astype` and `to` go
        through here, and so does loading a state dict from a file.
        """
        new_params = dict(new_params)
        current = self.params
        unknown = sorted(map(str, set(new_params) - set(current)))
        missing = sorted(set(current) - set(new_params)) if strict else []
        if unknown or missing:
            problems = [f"{label} parameter(s) {_some(names)}"
                        for label, names in (("unexpected", unknown), ("missing", missing)) if names]
            raise KeyError(f"{' and '.join(problems)} for {type(self).__name__}")
        for name, value in new_params.items():
            if tuple(value.shape) != tuple(current[name].shape):
                raise ValueError(f"parameter {name!r}: shape {tuple(value.shape)} does not match "
                                 f"the layer's {tuple(current[name].shape)}")
        self._assign(new_params)
        return self

    def _assign(self, new_params):
        self.params.update(new_params)

    def astype(self, dtype):
        """Cast every parameter (float64 for gradient checks, float32 for training)."""
        return self.set_params({k: v.astype(dtype) for k, v in self.params.items()})

    def to(self, device):
        """Move every parameter to 'cpu' (NumPy) or 'gpu' (CuPy)."""
        from .backend import params_to
        return self.set_params(params_to(self.params, device))

    def __repr__(self):
        return f"{type(self).__name__}()"


class Container(Layer):
    """A layer made of named sub-layers; its parameter names are dotted.

    `params` is built on demand from the children, e.g. 'features.0.weight',
    exactly like the keys of a PyTorch state_dict, so published weights load
    unchanged. The arrays are the children's own (no copies), so an optimiser
    updating them in place updates the layers.
    """

    def __init__(self, children=None):
        super().__init__()
        self.children = dict(children or {})

    @property
    def params(self):
        flat = {}
        for child_name, child in self.children.items():
            for name, value in child.params.items():
                flat[f"{child_name}.{name}"] = value
        return flat

    @params.setter
    def params(self, value):
        if value:  # Layer.__init__ assigns {}: containers own no arrays directly.
            raise AttributeError("a Container's params come from its children")

    def backward_child(self, path, dy, cache):
        """Backward of the sub-layer at dotted `path` ('fc_mean', 'fc_alphas.0') -> (dx, grads).

        The gradients are named as in self.params ('fc_alphas.0.weight'): the one place where a
        container's parameter names are made, for Sequential and for hand-composed models alike.
        """
        layer = self
        for name in path.split("."):
            layer = layer.children[name]
        dx, grads = layer.backward(dy, cache)
        return dx, {f"{path}.{name}": g for name, g in grads.items()}

    def _assign(self, new_params):
        by_child = {}
        for name, value in new_params.items():
            child_name, rest = name.split(".", 1)
            by_child.setdefault(child_name, {})[rest] = value
        for child_name, sub in by_child.items():
            self.children[child_name].set_params(sub, strict=False)

    def __repr__(self):
        inner = ",\n  ".join(f"({k}): {v!r}".replace("\n", "\n  ") for k, v in self.children.items())
        return f"{type(self).__name__}(\n  {inner}\n)"


class Sequential(Container):
    """Layers applied in order; children are named '0', '1', ... like torch.nn.Sequential.

    forward returns one cache per layer; backward walks them in reverse and
    returns grads keyed by the dotted names.
    """

    def __init__(self, *layers):
        super().__init__({str(i): layer for i, layer in enumerate(layers)})

    def __getitem__(self, index):
        return self.children[str(index)]

    def __len__(self):
        return len(self.children)

    def forward(self, x):
        caches = []
        for layer in self.children.values():
            x, cache = layer.forward(x)
            caches.append(cache)
        return x, caches

    def backward(self, dy, cache):
        grads = {}
        for child_name, layer_cache in zip(reversed(self.children), reversed(cache)):
            dy, layer_grads = self.backward_child(child_name, dy, layer_cache)
            grads.update(layer_grads)
        return dy, grads

    def backward_input(self, dy, cache):
        for layer, layer_cache in zip(reversed(self.children.values()), reversed(cache)):
            dy = layer.backward_input(dy, layer_cache)
        return dy
