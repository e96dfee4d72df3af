"""JointVAE: loading the published models, the public API, the objective's schedule, training and resume."""
import json
import os
import shutil

import numpy as np
import pytest

from jointvae import load_model
from jointvae.models.model_folder import ModelFileError
from jointvae.models.jointvae import InputError
from jointvae.models.objective import capacity, code_spread, kl_penalties
from jointvae.models.specs import MNIST_SPEC, SpecError, validate_spec
from jointvae.training import trainer as trainer_module
from jointvae.training.trainer import Trainer

REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference_models")
needs_reference = pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="../shared/reference_models not present")


@needs_reference
@pytest.mark.parametrize("name,shape,latent", [("mnist", (1, 32, 32), {"cont": 10, "disc": [10]}),
                                               ("dsprites", (1, 64, 64), {"cont": 6, "disc": [3]}),
                                               ("celeba", (3, 64, 64), {"cont": 32, "disc": [10]})])
def test_published_models_load_and_run(name, shape, latent):
    model = load_model(os.path.join(REFERENCE, name))
    assert model.image_shape == shape and model.latent_spec == latent
    x = np.random.default_rng(0).random((2,) + shape, dtype=np.float32)
    dist = model.encode(x)
    assert dist["cont"][0].shape == (2, latent["cont"]) and dist["cont"][1].shape == (2, latent["cont"])
    np.testing.assert_allclose(dist["disc"][0].sum(axis=1), 1.0, rtol=1e-6)
    z = np.zeros((3, latent["cont"] + sum(latent["disc"])), np.float32)
    x_hat = model.decode(z)
    assert x_hat.shape == (3,) + shape and x_hat.dtype == np.float32
    assert 0 <= x_hat.min() and x_hat.max() <= 1


@needs_reference
def test_model_pt_and_weights_npz_give_identical_arrays(tmp_path):
    folder = tmp_path / "mnist_pt"
    folder.mkdir()
    shutil.copy(os.path.join(REFERENCE, "mnist", "model.pt"), folder)
    shutil.copy(os.path.join(REFERENCE, "mnist", "specs.json"), folder)
    from_pt, from_npz = load_model(folder), load_model(os.path.join(REFERENCE, "mnist"))
    assert list(from_pt.params) == list(from_npz.params)
    for name, value in from_npz.params.items():
        np.testing.assert_array_equal(from_pt.params[name], value)


@needs_reference
def test_mismatched_spec_and_corrupt_weights_give_one_line_errors(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    spec = json.load(open(os.path.join(REFERENCE, "mnist", "specs.json")))
    spec["latent_spec"]["cont"] = 12
    (folder / "specs.json").write_text(json.dumps(spec))
    shutil.copy(os.path.join(REFERENCE, "mnist", "weights.npz"), folder)
    with pytest.raises(ModelFileError, match=r"weights.npz does not match specs.json .*fc_mean.weight"):
        load_model(folder)
    data = (folder / "weights.npz").read_bytes()
    (folder / "weights.npz").write_bytes(data[:1000])
    with pytest.raises(ValueError, match=r"weights.npz: not a readable .npz file"):
        load_model(folder)
    (folder / "specs.json").write_text("{not json")
    with pytest.raises(SpecError, match=r"specs.json: not valid JSON"):
        load_model(folder)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_model(tmp_path / "missing")


def test_bad_images_are_named():
    from jointvae.models.jointvae import JointVAE
    model = JointVAE((1, 32, 32), {"cont": 2, "disc": [3]}, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match=r"expected images of shape \(N, 1, 32, 32\), got \(2, 1, 28, 28\)"):
        model.encode(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(InputError, match="dtype uint8"):
        model.encode(np.zeros((2, 1, 32, 32), np.uint8))
    bad = np.zeros((2, 1, 32, 32), np.float32)
    bad[1, 0, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.encode(bad)
    with pytest.raises(InputError, match=r"latent codes of shape \(N, 5\)"):
        model.decode(np.zeros((2, 4), np.float32))


def test_latent_spec_variants_and_errors():
    assert validate_spec({"latent_spec": {"disc": [10]}, "disc_capacity": [0, 5, 10, 30]})["latent_spec"] == \
        {"cont": 0, "disc": [10]}
    with pytest.raises(SpecError, match="needs 'cont_capacity'"):
        validate_spec({"latent_spec": {"cont": 3}})
    with pytest.raises(SpecError, match=r"latent_spec\['disc'\]"):
        validate_spec({"latent_spec": {"disc": [1]}, "disc_capacity": [0, 5, 10, 30]})


def test_capacity_schedule_is_the_papers():
    spec = validate_spec(MNIST_SPEC)
    assert capacity([0.0, 5.0, 25000, 30.0], 0) == (0.0, 30.0)
    assert capacity([0.0, 5.0, 25000, 30.0], 12500) == (2.5, 30.0)
    assert capacity([0.0, 5.0, 25000, 30.0], 10 ** 6) == (5.0, 30.0)
    # the discrete capacity is also capped at log K: 5 nats > log 10 = 2.303
    assert kl_penalties(spec, 10 ** 6)["disc"][0] == pytest.approx(np.log(10))
    assert kl_penalties(spec, 5000)["disc"][0] == pytest.approx(1.0)


def synthetic_images(n=200, seed=0):
    """Blobs at random places: enough structure for a loss to fall, made without any download."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    centres = rng.uniform(8, 24, (n, 2))
    blobs = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 20.0)
    return np.rint(blobs[:, None] * 255).astype(np.uint8)


def small_spec():
    spec = validate_spec(dict(MNIST_SPEC, latent_spec={"cont": 3, "disc": [4]}, batch_size=32))
    spec["record_loss_every"] = 2
    return spec


def read_log(folder):
    with open(os.path.join(folder, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path):
    images = synthetic_images()            # 200 images, batch 32: 7 batches an epoch, the last partial
    kw = dict(images=images, print_every=1000, log=lambda s: None)
    whole = Trainer(small_spec(), str(tmp_path / "whole"), seed=3, epochs=2, checkpoint_every=5, **kw).run()
    first = Trainer(small_spec(), str(tmp_path / "parts"), seed=3, epochs=2, max_steps=9, checkpoint_every=5, **kw)
    first.run()
    # stopped after step 9 (a checkpoint is written at the stop), then resumed to the end
    resumed = Trainer(small_spec(), str(tmp_path / "parts"), seed=3, epochs=2, checkpoint_every=5, **kw)
    resumed.load_checkpoint()
    assert resumed.step == 9
    resumed.run()
    assert whole.step == resumed.step == 14
    assert read_log(tmp_path / "whole") == [dict(r, wall_s=w["wall_s"]) for r, w in
                                            zip(read_log(tmp_path / "parts"), read_log(tmp_path / "whole"))]
    for name, value in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], value)
    assert read_log(tmp_path / "whole")[-1]["loss"] < read_log(tmp_path / "whole")[0]["loss"]


def test_resume_drops_log_lines_written_after_the_checkpoint(tmp_path):
    images = synthetic_images(64)
    kw = dict(images=images, print_every=1000, log=lambda s: None)
    run = Trainer(small_spec(), str(tmp_path), seed=0, epochs=5, checkpoint_every=4, **kw)
    run.max_steps = 6
    run.run()                      # checkpoints at 4 and at the end (6)
    with open(tmp_path / "log.jsonl", "a") as f:   # as if killed at step 8, after logging but before a checkpoint
        f.write(json.dumps({"step": 8}) + "\n")
    again = Trainer(small_spec(), str(tmp_path), seed=0, epochs=5, **kw)
    again.load_checkpoint()
    assert [r["step"] for r in read_log(tmp_path)] == [2, 4, 6]


def test_train_cli_refuses_to_overwrite_and_checks_resume(tmp_path, capsys):
    from jointvae.train import main
    (tmp_path / "checkpoint.npz").write_bytes(b"x")
    with pytest.raises(SystemExit, match="already holds a run"):
        main(["mnist", "--out", str(tmp_path), "--steps", "1"])
    with pytest.raises(SystemExit, match="drop --lr"):
        main(["mnist", "--out", str(tmp_path), "--resume", "--lr", "0.1"])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["mnist", "--out", str(tmp_path / "new"), "--resume"])


def test_code_spread_is_the_largest_std_over_the_batch_of_a_posterior_mean_or_probability():
    mean, logvar = np.array([[0.0, 1.0], [0.0, 3.0]]), np.zeros((2, 2))
    assert code_spread({"cont": (mean, logvar), "disc": [np.array([[0.5, 0.5], [0.1, 0.9]])]}) == pytest.approx(1.0)
    assert code_spread({"cont": (mean / 4, logvar), "disc": [np.array([[1.0, 0.0], [0.0, 1.0]])]}) == pytest.approx(0.5)
    assert code_spread({"cont": None, "disc": [np.array([[0.5, 0.5], [0.1, 0.9]])]}) == pytest.approx(0.2)
    assert code_spread({"cont": (mean[[1, 1]], logvar), "disc": []}) == 0.0


def collapse_messages(spreads, batch_size=32):
    """The messages a run prints for logged records at steps 50, 100, ... with these code spreads."""
    messages = []
    trainer = Trainer(small_spec(), "unused", log=messages.append)
    for i, spread in enumerate(spreads):
        trainer.step = 50 * (i + 1)
        trainer._warn_on_collapse({"code_spread": spread}, batch_size)
    return messages


def test_a_collapse_is_told_once_it_has_lasted_and_again_when_it_ends():
    assert collapse_messages([1e-5] * 4) == []                      # steps 50-200: not yet COLLAPSED_STEPS long
    [warning] = collapse_messages([1e-5] * 8)
    assert warning.startswith("warning: step 250: every image has got nearly the same code since step 50")
    assert "1.0e-05 < 0.0003" in warning
    brief = [1e-5, 1e-5, 1e-5, 1e-5, 1e-2, 1e-5, 1e-5, 1e-5, 1e-5]   # a dip of 150 steps, then another: no warning
    assert collapse_messages(brief) == []
    [warning, back] = collapse_messages([1e-5] * 5 + [1e-2])
    assert warning.startswith("warning: step 250") and back.startswith("step 300: the codes depend on the image again")
    assert collapse_messages([0.0] * 8, batch_size=1) == []      # one image: no spread to measure


def test_training_warns_when_every_image_gets_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "COLLAPSED_STEPS", 6)
    runs = {"same": np.repeat(synthetic_images(1), 64, axis=0), "blobs": synthetic_images(64)}
    messages = {name: [] for name in runs}
    for name, images in runs.items():
        Trainer(small_spec(), str(tmp_path / name), max_steps=12, images=images, print_every=1000,
                log=messages[name].append).run()
    spreads = {name: [r["code_spread"] for r in read_log(tmp_path / name)] for name in runs}
    assert max(spreads["same"]) < 1e-6 and min(spreads["blobs"]) > trainer_module.COLLAPSED_SPREAD
    assert [m for m in messages["same"] if m.startswith("warning")] == [m for m in messages["same"] if "step 8:" in m]
    assert len([m for m in messages["same"] if m.startswith("warning")]) == 1
    assert not any(m.startswith("warning") for m in messages["blobs"])
