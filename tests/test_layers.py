"""Layer contract, numerics at the extremes, containers and reentrancy."""
import warnings

import numpy as np
import pytest

import refnet


def all_layers(rng):
    return [refnet.Linear(4, 3, rng=rng), refnet.Conv2d(2, 3, 3, 2, 1, rng=rng),
            refnet.ConvTranspose2d(2, 3, 4, 2, 1, rng=rng), refnet.ReLU(), refnet.LeakyReLU(0.1),
            refnet.Sigmoid(), refnet.Softmax(), refnet.Flatten(), refnet.Reshape(-1)]


def input_for(layer, rng):
    return rng.standard_normal((2, 4) if isinstance(layer, refnet.Linear) else (2, 2, 4, 4)).astype(np.float32)


def test_layers_are_reentrant_and_leave_inputs_alone():
    rng = np.random.default_rng(0)
    for layer in all_layers(rng):
        x1, x2 = input_for(layer, rng), input_for(layer, rng)
        y1, c1 = layer.forward(x1)
        y2, c2 = layer.forward(x2)           # a second forward before any backward
        dy = rng.standard_normal(y1.shape).astype(np.float32)
        dy_copy, x1_copy = dy.copy(), x1.copy()
        dx2, g2 = layer.backward(dy, c2)
        dx1, g1 = layer.backward(dy, c1)     # backward in the other order still uses x1
        _, fresh = layer.forward(x1)
        dx_fresh, g_fresh = layer.backward(dy, fresh)
        np.testing.assert_array_equal(dx1, dx_fresh)
        np.testing.assert_array_equal(layer.backward_input(dy, c1), dx1)
        for k in g1:
            np.testing.assert_array_equal(g1[k], g_fresh[k])
        assert set(g1) == set(layer.params)
        np.testing.assert_array_equal(dy, dy_copy)   # backward does not mutate its inputs
        np.testing.assert_array_equal(x1, x1_copy)
        assert dx1.shape == x1.shape and dx1.dtype == np.float32, type(layer).__name__
        assert not vars(layer).get("cache"), "no cache kept on the layer"


@pytest.mark.parametrize("make", [lambda rng: refnet.Conv2d(3, 4, 4, 2, 1, rng=rng),
                                  lambda rng: refnet.ConvTranspose2d(3, 4, 4, 2, 1, rng=rng)])
def test_convolutions_give_the_same_numbers_for_any_input_memory_layout(make):
    """Outputs are batch-last memory behind NCHW views (refnet.conv): what the caller passes in,
    NCHW-contiguous, batch-last or strided, must not change a single value."""
    rng = np.random.default_rng(1)
    layer = make(rng)
    x = rng.standard_normal((5, 3, 6, 6)).astype(np.float32)
    dy = None
    results = []
    for x_in in (x, refnet.batch_first(refnet.batch_last(x)), np.asfortranarray(x)):
        y, cache = layer.forward(x_in)
        if dy is None:
            dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, grads = layer.backward(np.asfortranarray(dy), cache)
        results.append((y, dx, grads))
    for y, dx, grads in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
        for k in grads:
            np.testing.assert_array_equal(grads[k], results[0][2][k])


def test_sequential_backward_input_is_backward_without_the_weight_grads():
    rng = np.random.default_rng(2)
    net = refnet.Sequential(refnet.Linear(5, 7, rng=rng), refnet.LeakyReLU(0.2), refnet.Linear(7, 2, rng=rng))
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y, cache = net.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(net.backward_input(dy, cache), net.backward(dy, cache)[0])


def test_sequential_names_like_a_pytorch_state_dict():
    rng = np.random.default_rng(0)
    net = refnet.Sequential(refnet.Conv2d(1, 2, 4, 2, 1, rng=rng), refnet.ReLU(), refnet.Flatten(),
                            refnet.Linear(2 * 4 * 4, 5, rng=rng))
    assert list(net.params) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    y, cache = net.forward(np.ones((3, 1, 8, 8), np.float32))
    dx, grads = net.backward(np.ones_like(y), cache)
    assert set(grads) == set(net.params) and dx.shape == (3, 1, 8, 8)
    net.params["3.bias"] -= 1.0       # in-place updates reach the layer (what Adam does)
    np.testing.assert_array_equal(net[3].params["bias"], net.params["3.bias"])


def test_set_params_rejects_wrong_names_and_shapes():
    net = refnet.Sequential(refnet.Linear(3, 2))
    with pytest.raises(ValueError, match=r"'0.weight': shape \(3, 2\) does not match the layer's \(2, 3\)"):
        net.set_params({"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(2)})
    with pytest.raises(KeyError, match="unexpected"):
        net.set_params({"1.weight": np.zeros((2, 3))})
    with pytest.raises(KeyError, match="missing"):
        net.set_params({"0.weight": np.zeros((2, 3))})


def test_float64_supported_end_to_end():
    net = refnet.Sequential(refnet.Linear(3, 2, rng=np.random.default_rng(0)), refnet.Sigmoid()).astype(np.float64)
    y, cache = net.forward(np.ones((1, 3)))
    dx, grads = net.backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == grads["0.weight"].dtype == np.float64


def test_activation_extremes_are_finite_and_silent():
    x = np.array([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4, -np.inf, np.inf], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = refnet.sigmoid(x)
        p = refnet.softmax(np.array([[1000.0, 0.0, -1000.0]], np.float32))
        r, _ = refnet.ReLU().forward(x)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[6] == 1.0
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]])
    assert r[7] == 0.0 and r[8] == np.inf   # relu(-inf) = 0, not NaN
    assert np.isnan(refnet.ReLU().forward(np.array([np.nan]))[0][0])  # NaN propagates, as in PyTorch


def test_bce_matches_pytorch_at_the_clamps():
    # Reference numbers from torch 2.13 F.binary_cross_entropy(p, t, reduction='sum') and its grad.
    p = np.array([0.0, 1.0, 0.25, 1e-20], np.float32)
    t = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    loss, cache = refnet.binary_cross_entropy(p, t, reduction="sum")
    np.testing.assert_allclose(loss, 100.28768157958984, rtol=1e-6)
    np.testing.assert_allclose(refnet.binary_cross_entropy_backward(1.0, cache),
                               [-999999995904.0, 0.0, 1.3333333730697632, 9.99999993922529e-09], rtol=1e-6)


def test_bce_with_logits_is_stable_at_the_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    loss, cache = refnet.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss, [1000.0, 0.0, np.log(2), 0.0, 1000.0], atol=1e-15)
    np.testing.assert_allclose(refnet.binary_cross_entropy_with_logits_backward(np.ones(5), cache),
                               [-1.0, 0.0, 0.0, 0.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("reduction,scale", [("sum", 1.0), ("mean", 1 / 12), ("batchmean", 1 / 2)])
def test_loss_reductions(reduction, scale):
    y, t = np.full((2, 2, 3), 3.0), np.ones((2, 2, 3))
    loss, cache = refnet.mse(y, t, reduction)
    assert loss == pytest.approx(4.0 * 12 * scale)
    np.testing.assert_allclose(refnet.mse_backward(1.0, cache), 4.0 * scale)
    with pytest.raises(ValueError, match="unknown reduction"):
        refnet.mse(y, t, "avg")
    with pytest.raises(ValueError, match="input shape"):
        refnet.mse(y, t[:1], reduction)


def test_kl_terms_at_the_extremes():
    mu = np.array([[0.0, 0.0, 3.0]])
    logvar = np.array([[-20.0, 20.0, 0.0]])
    kl, cache = refnet.kl_normal(mu, logvar)
    np.testing.assert_allclose(kl, [[-0.5 * (1 - 20 - np.exp(-20)), -0.5 * (1 + 20 - np.exp(20)), 4.5]])
    alpha = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    kl, cache = refnet.kl_categorical_uniform(alpha)
    np.testing.assert_allclose(kl, [np.log(3), 0.0], atol=1e-11)
    dalpha = refnet.kl_categorical_uniform_backward(np.ones(2), cache)
    assert np.all(np.isfinite(dalpha))  # log(0 + 1e-12) is finite


def test_adam_matches_torch():
    # torch 2.13: Adam([p], lr=0.1, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01), three steps.
    params = {"p": np.array([0.5, -1.0, 2.0], np.float32)}
    opt = refnet.Adam(lr=0.1, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01)
    for g in ([0.1, -0.2, 0.3], [1.0, 0.0, -0.5], [-0.3, 0.2, 0.05]):
        opt.step(params, {"p": np.array(g, np.float32)})
    np.testing.assert_allclose(params["p"], [0.27684760093688965, -0.8461721539497375, 1.9440934658050537],
                               rtol=1e-6)
    np.testing.assert_allclose(opt.m["p"], [0.11471104621887207, 0.010012650862336159, -0.022138861939311028],
                               rtol=1e-6)
    np.testing.assert_allclose(opt.v["p"], [0.010968580842018127, 0.000800374080426991, 0.0033421292901039124],
                               rtol=1e-6)


def test_adam_state_round_trip_continues_identically(tmp_path):
    rng = np.random.default_rng(0)
    grads = [{"w": rng.standard_normal(4).astype(np.float32)} for _ in range(6)]
    a_params, a = {"w": np.ones(4, np.float32)}, refnet.Adam(lr=0.01)
    for g in grads:
        a.step(a_params, g)
    b_params, b = {"w": np.ones(4, np.float32)}, refnet.Adam(lr=0.01)
    for g in grads[:3]:
        b.step(b_params, g)
    refnet.save_npz(tmp_path / "opt.npz", b.state_dict())
    c = refnet.Adam().load_state_dict(refnet.load_npz(tmp_path / "opt.npz"))
    for g in grads[3:]:
        c.step(b_params, g)
    np.testing.assert_array_equal(a_params["w"], b_params["w"])


def test_params_npz_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    net = refnet.Sequential(refnet.Conv2d(1, 2, 3, rng=rng), refnet.ReLU(), refnet.Flatten(), refnet.Linear(8, 2, rng=rng))
    path = tmp_path / "w.npz"
    refnet.save_params(path, net)
    other = refnet.Sequential(refnet.Conv2d(1, 2, 3), refnet.ReLU(), refnet.Flatten(), refnet.Linear(8, 2))
    refnet.load_params(path, other)
    for k, v in net.params.items():
        np.testing.assert_array_equal(other.params[k], v)
    # a truncated file: one clear line naming the file
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz: not a readable .npz file"):
        refnet.load_npz(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz: no such file"):
        refnet.load_npz(tmp_path / "nope.npz")
    # pickled object arrays are refused
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="obj.npz"):
        refnet.load_npz(tmp_path / "obj.npz")


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "w.npz"
    refnet.save_npz(path, {"a": np.ones(3)})

    class Unsaveable:
        shape = (1,)

        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        refnet.save_npz(path, {"a": Unsaveable()})
    np.testing.assert_array_equal(refnet.load_npz(path)["a"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temp file left behind


def test_backend_helpers():
    x = np.ones(3)
    assert refnet.get_array_module(x) is np
    assert refnet.to_device(x, "cpu") is not None
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        refnet.to_device(x, "tpu")
    if not refnet.gpu_available():
        with pytest.raises(RuntimeError, match="gpu"):
            refnet.to_device(x, "gpu")


def test_retain_freed_memory_checks_its_argument_and_applies_on_glibc():
    import sys
    with pytest.raises(ValueError, match="pad_bytes"):
        refnet.retain_freed_memory(-1)
    with pytest.raises(ValueError, match="pad_bytes"):
        refnet.retain_freed_memory(2**40)
    applied = refnet.retain_freed_memory(1 << 20)
    assert applied == (sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()))
    refnet.retain_freed_memory()   # back to the default pad the training command uses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_select_is_where_bit_for_bit(dtype):
    """refnet.select (branch-free) against np.where: specials, broadcasting, strided views, scalar 0."""
    rng = np.random.default_rng(3)
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -3.5], dtype=dtype)
    a = rng.standard_normal((6, 5, 8)).astype(dtype)
    a[0, 0] = specials
    b = rng.standard_normal((6, 5, 8)).astype(dtype)
    b[1, 1] = specials[::-1]
    cond = rng.random((6, 5, 8)) > 0.5
    cases = [(cond, a, b), (cond, a, 0), (cond[:, :, ::2], a[:, :, ::2], b[:, :, 1::2]),
             (cond[:, :1], a, b), (cond.transpose(2, 0, 1), a.transpose(2, 0, 1), 0)]
    for c, x, y in cases:
        expected, got = np.where(c, x, y), refnet.select(c, x, y)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(np.ascontiguousarray(got).view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))
    # other dtypes, and a b that is not 0 or an array of a's dtype, take np.where itself
    ints = np.arange(cond.size, dtype=np.int32).reshape(cond.shape)
    np.testing.assert_array_equal(refnet.select(cond, ints, 7), np.where(cond, ints, 7))
    np.testing.assert_array_equal(refnet.select(cond, a, -0.0).view(np.uint8),
                                  np.where(cond, a, -0.0).view(np.uint8))
