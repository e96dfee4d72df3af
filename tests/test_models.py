"""β-VAE, capacity β-VAE, FactorVAE and JointVAE x FactorVAE: objectives, the discriminator, training steps."""
import json

import numpy as np
import pytest

import refnet
from jointvae.models import factorvae
from jointvae.models.jointvae import JointVAE, draw_noise
from jointvae.models.objective import kl_penalties, objective_and_grads
from jointvae.models.specs import DEFAULT_SPECS, SpecError, validate_spec
from jointvae.training.trainer import Trainer

SHAPE = (1, 32, 32)


def small_spec(model, **extra):
    """A preset's objective on 32x32 images, for fast steps."""
    spec = dict(DEFAULT_SPECS[("dsprites", model)], image_shape=list(SHAPE), dataset=None, **extra)
    return validate_spec(spec)


def images(n=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n,) + SHAPE).astype(np.uint8)


def objective_parts(spec, step=10, seed=0):
    rng = np.random.default_rng(seed)
    model = JointVAE(SHAPE, spec["latent_spec"], rng=rng)
    x = rng.uniform(0, 1, (8,) + SHAPE).astype(np.float32)
    noise = draw_noise(model, 8, rng)
    return model, x, noise


@pytest.mark.parametrize("model_name", ["betavae", "factorvae"])
def test_beta_objective_is_recon_plus_beta_kl(model_name):
    spec = small_spec(model_name)
    model, x, noise = objective_parts(spec)
    stats, _, _ = objective_and_grads(model, x, noise, spec, step=10)
    expected = stats["recon"] + spec["beta"] * (stats["kl_cont"] + stats["kl_disc"])
    assert float(stats["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert kl_penalties(spec, 10)["cont"] == (None, spec["beta"])


def test_capacity_vae_objective_follows_the_schedule():
    spec = small_spec("capacity-vae")
    model, x, noise = objective_parts(spec)
    stats, _, _ = objective_and_grads(model, x, noise, spec, step=50000)
    c, gamma = kl_penalties(spec, 50000)["cont"]
    assert c == pytest.approx(12.5)   # 0 -> 25 nats over 100k steps
    assert float(stats["loss"]) == pytest.approx(float(stats["recon"] + gamma * abs(stats["kl_cont"] - c)), rel=1e-6)


def test_tc_term_changes_only_the_encoders_gradient():
    """TC(z) depends on the encoder (through z), not on the decoder: tc_gamma moves encoder gradients only."""
    grads = {}
    for gamma in (0.0, 40.0):
        spec = small_spec("factorvae", tc_gamma=gamma)
        model, x, noise = objective_parts(spec)
        discriminator = factorvae.make_discriminator(model.latent_dim, np.random.default_rng(5), hidden=16)
        stats, grads[gamma], _ = objective_and_grads(model, x, noise, spec, 10, discriminator)
    for name in grads[0.0]:
        same = np.array_equal(grads[0.0][name], grads[40.0][name])
        decoder = name.startswith(("latent_to_features", "features_to_img"))
        assert same == decoder, name


def test_permute_dims_shuffles_each_block_as_a_whole():
    rng = np.random.default_rng(0)
    spec = {"cont": 3, "disc": [4]}
    z = np.concatenate([rng.normal(size=(50, 3)), np.eye(4)[rng.integers(0, 4, 50)]], axis=1)
    blocks = factorvae.latent_blocks(spec)
    assert blocks == [(0, 1), (1, 2), (2, 3), (3, 7)]
    perms = factorvae.draw_permutations(spec, 50, rng)
    out = factorvae.permute_dims(z, perms, blocks)
    for (start, stop), perm in zip(blocks, perms):
        np.testing.assert_array_equal(out[:, start:stop], z[perm, start:stop])
        assert sorted(map(tuple, out[:, start:stop])) == sorted(map(tuple, z[:, start:stop]))  # same marginal
    np.testing.assert_array_equal(out[:, 3:].sum(axis=1), 1.0)     # still one-hot rows
    assert not np.array_equal(perms[0], perms[1])                   # blocks shuffled independently


def test_discriminator_shape_and_loss_at_chance():
    d = factorvae.make_discriminator(10, np.random.default_rng(0))
    assert len([k for k in d.params if k.endswith("weight")]) == 7          # 6 hidden layers + output
    assert d.params["0.weight"].shape == (1000, 10) and d.params["12.weight"].shape == (2, 1000)
    d.params["12.weight"][...] = 0.0
    d.params["12.bias"][...] = 0.0
    tc, cache = factorvae.tc_forward(d, np.ones((4, 10), np.float32))
    stats, _ = factorvae.discriminator_forward(cache, np.ones((4, 10), np.float32))
    assert float(tc) == 0.0 and float(stats["d_loss"]) == pytest.approx(np.log(2))


def factor_trainer(tmp_path, name="run", model="factorvae", data=None, **kw):
    spec = small_spec(model, batch_size=8, record_loss_every=2, d_hidden=32, d_layers=2)
    return Trainer(spec, str(tmp_path / name), seed=3, max_steps=4, images=data if data is not None else images(),
                   checkpoint_every=2, print_every=2, log=lambda line: None, **kw)


def test_discriminator_update_does_not_leak_into_the_vae(tmp_path):
    """The VAE's update must not depend on the discriminator's batch: D's loss reaches D only."""
    a, b = factor_trainer(tmp_path, "a"), factor_trainer(tmp_path, "b")
    for t in (a, b):
        t.load_data()
    x = datasets_batch(a, [0, 1, 2, 3, 4, 5, 6, 7])
    stats_a = a.train_step(x, datasets_batch(a, range(8, 16)))
    stats_b = b.train_step(x, datasets_batch(b, range(20, 28)))
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name], err_msg=name)
    assert float(stats_a["tc"]) == float(stats_b["tc"])
    assert any(not np.array_equal(a.discriminator.params[k], b.discriminator.params[k]) for k in a.discriminator.params)
    assert float(stats_a["d_loss"]) != float(stats_b["d_loss"])


def datasets_batch(trainer, idx):
    from jointvae.data import to_float
    return to_float(trainer.images[np.asarray(list(idx))])


def log_without_wall_time(path):
    return [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in path.read_text().splitlines()]


@pytest.mark.parametrize("model", ["factorvae", "joint-factorvae"])
def test_factor_run_resumes_bit_identically(tmp_path, model):
    whole = factor_trainer(tmp_path, "whole", model).run()
    part = factor_trainer(tmp_path, "part", model)
    part.max_steps = 2                      # interrupted after 2 of 4 steps
    part.run()
    resumed = factor_trainer(tmp_path, "part", model)
    resumed.load_checkpoint()
    assert resumed.step == 2
    resumed.run()
    for layer in ("model", "discriminator"):
        for name, value in getattr(whole, layer).params.items():
            np.testing.assert_array_equal(value, getattr(resumed, layer).params[name], err_msg=f"{layer}.{name}")
    log = log_without_wall_time(tmp_path / "whole" / "log.jsonl")
    assert log == log_without_wall_time(tmp_path / "part" / "log.jsonl")
    assert {"tc", "d_loss", "d_accuracy"} <= set(log[-1])


@pytest.mark.parametrize("bad, message", [
    ({"model": "gan"}, "unknown model"),
    ({"model": "factorvae", "beta": 1.0}, "needs 'tc_gamma'"),
    ({"model": "betavae", "beta": -1.0}, "beta must be a number >= 0"),
    ({"model": "jointvae", "tc_gamma": 4.0, "cont_capacity": [0, 1, 10, 1]}, "'tc_gamma' needs model"),
    ({"model": "factorvae", "beta": 1.0, "tc_gamma": 4.0, "d_betas": [0.5]}, "d_betas must be"),
    ({"model": "betavae"}, "needs 'cont_capacity' (or 'beta')"),
])
def test_bad_model_specs_name_the_problem(bad, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_spec({"latent_spec": {"cont": 2}, "image_shape": [1, 32, 32], **bad})


def test_model_step_runs_through_refnet_adam_with_the_papers_betas(tmp_path):
    t = factor_trainer(tmp_path)
    assert t.discriminator.params["0.weight"].shape == (32, 10)   # d_hidden, d_layers from the spec
    assert t.optimizer.betas == (0.9, 0.999) and t.d_optimizer.betas == (0.5, 0.9)
    assert t.optimizer.lr == 1e-4 and t.d_optimizer.lr == 1e-4
    assert isinstance(t.optimizer, refnet.Adam)


def test_pytorch_04_init_bounds_transposed_convolutions_by_their_input_fan():
    """torch 0.4 (which trained the published models) drew ConvTranspose weights with bound 1/sqrt(in k k)."""
    new = JointVAE(SHAPE, {"cont": 2}, rng=np.random.default_rng(0))
    old = JointVAE(SHAPE, {"cont": 2}, rng=np.random.default_rng(0), init="pytorch-0.4")
    for name, layer in old.children["features_to_img"].children.items():
        if isinstance(layer, refnet.ConvTranspose2d):
            bound = 1 / np.sqrt(layer.in_channels * 16)
            w = layer.params["weight"]
            assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound, name
            ratio = w / new.children["features_to_img"].children[name].params["weight"]
            np.testing.assert_allclose(ratio, np.sqrt(layer.out_channels / layer.in_channels), rtol=1e-6)
    for name in ("img_to_features.0.weight", "latent_to_features.0.weight"):
        np.testing.assert_array_equal(new.params[name], old.params[name])
    with pytest.raises(SpecError, match="init must be"):
        validate_spec({"latent_spec": {"cont": 2}, "image_shape": [1, 32, 32], "beta": 1.0, "init": "xavier"})
