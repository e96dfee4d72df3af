"""The two KL terms of JointVAE, elementwise / per row, with their backward.

Continuous latents, q = N(mu, exp(logvar)), prior N(0, 1), per unit:
    KL = -1/2 (1 + logvar - mu^2 - exp(logvar))
    dKL/dmu = mu,   dKL/dlogvar = 1/2 (exp(logvar) - 1)

Discrete latent, q = Categorical(alpha), prior uniform over K, per row:
    KL = log K + sum_k alpha_k log(alpha_k + 1e-12)
    dKL/dalpha_k = log(alpha_k + 1e-12) + alpha_k / (alpha_k + 1e-12)
The 1e-12 is the paper's EPS: it keeps log finite at alpha = 0 and the
gradient is that of the expression actually computed.
"""
import math

from .backend import get_array_module

EPS = 1e-12


def kl_normal(mu, logvar):
    """mu, logvar (N, D) -> per-unit KL (N, D) to N(0, 1); cache for the backward."""
    xp = get_array_module(mu)
    var = xp.exp(logvar)
    return -0.5 * (1.0 + logvar - mu * mu - var), (mu, var)


def kl_normal_backward(dkl, cache):
    """dkl (N, D) -> (dmu, dlogvar), each (N, D)."""
    mu, var = cache
    return dkl * mu, dkl * 0.5 * (var - 1.0)


def kl_categorical_uniform(alpha):
    """alpha (N, K) probabilities -> per-row KL (N,) to the uniform distribution; cache."""
    xp = get_array_module(alpha)
    log_alpha = xp.log(alpha + EPS)
    k = alpha.shape[-1]
    return math.log(k) + (alpha * log_alpha).sum(axis=-1), (alpha, log_alpha)


def kl_categorical_uniform_backward(dkl, cache):
    """dkl (N,) -> dalpha (N, K)."""
    alpha, log_alpha = cache
    return dkl[..., None] * (log_alpha + alpha / (alpha + EPS))
