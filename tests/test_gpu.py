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
