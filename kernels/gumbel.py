"""Gumbel-softmax sample (kernels/gumbel.cu), one thread per row, and its backward.

    g = -log(-log(u + 1e-12) + 1e-12)
    y = softmax((log(alpha + 1e-12) + g) / tau)                  alpha, u, y, dy, dalpha: (N, K)
    dalpha = y (dy - sum_k dy_k y_k) / (tau (alpha + 1e-12))

The reference it must equal: refnet.latent.gumbel_softmax(_backward).
alpha are probabilities (the encoder's softmax), as the model feeds them.
"""
from refnet import latent

from .dispatch import choose_backend, prepare

SOURCE = "gumbel.cu"


def gumbel_softmax(alpha, u, temperature, backend="auto"):
    """alpha (N, K) probabilities, u (N, K) uniforms in [0, 1), temperature tau -> relaxed one-hot y (N, K), cache."""
    device = choose_backend(alpha, backend)
    if device is None:
        y, cache = latent.gumbel_softmax(alpha, u, temperature)
        return y, (None, cache)
    xp, dtype, (alpha, u) = prepare(alpha, u)
    n, k = alpha.shape
    y = xp.empty_like(alpha)
    device.launch(SOURCE, "gumbel_softmax_forward", dtype, n, (alpha, u, y, float(temperature), n, k))
    return y, (device, (alpha, y, float(temperature)))   # the reference's cache, field for field


def gumbel_softmax_backward(dy, cache):
    """dy (N, K) -> dalpha (N, K), on the backend the forward took."""
    device, saved = cache
    if device is None:
        return latent.gumbel_softmax_backward(dy, saved)
    alpha, y, temperature = saved
    xp, dtype, (dy,) = prepare(dy, like=alpha, shape=alpha.shape)
    n, k = alpha.shape
    dalpha = xp.empty_like(alpha)
    device.launch(SOURCE, "gumbel_softmax_backward", dtype, n, (alpha, y, dy, dalpha, temperature, n, k))
    return dalpha
