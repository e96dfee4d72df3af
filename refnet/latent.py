"""The latent-variable ops of a VAE: the two reparameterised samplers and their KL terms, with backward.

The noise (eps, u) is an argument, never drawn here, so a step is a pure function of its inputs:
reproducible from a seed and gradient-checkable. One EPS for every log here: the paper's 1e-12,
which keeps log finite at 0; each gradient is that of the expression actually computed.

Continuous latent, q = N(mu, exp(logvar)), prior N(0, 1)              mu, logvar, eps, z, kl: (N, D)
    z  = mu + exp(logvar / 2) eps,  eps ~ N(0, 1)                      (Kingma & Welling)
         dmu = dz,   dlogvar = dz eps exp(logvar / 2) / 2
    KL = -1/2 (1 + logvar - mu^2 - exp(logvar))                        per unit
         dmu = dKL mu,   dlogvar = dKL (exp(logvar) - 1) / 2

Discrete latent, q = Categorical(alpha), prior uniform over K         alpha, u, y: (N, K); kl: (N,)
    g = -log(-log(u + EPS) + EPS),  u ~ U(0, 1)                        Gumbel(0, 1) noise
    y = softmax((log(alpha + EPS) + g) / tau)                          (Jang et al.; Maddison et al.)
         dalpha = softmax_backward(dy, y) / (tau (alpha + EPS))
    KL = log K + sum_k alpha_k log(alpha_k + EPS)                      per row
         dalpha_k = dKL (log(alpha_k + EPS) + alpha_k / (alpha_k + EPS))

kernels/ fuses these on the GPU (kernels/normal.cu: the sample and its KL; gumbel.cu; categorical.cu)
and must equal them.
"""
import math

from .activations import softmax, softmax_backward
from .backend import get_array_module

EPS = 1e-12


def reparameterize_normal(mu, logvar, eps):
    """mu, logvar, eps (N, D) -> z (N, D); cache."""
    xp = get_array_module(mu)
    std = xp.exp(0.5 * logvar)
    return mu + std * eps, (std, eps)


def reparameterize_normal_backward(dz, cache):
    """dz (N, D) -> (dmu, dlogvar), each (N, D)."""
    std, eps = cache
    return dz, dz * eps * std * 0.5


def kl_normal(mu, logvar):
    """mu, logvar (N, D) -> per-unit KL (N, D) to N(0, 1); cache."""
    xp = get_array_module(mu)
    var = xp.exp(logvar)
    return -0.5 * (1.0 + logvar - mu * mu - var), (mu, var)


def kl_normal_backward(dkl, cache):
    """dkl (N, D), or a scalar for every unit -> (dmu, dlogvar), each (N, D)."""
    mu, var = cache
    return dkl * mu, dkl * 0.5 * (var - 1.0)


def gumbel_noise(u):
    """u (N, K) uniforms in [0, 1) -> Gumbel(0, 1) noise (N, K), finite at u = 0."""
    xp = get_array_module(u)
    return -xp.log(-xp.log(u + EPS) + EPS)


def gumbel_softmax(alpha, u, temperature):
    """alpha (N, K) probabilities, u (N, K) uniforms, temperature tau > 0 -> relaxed one-hot y (N, K); cache."""
    xp = get_array_module(alpha)
    y = softmax((xp.log(alpha + EPS) + gumbel_noise(u)) / temperature, axis=-1)
    return y, (alpha, y, temperature)


def gumbel_softmax_backward(dy, cache):
    """dy (N, K) -> dalpha (N, K)."""
    alpha, y, temperature = cache
    return softmax_backward(dy, y, axis=-1) / (temperature * (alpha + EPS))


def kl_categorical_uniform(alpha):
    """alpha (N, K) probabilities -> per-row KL (N,) to the uniform distribution over K; cache."""
    xp = get_array_module(alpha)
    log_alpha = xp.log(alpha + EPS)
    k = alpha.shape[-1]
    return math.log(k) + (alpha * log_alpha).sum(axis=-1), (alpha, log_alpha)


def kl_categorical_uniform_backward(dkl, cache):
    """dkl (N,), or a scalar for every row -> dalpha (N, K)."""
    alpha, log_alpha = cache
    dkl = dkl[..., None] if getattr(dkl, "ndim", 0) else dkl   # per row: (N,) -> (N, 1)
    return dkl * (log_alpha + alpha / (alpha + EPS))


def one_hot_argmax(alpha):
    """alpha (N, K) -> (N, K): the most probable category of each row as a one-hot row (eval mode)."""
    xp = get_array_module(alpha)
    out = xp.zeros_like(alpha)
    out[xp.arange(alpha.shape[0]), alpha.argmax(axis=-1)] = 1
    return out


def max_categorical_kl(sizes):
    """sizes [K_1, ...] -> sum_i log K_i: the largest KL that categorical latents of these sizes can carry."""
    return sum(math.log(k) for k in sizes)
