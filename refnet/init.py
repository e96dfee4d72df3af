"""PyTorch's default initialisation, drawn from a seeded NumPy Generator.

torch.nn.Linear/Conv2d/ConvTranspose2d use kaiming_uniform_(a=sqrt(5)) for the
weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias. With a = sqrt(5):
gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = sqrt(3) * gain / sqrt(fan_in)
= 1 / sqrt(fan_in), so weight and bias share the same bound.

fan_in follows torch: weight.shape[1] * prod(kernel), which for a transposed
convolution (weight (in, out, kh, kw)) is out * kh * kw.
"""
import math

import numpy as np


def fan_in(weight_shape):
    receptive = math.prod(weight_shape[2:]) if len(weight_shape) > 2 else 1
    return weight_shape[1] * receptive


def default_rng(rng):
    """The Generator to draw from: the one given, or a fresh unseeded one."""
    return rng if rng is not None else np.random.default_rng()


def uniform_init(shape, fan, rng, dtype=np.float32):
    """U(-1/sqrt(fan), 1/sqrt(fan)) as `dtype`: torch's default for weights and biases."""
    bound = 1.0 / math.sqrt(fan) if fan > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
