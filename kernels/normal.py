"""Gaussian reparameterisation fused with its KL term (kernels/normal.cu), elementwise, and its backward.

    z  = mu + exp(logvar / 2) eps                        mu, logvar, eps, z, kl: (N, D)
    kl = -1/2 (1 + logvar - mu^2 - exp(logvar))          per unit, to the prior N(0, 1)
    dmu     = dz + dkl mu
    dlogvar = dz eps exp(logvar / 2) / 2 + dkl (exp(logvar) - 1) / 2

Reference, with the same semantics: the two functions the model uses one after the
other, jointvae.latent.reparameterize_normal and refnet.kl.kl_normal (and their
backwards). Fused, a GPU reads mu and logvar once instead of twice.
"""
from jointvae import latent
from refnet import kl as klmod

from .dispatch import choose_backend, prepare

SOURCE = "normal.cu"


def reference(mu, logvar, eps):
    """(z, kl), cache from the layer library's functions: the semantics the kernel must match."""
    z, z_cache = latent.reparameterize_normal(mu, logvar, eps)
    kl, kl_cache = klmod.kl_normal(mu, logvar)
    return (z, kl), (z_cache, kl_cache)


def reference_backward(dz, dkl, cache):
    z_cache, kl_cache = cache
    dmu_z, dlogvar_z = latent.reparameterize_normal_backward(dz, z_cache)
    dmu_kl, dlogvar_kl = klmod.kl_normal_backward(dkl, kl_cache)
    return dmu_z + dmu_kl, dlogvar_z + dlogvar_kl   # two paths from each input to the loss


def reparameterize_with_kl(mu, logvar, eps, backend="auto"):
    """mu, logvar, eps (N, D) -> (z, kl) each (N, D), cache."""
    run = choose_backend(mu, backend)
    if run is None:
        out, cache = reference(mu, logvar, eps)
        return out, (None, cache)
    xp, dtype, (mu, logvar, eps) = prepare(mu, logvar, eps)
    z, kl = xp.empty_like(mu), xp.empty_like(mu)
    run.launch(SOURCE, "reparameterize_kl_forward", dtype, mu.size, (mu, logvar, eps, z, kl, mu.size))
    return (z, kl), (run, (mu, logvar, eps))   # the backward recomputes the exps from logvar


def reparameterize_with_kl_backward(dz, dkl, cache):
    """dz, dkl (N, D), or scalars broadcast to it -> (dmu, dlogvar), on the path the forward took."""
    run, saved = cache
    if run is None:
        return reference_backward(dz, dkl, saved)
    mu, logvar, eps = saved
    xp, dtype, (dz, dkl) = prepare(dz, dkl, like=mu, shape=mu.shape)
    dmu, dlogvar = xp.empty_like(mu), xp.empty_like(mu)
    run.launch(SOURCE, "reparameterize_kl_backward", dtype, mu.size,
               (mu, logvar, eps, dz, dkl, dmu, dlogvar, mu.size))
    return dmu, dlogvar
