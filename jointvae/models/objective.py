"""The VAE-family objectives and their gradient: JointVAE (Dupont 2018, eq. 7), exactly as the paper's
code computes it, and on the same code path β-VAE, capacity β-VAE and FactorVAE's VAE side.

    loss = BCE(x_hat, x)  summed over pixels, averaged over the batch
         + penalty(KL_cont) + penalty(KL_disc)
         [+ tc_gamma * TC(z)]                        FactorVAE, JointVAE x FactorVAE (see factor.py)
    KL_cont = sum_j mean_n  -1/2 (1 + logvar_nj - mu_nj^2 - exp(logvar_nj))
    KL_disc = sum_i mean_n  (log K_i + sum_k alpha_ink log(alpha_ink + 1e-12))

    penalty(KL) = gamma * |KL - C(t)|   with a capacity [C_min, C_max, iterations, gamma]  (JointVAE, Burgess)
                = beta * KL             with spec['beta']                                   (β-VAE, FactorVAE: beta 1)
    C(t) = min(C_min + (C_max - C_min) * t / iterations, C_max),  t = 1, 2, ... the training step
    C_disc is also capped at sum_i log K_i, the most a categorical code can carry.

The optimiser sees loss / num_pixels (the paper's normalisation).
"""
import numpy as np

import kernels
import refnet

from . import factor
from .latent import log_uniform_entropy_bound


def capacity(capacity_spec, step):
    """[C_min, C_max, iterations, gamma], step t -> (C(t), gamma)."""
    c_min, c_max, iterations, gamma = capacity_spec
    return min(c_min + (c_max - c_min) * step / float(iterations), c_max), gamma


def kl_penalties(spec, step):
    """How each KL is penalised at training step `step`: {'cont': (C, weight), 'disc': (C, weight)}.

    C is the capacity C(t) (penalty weight * |KL - C|), or None for β-VAE's
    weight * KL; a part without latents maps to None.
    """
    out = {"cont": None, "disc": None}
    for part in ("cont", "disc"):
        if not spec["latent_spec"][part]:
            continue
        if spec.get("beta") is not None:
            out[part] = (None, float(spec["beta"]))
        else:
            c, gamma = capacity(spec[f"{part}_capacity"], step)
            if part == "disc":
                c = min(c, log_uniform_entropy_bound(spec["latent_spec"]["disc"]))
            out[part] = (c, gamma)
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


def vae_forward(model, x, noise, spec, step, discriminator=None):
    """The objective of one training step.

    x (N, C, H, W) in [0, 1]; noise {'eps': (N, cont), 'u': [(N, K_i)]}; step t >= 1;
    discriminator: FactorVAE's D when spec has 'tc_gamma', else None.
    Returns (stats, cache): stats holds the loss parts as 0-d arrays on x's
    device (fetched to the host only when logged); 'objective' is what is
    minimised; stats['z'] is the latent sample (the discriminator trains on it).
    """
    dist, enc_cache = model.encode_forward(x)
    z, kl, latent_cache = model.latent_forward(dist, noise)
    x_hat, dec_cache = model.decode_forward(z)

    recon, recon_cache = refnet.binary_cross_entropy(x_hat, x, reduction="batchmean")
    kls = {"cont": kl["cont"].mean(axis=0) if kl["cont"] is not None else None,   # per unit, batch mean
           "disc": [rows.mean() for rows in kl["disc"]]}
    penalties = kl_penalties(spec, step)
    xp = refnet.get_array_module(x)
    zero = xp.zeros((), dtype=x.dtype)
    kl_cont = kls["cont"].sum() if kls["cont"] is not None else zero
    kl_disc = sum(kls["disc"], zero)
    loss, dloss_dkl = recon, {"cont": 0.0, "disc": 0.0}
    for part, kl in (("cont", kl_cont), ("disc", kl_disc)):
        if penalties[part] is None:
            continue
        c, weight = penalties[part]
        if c is None:
            loss, dloss_dkl[part] = loss + weight * kl, weight
        else:
            loss = loss + weight * xp.abs(kl - c)
            dloss_dkl[part] = weight * xp.sign(kl - c)   # d|u|/du = sign(u), 0 at 0 like torch
    tc, tc_cache = None, None
    if discriminator is not None:
        tc, tc_cache = factor.tc_forward(discriminator, z)
        loss = loss + spec["tc_gamma"] * tc
    scale = 1.0 / model.num_pixels
    stats = {"objective": loss * scale, "loss": loss, "recon": recon, "kl_cont": kl_cont, "kl_disc": kl_disc,
             "kl_cont_units": kls["cont"], "kl_disc_units": kls["disc"],
             "C_cont": penalties["cont"][0] if penalties["cont"] else None,
             "C_disc": penalties["disc"][0] if penalties["disc"] else None,
             "tc": tc, "z": z}
    cache = {"model": model, "x": x, "encoder": enc_cache, "latent": latent_cache, "decoder": dec_cache,
             "recon": recon_cache, "dloss_dkl": dloss_dkl, "tc": tc_cache, "tc_gamma": spec.get("tc_gamma"),
             "scale": scale}
    return stats, cache


def vae_backward(cache):
    """d(objective)/d(every parameter of the model), keyed like model.params."""
    model, x, scale, dloss_dkl = cache["model"], cache["x"], cache["scale"], cache["dloss_dkl"]
    xp, n = refnet.get_array_module(x), len(x)
    # d(objective)/dKL, then down to every example's KL: each is averaged over the batch.
    dkl = {"cont": xp.full((n, model.latent_spec["cont"]), scale * dloss_dkl["cont"] / n, dtype=x.dtype),
           "disc": [xp.full((n,), scale * dloss_dkl["disc"] / n, dtype=x.dtype) for _ in model.latent_spec["disc"]]}
    dx_hat = refnet.binary_cross_entropy_backward(scale, cache["recon"])
    dz, grads = model.decode_backward(dx_hat, cache["decoder"])
    if cache["tc"] is not None:   # z reaches the loss through the decoder and through D
        dz = dz + factor.tc_backward(scale * cache["tc_gamma"], cache["tc"])
    grads.update(model.encode_backward(model.latent_backward(dz, dkl, cache["latent"]), cache["encoder"]))
    return grads


def draw_noise(model, batch_size, rng, xp=np, dtype=np.float32):
    """The step's randomness: eps ~ N(0, 1) (N, cont), u ~ U(0, 1) (N, K_i); drawn on the host from `rng`."""
    noise = {"eps": None, "u": []}
    if model.latent_spec["cont"]:
        noise["eps"] = xp.asarray(rng.standard_normal((batch_size, model.latent_spec["cont"]), dtype=dtype))
    for k in model.latent_spec["disc"]:
        noise["u"].append(xp.asarray(rng.random((batch_size, k), dtype=dtype)))
    return noise
