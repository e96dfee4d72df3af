"""The KL terms against independent computations of the same quantity.

- KL(N(mu, sigma^2) || N(0, 1)) in closed form (refnet.kl_normal) against
  (a) a Monte Carlo average of log q(z) - log p(z), z ~ q, tolerance 5 standard errors;
  (b) numerical integration of q(z) (log q(z) - log p(z)) over mu +- 12 sigma, tolerance 1e-7.
- KL(alpha || uniform) (refnet.kl_categorical_uniform) against the definition
  sum_k alpha_k log(alpha_k / (1/K)) with 0 log 0 = 0, tolerance 1e-9 (the 1e-12
  inside the log moves the value by at most ~K * 1e-12).
"""
import math

import numpy as np

import refnet

MC_SAMPLES = 200_000
MC_TOLERANCE = 5.0             # standard errors
INTEGRATION_TOLERANCE = 1e-7   # relative to max(1, KL)
CATEGORICAL_TOLERANCE = 1e-9


def log_normal_pdf(z, mu, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / math.exp(logvar))


def kl_normal_monte_carlo_error(mu, logvar, rng):
    """|closed form - MC estimate| in units of the estimate's standard error."""
    closed, _ = refnet.kl_normal(np.array([[mu]]), np.array([[logvar]]))
    z = mu + math.exp(logvar / 2) * rng.standard_normal(MC_SAMPLES)
    log_ratio = log_normal_pdf(z, mu, logvar) - log_normal_pdf(z, 0.0, 0.0)
    standard_error = log_ratio.std() / math.sqrt(MC_SAMPLES)
    return abs(float(closed[0, 0]) - log_ratio.mean()) / max(standard_error, 1e-12)


def kl_normal_integration_error(mu, logvar):
    """Relative error of the closed form against a fine Riemann sum (the integrand is smooth and decays fast)."""
    closed, _ = refnet.kl_normal(np.array([[mu]]), np.array([[logvar]]))
    sigma = math.exp(logvar / 2)
    z, dz = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 200_001, retstep=True)
    log_q = log_normal_pdf(z, mu, logvar)
    integral = float(np.sum(np.exp(log_q) * (log_q - log_normal_pdf(z, 0.0, 0.0))) * dz)
    return abs(float(closed[0, 0]) - integral) / max(1.0, abs(integral))


def kl_categorical_definition_error(alpha):
    """max over rows of |kl_categorical_uniform(alpha) - sum alpha log(K alpha)|, alpha (N, K)."""
    ours, _ = refnet.kl_categorical_uniform(alpha)
    k = alpha.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(alpha > 0, alpha * np.log(k * alpha), 0.0)
    return float(np.abs(ours - terms.sum(axis=-1)).max())
