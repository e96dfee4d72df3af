"""The VAE-family objectives and their gradient: JointVAE (Dupont 2018, eq. 7), exactly as the paper's
code computes it, and on the same code path β-VAE, capacity β-VAE and FactorVAE's VAE side.

    loss = BCE(x_hat, x)  summed over pixels, averaged over the batch
         + penalty(KL_cont) + penalty(KL_disc)
         [+ tc_gamma * TC(z)]                        FactorVAE, JointVAE x FactorVAE (factorvae.py)
    KL_cont = sum_j mean_n  -1/2 (1 + logvar_nj - mu_nj^2 - exp(logvar_nj))
    KL_disc = sum_i mean_n  (log K_i + sum_k alpha_ink log(alpha_ink + 1e-12))

    penalty(KL) = gamma * |KL - C(t)|   with a capacity [C_min, C_max, iterations, gamma]  (JointVAE, Burgess)
                = beta * KL             with spec['beta']                                   (β-VAE, FactorVAE: beta 1)
    C(t) = min(C_min + (C_max - C_min) * t / iterations, C_max),  t = 1, 2, ... the training step
    C_disc is also capped at sum_i log K_i, the most a categorical code can carry.

The optimiser sees objective = loss / num_pixels (the paper's normalisation). The loss is a function of
the model's outputs (x_hat, each KL) and of the TC estimate, so its backward returns the gradient with
respect to each of them: what JointVAE.backward and factorvae.tc_backward take.

    stats, cache = loss_forward(x, out, spec, step, tc)     # out from JointVAE.forward
    dout = loss_backward(cache)                             # {'x_hat', 'kl', 'tc'}

and objective_and_grads composes them with the model's pass: one call for a step's forward and backward.
"""
import kernels
import refnet

from . import factorvae


def capacity(capacity_spec, step):
    """[C_min, C_max, iterations, gamma], step t -> (C(t), gamma)."""
    c_min, c_max, iterations, gamma = capacity_spec
    return min(c_min + (c_max - c_min) * step / float(iterations), c_max), gamma


def kl_penalties(spec, step, capacities=None):
    """How each KL is penalised at training step `step`: {'cont': (C, weight), 'disc': (C, weight)}.

    C is the capacity C(t) (penalty weight * |KL - C|), or None for β-VAE's
    weight * KL; a part without latents maps to None. capacities {'cont': C, 'disc': C} (0-d
    arrays) are used as C instead of the schedule's (a captured step reads them from buffers).
    """
    out = {"cont": None, "disc": None}
    for part in ("cont", "disc"):
        if not spec["latent_spec"][part]:
            continue
        if spec.get("beta") is not None:
            out[part] = (None, float(spec["beta"]))
        elif capacities is not None:
            out[part] = (capacities[part], spec[f"{part}_capacity"][3])
        else:
            c, gamma = capacity(spec[f"{part}_capacity"], step)
            if part == "disc":
                c = min(c, refnet.max_categorical_kl(spec["latent_spec"]["disc"]))
            out[part] = (c, gamma)
    return out


def kl_terms(dist):
    """Per-unit KL of a latent distribution, averaged over the batch (for evaluation).

    dist {'cont': (mean, logvar) (N, cont), 'disc': [alpha (N, K_i)]} ->
        {'cont': (cont,) per-unit KL or None, 'disc': [0-d array per discrete latent]}
    """
    kls = {"cont": None, "disc": []}
    if dist["cont"] is not None:
        kls["cont"] = refnet.kl_normal(*dist["cont"])[0].mean(axis=0)
    for alpha in dist["disc"]:
        kls["disc"].append(kernels.kl_categorical_uniform(alpha)[0].mean())
    return kls


def code_spread(dist):
    """How much the codes differ between the batch's images: the largest standard deviation over the batch of
    any posterior mean or category probability.

    dist {'cont': (mean, logvar) (N, cont) or None, 'disc': [alpha (N, K_i)]} -> 0-d array (0 for N = 1).
    Near 0 the encoder gives every image the same code: whatever KL the codes carry, the decoder can only
    learn one average image (the encoder has collapsed; jointvae.training.trainer warns).
    """
    spreads = [dist["cont"][0].std(axis=0).max()] if dist["cont"] is not None else []
    spreads += [alpha.std(axis=0).max() for alpha in dist["disc"]]
    return refnet.get_array_module(spreads[0]).stack(spreads).max()


def loss_forward(x, out, spec, step, tc=None, capacities=None):
    """The objective of one training step.

    x (N, C, H, W) in [0, 1]; out: JointVAE.forward's outputs; step t >= 1; tc: FactorVAE's TC
    estimate (0-d, factorvae.tc_forward) when spec has 'tc_gamma', else None. capacities
    {'cont': C, 'disc': C}, 0-d arrays, replace the C(t) computed from `step` (a captured step reads
    them from buffers written before each replay: jointvae/training/static_step.py).
    Returns (stats, cache): stats holds the loss parts as 0-d arrays on x's device (fetched to the
    host only when logged); 'objective' is what is minimised.
    """
    recon, recon_cache = refnet.binary_cross_entropy(out["x_hat"], x, reduction="batchmean")
    kls = {"cont": out["kl"]["cont"].mean(axis=0) if out["kl"]["cont"] is not None else None,  # per unit, batch mean
           "disc": [rows.mean() for rows in out["kl"]["disc"]]}
    penalties = kl_penalties(spec, step, capacities)
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
    if tc is not None:
        loss = loss + spec["tc_gamma"] * tc
    scale = 1.0 / x[0].size   # 1 / num_pixels
    stats = {"objective": loss * scale, "loss": loss, "recon": recon, "kl_cont": kl_cont, "kl_disc": kl_disc,
             "kl_cont_units": kls["cont"], "kl_disc_units": kls["disc"],
             "C_cont": penalties["cont"][0] if penalties["cont"] else None,
             "C_disc": penalties["disc"][0] if penalties["disc"] else None, "tc": tc,
             "code_spread": code_spread(out["dist"])}
    cache = {"x": x, "recon": recon_cache, "dloss_dkl": dloss_dkl, "num_disc": len(out["kl"]["disc"]),
             "tc_gamma": spec.get("tc_gamma") if tc is not None else None, "scale": scale}
    return stats, cache


def loss_backward(cache):
    """d(objective)/d(each input of the loss): {'x_hat': (N, C, H, W), 'kl': {'cont': scalar, 'disc': [scalar]},
    'tc': float or None}. Each example's KL has the same gradient (KLs are averaged over the batch): one
    scalar per part, which the samplers' backwards broadcast, so no array is filled with a device value."""
    scale, dloss_dkl, n = cache["scale"], cache["dloss_dkl"], len(cache["x"])
    dkl = {"cont": scale * dloss_dkl["cont"] / n, "disc": [scale * dloss_dkl["disc"] / n] * cache["num_disc"]}
    return {"x_hat": refnet.binary_cross_entropy_backward(scale, cache["recon"]), "kl": dkl,
            "tc": None if cache["tc_gamma"] is None else scale * cache["tc_gamma"]}


def objective_and_grads(model, x, noise, spec, step, discriminator=None, capacities=None):
    """The VAE's objective at training step `step` and its gradient w.r.t. every parameter of the model.

    x (N, C, H, W) in [0, 1]; noise from jointvae.models.jointvae.draw_noise; discriminator: FactorVAE's D when the
    spec has 'tc_gamma' (its TC estimate joins the loss and reaches the encoder through D; D's own
    parameters get nothing here); capacities: as for loss_forward. -> (stats as loss_forward's, grads
    keyed like model.params, tc_cache: tc_forward's cache, which factorvae.update_discriminator reuses,
    or None).
    """
    out, cache = model.forward(x, noise)
    tc = tc_cache = None
    if discriminator is not None:
        tc, tc_cache = factorvae.tc_forward(discriminator, out["z"])
    stats, loss_cache = loss_forward(x, out, spec, step, tc, capacities)
    dout = loss_backward(loss_cache)
    if discriminator is not None:   # z reaches the loss through the decoder and through D
        dout["z"] = factorvae.tc_backward(dout["tc"], tc_cache)
    _, grads = model.backward(dout, cache)
    return stats, grads, tc_cache
