"""Layers that only change an array's shape; backward restores the input's shape."""
from .layer import Layer


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), like torch.nn.Flatten()."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy, cache):
        return dy.reshape(cache), {}


class Reshape(Layer):
    """(N, ...) -> (N, *shape): the per-sample shape changes, the batch axis stays."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape), x.shape

    def backward(self, dy, cache):
        return dy.reshape(cache), {}

    def __repr__(self):
        return f"Reshape{self.shape}"
