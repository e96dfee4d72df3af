"""kernels/im2col.cu run on the CPU: exactly refnet.conv's im2col and col2im, on drawn shapes.

Both kernels only copy and add, and col2im adds each pixel's windows in the reference's order, so
the kernels equal the references bit for bit, not merely to rounding. The shapes reach every edge
of the index maps: N = 1, C = 1, odd sizes, rectangular kernels 1..5, strides 1..4 (also larger
than the kernel, leaving pixels no window covers), padding 0..3 (also as large as the kernel).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from kernels import cpu, dispatch
from kernels.im2col import col2im, im2col
from verify.kernel_cases import MUTATIONS, mutant_backend

GRID = cpu.CpuBackend(grid=(3, 2))   # 6 threads played one after another
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@st.composite
def convolutions(draw):
    """(x_shape, kernel, stride, padding, layout, seed) with at least one window: H + 2 ph >= kh."""
    kernel, stride, padding = [(draw(st.integers(*r)), draw(st.integers(*r))) for r in ((1, 5), (1, 4), (0, 3))]
    h, w = (draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + 6)) for k, p in zip(kernel, padding))
    x_shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), h, w)
    # The kernel reads x through its strides: refnet's batch_first views, plain NCHW, and a reversed
    # view (negative strides), which im2col.py copies first.
    layout = draw(st.sampled_from(["batch_first", "contiguous", "reversed"]))
    return x_shape, kernel, stride, padding, layout, draw(st.integers(0, 2**32 - 1))


def draw_x(x_shape, layout, dtype, rng):
    n, c, h, w = x_shape
    x = refnet.batch_first(rng.standard_normal((c, h, w, n)).astype(dtype))
    if layout == "contiguous":
        return np.ascontiguousarray(x)
    if layout == "reversed":
        return np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]
    return x


def both_kernels(case, dtype, backend):
    """(reference, kernel) pairs for im2col(x) and col2im(cols) on one drawn case."""
    x_shape, kernel, stride, padding, layout, seed = case
    rng = np.random.default_rng(seed)
    x = draw_x(x_shape, layout, dtype, rng)
    cols_reference = refnet.im2col(x, kernel, stride, padding)
    cols = rng.standard_normal(cols_reference.shape).astype(dtype)
    return {"im2col": (cols_reference, im2col(x, kernel, stride, padding, backend=backend)),
            "col2im": (refnet.col2im(cols, x_shape, stride, padding),
                       col2im(cols, x_shape, stride, padding, backend=backend))}


@DTYPES
def test_kernels_equal_the_references_bit_for_bit(dtype, hyp_settings):
    @hyp_settings
    @given(case=convolutions())
    def check(case):
        results = both_kernels(case, dtype, cpu.CPU)
        for name, (want, got) in results.items():
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
        # col2im returns what refnet's does, a view of batch-last memory: batch_last of it is free.
        assert results["col2im"][1].transpose(1, 2, 3, 0).flags.c_contiguous

    check()


def test_adjoint_identity(hyp_settings):
    """<im2col(x), c> = <x, col2im(c)> on the kernels: each is the other's backward. The two sums add the
    same products in different orders, so they agree to rounding (float64), not bit for bit."""
    @hyp_settings
    @given(case=convolutions())
    def check(case):
        x_shape, kernel, stride, padding, layout, seed = case
        rng = np.random.default_rng(seed)
        x = draw_x(x_shape, layout, np.float64, rng)
        cols = im2col(x, kernel, stride, padding, backend=cpu.CPU)
        c = rng.standard_normal(cols.shape)
        lhs = np.sum(cols * c)
        rhs = np.sum(x * col2im(c, x_shape, stride, padding, backend=cpu.CPU))
        assert abs(lhs - rhs) <= 1e-12 * max(np.sum(np.abs(cols * c)), 1.0)

    check()


@DTYPES
def test_grid_launch_equals_one_thread(dtype, hyp_settings):
    """3 blocks of 2 threads give the 1x1 launch's exact result: no element skipped or written twice."""
    @settings(hyp_settings, max_examples=min(20, hyp_settings.max_examples))
    @given(case=convolutions())
    def check(case):
        one, many = both_kernels(case, dtype, cpu.CPU), both_kernels(case, dtype, GRID)
        for name in one:
            np.testing.assert_array_equal(many[name][1], one[name][1], err_msg=name)

    check()


def test_numpy_arrays_run_the_reference():
    x = refnet.batch_first(np.random.default_rng(0).standard_normal((2, 5, 4, 3)))
    np.testing.assert_array_equal(im2col(x, 3, 2, 1), refnet.im2col(x, 3, 2, 1))
    cols = refnet.im2col(x, 3, 2, 1)
    np.testing.assert_array_equal(col2im(cols, x.shape, 2, 1), refnet.col2im(cols, x.shape, 2, 1))
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col(np.ones((1, 1, 3, 3), dtype=np.int64), 2, 1, 0, backend=cpu.CPU)


def test_mutated_kernel_differs_from_the_reference():
    """im2col.cu with one operator changed (verify.kernel_cases.MUTATIONS) no longer equals the reference;
    that the gradient check fails on it too is tests/test_kernels.py's test over every mutant."""
    old, new, what = MUTATIONS["im2col.cu"]
    backend = mutant_backend(("im2col.cu", old, new))
    results = both_kernels(((2, 2, 5, 5), (3, 3), (1, 1), (1, 1), "batch_first", 0), np.float64, backend)
    np.testing.assert_array_equal(*results["im2col"])     # the mutation is in col2im
    assert not np.array_equal(*results["col2im"]), what


@pytest.mark.gpu
@pytest.mark.skipif(not refnet.gpu_available(), reason="needs CuPy and a CUDA GPU")
@DTYPES
def test_gpu_kernels_equal_the_references(dtype, hyp_settings):
    """On the GPU too, bit for bit: the kernels only copy and add, and col2im adds in the reference's order."""
    @settings(hyp_settings, max_examples=min(20, hyp_settings.max_examples))
    @given(case=convolutions())
    def check(case):
        x_shape, kernel, stride, padding, layout, seed = case
        rng = np.random.default_rng(seed)
        x = draw_x(x_shape, layout, dtype, rng)
        cols = rng.standard_normal(refnet.im2col(x, kernel, stride, padding).shape).astype(dtype)
        on_gpu = refnet.to_device(x, "gpu")
        np.testing.assert_array_equal(refnet.to_numpy(im2col(on_gpu, kernel, stride, padding, backend=dispatch.GPU)),
                                      refnet.im2col(x, kernel, stride, padding))
        np.testing.assert_array_equal(
            refnet.to_numpy(col2im(refnet.to_device(cols, "gpu"), x_shape, stride, padding, backend=dispatch.GPU)),
            refnet.col2im(cols, x_shape, stride, padding))

    check()
