"""The captured step's bookkeeping, checked with NumPy: the step driven by fixed buffers (static_step.py)
gives the ordinary step's losses and weights over 100 steps, bit for bit.

Everything a CUDA graph needs is exercised here except the capture itself: the noise, permutations,
capacities C(t) and Adam's per-step scalars written into buffers before each step, the flat parameter,
gradient and moment buffers, the one-launch Adam update (its NumPy reference), a short last batch with
its own buffers, and a checkpoint written from the flat optimiser and resumed.
"""
import json

import numpy as np
import pytest

from jointvae.models.specs import DEFAULT_SPECS, validate_spec
from jointvae.training.trainer import Trainer

IMAGES = np.random.default_rng(0).integers(0, 256, (40, 1, 32, 32)).astype(np.uint8)   # batches 16, 16, 8
SPECS = {
    "jointvae": dict(DEFAULT_SPECS[("mnist", "jointvae")], batch_size=16, record_loss_every=1),
    "joint-factorvae": dict(DEFAULT_SPECS[("dsprites", "joint-factorvae")], image_shape=[1, 32, 32], dataset=None,
                            batch_size=16, d_hidden=32, d_layers=2, record_loss_every=1,
                            cont_capacity=[0.0, 5.0, 100, 150.0], disc_capacity=[0.0, 1.1, 100, 150.0]),
}


def train(tmp_path, name, model_name, steps, buffered, resume_at=None):
    """-> (log records without wall time, final parameters) of a run on IMAGES."""
    spec, out = validate_spec(SPECS[model_name]), str(tmp_path / name)
    kwargs = dict(seed=3, images=IMAGES, checkpoint_every=10**6, log=lambda line: None, buffered=buffered)
    trainer = Trainer(spec, out, max_steps=resume_at or steps, **kwargs).run()
    if resume_at:   # a fresh trainer continues from the checkpoint written at the end of the first part
        trainer = Trainer(spec, out, max_steps=steps, **kwargs)
        trainer.load_checkpoint()
        trainer.run()
    with open(f"{out}/log.jsonl") as f:
        records = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in f]
    params = dict(trainer.model.params)
    if trainer.discriminator is not None:
        params.update({f"D.{k}": v for k, v in trainer.discriminator.params.items()})
    return records, params


@pytest.mark.parametrize("model_name", sorted(SPECS))
def test_buffered_step_equals_the_ordinary_step_bit_for_bit(tmp_path, model_name):
    steps = 100 if model_name == "jointvae" else 30
    records, params = train(tmp_path, "ordinary", model_name, steps, buffered=False)
    buffered_records, buffered_params = train(tmp_path, "buffered", model_name, steps, buffered=True)
    assert len(records) == steps and buffered_records == records
    for name, value in params.items():
        np.testing.assert_array_equal(buffered_params[name], value, err_msg=name)


def test_buffered_run_resumes_bit_for_bit(tmp_path):
    """The flat optimiser's checkpoint holds what the per-tensor one's does: a buffered run stopped at step 20
    and resumed ends where an uninterrupted ordinary run ends."""
    records, params = train(tmp_path, "ordinary", "jointvae", 30, buffered=False)
    resumed_records, resumed_params = train(tmp_path, "resumed", "jointvae", 30, buffered=True, resume_at=20)
    assert resumed_records == records
    for name, value in params.items():
        np.testing.assert_array_equal(resumed_params[name], value, err_msg=name)


def test_the_check_can_fail(tmp_path, monkeypatch):
    """A bookkeeping slip (each step's buffers written with the previous step's noise, capacities and
    generator) is caught by the comparison above."""
    from jointvae.training import static_step
    original = static_step.StaticStep.write

    def late_capacity(self, step, x, x_other=None):
        original(self, max(step - 1, 1), x, x_other)
    monkeypatch.setattr(static_step.StaticStep, "write", late_capacity)
    records, _ = train(tmp_path, "ordinary", "jointvae", 5, buffered=False)
    late_records, _ = train(tmp_path, "late", "jointvae", 5, buffered=True)
    assert late_records != records
