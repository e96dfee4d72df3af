"""A whole training step with every matrix product and window gather on our kernels, run on the CPU.

Inside `refnet.use_ops(kernels.ops_on(cpu.CPU))` refnet's layers send each product to gemm.cu and each
im2col / col2im to im2col.cu, compiled from their .cu text (kernels/cpu_shim.h). The objective and every
gradient must equal the NumPy step's up to the rounding of a different summation order: the same
wiring that `kernels.OPS` gives a CuPy step on the GPU, checked here without one.
"""
import numpy as np
import pytest

import kernels
import refnet
from jointvae.models.factorvae import make_discriminator
from jointvae.models.jointvae import JointVAE, draw_noise
from jointvae.models.objective import objective_and_grads
from jointvae.models.specs import validate_spec
from kernels import cpu

CAPACITY = [0.0, 5.0, 100, 30.0]
SPECS = {
    "jointvae": {"latent_spec": {"cont": 2, "disc": [3]}, "cont_capacity": CAPACITY, "disc_capacity": CAPACITY},
    "joint-factorvae": {"model": "joint-factorvae", "latent_spec": {"cont": 2, "disc": [3]}, "tc_gamma": 40.0,
                        "cont_capacity": CAPACITY, "disc_capacity": CAPACITY},
}


@pytest.mark.parametrize("model_name, dtype, rtol", [("jointvae", np.float64, 1e-12),
                                                     ("joint-factorvae", np.float32, 2e-4)])
def test_training_step_through_the_kernels_equals_numpy(model_name, dtype, rtol):
    spec = validate_spec({**SPECS[model_name], "image_shape": [1, 32, 32]})
    rng = np.random.default_rng(0)
    model = JointVAE((1, 32, 32), spec["latent_spec"], rng=rng, dtype=dtype)
    discriminator = None
    if spec.get("tc_gamma"):
        discriminator = make_discriminator(model.latent_dim, rng, hidden=24, hidden_layers=2, dtype=dtype)
    x = rng.random((3, 1, 32, 32)).astype(dtype)
    noise = draw_noise(model, 3, rng, dtype=dtype)
    stats, grads, _ = objective_and_grads(model, x, noise, spec, 10, discriminator)
    with refnet.use_ops(kernels.ops_on(cpu.CPU)):
        stats_k, grads_k, _ = objective_and_grads(model, x, noise, spec, 10, discriminator)
    np.testing.assert_allclose(float(stats_k["objective"]), float(stats["objective"]), rtol=rtol)
    for name, g in grads.items():   # relative to each gradient's largest entry: near-zero entries cancel
        assert np.max(np.abs(grads_k[name] - g)) <= rtol * np.max(np.abs(g)), name


def test_outside_the_block_the_layers_use_numpy():
    """use_ops is scoped: after the block (and on a fresh thread of control) refnet's own ops are back."""
    assert refnet.ops_in_use() == refnet.Ops()
    with refnet.use_ops(kernels.ops_on(cpu.CPU)):
        assert refnet.ops_in_use().matmul is not None
    assert refnet.ops_in_use() == refnet.Ops()
