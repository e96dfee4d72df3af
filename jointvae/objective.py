"""The JointVAE objective (Dupont 2018, eq. 7) and its gradient, exactly as the paper's code computes it.

    loss = BCE(x_hat, x)  summed over pixels, averaged over the batch
         + gamma_c * |KL_cont - C_cont(t)|
         + gamma_d * |KL_disc - C_disc(t)|
    KL_cont = sum_j mean_n  -1/2 (1 + logvar_nj - mu_nj^2 - exp(logvar_nj))
    KL_disc = sum_i mean_n  (log K_i + sum_k alpha_ink log(alpha_ink + 1e-12))
    C(t) = min(C_min + (C_max - C_min) * t / iterations, C_max),  t = 1, 2, ... the training step
    C_disc is also capped at sum_i log K_i, the most a categorical code can carry.

The optimiser sees loss / num_pixels (the paper's normalisation).
"""
import numpy as np

import kernels
import refnet

from .latent import log_uniform_entropy_bound


def capacity(capacity_spec, step):
    """[C_min, C_max, iterations, gamma], step t -> (C(t), gamma)."""
    c_min, c_max, iterations, gamma = capacity_spec
    return min(c_min + (c_max - c_min) * step / float(iterations), c_max), gamma


def current_capacities(spec, step):
    """{'cont': (C, gamma) or None, 'disc': (C, gamma) or None} at training step `step`."""
    out = {"cont": None, "disc": None}
    if spec["latent_spec"]["cont"]:
        out["cont"] = capacity(spec["cont_capacity"], step)
    if spec["latent_spec"]["disc"]:
        c, gamma = capacity(spec["disc_capacity"], step)
        out["disc"] = (min(c, log_uniform_entropy_bound(spec["latent_spec"]["disc"])), gamma)
    return out


def kl_terms(dist):
    """Per-unit KL of a latent distribution, averaged over the batch (for evaluation).

    -> {'cont': (cont,) per-unit KL or None, 'disc': [scalar per discrete latent]}
    """
    kls = {"cont": None, "disc": []}
    if dist["cont"] is not None:
        kls["cont"] = refnet.kl_normal(*dist["cont"])[0].mean(axis=0)
    for alpha in dist["disc"]:
        kls["disc"].append(kernels.kl_categorical_uniform(alpha)[0].mean())
    return kls


def jointvae_forward(model, x, noise, spec, step):
    """The objective of one training step.

    x (N, C, H, W) in [0, 1]; noise {'eps': (N, cont), 'u': [(N, K_i)]}; step t >= 1.
    Returns (stats, cache): stats holds the loss parts as 0-d arrays on x's
    device (fetched to the host only when logged); 'objective' is what is minimised.
    """
    dist, enc_cache = model.encode_forward(x)
    z, kl, latent_cache = model.latent_forward(dist, noise)
    x_hat, dec_cache = model.decode_forward(z)

    recon, recon_cache = refnet.binary_cross_entropy(x_hat, x, reduction="batchmean")
    kls = {"cont": kl["cont"].mean(axis=0) if kl["cont"] is not None else None,   # per unit, batch mean
           "disc": [rows.mean() for rows in kl["disc"]]}
    caps = current_capacities(spec, step)
    xp = refnet.get_array_module(x)
    zero = xp.zeros((), dtype=x.dtype)
    kl_cont = kls["cont"].sum() if kls["cont"] is not None else zero
    kl_disc = sum(kls["disc"], zero)
    loss, sign = recon, {}
    for part, kl in (("cont", kl_cont), ("disc", kl_disc)):
        if caps[part] is not None:
            c, gamma = caps[part]
            loss = loss + gamma * xp.abs(kl - c)
            sign[part] = xp.sign(kl - c)   # d|u|/du = sign(u), 0 at 0 like torch
    scale = 1.0 / model.num_pixels
    stats = {"objective": loss * scale, "loss": loss, "recon": recon, "kl_cont": kl_cont, "kl_disc": kl_disc,
             "kl_cont_units": kls["cont"], "kl_disc_units": kls["disc"],
             "C_cont": caps["cont"][0] if caps["cont"] else None,
             "C_disc": caps["disc"][0] if caps["disc"] else None}
    cache = (model, x, enc_cache, latent_cache, dec_cache, recon_cache, caps, sign, scale)
    return stats, cache


def jointvae_backward(cache):
    """d(objective)/d(every parameter), keyed like model.params."""
    model, x, enc_cache, latent_cache, dec_cache, recon_cache, caps, sign, scale = cache
    xp, n = refnet.get_array_module(x), len(x)
    # d(objective)/dKL, then down to every example's KL: each is averaged over the batch.
    dkl_total = {part: scale * caps[part][1] * sign[part] if part in sign else 0.0 for part in ("cont", "disc")}
    dkl = {"cont": xp.full((n, model.latent_spec["cont"]), dkl_total["cont"] / n, dtype=x.dtype),
           "disc": [xp.full((n,), dkl_total["disc"] / n, dtype=x.dtype) for _ in model.latent_spec["disc"]]}
    dx_hat = refnet.binary_cross_entropy_backward(scale, recon_cache)
    dz, grads = model.decode_backward(dx_hat, dec_cache)
    grads.update(model.encode_backward(model.latent_backward(dz, dkl, latent_cache), enc_cache))
    return grads


def draw_noise(model, batch_size, rng, xp=np, dtype=np.float32):
    """The step's randomness: eps ~ N(0, 1) (N, cont), u ~ U(0, 1) (N, K_i); drawn on the host from `rng`."""
    noise = {"eps": None, "u": []}
    if model.latent_spec["cont"]:
        noise["eps"] = xp.asarray(rng.standard_normal((batch_size, model.latent_spec["cont"]), dtype=dtype))
    for k in model.latent_spec["disc"]:
        noise["u"].append(xp.asarray(rng.random((batch_size, k), dtype=dtype)))
    return noise
