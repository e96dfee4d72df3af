"""Deliberately broken backward passes: the suite must catch every one.

A gradient checker that cannot fail proves nothing. Each mutant below is a
real layer or KL term with one small mistake of the kind people make by hand;
the mutation checks pass only when the gradient check FAILS on them.
"""
from functools import partial

import refnet
from refnet import latent

from .cases import CASES, Case, build_activation, build_conv, build_discriminator_loss, build_linear, build_tc


class LinearSignFlip(refnet.Linear):
    """dW with the wrong sign."""

    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        return dx, {**grads, "weight": -grads["weight"]}


class ConvTransposeMissingOffset(refnet.ConvTranspose2d):
    """dW missing the contribution of kernel offset (0, 0), as if the im2col loop started at 1."""

    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        w = grads["weight"].copy()
        w[:, :, 0, 0] = 0.0
        return dx, {**grads, "weight": w}


class Conv2dBiasScaled(refnet.Conv2d):
    """db averaged instead of summed over the batch."""

    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        if "bias" in grads:
            grads = {**grads, "bias": grads["bias"] / dy.shape[0]}
        return dx, grads


class SigmoidMissingFactor(refnet.Sigmoid):
    """dx = dy * y, the (1 - y) forgotten."""

    def backward(self, dy, cache):
        return dy * cache, {}


def _kl_normal_missing_term(cfg, rng):
    """dKL/dlogvar = exp(logvar) / 2, the -1/2 forgotten."""
    def backward(dkl, cache):
        mu, var = cache
        return {"mu": dkl * mu, "logvar": dkl * 0.5 * var}

    _, _, arrays = _case("kl_normal").build(cfg, rng)
    return latent.kl_normal, backward, arrays


def _tc_backward_labels_swapped(dtc, cache):
    """dTC/dz as if TC were mean(D_1 - D_0): the two logits' roles swapped."""
    from jointvae.models import factorvae
    return -factorvae.tc_backward(dtc, cache)


def _discriminator_backward_real_half_only(cache):
    """dL_D/dD from the real samples' cross-entropy alone, the permuted half forgotten."""
    discriminator, cache_real, ce_real_cache, _, _ = cache
    from refnet import softmax_cross_entropy_backward
    _, grads = discriminator.backward(softmax_cross_entropy_backward(0.5, ce_real_cache), cache_real)
    return grads


def _case(name):
    return next(c for c in CASES if c.name == name)


MUTANTS = [
    Case("Linear: weight gradient sign flipped", _case("Linear").strategy, partial(build_linear, layer_class=LinearSignFlip)),
    Case("ConvTranspose2d: weight gradient missing kernel offset (0,0)", _case("ConvTranspose2d").strategy,
         partial(build_conv, layer_class=ConvTransposeMissingOffset)),
    Case("Conv2d: bias gradient averaged over batch", _case("Conv2d").strategy,
         partial(build_conv, layer_class=Conv2dBiasScaled)),
    Case("Sigmoid: (1 - y) factor missing", _case("Sigmoid").strategy,
         build_activation(lambda c: SigmoidMissingFactor(), scale=4)),
    Case("kl_normal: -1/2 term of dlogvar missing", _case("kl_normal").strategy, _kl_normal_missing_term),
    Case("FactorVAE TC: the two logits swapped in backward", _case("FactorVAE TC estimate (w.r.t. z)").strategy,
         partial(build_tc, tc_backward=_tc_backward_labels_swapped)),
    Case("FactorVAE discriminator: permuted half of the loss missing in backward",
         _case("FactorVAE discriminator loss (every D parameter)").strategy,
         partial(build_discriminator_loss, discriminator_backward=_discriminator_backward_real_half_only)),
]
