"""What the verify suite checks: one entry per layer, loss and KL term.

Each case has a hypothesis strategy that draws a configuration (shapes,
kernel, stride, padding, slope, reduction...) and a builder that turns a
configuration and a seeded Generator into the op under test:

    forward, backward, arrays = case.build(config, rng)

Inputs are drawn away from the places where a function has no derivative
(ReLU's kink at 0) or where PyTorch's clamps change it (BCE at p = 0 or 1).
"""
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
from hypothesis import strategies as st

import refnet
from refnet import latent
from refnet import losses

from .gradcheck import layer_op


@dataclass
class Case:
    name: str
    strategy: st.SearchStrategy
    build: Callable
    max_examples: int = None          # fewer than the profile's, for expensive cases
    per_element_limit: int = None     # smaller than the checker's default, for large arrays


def away_from_zero(x, margin=0.05):
    """Push entries with |x| < margin out to +-margin, so no ReLU kink lies within a finite-difference step."""
    return np.where(np.abs(x) < margin, np.where(x < 0, -margin, margin), x)


def _layer_arrays(layer, x):
    layer.astype(np.float64)
    forward, backward, _ = layer_op(layer)
    return forward, backward, {"x": x, **layer.params}


# ---------------------------------------------------------------- strategies

small = st.integers(1, 3)


@st.composite
def conv_configs(draw, transposed=False):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))          # stride > kernel happens (kernel 1, stride 3)
    padding = draw(st.integers(0, 2))
    if transposed:
        # output (H - 1) s - 2p + k must be >= 1
        h = draw(st.integers(1, 5))
        w = draw(st.integers(1, 5))
        padding = min(padding, ((h - 1) * stride + kh - 1) // 2, ((w - 1) * stride + kw - 1) // 2)
    else:
        # input must cover the kernel once padded: H + 2p >= k
        h = draw(st.integers(max(1, kh - 2 * padding), max(1, kh - 2 * padding) + 5))
        w = draw(st.integers(max(1, kw - 2 * padding), max(1, kw - 2 * padding) + 5))
    return dict(n=draw(small), c_in=draw(small), c_out=draw(small), kernel=(kh, kw), stride=stride,
                padding=padding, h=h, w=w, bias=draw(st.booleans()))


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)
reductions = st.sampled_from(losses.REDUCTIONS)


# ---------------------------------------------------------------- builders

def build_linear(cfg, rng, layer_class=refnet.Linear):
    layer = layer_class(cfg["in"], cfg["out"], bias=cfg["bias"], rng=rng)
    return _layer_arrays(layer, rng.standard_normal((cfg["n"], cfg["in"])))


def build_conv(cfg, rng, layer_class=refnet.Conv2d):
    """Conv2d and ConvTranspose2d take the same arguments; layer_class picks one (or a mutant)."""
    layer = layer_class(cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"],
                        bias=cfg["bias"], rng=rng)
    return _layer_arrays(layer, rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"])))


def build_activation(make_layer, margin=0.0, scale=1.0):
    def build(cfg, rng):
        x = scale * rng.standard_normal(cfg["shape"])
        return _layer_arrays(make_layer(cfg), away_from_zero(x, margin) if margin else x)
    return build


def build_reshape(cfg, rng):
    n, *rest = cfg["shape"]
    return _layer_arrays(refnet.Reshape(int(np.prod(rest, dtype=int))), rng.standard_normal(cfg["shape"]))


def build_sequential(cfg, rng):
    """A small encoder-decoder through every layer type: checks Sequential's dotted grads and chaining."""
    c, h = cfg["c"], cfg["h"]
    net = refnet.Sequential(
        refnet.Conv2d(1, c, 4, 2, 1, rng=rng), refnet.LeakyReLU(0.2),
        refnet.Flatten(), refnet.Linear(c * (h // 2) ** 2, 3, rng=rng), refnet.Sigmoid(),
        refnet.Linear(3, c * (h // 2) ** 2, rng=rng), refnet.Reshape(c, h // 2, h // 2),
        refnet.ConvTranspose2d(c, 1, 4, 2, 1, rng=rng), refnet.Softmax())
    return _layer_arrays(net, rng.standard_normal((cfg["n"], 1, h, h)))


def build_loss(loss, loss_backward, low, high):
    def build(cfg, rng):
        shape, reduction = cfg["shape"], cfg["reduction"]
        target = rng.uniform(0, 1, shape)

        def forward(x):
            return loss(x, target, reduction)

        def backward(dloss, cache):
            return {"x": loss_backward(dloss, cache)}

        return forward, backward, {"x": rng.uniform(low, high, shape)}
    return build


def build_kl_normal(cfg, rng):
    shape = (cfg["n"], cfg["d"])

    def backward(dkl, cache):
        dmu, dlogvar = latent.kl_normal_backward(dkl, cache)
        return {"mu": dmu, "logvar": dlogvar}

    return latent.kl_normal, backward, {"mu": rng.normal(0, 2, shape), "logvar": rng.uniform(-5, 5, shape)}


def build_kl_categorical(cfg, rng):
    def forward(alpha):
        return latent.kl_categorical_uniform(alpha)

    def backward(dkl, cache):
        return {"alpha": latent.kl_categorical_uniform_backward(dkl, cache)}

    alpha = refnet.softmax(rng.normal(0, 2, (cfg["n"], cfg["k"])))
    return forward, backward, {"alpha": alpha + 1e-3}  # away from 0: log has no finite difference there


def build_reparameterize_normal(cfg, rng):
    shape = (cfg["n"], cfg["d"])
    eps = rng.standard_normal(shape)

    def forward(mu, logvar):
        return latent.reparameterize_normal(mu, logvar, eps)

    def backward(dz, cache):
        dmu, dlogvar = latent.reparameterize_normal_backward(dz, cache)
        return {"mu": dmu, "logvar": dlogvar}

    return forward, backward, {"mu": rng.normal(0, 2, shape), "logvar": rng.uniform(-5, 5, shape)}


def build_gumbel_softmax(cfg, rng):
    shape = (cfg["n"], cfg["k"])
    u = rng.uniform(0, 1, shape)

    def forward(alpha):
        return latent.gumbel_softmax(alpha, u, cfg["temperature"])

    def backward(dy, cache):
        return {"alpha": latent.gumbel_softmax_backward(dy, cache)}

    alpha = refnet.softmax(rng.normal(0, 2, shape)) + 1e-2  # away from 0, where log(alpha) bends sharply
    return forward, backward, {"alpha": alpha}


OBJECTIVES = {  # what a spec adds to the latent spec, per model family
    "jointvae": {"cont_capacity": [0.0, 5.0, 100, 30.0], "disc_capacity": [0.0, 5.0, 100, 30.0]},
    "betavae": {"model": "betavae", "beta": 4.0},
    "factorvae": {"model": "factorvae", "beta": 1.0, "tc_gamma": 40.0},
    "joint-factorvae": {"model": "joint-factorvae", "tc_gamma": 40.0,
                        "cont_capacity": [0.0, 5.0, 100, 30.0], "disc_capacity": [0.0, 5.0, 100, 30.0]},
}


def small_discriminator(latent_dim, rng):
    """FactorVAE's discriminator, narrow and shallow so that finite differences stay cheap."""
    from jointvae.models import factorvae
    return factorvae.make_discriminator(latent_dim, rng, hidden=6, hidden_layers=2, dtype=np.float64)


def build_vae_objective(cfg, rng, model_name="jointvae"):
    """A model's whole training objective, differentiated w.r.t. every parameter of the VAE
    (FactorVAE: with the TC term flowing through a fixed discriminator into the encoder)."""
    from jointvae.models.jointvae import JointVAE, draw_noise
    from jointvae.models.objective import objective_and_grads
    from jointvae.models.specs import validate_spec
    spec = validate_spec({"latent_spec": cfg["latent_spec"], "image_shape": cfg["image_shape"],
                          **OBJECTIVES[model_name]})
    model = JointVAE(cfg["image_shape"], spec["latent_spec"], rng=rng, dtype=np.float64)
    discriminator = small_discriminator(model.latent_dim, rng) if spec.get("tc_gamma") else None
    x = rng.uniform(0, 1, (cfg["n"],) + cfg["image_shape"])
    noise = draw_noise(model, cfg["n"], rng, dtype=np.float64)

    def forward(**params):
        model.set_params(params)
        stats, grads, _ = objective_and_grads(model, x, noise, spec, cfg["step"], discriminator)
        return stats["objective"], grads

    def backward(dobjective, grads):
        return {k: dobjective * g for k, g in grads.items()}

    return forward, backward, dict(model.params)


def build_tc(cfg, rng, tc_backward=None):
    """FactorVAE's TC estimate mean(D_0(z) - D_1(z)), differentiated w.r.t. z."""
    from jointvae.models import factorvae
    discriminator = small_discriminator(cfg["d"], rng)
    tc_backward = tc_backward or factorvae.tc_backward

    def forward(z):
        return factorvae.tc_forward(discriminator, z)

    def backward(dtc, cache):
        return {"z": tc_backward(dtc, cache)}

    return forward, backward, {"z": rng.normal(0, 1, (cfg["n"], cfg["d"]))}


def build_discriminator_loss(cfg, rng, discriminator_backward=None):
    """FactorVAE's discriminator loss 1/2 [CE(D(z), real) + CE(D(z_perm), permuted)], w.r.t. every D parameter."""
    from jointvae.models import factorvae
    discriminator = small_discriminator(cfg["d"], rng)
    z, z_perm = rng.normal(0, 1, (cfg["n"], cfg["d"])), rng.normal(0, 1, (cfg["n"] + 1, cfg["d"]))
    discriminator_backward = discriminator_backward or factorvae.discriminator_backward

    def forward(**params):
        discriminator.set_params(params)
        _, tc_cache = factorvae.tc_forward(discriminator, z)
        stats, cache = factorvae.discriminator_forward(tc_cache, z_perm)
        return stats["d_loss"], cache

    def backward(dloss, cache):
        return {k: dloss * g for k, g in discriminator_backward(cache).items()}

    return forward, backward, dict(discriminator.params)


def build_softmax_cross_entropy(cfg, rng):
    n, k, reduction = cfg["n"], cfg["k"], cfg["reduction"]
    labels = rng.integers(0, k, n)

    def forward(logits):
        return losses.softmax_cross_entropy(logits, labels, reduction)

    def backward(dloss, cache):
        return {"logits": losses.softmax_cross_entropy_backward(dloss, cache)}

    return forward, backward, {"logits": rng.normal(0, 3, (n, k))}


latent_specs = st.sampled_from([{"cont": 3, "disc": [4]}, {"cont": 2}, {"disc": [3, 2]}, {"cont": 1, "disc": [2, 5]}])
objective_configs = st.fixed_dictionaries(dict(n=st.integers(1, 2), latent_spec=latent_specs,
                                               image_shape=st.sampled_from([(1, 32, 32), (3, 32, 32), (1, 64, 64)]),
                                               step=st.integers(1, 200)))

CASES = [
    Case("Linear", st.fixed_dictionaries(dict(n=small, **{"in": st.integers(1, 6)}, out=st.integers(1, 6),
                                              bias=st.booleans())), build_linear),
    Case("Conv2d", conv_configs(), build_conv),
    Case("ConvTranspose2d", conv_configs(transposed=True), partial(build_conv, layer_class=refnet.ConvTranspose2d)),
    Case("ReLU", st.fixed_dictionaries(dict(shape=shapes)), build_activation(lambda c: refnet.ReLU(), 0.05)),
    Case("LeakyReLU", st.fixed_dictionaries(dict(shape=shapes, slope=st.floats(0.0, 0.5))),
         build_activation(lambda c: refnet.LeakyReLU(c["slope"]), 0.05)),
    Case("Sigmoid", st.fixed_dictionaries(dict(shape=shapes)), build_activation(lambda c: refnet.Sigmoid(), scale=4)),
    Case("Softmax", st.fixed_dictionaries(dict(shape=shapes)), build_activation(lambda c: refnet.Softmax(), scale=3)),
    Case("Flatten", st.fixed_dictionaries(dict(shape=shapes)), build_activation(lambda c: refnet.Flatten())),
    Case("Reshape", st.fixed_dictionaries(dict(shape=shapes)), build_reshape),
    Case("Sequential", st.fixed_dictionaries(dict(n=small, c=small, h=st.sampled_from([2, 4, 6]))),
         build_sequential),
    Case("binary_cross_entropy", st.fixed_dictionaries(dict(shape=shapes, reduction=reductions)),
         build_loss(losses.binary_cross_entropy, losses.binary_cross_entropy_backward, 0.02, 0.98)),
    Case("binary_cross_entropy_with_logits", st.fixed_dictionaries(dict(shape=shapes, reduction=reductions)),
         build_loss(losses.binary_cross_entropy_with_logits, losses.binary_cross_entropy_with_logits_backward,
                    -8, 8)),
    Case("mse", st.fixed_dictionaries(dict(shape=shapes, reduction=reductions)),
         build_loss(losses.mse, losses.mse_backward, -3, 3)),
    Case("kl_normal", st.fixed_dictionaries(dict(n=small, d=st.integers(1, 6))), build_kl_normal),
    Case("kl_categorical_uniform", st.fixed_dictionaries(dict(n=small, k=st.integers(1, 8))),
         build_kl_categorical),
    Case("reparameterize_normal", st.fixed_dictionaries(dict(n=small, d=st.integers(1, 6))),
         build_reparameterize_normal),
    Case("gumbel_softmax", st.fixed_dictionaries(dict(n=small, k=st.integers(2, 8),
                                                      temperature=st.sampled_from([0.67, 0.1, 0.5, 2.0]))),
         build_gumbel_softmax),
    Case("softmax_cross_entropy", st.fixed_dictionaries(dict(n=small, k=st.integers(2, 6), reduction=reductions)),
         build_softmax_cross_entropy),
    Case("FactorVAE TC estimate (w.r.t. z)", st.fixed_dictionaries(dict(n=small, d=st.integers(1, 5))), build_tc),
    Case("FactorVAE discriminator loss (every D parameter)",
         st.fixed_dictionaries(dict(n=small, d=st.integers(1, 5))), build_discriminator_loss, max_examples=10),
    Case("JointVAE objective (every parameter)", objective_configs, build_vae_objective,
         max_examples=4, per_element_limit=12),
] + [
    Case(f"{name} objective (every VAE parameter)", objective_configs, partial(build_vae_objective, model_name=name),
         max_examples=2, per_element_limit=12)
    for name in ("betavae", "factorvae", "joint-factorvae")
]
