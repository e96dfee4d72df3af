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
