"""The CUDA kernels, checked without a GPU.

1. NVRTC, the compiler CuPy uses, compiles every kernels/*.cu (no GPU or driver needed).
2. The .cu text itself, compiled as C++ (kernels/cpu.py), matches its NumPy reference on
   hypothesis-drawn inputs, extremes included, forward and backward, float32 and float64.
3. The verify suite's finite-difference checks of each kernel's backward pass (kernel_cases).
4. A kernel with one operator changed fails both the comparison and the gradient check.
The GPU itself is checked by the tests marked gpu at the end (pytest -m gpu, with CuPy).
"""
import re

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnet
from kernels import categorical, cpu, dispatch, gumbel, normal, nvrtc
from verify import suite
from verify.kernel_cases import KERNEL_CASES, KERNEL_MUTANTS, MUTATIONS, mutant_backend

# ---------------------------------------------------------------- 1. NVRTC


@pytest.fixture(scope="module")
def need_nvrtc():
    if not nvrtc.available():
        pytest.skip("libnvrtc not installed: pip install nvidia-cuda-nvrtc-cu12 (part of the [test] extra)")


def entry_points(text):
    """The extern "C" kernels a .cu file defines, e.g. ['gumbel_softmax_forward_f32', ...]."""
    return re.findall(r'extern "C" __global__ void (\w+)\(', text)


@pytest.mark.parametrize("source", dispatch.sources())
def test_nvrtc_compiles_every_kernel(source, need_nvrtc):
    text = dispatch.source_text(source)
    ptx = nvrtc.compile_to_ptx(text, source, dispatch.NVRTC_OPTIONS)
    entries = {body.split("(")[0].strip(): body for body in ptx.split(".entry")[1:]}
    names = entry_points(text)
    assert names and {n[:-4] for n in names if n.endswith("_f32")} == {n[:-4] for n in names if n.endswith("_f64")}
    assert set(names) == set(entries), "every extern \"C\" kernel is in the PTX, unmangled"
    for name in names:
        # exp(float) must be the float overload: a double-precision instruction in an _f32
        # kernel means some math silently ran in double (slow on a GPU, and not what the
        # CPU run checked).
        if name.endswith("_f32"):
            assert ".f64" not in entries[name], f"{name} computes in double somewhere"


def test_nvrtc_reports_errors(need_nvrtc):
    """The compile test can fail: a missing semicolon is an NvrtcError with NVRTC's log."""
    good = dispatch.source_text("normal.cu")
    text = good.replace("mu[i] * mu[i] - var);", "mu[i] * mu[i] - var)")
    assert text != good
    with pytest.raises(nvrtc.NvrtcError, match="expected a \";\""):
        nvrtc.compile_to_ptx(text, "normal.cu", dispatch.NVRTC_OPTIONS)


# ---------------------------------------------------------------- 2. CPU execution vs reference
#
# Each op maps named inputs to every output of its forward and backward, on a backend.

def gumbel_op(a, backend):
    y, cache = gumbel.gumbel_softmax(a["alpha"], a["u"], a["tau"], backend=backend)
    return {"y": y, "dalpha": gumbel.gumbel_softmax_backward(a["dy"], cache)}


def normal_op(a, backend):
    (z, kl), cache = normal.reparameterize_with_kl(a["mu"], a["logvar"], a["eps"], backend=backend)
    dmu, dlogvar = normal.reparameterize_with_kl_backward(a["dz"], a["dkl"], cache)
    return {"z": z, "kl": kl, "dmu": dmu, "dlogvar": dlogvar}


def categorical_op(a, backend):
    kl, cache = categorical.kl_categorical_uniform(a["alpha"], backend=backend)
    return {"kl": kl, "dalpha": categorical.kl_categorical_uniform_backward(a["dkl"], cache)}


# Inputs, extremes included: probabilities exactly 0 and 1 and within 1e-22 of them
# (softmax of logits up to +-50), u = 0 and the largest u below 1, logvar = +-20.
logits = st.floats(-50, 50) | st.sampled_from([-50.0, 0.0, 50.0])
uniforms = st.floats(0, 1, exclude_max=True) | st.sampled_from([0.0, 1e-30, 0.5, float(np.nextafter(1.0, 0.0))])


@st.composite
def probabilities(draw, shape):
    """Rows of softmax(logits), some entries then set to exactly 0 (not renormalised: the kernels don't care)."""
    alpha = refnet.softmax(draw(hnp.arrays(np.float64, shape, elements=logits)))
    alpha[draw(hnp.arrays(bool, shape))] = 0.0
    return alpha


def gradient(draw, shape):
    """An upstream gradient, drawn from a seed: its values don't need shrinking."""
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape)


@st.composite
def gumbel_inputs(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 8)))
    return dict(alpha=draw(probabilities(shape)), u=draw(hnp.arrays(np.float64, shape, elements=uniforms)),
                tau=draw(st.sampled_from([0.1, 0.67, 1.0, 5.0])), dy=gradient(draw, shape))


@st.composite
def normal_inputs(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    logvars = st.floats(-20, 20) | st.sampled_from([-20.0, 20.0])
    return dict(mu=draw(hnp.arrays(np.float64, shape, elements=st.floats(-50, 50))),
                logvar=draw(hnp.arrays(np.float64, shape, elements=logvars)),
                eps=draw(hnp.arrays(np.float64, shape, elements=st.floats(-6, 6))),
                dz=gradient(draw, shape), dkl=gradient(draw, shape))


@st.composite
def categorical_inputs(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 8)))
    return dict(alpha=draw(probabilities(shape)), dkl=gradient(draw, shape[:1]))



# How big the terms are that make up each output, in float64. Kernel and reference evaluate the
# same expression in the same order and round differently only inside exp/log/log1p/tanh (libm
# vs NumPy: an ulp or two) and in NumPy's pairwise sums; each such difference is at most a few
# eps times a term's size, however much the terms cancel afterwards (dy - <dy, y>, sigmoid(x) - t,
# log K + sum, 1 + logvar - exp(logvar)...). So |kernel - reference| <= ROUNDINGS eps size.
ROUNDINGS = 16   # eps(dtype) per unit of size; 2000 examples per op and dtype never needed more than 2
LOG_EPS = 27.7   # |log(p + 1e-12)| and the Gumbel noise |g| are at most -log(1e-12) = 27.6 for p, u in [0, 1]


def gumbel_sizes(a, r):
    # s = (log(alpha + 1e-12) + g) / tau lies within +-2 LOG_EPS / tau, and y = exp(s - max s) / sum:
    # an error of eps |s| in the exponent is a relative error of y; the sum adds K roundings.
    growth = a["alpha"].shape[-1] + 4 * LOG_EPS / a["tau"]
    # y at least float32's smallest normal: the GPU flushes a subnormal y to 0 (-ftz=true), and the
    # gradient y (...) / (tau alpha) built on it can be a normal number that the flush zeroes too.
    y, ady = np.maximum(r["y"], np.finfo(np.float32).tiny), np.abs(a["dy"])
    return {"y": growth * y,
            "dalpha": growth * y * (ady + (ady * y).sum(-1, keepdims=True)) / (a["tau"] * (a["alpha"] + 1e-12))}


def normal_sizes(a, r):
    sigma, var = np.exp(a["logvar"] / 2), np.exp(a["logvar"])
    return {"z": np.abs(a["mu"]) + sigma * np.abs(a["eps"]),
            "kl": 1 + np.abs(a["logvar"]) + a["mu"] ** 2 + var,
            "dmu": np.abs(a["dz"]) + np.abs(a["dkl"] * a["mu"]),
            "dlogvar": np.abs(a["dz"] * a["eps"]) * sigma + np.abs(a["dkl"]) * (var + 1)}


def categorical_sizes(a, r):
    k = a["alpha"].shape[-1]
    return {"kl": np.log(k) + LOG_EPS * a["alpha"].sum(-1),      # |alpha log(alpha + 1e-12)| <= LOG_EPS alpha
            "dalpha": np.abs(a["dkl"])[:, None] * (LOG_EPS + 1) * np.ones(k)}


OPS = {"gumbel.cu": (gumbel_op, gumbel_inputs(), gumbel_sizes),
       "normal.cu": (normal_op, normal_inputs(), normal_sizes),
       "categorical.cu": (categorical_op, categorical_inputs(), categorical_sizes)}


def cast(inputs, dtype):
    return {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}


def run(op, inputs, backend):
    """op on `backend`; for the GPU, NumPy inputs go to the device and the outputs come back."""
    if backend is not dispatch.GPU:
        return op(inputs, backend)
    on_device = {k: refnet.to_device(v, "gpu") if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    return {k: refnet.to_numpy(v) for k, v in op(on_device, backend).items()}


def assert_matches(source, inputs, dtype, backend=None):
    """The kernel (run by `backend`, default the CPU) computes what the reference computes, to rounding:
    finite where the reference is finite, and |kernel - reference| <= ROUNDINGS eps(dtype) size (or below
    the smallest normal number of dtype), elementwise, for every output of the forward and the backward."""
    op, _, sizes = OPS[source]
    inputs = cast(inputs, dtype)   # the inputs as the kernel sees them; sizes in float64
    reference, kernel = op(inputs, "reference"), run(op, inputs, cpu.CPU if backend is None else backend)
    size = sizes(cast(inputs, np.float64), reference)
    for name, want in reference.items():
        got, want = np.asarray(kernel[name]), np.asarray(want)
        assert got.dtype == want.dtype == dtype and got.shape == want.shape, name
        assert np.isfinite(want).all(), f"reference {name} is not finite: {want}"
        assert np.isfinite(got).all(), f"kernel {name} is not finite where the reference is: {got}"
        diff = np.abs(got.astype(np.float64) - want)
        # A difference of a few smallest normal numbers counts as agreement: CUDA's expf is built on
        # ex2.approx.ftz.f32 (see the PTX), which flushes subnormal results such as exp(-90) to zero, and with
        # -ftz=true an intermediate flushes too (seen on an H200: 0 where the reference is 1.18e-38).
        error = np.where(diff <= 4 * np.finfo(dtype).tiny, 0.0,
                         diff / np.maximum(np.finfo(dtype).eps * size[name], np.finfo(float).tiny))
        worst = np.unravel_index(np.argmax(error), error.shape) if error.ndim else ()
        assert error[worst] <= ROUNDINGS, (f"{name}{list(map(int, worst))}: kernel {got[worst]:.17g}, reference "
                                           f"{want[worst]:.17g}: {error[worst]:.3g} eps x size, > {ROUNDINGS}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("source", OPS)
def test_cpu_kernel_matches_reference(source, dtype, hyp_settings):
    @hyp_settings
    @given(inputs=OPS[source][1])
    def check(inputs):
        assert_matches(source, inputs, dtype)

    check()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_edge_values_agree(dtype):
    """The named extremes, every one at once: finite (no 0 * inf) and equal on both paths."""
    alpha = np.array([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [1e-30, 1e-12, 1.0 - 1e-12]])
    u = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, float(np.nextafter(1.0, 0.0))], [1e-30, 0.3, 0.9]])
    g = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 2.0, 2.0]])
    for tau in (0.1, 0.67, 5.0):
        assert_matches("gumbel.cu", dict(alpha=alpha, u=u, tau=tau, dy=g), dtype)
    assert_matches("categorical.cu", dict(alpha=alpha, dkl=g[:, 0]), dtype)
    logvar = np.array([[-20.0, 20.0, 0.0], [20.0, -20.0, 1e-8], [-20.0, 20.0, 20.0]])
    mu = np.array([[0.0, 0.0, 50.0], [-50.0, 1.0, 0.0], [1e-20, -3.0, 7.0]])
    assert_matches("normal.cu", dict(mu=mu, logvar=logvar, eps=g, dz=g, dkl=-g), dtype)


def test_grid_stride_loops_cover_every_element():
    """Played as 3 blocks of 2 threads, one after another, the kernels give the 1x1 launch's exact result:
    each loop starts at its thread's index and strides over the whole grid, no element skipped or repeated."""
    grid = cpu.CpuBackend(grid=(3, 2))
    rng = np.random.default_rng(0)
    inputs = {   # 13 rows over 6 threads: some threads take 3 turns, some 2
        "gumbel.cu": dict(alpha=rng.dirichlet(np.ones(5), 13), u=rng.random((13, 5)), tau=0.67,
                          dy=rng.standard_normal((13, 5))),
        "normal.cu": dict(mu=rng.standard_normal((13, 3)), logvar=rng.standard_normal((13, 3)),
                          eps=rng.standard_normal((13, 3)), dz=rng.standard_normal((13, 3)),
                          dkl=rng.standard_normal((13, 3))),
        "categorical.cu": dict(alpha=rng.dirichlet(np.ones(4), 13), dkl=rng.standard_normal(13)),
    }
    for source, (op, _, _) in OPS.items():
        one, many = op(inputs[source], cpu.CPU), op(inputs[source], grid)
        for name in one:
            np.testing.assert_array_equal(many[name], one[name], err_msg=f"{source} {name}")


# ---------------------------------------------------------------- dispatch


def test_numpy_arrays_run_the_reference():
    rng = np.random.default_rng(1)
    alpha, u = rng.dirichlet(np.ones(4), 3), rng.random((3, 4))
    y, cache = gumbel.gumbel_softmax(alpha, u, 0.67)
    assert cache[0] is None
    np.testing.assert_array_equal(y, refnet.latent.gumbel_softmax(alpha, u, 0.67)[0])
    with dispatch.reference_on_gpu():   # the switch is about CuPy arrays; NumPy ones always use the reference
        assert gumbel.gumbel_softmax(alpha, u, 0.67)[1][0] is None


def test_reference_on_gpu_is_a_scoped_switch():
    """The switch holds inside its block only, nests, and is undone by an exception."""
    assert dispatch._kernels_on_gpu.get()
    with dispatch.reference_on_gpu():
        assert not dispatch._kernels_on_gpu.get()
        with dispatch.reference_on_gpu(enabled=False):
            assert dispatch._kernels_on_gpu.get()
        assert not dispatch._kernels_on_gpu.get()
    with pytest.raises(RuntimeError):
        with dispatch.reference_on_gpu():
            raise RuntimeError("inside")
    assert dispatch._kernels_on_gpu.get()


def test_backend_choice_and_errors():
    x = np.zeros((2, 3))
    assert dispatch.choose_backend(x) is None and dispatch.choose_backend(x, "reference") is None
    assert dispatch.choose_backend(x, cpu.CPU) is cpu.CPU
    with pytest.raises(ValueError, match="backend must be"):
        dispatch.choose_backend(x, "gpu")
    with pytest.raises(TypeError, match="float32 or float64"):
        categorical.kl_categorical_uniform(np.ones((2, 3), dtype=np.int64), backend=cpu.CPU)
    # The forward records its backend in the cache, and the backward takes that path.
    y, cache = gumbel.gumbel_softmax(np.full((2, 3), 1 / 3), np.full((2, 3), 0.5), 0.67, backend=cpu.CPU)
    assert cache[0] is cpu.CPU and gumbel.gumbel_softmax_backward(np.ones((2, 3)), cache).shape == (2, 3)


def test_missing_compiler_fails_loudly(monkeypatch, hyp_settings):
    """Without a C++ compiler the kernel checks FAIL and say why; a mutant is not 'detected' either."""
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(cpu, "CPU", cpu.CpuBackend())      # nothing loaded yet
    mutant_backend.cache_clear()
    no_shrinking = settings(hyp_settings, phases=[Phase.explicit, Phase.generate])
    try:
        for case, expect_failure in ((KERNEL_CASES[0], False), (KERNEL_MUTANTS[0], True)):
            outcome = suite.gradient_outcome(case, no_shrinking, expect_failure=expect_failure)
            assert not outcome.passed and "no C++ compiler" in outcome.detail, outcome.line()
    finally:
        mutant_backend.cache_clear()


# ---------------------------------------------------------------- 3. verify: finite differences through the kernels


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: c.name)
def test_kernel_gradient(case, hyp_settings):
    outcome = suite.gradient_outcome(case, hyp_settings)
    assert outcome.passed, outcome.line()
    assert outcome.examples >= min(case.max_examples or hyp_settings.max_examples, hyp_settings.max_examples)


# ---------------------------------------------------------------- 4. a mutated kernel fails both


@pytest.mark.parametrize("source", OPS)   # gemm.cu's comparison: tests/test_gemm_kernel.py
def test_mutated_kernel_fails_the_comparison(source, hyp_settings):
    """One operator changed in a copy of the .cu text (verify.kernel_cases.MUTATIONS), compiled to a
    library of its own: the comparison with the reference fails (im2col.cu's: tests/test_im2col_kernel.py)."""
    old, new, what = MUTATIONS[source]
    backend = mutant_backend((source, old, new))
    assert backend.sources[source] == dispatch.source_text(source).replace(old, new) != dispatch.source_text(source)
    first_failure = settings(hyp_settings, phases=[Phase.explicit, Phase.generate])   # no need to shrink it

    @first_failure
    @given(inputs=OPS[source][1])
    def compare(inputs):
        assert_matches(source, inputs, np.float64, backend=backend)

    with pytest.raises(AssertionError, match="kernel"):
        compare()


@pytest.mark.parametrize("source", MUTATIONS)
def test_mutated_kernel_fails_the_gradient_check(source, hyp_settings):
    """The same mutants fail the finite-difference check too (they are also part of `python -m verify`)."""
    what = MUTATIONS[source][2]
    mutant = next(m for m in KERNEL_MUTANTS if m.name == f"kernel {source} mutant: {what}")
    outcome = suite.gradient_outcome(mutant, hyp_settings, expect_failure=True)
    assert outcome.passed, outcome.line()    # passed = the gradient check failed on the mutant


# ---------------------------------------------------------------- the GPU (pytest -m gpu, with CuPy)


@pytest.mark.gpu
@pytest.mark.skipif(not refnet.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("source", OPS)
def test_gpu_kernel_matches_reference(source, dtype, hyp_settings):
    """The RawModule kernels on CuPy arrays against the NumPy reference, with the CPU test's tolerance."""
    @settings(hyp_settings, max_examples=min(20, hyp_settings.max_examples))
    @given(inputs=OPS[source][1])
    def check(inputs):
        assert_matches(source, inputs, dtype, backend=dispatch.GPU)

    check()


@pytest.mark.gpu
@pytest.mark.skipif(not refnet.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gpu_switch_runs_the_reference_on_cupy():
    alpha, u = (refnet.to_device(np.full((2, 3), v), "gpu") for v in (1 / 3, 0.5))
    assert gumbel.gumbel_softmax(alpha, u, 0.67)[1][0] is dispatch.GPU
    with dispatch.reference_on_gpu():
        y, cache = gumbel.gumbel_softmax(alpha, u, 0.67)
        assert cache[0] is None and refnet.get_array_module(y) is not np
    assert gumbel.gumbel_softmax(alpha, u, 0.67)[1][0] is dispatch.GPU   # the switch ends with its block
