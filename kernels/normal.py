"""Gaussian reparameterisation fused with its KL term (kernels/normal.cu), elementwise, and its backward.

    z  = mu + exp(logvar / 2) eps                        mu, logvar, eps, z, kl: (N, D)
    kl = -1/2 (1 + logvar - mu^2 - exp(logvar))          per unit, to the prior N(0, 1)
    dmu     = dz + dkl mu
    dlogvar = dz eps exp(logvar / 2) / 2 + dkl (exp(logvar) - 1) / 2

The reference it must equal: refnet.latent.reparameterize_normal followed by refnet.latent.kl_normal
(and their backwards), composed in `reference`. Fused, a GPU reads mu and logvar once instead of twice.
"""
from refnet import latent

from .dispatch import choose_backend, prepare

SOURCE = "normal.cu"


def reference(mu, logvar, eps):
    """mu, logvar, eps (N, D) -> (z, kl) each (N, D), cache: the two refnet ops the kernel fuses."""
    z, z_cache = latent.reparameterize_normal(mu, logvar, eps)
    kl, kl_cache = latent.kl_normal(mu, logvar)
    return (z, kl), (z_cache, kl_cache)


def reference_backward(dz, dkl, cache):
    """dz, dkl (N, D) -> (dmu, dlogvar): the two paths from each input to the loss add."""
    z_cache, kl_cache = cache
    dmu_z, dlogvar_z = latent.reparameterize_normal_backward(dz, z_cache)
    dmu_kl, dlogvar_kl = latent.kl_normal_backward(dkl, kl_cache)
    return dmu_z + dmu_kl, dlogvar_z + dlogvar_kl


def reparameterize_with_kl(mu, logvar, eps, backend="auto"):
    """mu, logvar, eps (N, D) -> (z, kl) each (N, D), cache."""
    device = choose_backend(mu, backend)
    if device is None:
        out, cache = reference(mu, logvar, eps)
        return out, (None, cache)
    xp, dtype, (mu, logvar, eps) = prepare(mu, logvar, eps)
    z, kl = xp.empty_like(mu), xp.empty_like(mu)
    device.launch(SOURCE, "reparameterize_kl_forward", dtype, mu.size, (mu, logvar, eps, z, kl, mu.size))
    return (z, kl), (device, (mu, logvar, eps))   # the backward recomputes the exps from logvar


def reparameterize_with_kl_backward(dz, dkl, cache):
    """dz, dkl (N, D), or scalars broadcast to it -> (dmu, dlogvar), on the backend the forward took."""
    device, saved = cache
    if device is None:
        return reference_backward(dz, dkl, saved)
    mu, logvar, eps = saved
    xp, dtype, (dz, dkl) = prepare(dz, dkl, like=mu, shape=mu.shape)
    dmu, dlogvar = xp.empty_like(mu), xp.empty_like(mu)
    device.launch(SOURCE, "reparameterize_kl_backward", dtype, mu.size,
                  (mu, logvar, eps, dz, dkl, dmu, dlogvar, mu.size))
    return dmu, dlogvar
