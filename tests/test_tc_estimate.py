"""FactorVAE's discriminator, trained as the step trains it, estimates a total correlation that is known.

For z ~ N(0, Sigma) with unit variances, TC(z) = KL(q(z) || prod_j q(z_j)) = -1/2 log det Sigma; two units of
correlation rho give -1/2 log(1 - rho^2). D is trained by factorvae's own functions on "real" batches and on
a second, independent batch permuted block by block (permute_dims), exactly the FactorVAE step's D update, and
its estimate mean_n [D_0(z_n) - D_1(z_n)] (tc_forward) on fresh samples is compared with the closed form.

This checks end to end what the VAE's TC penalty relies on: the labels, the permutation, the sign of the
estimate and the direction of D's update. Two mutants (no permutation, the estimate's sign) make it fail.
"""
import numpy as np
import pytest

import refnet
from jointvae.models import factorvae

RHO = 0.9
TRUE_TC = -0.5 * np.log(1 - RHO ** 2)   # 0.830 nats
LATENT_SPEC = {"cont": 3, "disc": []}   # unit 2 independent of the correlated pair (0, 1)


def correlated_codes(n, rng):
    """(n, 3) float32: units 0 and 1 standard normal with correlation RHO, unit 2 independent."""
    a, b, c = rng.standard_normal((3, n))
    return np.stack([a, RHO * a + np.sqrt(1 - RHO ** 2) * b, c], axis=1).astype(np.float32)


def trained_estimate(steps=1500, batch=256, seed=0):
    rng = np.random.default_rng(seed)
    d = factorvae.make_discriminator(3, np.random.default_rng(seed + 1), hidden=64, hidden_layers=2)
    adam = refnet.Adam(lr=1e-3, betas=(0.5, 0.9))
    blocks = factorvae.latent_blocks(LATENT_SPEC)
    for _ in range(steps):
        _, tc_cache = factorvae.tc_forward(d, correlated_codes(batch, rng))            # the VAE's batch: "real"
        permuted = factorvae.permute_dims(correlated_codes(batch, rng),                # the second batch, permuted
                                          factorvae.draw_permutations(LATENT_SPEC, batch, rng), blocks)
        stats, cache = factorvae.discriminator_forward(tc_cache, permuted)
        adam.step(d.params, factorvae.discriminator_backward(cache))
    estimates = [float(factorvae.tc_forward(d, correlated_codes(4096, rng))[0]) for _ in range(4)]
    return float(np.mean(estimates)), float(stats["d_accuracy"])


def test_the_discriminator_estimates_a_known_total_correlation():
    estimate, accuracy = trained_estimate()
    assert estimate == pytest.approx(TRUE_TC, abs=0.15), (estimate, TRUE_TC)
    assert accuracy > 0.6   # correlated pairs are told from shuffled ones


@pytest.mark.parametrize("mutant", ["no permutation", "the estimate's sign"])
def test_the_check_catches_a_broken_estimator(monkeypatch, mutant):
    """Mutants: a "permuted" batch that is not permuted (D cannot tell it: the estimate stays near 0), and the
    estimate's difference of logits the other way round (-TC)."""
    if mutant == "no permutation":
        monkeypatch.setattr(factorvae, "draw_permutations",
                            lambda spec, n, rng: [np.arange(n) for _ in factorvae.latent_blocks(spec)])
    else:
        tc_forward = factorvae.tc_forward

        def flipped(d, z):
            tc, cache = tc_forward(d, z)
            return -tc, cache
        monkeypatch.setattr(factorvae, "tc_forward", flipped)
    estimate, _ = trained_estimate(steps=600)
    assert estimate != pytest.approx(TRUE_TC, abs=0.15)
