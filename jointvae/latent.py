"""Sampling the latent code, with backward: the two reparameterisations of JointVAE.

The noise (eps, u) is an argument, never drawn here, so a training step is a
pure function of its inputs: reproducible from a seed and gradient-checkable.

Continuous (Kingma & Welling):
    z = mu + exp(logvar / 2) * eps,                  eps ~ N(0, 1)
    dmu = dz,   dlogvar = dz * eps * exp(logvar / 2) / 2

Discrete (Gumbel-softmax relaxation, Jang et al. / Maddison et al.):
    g = -log(-log(u + 1e-12) + 1e-12),               u ~ U(0, 1)
    y = softmax((log(alpha + 1e-12) + g) / tau)
    dalpha = softmax_backward(dy, y) / tau / (alpha + 1e-12)
"""
import math

from refnet import get_array_module, softmax, softmax_backward

EPS = 1e-12
TEMPERATURE = 0.67   # the paper's tau


def reparameterize_normal(mu, logvar, eps):
    """mu, logvar, eps (N, D) -> z (N, D); cache for the backward."""
    xp = get_array_module(mu)
    std = xp.exp(0.5 * logvar)
    return mu + std * eps, (std, eps)


def reparameterize_normal_backward(dz, cache):
    """dz (N, D) -> (dmu, dlogvar)."""
    std, eps = cache
    return dz, dz * eps * std * 0.5


def gumbel_noise(u):
    """Uniform u in [0, 1) -> Gumbel(0, 1) noise, kept finite at u = 0 by the 1e-12s."""
    xp = get_array_module(u)
    return -xp.log(-xp.log(u + EPS) + EPS)


def gumbel_softmax(alpha, u, temperature=TEMPERATURE):
    """alpha (N, K) probabilities, u (N, K) uniforms -> relaxed one-hot y (N, K); cache."""
    xp = get_array_module(alpha)
    y = softmax((xp.log(alpha + EPS) + gumbel_noise(u)) / temperature, axis=-1)
    return y, (alpha, y, temperature)


def gumbel_softmax_backward(dy, cache):
    """dy (N, K) -> dalpha (N, K)."""
    alpha, y, temperature = cache
    return softmax_backward(dy, y, axis=-1) / (temperature * (alpha + EPS))


def one_hot_argmax(alpha):
    """Eval mode: the most probable category as a one-hot row, alpha (N, K) -> (N, K)."""
    xp = get_array_module(alpha)
    out = xp.zeros_like(alpha)
    out[xp.arange(alpha.shape[0]), alpha.argmax(axis=-1)] = 1
    return out


def log_uniform_entropy_bound(disc_dims):
    """sum_i log K_i: the largest KL a set of categorical latents can carry."""
    return sum(math.log(k) for k in disc_dims)
