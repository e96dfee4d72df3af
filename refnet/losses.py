"""Reconstruction losses with forward and backward.

Each loss is a pair of functions:

    loss, cache = binary_cross_entropy(p, target, reduction)
    dp = binary_cross_entropy_backward(dloss, cache)

Reductions of the elementwise loss l (N, ...):
    'mean'      sum(l) / l.size                 (PyTorch's default)
    'sum'       sum(l)
    'batchmean' sum(l) / N: summed over pixels, averaged over the batch (the VAE's)
    'none'      l itself; dloss then has l's shape
"""
import math

import numpy as np

from .activations import sigmoid, softmax
from .backend import get_array_module

REDUCTIONS = ("mean", "sum", "batchmean", "none")

# PyTorch clamps log(p) at -100 in binary_cross_entropy so that p = 0 or 1 gives
# a finite loss, and its backward divides by max(p (1 - p), 1e-12).
LOG_CLAMP = -100.0
BCE_GRAD_EPS = 1e-12


def _reduce(elementwise, reduction):
    if reduction == "none":
        return elementwise
    total = elementwise.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / elementwise.size
    if reduction == "batchmean":
        return total / elementwise.shape[0]
    raise ValueError(f"unknown reduction {reduction!r}: expected one of {REDUCTIONS}")


def _reduce_backward(dloss, shape, reduction):
    """d(reduced)/d(elementwise) times dloss, broadcastable to `shape`."""
    if reduction in ("none", "sum"):
        return dloss
    if reduction == "mean":
        return dloss / math.prod(shape)
    return dloss / shape[0]  # batchmean


def _check_pair(name, x, target, reduction):
    if x.shape != target.shape:
        raise ValueError(f"{name}: input shape {tuple(x.shape)} != target shape {tuple(target.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: unknown reduction {reduction!r}: expected one of {REDUCTIONS}")


def binary_cross_entropy(p, target, reduction="mean"):
    """l = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 like PyTorch.

    p, target (N, ...) with p in [0, 1].
    """
    _check_pair("binary_cross_entropy", p, target, reduction)
    xp = get_array_module(p)
    with np.errstate(divide="ignore"):  # log(0) = -inf, then clamped; a CuPy array ignores this
        log_p = xp.maximum(xp.log(p), LOG_CLAMP)
        log_1mp = xp.maximum(xp.log(1.0 - p), LOG_CLAMP)
    loss = -(target * log_p + (1.0 - target) * log_1mp)
    return _reduce(loss, reduction), (p, target, reduction)


def binary_cross_entropy_backward(dloss, cache):
    """dl/dp = (p - t) / max(p (1 - p), 1e-12), PyTorch's formula (finite at p = 0 and 1)."""
    p, target, reduction = cache
    xp = get_array_module(p)
    scale = _reduce_backward(dloss, p.shape, reduction)
    return scale * (p - target) / xp.maximum(p * (1.0 - p), BCE_GRAD_EPS)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """BCE on sigmoid(x) in the stable form l = max(x, 0) - x t + log(1 + exp(-|x|))."""
    _check_pair("binary_cross_entropy_with_logits", logits, target, reduction)
    xp = get_array_module(logits)
    loss = xp.maximum(logits, 0) - logits * target + xp.log1p(xp.exp(-xp.abs(logits)))
    return _reduce(loss, reduction), (logits, target, reduction)


def binary_cross_entropy_with_logits_backward(dloss, cache):
    """dl/dx = sigmoid(x) - t."""
    logits, target, reduction = cache
    return _reduce_backward(dloss, logits.shape, reduction) * (sigmoid(logits) - target)


def mse(y, target, reduction="mean"):
    """l = (y - t)^2."""
    _check_pair("mse", y, target, reduction)
    diff = y - target
    return _reduce(diff * diff, reduction), (diff, reduction)


def mse_backward(dloss, cache):
    """dl/dy = 2 (y - t)."""
    diff, reduction = cache
    return _reduce_backward(dloss, diff.shape, reduction) * 2.0 * diff


def log_softmax(x, axis=-1):
    """x - max - log(sum exp(x - max)): finite for any finite x (the log-sum-exp trick)."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(logits, labels, reduction="mean"):
    """l_n = -log softmax(logits_n)[labels_n]: PyTorch's F.cross_entropy.

    logits (N, K) float, labels (N,) integers in [0, K). Reductions as above;
    'mean' and 'batchmean' agree here (one loss per row).
    """
    xp = get_array_module(logits)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"softmax_cross_entropy: expected logits (N, K) and labels (N,), "
                         f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
    # The range is checked where the labels are on the host: on a GPU the check would be a host sync
    # every step (and stop a CUDA graph's capture); FactorVAE's labels there are constants.
    in_range = xp is not np or not ((labels < 0) | (labels >= logits.shape[1])).any()
    if labels.dtype.kind not in "iu" or not in_range:
        raise ValueError(f"softmax_cross_entropy: labels must be integers in [0, {logits.shape[1]})")
    if reduction not in REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: unknown reduction {reduction!r}: expected one of {REDUCTIONS}")
    rows = xp.arange(len(labels))
    loss = -log_softmax(logits, axis=1)[rows, labels]
    return _reduce(loss, reduction), (logits, labels, reduction)


def softmax_cross_entropy_backward(dloss, cache):
    """dl_n/dlogits_n = softmax(logits_n) - onehot(labels_n)."""
    logits, labels, reduction = cache
    xp = get_array_module(logits)
    d = softmax(logits, axis=1)
    d[xp.arange(len(labels)), labels] -= 1.0
    scale = _reduce_backward(dloss, (len(labels),), reduction)
    return d * (scale[:, None] if getattr(scale, "ndim", 0) == 1 else scale)
