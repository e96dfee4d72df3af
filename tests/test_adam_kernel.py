"""The fused Adam step (kernels/adam.cu) and the flat parameter layout (refnet/flat.py).

1. The kernel, run from its .cu text on the CPU, equals refnet.optim.adam_update bit for bit
   (verify's exactness cases, hypothesis-drawn), at named extremes too, and a kernel rounding in
   another order is caught. Its PTX has no fma: on the GPU every product is rounded, as in NumPy.
2. After flatten_params, a layer's parameters are views into one buffer.
3. A flat Adam (one update over the whole buffer, by NumPy or by the kernel) equals the per-tensor
   Adam bit for bit over 100 steps of a small network, and their states load into each other.
"""
from functools import partial

import numpy as np
import pytest

import kernels
import refnet
from kernels import adam, cpu, dispatch, nvrtc
from verify import suite
from verify.kernel_cases import EXACT_CASES, EXACT_MUTANTS

# ---------------------------------------------------------------- 1. the kernel against the reference


@pytest.mark.parametrize("case", EXACT_CASES, ids=lambda c: c.name.rsplit(" ", 1)[-1])
def test_cpu_kernel_equals_reference_bit_for_bit(case, hyp_settings):
    """Drawn sizes and hyper-parameters (weight decay or none), 1 to 4 steps in a row from t = 1 or t = 10^6."""
    outcome = suite.exact_outcome(case, hyp_settings)
    assert outcome.passed, outcome.line()
    assert outcome.examples >= hyp_settings.max_examples


def run_both(p, g, m, v, t, backend=cpu.CPU, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Step t of Adam on copies of p, m, v, by the reference and by the kernel -> the two (p, m, v)."""
    step_size, bias_correction2_sqrt = lr / (1.0 - betas[0] ** t), (1.0 - betas[1] ** t) ** 0.5
    results = []
    for update in (refnet.adam_update, partial(adam.adam_update, backend=backend)):
        state = [a.copy() for a in (p, m, v)]
        update(state[0], g, state[1], state[2], step_size, bias_correction2_sqrt, *betas, eps, weight_decay)
        results.append(state)
    return results


def assert_same_bits(got, want):
    for name, a, b in zip("pmv", got, want):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"{name}: kernel {a}, reference {b}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_edge_values_agree(dtype):
    """Zero and signed-zero gradients, gradients whose squares are subnormal or near the top of the range,
    zero moments, large parameters under weight decay; at t = 1 and t = 10^6."""
    g = np.array([0.0, -0.0, 1e-30, -1e-20, 1e15, -3.0, 1e-3, 7.5], dtype)
    p = np.array([0.0, -1.0, 1e6, -1e6, 2.0, 0.5, -0.0, 3e3], dtype)
    m = np.array([0.0, 0.0, 1e-3, -1e-3, 5.0, 0.1, 0.0, -2.0], dtype)
    v = np.array([0.0, 0.0, 1e-10, 1e-30, 1e20, 0.2, 0.0, 4.0], dtype)
    for t in (1, 10**6):
        for weight_decay in (0.0, 0.01):
            for betas in ((0.9, 0.999), (0.5, 0.9), (0.0, 0.99)):
                want, got = run_both(p, g, m, v, t, betas=betas, weight_decay=weight_decay)
                assert_same_bits(got, want)


def test_grid_stride_loop_covers_every_element():
    """3 blocks of 2 threads over 13 elements give the one-thread launch's bits: none skipped, none done twice
    (an element updated twice would take two Adam steps)."""
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.standard_normal(13).astype(np.float32) for _ in range(4))
    _, one = run_both(p, g, m, np.abs(v), t=3)
    _, many = run_both(p, g, m, np.abs(v), t=3, backend=cpu.CpuBackend(grid=(3, 2)))
    assert_same_bits(many, one)


@pytest.mark.parametrize("mutant", EXACT_MUTANTS, ids=lambda c: c.name)
def test_exactness_check_catches_a_reordered_rounding(mutant, hyp_settings):
    """The same sum rounded in another order is off by an ulp here and there: the check must fail."""
    outcome = suite.exact_outcome(mutant, hyp_settings, expect_failure=True)
    assert outcome.passed, outcome.line()


def test_ptx_rounds_every_product(need_nvrtc):
    """NVRTC fuses a product and a sum into one fma unless told not to; mul_rn tells it. Without mul_rn
    the PTX has fmas (so this test can fail), with it none."""
    text = dispatch.source_text("adam.cu")
    plain = text.replace("return __fmul_rn(a, b);", "return a * b;").replace("return __dmul_rn(a, b);", "return a * b;")
    assert plain != text
    assert "fma." in nvrtc.compile_to_ptx(plain, "adam.cu", dispatch.NVRTC_OPTIONS)
    assert "fma." not in nvrtc.compile_to_ptx(text, "adam.cu", dispatch.NVRTC_OPTIONS)


@pytest.fixture
def need_nvrtc():
    if not nvrtc.available():
        pytest.skip("libnvrtc not installed: pip install nvidia-cuda-nvrtc-cu12 (part of the [test] extra)")


def test_dispatch_and_in_place_arguments():
    rng = np.random.default_rng(1)
    p, g, m, v = rng.standard_normal(5), rng.standard_normal(5), np.zeros(5), np.zeros(5)
    scalars = (0.5, 0.25, 0.9, 0.999, 1e-8, 0.01)
    want = [a.copy() for a in (p, m, v)]
    refnet.adam_update(want[0], g, want[1], want[2], *scalars)
    kernels.adam_update(p, g, m, v, *scalars)      # NumPy arrays: the reference, in place
    assert_same_bits([p, m, v], want)
    # p, m and v are written in place: a copy would silently lose the update.
    for bad in (np.zeros(10)[::2], np.zeros(5, np.float32)):
        with pytest.raises(TypeError, match="in place"):
            adam.adam_update(p, g, bad, v, 1.0, 1.0, 0.9, 0.999, 1e-8, 0.0, backend=cpu.CPU)


# ---------------------------------------------------------------- 2. the flat layout


def small_network(seed=0):
    rng = np.random.default_rng(seed)
    return refnet.Sequential(refnet.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), refnet.ReLU(),
                             refnet.Flatten(), refnet.Linear(3 * 4 * 4, 5, rng=rng))


def test_flatten_params_makes_views_into_one_buffer():
    net = small_network()
    before = {name: a.copy() for name, a in net.params.items()}
    buffer, layout = refnet.flatten_params(net)
    assert layout.names == list(before) and layout.size == buffer.size == sum(a.size for a in before.values())
    for name, a in net.params.items():
        np.testing.assert_array_equal(a, before[name])
        assert np.shares_memory(a, buffer) and a.base is buffer
    np.testing.assert_array_equal(layout.gather(before), buffer)   # gather is the inverse of views
    x = np.random.default_rng(2).random((2, 2, 8, 8), dtype=np.float32)
    y_before, _ = net.forward(x)
    buffer[layout.offsets["3.bias"]] += 1.0          # writing the buffer changes the layer
    assert net[3].params["bias"][0] == before["3.bias"][0] + np.float32(1.0)
    y_after, _ = net.forward(x)
    np.testing.assert_allclose(y_after[:, 0] - y_before[:, 0], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(y_after[:, 1:], y_before[:, 1:])


def test_flat_layout_errors():
    net = small_network()
    net[0].params["bias"] = net[0].params["bias"].astype(np.float64)
    with pytest.raises(TypeError, match="one dtype"):
        refnet.flatten_params(net)
    layout = refnet.FlatLayout({"a": (2, 3), "b": ()})
    assert (layout.offsets, layout.size) == ({"a": 0, "b": 6}, 7)
    with pytest.raises(KeyError, match="missing"):
        layout.gather({"a": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        layout.views(np.zeros(8))


# ---------------------------------------------------------------- 3. flat Adam = per-tensor Adam


def training_gradients(net, steps, seed=3):
    """A function giving the gradients of a small regression loss at net's current parameters, per step."""
    rng = np.random.default_rng(seed)
    batches = [(rng.random((4, 2, 8, 8), dtype=np.float32), rng.standard_normal((4, 5)).astype(np.float32))
               for _ in range(steps)]

    def grads(step):
        x, target = batches[step]
        y, cache = net.forward(x)
        _, loss_cache = refnet.mse(y, target)
        return net.backward(refnet.mse_backward(1.0, loss_cache), cache)[1]
    return grads


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_flat_adam_equals_per_tensor_adam_over_100_steps(weight_decay):
    """The same gradients each step (taken from the per-tensor network) to a per-tensor Adam and to flat
    Adams updating by NumPy, by the kernel (CPU) and through `step` on the views: every parameter, every
    step, and both moments at the end, bit for bit."""
    hyper = dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=weight_decay)
    net, per_tensor = small_network(), refnet.Adam(**hyper)
    flat_nets = [small_network() for _ in range(3)]
    buffers, layouts = zip(*(refnet.flatten_params(n) for n in flat_nets))
    flat_adams = [refnet.Adam(**hyper, layout=layout) for layout in layouts]
    updates = [refnet.adam_update, partial(kernels.adam_update, backend=cpu.CPU)]
    grads_at = training_gradients(net, 100)
    for step in range(100):
        grads = grads_at(step)
        per_tensor.step(net.params, grads)
        for buffer, layout, optimizer, update in zip(buffers, layouts, flat_adams, updates):
            optimizer.step_flat(buffer, layout.gather(grads), update=update)
        flat_adams[2].step(flat_nets[2].params, grads)
        for flat_net in flat_nets:
            for name, p in net.params.items():
                assert flat_net.params[name].tobytes() == p.tobytes(), f"step {step + 1}: {name}"
    for optimizer in flat_adams:
        state, want = optimizer.state_dict(), per_tensor.state_dict()
        assert list(state) == list(want)
        for key in want:
            assert state[key].tobytes() == want[key].tobytes(), key


def test_state_dict_round_trip_between_flat_and_per_tensor(tmp_path):
    """Three steps by one kind, saved as a checkpoint saves it, three more by the other kind: the same bits
    as six uninterrupted steps, both ways."""
    net = small_network()
    grads_at = training_gradients(net, 6)
    grads = [grads_at(step) for step in range(6)]   # all at the initial parameters: enough for the optimiser

    def train(flat, steps, resume_from=None):
        """A network and its Adam after `steps`, per tensor or flat; resumed from (params, state file) if given."""
        model = small_network()
        if resume_from is not None:   # before flattening: set_params puts new arrays in place of any views
            model.set_params({name: p.copy() for name, p in resume_from[0].items()})
        buffer, layout = refnet.flatten_params(model) if flat else (None, None)
        optimizer = refnet.Adam(lr=1e-2, weight_decay=0.01, layout=layout)
        if resume_from is not None:
            optimizer.load_state_dict(refnet.load_npz(resume_from[1]), device_like=model.params)
        for g in steps:
            if flat:
                optimizer.step_flat(buffer, layout.gather(g))
            else:
                optimizer.step(model.params, g)
        return model, optimizer

    whole, _ = train(False, grads)
    for first_flat in (True, False):
        model, optimizer = train(first_flat, grads[:3])
        path = tmp_path / f"adam-{first_flat}.npz"
        refnet.save_npz(path, optimizer.state_dict())
        resumed, optimizer = train(not first_flat, grads[3:], (model.params, path))
        if not first_flat:   # loaded into the flat buffers: m and v are views of them
            assert all(np.shares_memory(optimizer.m[name], optimizer.flat_m) for name in optimizer.layout.names)
        for name, p in whole.params.items():
            assert resumed.params[name].tobytes() == p.tobytes(), (first_flat, name)


def test_flat_adam_state_errors():
    layout = refnet.FlatLayout({"w": (3,)})
    state = refnet.Adam().state_dict() | {"m.other": np.zeros(2), "v.other": np.zeros(2)}
    with pytest.raises(KeyError, match="other"):
        refnet.Adam(layout=layout).load_state_dict(state)
    with pytest.raises(ValueError, match="layout"):
        refnet.Adam().step_flat(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        refnet.Adam(layout=layout).step_flat(np.zeros(4), np.zeros(4))
