"""KL of Categorical(alpha) to the uniform prior (kernels/categorical.cu), per row, and its backward.

    kl_n      = log K + sum_k alpha_nk log(alpha_nk + 1e-12)            alpha, dalpha: (N, K); kl, dkl: (N,)
    dalpha_nk = dkl_n (log(alpha_nk + 1e-12) + alpha_nk / (alpha_nk + 1e-12))

The reference it must equal: refnet.latent.kl_categorical_uniform(_backward).
"""
from refnet import latent

from .dispatch import choose_backend, prepare

SOURCE = "categorical.cu"


def kl_categorical_uniform(alpha, backend="auto"):
    """alpha (N, K) probabilities -> per-row KL (N,), cache."""
    device = choose_backend(alpha, backend)
    if device is None:
        kl, cache = latent.kl_categorical_uniform(alpha)
        return kl, (None, cache)
    xp, dtype, (alpha,) = prepare(alpha)
    n, k = alpha.shape
    kl = xp.empty(n, dtype=dtype)
    device.launch(SOURCE, "kl_categorical_forward", dtype, n, (alpha, kl, n, k))
    return kl, (device, alpha)   # the backward recomputes log(alpha + 1e-12)


def kl_categorical_uniform_backward(dkl, cache):
    """dkl (N,), or a scalar broadcast to it -> dalpha (N, K), on the backend the forward took."""
    device, saved = cache
    if device is None:
        return latent.kl_categorical_uniform_backward(dkl, saved)
    alpha = saved
    n, k = alpha.shape
    xp, dtype, (dkl,) = prepare(dkl, like=alpha, shape=(n,))
    dalpha = xp.empty_like(alpha)
    device.launch(SOURCE, "kl_categorical_backward", dtype, n * k, (alpha, dkl, dalpha, n, k))
    return dalpha
