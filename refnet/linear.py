"""Fully connected layer, torch.nn.Linear's layout: weight (out, in)."""
import numpy as np

from .init import default_rng, uniform_init
from .layer import Layer
from .ops import matmul


class Linear(Layer):
    """y = x W^T + b

    x (..., in) -> y (..., out); weight (out, in), bias (out,).
    backward: dx = dy W, dW = dy^T x, db = sum(dy) over every leading axis.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        super().__init__()
        rng = default_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.params["weight"] = uniform_init((out_features, in_features), in_features, rng, dtype)
        if bias:
            self.params["bias"] = uniform_init((out_features,), in_features, rng, dtype)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects last axis {self.in_features}, got input shape {x.shape}")
        y = matmul(x, self.params["weight"].T)
        if "bias" in self.params:
            y += self.params["bias"]        # y is ours: add in place
        return y, x

    def backward(self, dy, cache):
        x = cache
        dy2 = dy.reshape(-1, self.out_features)   # (M, out), M = all leading axes
        x2 = x.reshape(-1, self.in_features)      # (M, in)
        grads = {"weight": matmul(dy2.T, x2)}
        if "bias" in self.params:
            grads["bias"] = dy2.sum(axis=0)
        return self.backward_input(dy, cache), grads

    def backward_input(self, dy, cache):
        return matmul(dy, self.params["weight"])

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features}, bias={'bias' in self.params})"
