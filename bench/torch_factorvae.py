"""FactorVAE's discriminator, TC estimate and discriminator loss in PyTorch: the peer of jointvae/models/factorvae.py.

    discriminator   Linear(latent_dim, 1000), LeakyReLU(0.2), ... (6 hidden layers), Linear(1000, 2)
                    nn.Sequential, so its parameter names are ours (0.weight, 0.bias, ..., 12.bias)
    TC(z)           mean_n [D_0(z_n) - D_1(z_n)]                       the VAE adds tc_gamma * TC
    L_D             1/2 [CE(D(z), 0) + CE(D(permute_dims(z')), 1)]    z' the codes of a second batch, as values

Every gradient of a step is taken at the parameters the step started from, as Trainer.train_step takes them:
the VAE's objective reaches the encoder through D but leaves D's parameters alone, and L_D reaches D's
parameters but not the encoder. `discriminator_logits` gives the two uses of D(z) in one of two forms:

    shared      one forward D(z); the step then runs two backward passes, each told which parameters it is
                for (autograd skips the rest): the lean form for eager PyTorch
    separate    D with detached parameters for the TC, D on the detached z for L_D: one backward pass of
                objective + L_D, the form a compiled step can take (one forward graph, one backward graph)
"""
import torch
import torch.nn.functional as F
from torch import nn

from jointvae.models.factorvae import HIDDEN, HIDDEN_LAYERS, PERMUTED, REAL, SLOPE, latent_blocks


def make_discriminator(latent_dim, hidden=HIDDEN, hidden_layers=HIDDEN_LAYERS):
    """The MLP of jointvae.models.factorvae.make_discriminator, with torch layers."""
    layers, width = [], latent_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(SLOPE)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, 2))


def discriminator_logits(discriminator, z, shared):
    """-> (logits for the TC, logits for L_D's real half), both D(z) (N, 2); see the module's docstring."""
    if shared:
        logits = discriminator(z)
        return logits, logits
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    return torch.func.functional_call(discriminator, frozen, (z,)), discriminator(z.detach())


def tc_estimate(logits):
    """mean_n [D_0(z_n) - D_1(z_n)]: a 0-d tensor."""
    return (logits[:, REAL] - logits[:, PERMUTED]).mean()


def random_permutations(num_blocks, batch_size, device):
    """One uniformly random permutation of range(batch_size) per latent block, drawn on the device: (blocks, N)."""
    return torch.rand(num_blocks, batch_size, device=device).argsort(dim=1)


def permute_dims(z, permutations, blocks):
    """z (N, D) -> (N, D): block b's columns take rows permutations[b], each block shuffled independently."""
    return torch.cat([z[perm, start:stop] for (start, stop), perm in zip(blocks, permutations)], dim=1)


def discriminator_loss(logits_real, logits_permuted):
    """L_D = 1/2 [CE(real logits, REAL) + CE(permuted logits, PERMUTED)]: a 0-d tensor."""
    real = torch.full((len(logits_real),), REAL, dtype=torch.long, device=logits_real.device)
    permuted = torch.full((len(logits_permuted),), PERMUTED, dtype=torch.long, device=logits_permuted.device)
    return 0.5 * (F.cross_entropy(logits_real, real) + F.cross_entropy(logits_permuted, permuted))


def tc_and_discriminator_loss(discriminator, net, z, x_other, noise_other=None, permutations=None, shared=True):
    """The discriminator's part of a FactorVAE step -> (TC estimate on z, L_D), 0-d tensors.

    x_other (N', C, H, W): the second batch, whose training-mode codes (noise_other, or drawn here) are
    permuted block by block (permutations (blocks, N') of row indices, or drawn here).
    """
    logits_tc, logits_real = discriminator_logits(discriminator, z, shared)
    with torch.no_grad():                     # D sees the second batch's codes as values
        z_other = net.sample(net.encode(x_other), noise_other)
    blocks = latent_blocks(net.latent_spec)
    if permutations is None:
        permutations = random_permutations(len(blocks), len(x_other), z.device)
    z_permuted = permute_dims(z_other, permutations, blocks)
    return tc_estimate(logits_tc), discriminator_loss(logits_real, discriminator(z_permuted))
