"""Binary cross-entropy on logits (kernels/bce.cu), sigmoid and cross-entropy fused, and its backward.

    l  = max(x, 0) - x t + log(1 + exp(-|x|))            x, t (N, ...); per element, then reduced
    dx = dl (sigmoid(x) - t)

Reference, with the same semantics: refnet.losses.binary_cross_entropy_with_logits(_backward).
The kernel computes the elementwise loss; the reduction ('mean', 'sum', 'batchmean',
'none') and its gradient are refnet.losses' own.
"""
from refnet import losses

from .dispatch import choose_backend, prepare

SOURCE = "bce.cu"


def binary_cross_entropy_with_logits(logits, target, reduction="mean", backend="auto"):
    """logits, target (N, ...) -> the reduced loss, cache."""
    run = choose_backend(logits, backend)
    if run is None:
        loss, cache = losses.binary_cross_entropy_with_logits(logits, target, reduction)
        return loss, (None, cache)
    losses._check_pair("binary_cross_entropy_with_logits", logits, target, reduction)
    xp, dtype, (logits, target) = prepare(logits, target)
    elementwise = xp.empty_like(logits)
    run.launch(SOURCE, "bce_with_logits_forward", dtype, logits.size, (logits, target, elementwise, logits.size))
    return losses._reduce(elementwise, reduction), (run, (logits, target, reduction))


def binary_cross_entropy_with_logits_backward(dloss, cache):
    """dloss (a scalar, or the loss's shape for 'none') -> dlogits, on the path the forward took."""
    run, saved = cache
    if run is None:
        return losses.binary_cross_entropy_with_logits_backward(dloss, saved)
    logits, target, reduction = saved
    scale = losses._reduce_backward(dloss, logits.shape, reduction)
    xp, dtype, (scale,) = prepare(scale, like=logits, shape=logits.shape)
    dlogits = xp.empty_like(logits)
    run.launch(SOURCE, "bce_with_logits_backward", dtype, logits.size,
               (logits, target, scale, dlogits, logits.size))
    return dlogits
