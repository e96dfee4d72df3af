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


def test_step_inputs_lay_fields_apart_and_send_them_in_one_copy():
    from jointvae.training.step_inputs import ALIGN, StepInputs
    fields = {"eps": ((3, 5), np.float32), "C": ((), np.float32), "perm": ((7,), np.int64), "u": ((3, 2), np.float64)}
    inputs = StepInputs(np, fields)
    spans = sorted((offset, offset + nbytes) for offset, _, _, nbytes in inputs.layout.values())
    assert all(start % ALIGN == 0 for start, _ in spans)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))   # no overlap
    assert spans[-1][1] <= inputs.nbytes
    for name, (shape, dtype) in fields.items():
        assert inputs.device[name].shape == shape and inputs.device[name].dtype == dtype
    for turn in range(3):   # the mirrors take turns; each upload brings every field over
        host = inputs.host()
        values = {name: np.arange(np.prod(shape, dtype=int)).reshape(shape) * (turn + 1) - 1
                  for name, (shape, _) in fields.items()}
        for name, value in values.items():
            host[name][...] = value
        assert not all(np.array_equal(inputs.device[name], values[name]) for name in fields)   # not sent yet
        inputs.upload()
        for name, value in values.items():
            np.testing.assert_array_equal(inputs.device[name], value.astype(fields[name][1]), err_msg=name)
    assert inputs.turn == 1
    with pytest.raises(ValueError, match="negative"):
        StepInputs(np, {"bad": ((-1,), np.float32)})


def test_adam_reads_its_scalars_from_a_buffer_of_its_own_kind():
    import refnet
    layer = refnet.Linear(3, 2, rng=np.random.default_rng(0))
    params, layout = refnet.flatten_params(layer)
    adam = refnet.Adam(1e-3, layout=layout)
    with pytest.raises(ValueError, match=r"shape \(2,\), got \(3,\)"):
        adam.read_step_scalars_from(np.zeros(3, np.float32))
    assert adam.flat_m is None   # a refused buffer changes nothing
    scalars = np.zeros(2, np.float32)
    adam.read_step_scalars_from(scalars)   # a fresh Adam: its moments are allocated beside the buffer
    assert adam.flat_m.dtype == np.float32 and adam.step_scalars is scalars
    with pytest.raises(ValueError, match="ndarray of float32, as the moments are; got a ndarray of float64"):
        adam.read_step_scalars_from(np.zeros(2, np.float64))
    scalars[...] = adam.count_step()
    before = params.copy()
    adam.apply_flat(params, np.ones_like(params))
    assert adam.step_count == 1 and np.allclose(before - params, 1e-3, rtol=1e-3)   # Adam's first step: lr * sign(g)
