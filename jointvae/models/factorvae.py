"""FactorVAE's total-correlation penalty (Kim & Mnih 2018), by hand.

A discriminator D tells samples of the aggregate posterior q(z) ("real",
label 0) from samples of the product of its marginals prod_j q(z_j)
("permuted", label 1). With logits (D_0, D_1), the density-ratio trick gives

    TC(z) = KL(q(z) || prod_j q(z_j)) ~= mean_n [D_0(z_n) - D_1(z_n)]

which the VAE adds to its loss as gamma * TC; its gradient reaches the encoder
through D (whose own parameters it leaves alone). D is trained separately on

    L_D = 1/2 [CE(D(z), 0) + CE(D(permute_dims(z')), 1)]

with z' from a second, independent batch. L_D's gradient reaches D only: the
z it sees are values, so nothing of it flows back into the encoder.

One FactorVAE step is two updates from the same parameters:

    tc, tc_cache = tc_forward(D, z)                      # the VAE adds tc_gamma * tc (objective.py)
    dz = tc_backward(dtc, tc_cache)                      # ... and this reaches the encoder through D
    stats = update_discriminator(D, optimizer, tc_cache, model, x_other, rng)   # L_D on real and permuted codes

Samples of prod_j q(z_j) come from permuting each latent block across the
batch independently. A block is one continuous unit, or, for JointVAE x
FactorVAE, a whole relaxed one-hot of a discrete latent (permuting its columns
separately would give rows that are not on the simplex).
"""
import numpy as np

import refnet
from refnet import LeakyReLU, Linear, Sequential

from .jointvae import draw_noise

HIDDEN = 1000
HIDDEN_LAYERS = 6
SLOPE = 0.2
REAL, PERMUTED = 0, 1


def make_discriminator(latent_dim, rng, hidden=HIDDEN, hidden_layers=HIDDEN_LAYERS, dtype=np.float32):
    """MLP latent_dim -> hidden (x hidden_layers, LeakyReLU 0.2) -> 2 logits, as in the FactorVAE paper."""
    layers, width = [], latent_dim
    for _ in range(hidden_layers):
        layers += [Linear(width, hidden, rng=rng, dtype=dtype), LeakyReLU(SLOPE)]
        width = hidden
    return Sequential(*layers, Linear(width, 2, rng=rng, dtype=dtype))


def latent_blocks(latent_spec):
    """Column ranges permuted together: [(j, j + 1) per continuous unit] + [(start, start + K_i) per discrete latent]."""
    cont = latent_spec["cont"]
    blocks = [(j, j + 1) for j in range(cont)]
    start = cont
    for k in latent_spec["disc"]:
        blocks.append((start, start + k))
        start += k
    return blocks


def draw_permutations(latent_spec, batch_size, rng):
    """One permutation of range(batch_size) per latent block, drawn from `rng` (passed in: reproducible)."""
    return [rng.permutation(batch_size) for _ in latent_blocks(latent_spec)]


def permute_dims(z, perms, blocks):
    """z (N, D) -> (N, D): block b's columns take rows perms[b] (each block shuffled independently)."""
    xp = refnet.get_array_module(z)
    out = xp.empty_like(z)
    for (start, stop), perm in zip(blocks, perms):
        out[:, start:stop] = z[xp.asarray(perm), start:stop]
    return out


def tc_forward(discriminator, z):
    """TC estimate mean_n [D_0(z_n) - D_1(z_n)]; z (N, D) -> (0-d array, cache). The cache also serves L_D."""
    logits, d_cache = discriminator.forward(z)
    return (logits[:, REAL] - logits[:, PERMUTED]).mean(), (discriminator, logits, d_cache)


def tc_backward(dtc, cache):
    """dTC/dz (N, D): back through D for its input only (D is not trained on the VAE's loss)."""
    discriminator, logits, d_cache = cache
    xp = refnet.get_array_module(logits)
    dlogits = xp.zeros_like(logits)
    dlogits[:, REAL] = dtc / len(logits)
    dlogits[:, PERMUTED] = -dtc / len(logits)
    return discriminator.backward_input(dlogits, d_cache)   # no matmuls for D's weight gradients


def discriminator_forward(tc_cache, z_permuted):
    """L_D from D's forward on the real z (reused from tc_forward) and on permuted samples z_permuted (N', D).

    -> (stats {'d_loss', 'd_accuracy'} as 0-d arrays, cache)
    """
    discriminator, logits_real, cache_real = tc_cache
    logits_perm, cache_perm = discriminator.forward(z_permuted)
    xp = refnet.get_array_module(logits_real)
    labels_real = xp.full(len(logits_real), REAL, dtype=np.int64)
    labels_perm = xp.full(len(logits_perm), PERMUTED, dtype=np.int64)
    ce_real, ce_real_cache = refnet.softmax_cross_entropy(logits_real, labels_real)
    ce_perm, ce_perm_cache = refnet.softmax_cross_entropy(logits_perm, labels_perm)
    correct = (logits_real.argmax(axis=1) == REAL).sum() + (logits_perm.argmax(axis=1) == PERMUTED).sum()
    stats = {"d_loss": 0.5 * (ce_real + ce_perm),
             "d_accuracy": correct / float(len(logits_real) + len(logits_perm))}
    return stats, (discriminator, cache_real, ce_real_cache, cache_perm, ce_perm_cache)


def discriminator_backward(cache):
    """dL_D/d(every parameter of D); the encoder gets nothing."""
    discriminator, cache_real, ce_real_cache, cache_perm, ce_perm_cache = cache
    grads = None
    for layer_cache, ce_cache in ((cache_real, ce_real_cache), (cache_perm, ce_perm_cache)):
        dlogits = refnet.softmax_cross_entropy_backward(0.5, ce_cache)
        _, g = discriminator.backward(dlogits, layer_cache)
        grads = g if grads is None else {k: grads[k] + g[k] for k in grads}
    return grads


def draw_discriminator_inputs(model, batch_size, rng, xp=np):
    """The randomness of D's update, drawn from the step's `rng` in this order: the noise of the second
    batch's codes (as draw_noise), then one permutation per latent block (as draw_permutations)."""
    return draw_noise(model, batch_size, rng, xp), draw_permutations(model.latent_spec, batch_size, rng)


def discriminator_loss_and_grads(discriminator, tc_cache, model, x_other, noise_other, permutations):
    """L_D and its gradient for every parameter of D -> (stats {'d_loss', 'd_accuracy'}, grads).

    tc_cache: tc_forward's, whose D(z) on the VAE's own batch is the "real" half. x_other
    (N', C, H, W): an independent batch, whose training-mode codes (noise_other) are permuted block by
    block (permutations) into samples of prod_j q(z_j).
    """
    z_other = model.sample(x_other, noise_other)
    z_permuted = permute_dims(z_other, permutations, latent_blocks(model.latent_spec))
    stats, cache = discriminator_forward(tc_cache, z_permuted)
    return stats, discriminator_backward(cache)


def update_discriminator(discriminator, optimizer, tc_cache, model, x_other, rng):
    """FactorVAE's second update: L_D's gradient (inputs drawn from `rng`), one optimiser step of D
    -> stats {'d_loss', 'd_accuracy'}."""
    noise_other, permutations = draw_discriminator_inputs(model, len(x_other), rng,
                                                          refnet.get_array_module(x_other))
    stats, grads = discriminator_loss_and_grads(discriminator, tc_cache, model, x_other, noise_other, permutations)
    optimizer.step(discriminator.params, grads)
    return stats
