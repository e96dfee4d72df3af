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
    """Per-unit KL of a latent distribution, averaged over the batch, and caches for the backward.

    -> {'cont': (cont,) per-unit KL or None, 'disc': [scalar per discrete latent]}, caches
    """
    kls, caches = {"cont": None, "disc": []}, {"disc": []}
    if dist["cont"] is not None:
        per_element, caches["cont"] = refnet.kl_normal(*dist["cont"])
        kls["cont"] = per_element.mean(axis=0)
    for alpha in dist["disc"]:
        per_row, c = refnet.kl_categorical_uniform(alpha)
        kls["disc"].append(per_row.mean())
        caches["disc"].append(c)
    return kls, caches


def kl_terms_backward(dkl_cont, dkl_disc, dist, caches):
    """d(objective)/dKL_cont and /dKL_disc (scalars) -> ddist with the shape of dist."""
    ddist = {"cont": None, "disc": []}
    if dist["cont"] is not None:
        mean, _ = dist["cont"]
        xp = refnet.get_array_module(mean)
        dper_element = xp.full(mean.shape, dkl_cont / len(mean), dtype=mean.dtype)
        ddist["cont"] = refnet.kl_normal_backward(dper_element, caches["cont"])
    for alpha, c in zip(dist["disc"], caches["disc"]):
        xp = refnet.get_array_module(alpha)
        ddist["disc"].append(refnet.kl_categorical_uniform_backward(
            xp.full(alpha.shape[:1], dkl_disc / len(alpha), dtype=alpha.dtype), c))
    return ddist


def _add(a, b):
    """Sum two ddist structures (either may have None parts)."""
    cont = None
    if a["cont"] is not None:
        cont = tuple(x + y for x, y in zip(a["cont"], b["cont"])) if b["cont"] is not None else a["cont"]
    return {"cont": cont, "disc": [x + y for x, y in zip(a["disc"], b["disc"])]}


def jointvae_forward(model, x, noise, spec, step):
    """The objective of one training step.

    x (N, C, H, W) in [0, 1]; noise {'eps': (N, cont), 'u': [(N, K_i)]}; step t >= 1.
    Returns (stats, cache): stats holds the loss parts as 0-d arrays on x's
    device (fetched to the host only when logged); 'objective' is what is minimised.
    """
    dist, enc_cache = model.encode_forward(x)
    z, sample_cache = model.sample_forward(dist, noise)
    x_hat, dec_cache = model.decode_forward(z)

    recon, recon_cache = refnet.binary_cross_entropy(x_hat, x, reduction="batchmean")
    kls, kl_caches = kl_terms(dist)
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
    cache = (model, dist, enc_cache, sample_cache, dec_cache, recon_cache, kl_caches, caps, sign, scale)
    return stats, cache


def jointvae_backward(cache):
    """d(objective)/d(every parameter), keyed like model.params."""
    model, dist, enc_cache, sample_cache, dec_cache, recon_cache, kl_caches, caps, sign, scale = cache
    dkl = {part: scale * caps[part][1] * sign[part] if part in sign else 0.0 for part in ("cont", "disc")}
    dx_hat = refnet.binary_cross_entropy_backward(scale, recon_cache)
    dz, grads = model.decode_backward(dx_hat, dec_cache)
    ddist = _add(model.sample_backward(dz, sample_cache),
                 kl_terms_backward(dkl["cont"], dkl["disc"], dist, kl_caches))
    grads.update(model.encode_backward(ddist, enc_cache))
    return grads


def draw_noise(model, batch_size, rng, xp=np, dtype=np.float32):
    """The step's randomness: eps ~ N(0, 1) (N, cont), u ~ U(0, 1) (N, K_i); drawn on the host from `rng`."""
    noise = {"eps": None, "u": []}
    if model.latent_spec["cont"]:
        noise["eps"] = xp.asarray(rng.standard_normal((batch_size, model.latent_spec["cont"]), dtype=dtype))
    for k in model.latent_spec["disc"]:
        noise["u"].append(xp.asarray(rng.random((batch_size, k), dtype=dtype)))
    return noise
