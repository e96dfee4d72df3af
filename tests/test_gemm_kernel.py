"""gemm.cu, run from its own text on the CPU (real threads per block, kernels/cpu_shim.h), against a @ b.

Shapes are drawn around the tile size (16): 1, 15, 16, 17, 33 ... so that partial tiles on every edge,
K = 1 and K not a multiple of the tile all occur; each operand comes plain, transposed (a view with its
strides swapped) or as a strided column slice.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels import cpu, gemm
from verify.kernel_cases import MUTATIONS, mutant_backend

# Around the 16-deep K tile and the 64 x 64 C tile of a block (several blocks: a tile's offsets), and anything.
sizes = st.sampled_from([1, 2, 3, 15, 16, 17, 31, 33, 63, 64, 65, 130]) | st.integers(1, 40)
layouts = st.sampled_from(["plain", "transposed", "strided"])


def operand(rng, shape, layout, dtype):
    """An array of `shape`: C-contiguous, a transposed view, or every other column of a wider array."""
    if layout == "transposed":
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    if layout == "strided":
        return rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
    return rng.standard_normal(shape).astype(dtype)


def assert_close_to_matmul(c, a, b):
    """|c - a b| <= 2 K eps (|a| |b|), elementwise: the bound for two summation orders of K products."""
    want = a.astype(np.float64) @ b.astype(np.float64)
    bound = 2 * a.shape[1] * np.finfo(a.dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert c.dtype == a.dtype and c.shape == want.shape
    assert np.all(np.abs(c - want) <= bound + np.finfo(a.dtype).tiny), np.max(np.abs(c - want) - bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gemm_matches_matmul(dtype, hyp_settings):
    """Every shape and layout, with K split into 1 to 5 chunks (split K: the grid's third axis)."""
    @hyp_settings
    @given(m=sizes, k=sizes, n=sizes, layout_a=layouts, layout_b=layouts, splits=st.integers(1, 5),
           seed=st.integers(0, 2**32 - 1))
    def check(m, k, n, layout_a, layout_b, splits, seed):
        rng = np.random.default_rng(seed)
        a, b = operand(rng, (m, k), layout_a, dtype), operand(rng, (k, n), layout_b, dtype)
        assert_close_to_matmul(gemm.matmul(a, b, backend=cpu.CPU, splits=splits), a, b)

    check()


@pytest.mark.parametrize("variant", ["gemm_rt2", "gemm_rt4"])
def test_register_tiled_candidates_equal_the_kernel_bit_for_bit(variant, hyp_settings):
    """gemm.cu's candidates (a 32 x 32 or 64 x 64 tile of C per block, loads along the contiguous axis) sum in the
    same order as gemm: for the same split of K, the same bits, over shapes spanning several blocks and tiles."""
    @hyp_settings
    @given(m=sizes, k=sizes, n=sizes, layout_a=layouts, layout_b=layouts, splits=st.integers(1, 5),
           dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
    def check(m, k, n, layout_a, layout_b, splits, dtype, seed):
        rng = np.random.default_rng(seed)
        a, b = operand(rng, (m, k), layout_a, dtype), operand(rng, (k, n), layout_b, dtype)
        want = gemm.matmul(a, b, backend=cpu.CPU, splits=splits)
        np.testing.assert_array_equal(gemm.matmul(a, b, backend=cpu.CPU, splits=splits, variant=variant), want)

    check()
    with pytest.raises(ValueError, match="variant must be one of"):
        gemm.matmul(np.ones((2, 2)), np.ones((2, 2)), backend=cpu.CPU, variant="gemm_rt3")


def test_long_k_with_few_tiles_is_split_and_exact_on_integers():
    """A convolution's weight gradient: C (32, 16), K = 4096. It is split (k_splits), and the chunks add up to
    a @ b exactly on small integers, so no chunk is lost or counted twice."""
    assert gemm.k_splits(32, 16, 4096) == 16 and gemm.k_splits(64, 1024, 256) == 1
    rng = np.random.default_rng(2)
    a, b = rng.integers(-4, 4, (32, 4096)).astype(np.float64), rng.integers(-4, 4, (4096, 16)).astype(np.float64)
    np.testing.assert_array_equal(gemm.matmul(a, b, backend=cpu.CPU), a @ b)


def test_gemm_is_exact_on_integers_and_writes_into_out():
    """Small integers multiply and add exactly in any order: the kernel must give a @ b bit for bit."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(-8, 8, (37, 19)).astype(np.float32), rng.integers(-8, 8, (19, 21)).astype(np.float32)
    out = np.full((37, 21), np.nan, np.float32)   # never read: C is written, not accumulated into
    assert gemm.matmul(a, b, out=out, backend=cpu.CPU) is out
    np.testing.assert_array_equal(out, a @ b)


def test_reference_path_and_errors():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    np.testing.assert_array_equal(gemm.matmul(a, b), a @ b)   # NumPy arrays: the reference
    with pytest.raises(ValueError, match="do not chain"):
        gemm.matmul(a, a)
    with pytest.raises(TypeError, match="both float32 or both float64"):
        gemm.matmul(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="out must be"):
        gemm.matmul(a, b, out=np.empty((4, 2)))


def test_mutated_gemm_fails_the_comparison():
    """B's tile read transposed (verify.kernel_cases.MUTATIONS): the comparison with a @ b fails (the
    gradient check fails too: tests/test_kernels.py)."""
    old, new, _ = MUTATIONS["gemm.cu"]
    mutant = mutant_backend(("gemm.cu", old, new))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    with pytest.raises(AssertionError):
        assert_close_to_matmul(gemm.matmul(a, b, backend=mutant), a, b)


@pytest.mark.parametrize("variant", ["gemm_rt2", "gemm_rt4"])
def test_mutated_candidate_fails_the_bit_for_bit_comparison(variant):
    """The candidates' B fragment read by the thread's row instead of its column: no longer the step's product."""
    mutant = mutant_backend(("gemm.cu", "b_frag[q] = b_tile[j][tx + GEMM_THREADS * q];",
                             "b_frag[q] = b_tile[j][ty + GEMM_THREADS * q];"))
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((40, 20)), rng.standard_normal((20, 37))
    want = gemm.matmul(a, b, backend=cpu.CPU, splits=1)
    assert np.array_equal(gemm.matmul(a, b, backend=cpu.CPU, splits=1, variant=variant), want)
    assert not np.array_equal(gemm.matmul(a, b, backend=mutant, splits=1, variant=variant), want)
