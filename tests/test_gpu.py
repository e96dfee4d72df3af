"""The same layers on CuPy give NumPy's results (run on a machine with a GPU: pytest -m gpu)."""
import numpy as np
import pytest

import refnet

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not refnet.gpu_available(), reason="needs CuPy and a CUDA GPU")]


def test_every_layer_matches_numpy_on_gpu():
    from test_layers import all_layers, input_for
    rng = np.random.default_rng(0)
    for layer in all_layers(rng):
        layer.astype(np.float64)
        x = input_for(layer, rng).astype(np.float64)
        y, cache = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        dx, grads = layer.backward(dy, cache)
        layer.to("gpu")
        y_gpu, cache_gpu = layer.forward(refnet.to_device(x, "gpu"))
        dx_gpu, grads_gpu = layer.backward(refnet.to_device(dy, "gpu"), cache_gpu)
        np.testing.assert_allclose(refnet.to_numpy(y_gpu), y, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(refnet.to_numpy(dx_gpu), dx, rtol=1e-10, atol=1e-12)
        for k in grads:
            np.testing.assert_allclose(refnet.to_numpy(grads_gpu[k]), grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_kernels", [True, False], ids=["kernels", "reference-on-gpu"])
def test_training_step_matches_numpy(use_kernels):
    """One whole JointVAE step (forward, backward) on CuPy against NumPy, same weights, data and noise."""
    import kernels
    from jointvae.models.jointvae import JointVAE, draw_noise
    from jointvae.models.objective import objective_and_grads
    from jointvae.models.specs import MNIST_SPEC, validate_spec
    spec = validate_spec(MNIST_SPEC)
    model = JointVAE((1, 32, 32), spec["latent_spec"], rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((64, 1, 32, 32), dtype=np.float32)
    noise = draw_noise(model, 64, np.random.default_rng(2))
    stats, grads, _ = objective_and_grads(model, x, noise, spec, step=10000)

    model.to("gpu")
    noise_gpu = {"eps": refnet.to_device(noise["eps"], "gpu"), "u": [refnet.to_device(u, "gpu") for u in noise["u"]]}
    with kernels.reference_on_gpu(enabled=not use_kernels):
        stats_gpu, grads_gpu, _ = objective_and_grads(model, refnet.to_device(x, "gpu"), noise_gpu, spec, step=10000)
    # A KL near 0 is a sum of float32 terms of size ~1 that cancel (kl_disc is 0.0009 here), so its rounding is
    # absolute, about 1e-8 on an H100: hence the atol.
    for key in ("loss", "recon", "kl_cont", "kl_disc"):
        np.testing.assert_allclose(refnet.to_numpy(stats_gpu[key]), stats[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for name, g in grads.items():
        g_gpu = refnet.to_numpy(grads_gpu[name])
        scale = np.abs(g).max()
        np.testing.assert_allclose(g_gpu, g, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("model_name", ["factorvae", "joint-factorvae"])
def test_factor_training_step_matches_numpy(tmp_path, model_name):
    """A whole FactorVAE step (VAE and discriminator updates) on CuPy against NumPy, same seed and data."""
    from jointvae.models.specs import DEFAULT_SPECS, validate_spec
    from jointvae.training.trainer import Trainer
    spec = validate_spec(dict(DEFAULT_SPECS[("dsprites", model_name)], image_shape=[1, 32, 32], dataset=None,
                              batch_size=16, d_hidden=64, d_layers=2))
    images = np.random.default_rng(0).integers(0, 256, (64, 1, 32, 32)).astype(np.uint8)
    stats = {}
    for device in ("cpu", "gpu"):
        t = Trainer(spec, str(tmp_path / device), seed=1, max_steps=2, images=images, device=device,
                    log=lambda line: None)
        t.load_data()
        stats[device] = [t.train_step(t.batch(np.arange(16)), t.batch(np.arange(16, 32))) for _ in range(2)]
    # Step 1 from the same weights; step 2 after both updates (Adam's first step is lr * sign(g), so a
    # near-zero gradient may flip sign between devices: compare what the updates lead to, not each weight).
    for step, rtol in ((0, 1e-4), (1, 1e-3)):
        for key in ("loss", "tc", "d_loss"):
            np.testing.assert_allclose(refnet.to_numpy(stats["gpu"][step][key]),
                                       refnet.to_numpy(stats["cpu"][step][key]), rtol=rtol, err_msg=f"{key}, step {step + 1}")


def _run(tmp_path, name, spec, steps, images, **kwargs):
    """A short training run -> (log records without wall time, final parameters on the host)."""
    import json
    from jointvae.training.trainer import Trainer
    trainer = Trainer(spec, str(tmp_path / name), seed=1, max_steps=steps, images=images, checkpoint_every=10**6,
                      log=lambda line: None, **kwargs).run()
    with open(tmp_path / name / "log.jsonl") as f:
        records = [{k: v for k, v in json.loads(line).items() if k != "wall_s"} for line in f]
    params = {k: refnet.to_numpy(v) for k, v in trainer.model.params.items()}
    if trainer.discriminator is not None:
        params.update({f"D.{k}": refnet.to_numpy(v) for k, v in trainer.discriminator.params.items()})
    return records, params


def test_graph_replay_matches_eager_kernels_and_numpy(tmp_path):
    """200 MNIST-model steps on one CUDA graph per step and on the same kernels eagerly, and 20 on NumPy.

    Graph and eager launch the same kernels in the same order on the same data: bit for bit, losses and weights,
    over 200 steps, a short last batch in every epoch. Against NumPy (another summation order in every product) the
    two runs drift apart as training feeds rounding back in: on an H200, kl_cont was 0.036 against 0.041 by step
    168. So NumPy is compared over the first 20 steps only, losses to 1e-4 relative. atol 2e-5: a KL near 0 is
    0.5 sum (mu^2 + sigma^2 - log sigma^2 - 1) over 64 x 10 summands of order 1 that cancel, so float32 leaves it
    an absolute error of ~1e-6 whatever its size (seen: 1.3e-6 on a kl_cont of 0.006 at step 20).
    test_training_step_matches_numpy checks one step's every gradient against NumPy."""
    from jointvae.models.specs import MNIST_SPEC, validate_spec
    spec = validate_spec(dict(MNIST_SPEC, record_loss_every=1))
    images = np.random.default_rng(0).integers(0, 256, (64 * 4 - 8, 1, 32, 32)).astype(np.uint8)  # a short last batch
    graph, graph_params = _run(tmp_path, "graph", spec, 200, images, device="gpu")
    eager, eager_params = _run(tmp_path, "eager", spec, 200, images, device="gpu", graph=False)
    numpy_run, _ = _run(tmp_path, "numpy", spec, 20, images)
    assert graph == eager
    for name in graph_params:
        np.testing.assert_array_equal(graph_params[name], eager_params[name], err_msg=name)
    for got, want in zip(graph[:20], numpy_run):
        for key in ("loss", "recon", "kl_cont", "kl_disc"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=2e-5, err_msg=f"{key}, step {got['step']}")


@pytest.mark.parametrize("model_name", ["factorvae", "joint-factorvae"])
def test_factor_graph_replay_matches_eager_kernels(tmp_path, model_name):
    """FactorVAE's two updates in one graph: bit for bit the eager kernels' steps."""
    from jointvae.models.specs import DEFAULT_SPECS, validate_spec
    spec = validate_spec(dict(DEFAULT_SPECS[("dsprites", model_name)], image_shape=[1, 32, 32], dataset=None,
                              batch_size=16, record_loss_every=1))
    images = np.random.default_rng(0).integers(0, 256, (40, 1, 32, 32)).astype(np.uint8)
    graph, graph_params = _run(tmp_path, "graph", spec, 10, images, device="gpu")
    eager, eager_params = _run(tmp_path, "eager", spec, 10, images, device="gpu", graph=False)
    assert graph == eager
    for name in graph_params:
        np.testing.assert_array_equal(graph_params[name], eager_params[name], err_msg=name)


def test_gemm_and_adam_kernels_on_the_gpu():
    """gemm.cu on strided operands and adam.cu with its scalars read from device memory, against NumPy."""
    import cupy
    import kernels
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((37, 70)).astype(np.float32), rng.standard_normal((21, 70)).astype(np.float32)
    c = refnet.to_numpy(kernels.matmul(cupy.asarray(a), cupy.asarray(b).T))
    np.testing.assert_allclose(c, a @ b.T, rtol=1e-4, atol=1e-4)
    p, g, m, v = (rng.standard_normal(1000).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    want = [x.copy() for x in (p, m, v)]
    refnet.adam_update(want[0], g, want[1], want[2], 1e-3, 0.3, 0.9, 0.999, 1e-8, 0.0)
    on_gpu = [cupy.asarray(x) for x in (p, m, v)]
    kernels.adam_update(on_gpu[0], cupy.asarray(g), on_gpu[1], on_gpu[2], 1e-3, 0.3, 0.9, 0.999, 1e-8, 0.0)
    for got, exp in zip(on_gpu, want):   # mul_rn keeps the compiler from fusing: bit for bit
        np.testing.assert_array_equal(refnet.to_numpy(got), exp)


def test_runs_together_on_streams_match_runs_alone(tmp_path, monkeypatch):
    """Three runs in one process, a thread and a CUDA stream each (sweeps/together.py), their graphs captured and
    replayed at the same time: bit for bit the same runs alone, one after another (our kernels are deterministic)."""
    import json

    from conftest import write_square_images
    from jointvae.sweeps import runs, together
    from jointvae.sweeps.sweep_file import load_sweep
    monkeypatch.setenv("JOINTVAE_DATA", str(tmp_path / "data"))
    write_square_images(tmp_path / "img", 72)
    for out in ("alone", "together"):
        (tmp_path / f"{out}.json").write_text(json.dumps({
            "base": "folder", "folder": "img", "out": out, "grid": {"seed": [0, 1, 2]},
            "settings": {"steps": 60, "batch_size": 16, "image_shape": [1, 32, 32], "device": "gpu"}}))
    alone, with_others = load_sweep(tmp_path / "alone.json"), load_sweep(tmp_path / "together.json")
    names = [p["name"] for p in alone.points]
    for name in names:
        assert runs.run_one(alone, name, log=lambda line: None) == 0
    assert together.run_together(with_others, names, log=lambda line: None) == {n: 0 for n in names}
    for name in names:
        with open(tmp_path / "alone" / name / "log.jsonl") as a, open(tmp_path / "together" / name / "log.jsonl") as t:
            drop_wall = lambda line: {k: v for k, v in json.loads(line).items() if k != "wall_s"}   # noqa: E731
            assert [drop_wall(line) for line in t] == [drop_wall(line) for line in a]
        w_alone = np.load(tmp_path / "alone" / name / "weights.npz")
        w_together = np.load(tmp_path / "together" / name / "weights.npz")
        for key in w_alone.files:
            np.testing.assert_array_equal(w_together[key], w_alone[key], err_msg=f"{name} {key}")


def test_evaluation_on_the_gpu_matches_the_cpu():
    """evaluate --device gpu: the codes, reconstruction and KL of a model moved to the GPU are the CPU's (float32
    sums in another order), and evaluate's JSON on dSprites gives the same scores."""
    from jointvae.evaluation.inspection import eval_codes
    from jointvae.evaluation.scores import encode_dataset
    from jointvae.models.jointvae import JointVAE
    model = JointVAE((1, 64, 64), {"cont": 6, "disc": [3]}, rng=np.random.default_rng(0))
    images = np.random.default_rng(1).integers(0, 256, (700, 1, 64, 64)).astype(np.uint8)
    codes_cpu, (recon_cpu, kl_cpu, alphas_cpu) = eval_codes(model, images), encode_dataset(model, images)
    model.to("gpu")
    codes_gpu, (recon_gpu, kl_gpu, alphas_gpu) = eval_codes(model, images), encode_dataset(model, images)
    assert isinstance(codes_gpu, np.ndarray) and isinstance(recon_gpu, np.ndarray) and isinstance(alphas_gpu, np.ndarray)
    np.testing.assert_allclose(codes_gpu, codes_cpu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(recon_gpu, recon_cpu, rtol=1e-4)
    np.testing.assert_allclose(kl_gpu, kl_cpu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(alphas_gpu, alphas_cpu, rtol=1e-4, atol=1e-6)
