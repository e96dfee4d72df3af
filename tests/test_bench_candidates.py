"""bench.train_step's candidates and the FactorVAE step, in quick modes (no timing assertion, no GPU).

The torch test runs where torch is installed (bench/ only; the project never depends on it).
"""
import json

import numpy as np
import pytest


def test_candidates_follow_the_device_and_the_earlier_kernels_option():
    from bench import train_step
    assert train_step.parse_args([]).candidates == ["numpy", "torch", "compile"]
    assert train_step.parse_args(["--device", "gpu"]).candidates == ["graph", "eager", "torch", "compile"]
    assert train_step.parse_args(["--device", "gpu", "--kernels", "both"]).candidates == \
        ["kernels-on", "kernels-off", "torch"]
    with pytest.raises(SystemExit):
        train_step.parse_args(["--candidates", "graph"])          # no CUDA graph on the CPU
    args = train_step.parse_args(["--model", "factorvae"])
    assert args.img == 64 and train_step.image_shape(train_step.bench_spec(args)) == (1, 64, 64)


def test_factorvae_quick_mode_times_the_whole_step(capsys):
    from bench import train_step
    train_step.main(["--model", "factorvae", "--batch", "2", "--steps", "1", "--warmup", "0", "--threads", "1",
                     "--candidates", "numpy"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["model"] == "factorvae" and line["img"] == 64 and line["ours"] == "ours (NumPy)"
    assert line["gflop_per_step"] > 0 and line["ms_per_step_min"] <= line["ms_per_step_max"]


def test_torch_factorvae_step_agrees_with_ours_in_both_forms_of_d_of_z():
    """The eager form (one D(z), two backward passes) and the compiled form (two views, one pass) give the
    same losses and gradients, and both agree with ours."""
    pytest.importorskip("torch")
    from bench import torch_step, train_step
    args = train_step.parse_args(["--model", "factorvae", "--img", "32"])
    work = train_step.make_workload(args, train_step.bench_spec(args), 8, torch_step, None)
    trainer = train_step.make_trainer(work)
    nets = torch_step.nets_from_refnet(trainer.model, trainer.discriminator, "cpu")
    drawn = train_step.draw_randomness(trainer, work)
    agreement = train_step.check_agreement(trainer, nets, work, drawn)
    assert max(v["rel_diff"] for v in agreement["losses"].values()) < 1e-5
    assert agreement["grad_worst_rel_diff"] < 1e-3
    to = torch_step.to_torch
    inputs = (to(work.x, "cpu"), torch_step.noise_to_torch(drawn["noise"], "cpu"), to(work.x_other, "cpu"),
              torch_step.noise_to_torch(drawn["noise_other"], "cpu"), to(np.stack(drawn["permutations"]), "cpu"))
    shared = torch_step.loss_and_grads(nets, work.spec, train_step.CAPACITY_STEP, *inputs, shared_logits=True)
    grads_shared = {k: g.clone() for k, g in shared[1].items()}
    separate = torch_step.loss_and_grads(nets, work.spec, train_step.CAPACITY_STEP, *inputs, shared_logits=False)
    assert shared[0] == pytest.approx(separate[0], rel=1e-6)
    for name, g in separate[1].items():
        assert float((g - grads_shared[name]).norm() / grads_shared[name].norm()) < 1e-5, name
