"""The CPU shim's blocks: shared memory and __syncthreads(), a block's threads as fibers.

A kernel of this kind only gives the right answer when its barriers hold: the tree sum below reads
what other threads wrote one step earlier. If the shim ran each thread to its end before the next,
or let a thread past a barrier early, the sums would be wrong; a barrier that only some threads
reach is reported as DivergentBarrier.
"""
import numpy as np
import pytest

from kernels import cpu

BLOCK_SUM = r"""
// Each block sums its blockDim.x * blockDim.y inputs by a tree reduction in shared memory.
template <typename T>
__device__ void block_sum(const T* x, T* sums, long long n) {
    __shared__ T partial[64];
    const int t = threadIdx.y * blockDim.x + threadIdx.x, threads = blockDim.x * blockDim.y;
    const long long block = blockIdx.y * (long long)gridDim.x + blockIdx.x, i = block * threads + t;
    partial[t] = i < n ? x[i] : T(0);
    __syncthreads();
    for (int half = threads / 2; half > 0; half /= 2) {
        if (t < half) partial[t] += partial[t + half];
        __syncthreads();
    }
    if (t == 0) sums[block] = partial[0];
}
extern "C" __global__ void block_sum_f64(const double* x, double* sums, long long n) { block_sum<double>(x, sums, n); }
extern "C" __global__ void block_sum_f32(const float* x, float* sums, long long n) { block_sum<float>(x, sums, n); }
"""


def block_sums(text, grid, block, x):
    backend = cpu.CpuBackend(sources={"block_sum.cu": text})
    sums = np.zeros(grid[0] * grid[1])
    backend.launch_blocks("block_sum.cu", "block_sum", np.float64, grid, block, (x, sums, x.size))
    return sums


@pytest.mark.parametrize("grid, block", [((1, 1), (4, 1)), ((3, 1), (8, 2)), ((2, 3), (4, 4)), ((5, 1), (2, 1))])
def test_block_threads_share_memory_and_meet_at_barriers(grid, block):
    threads = block[0] * block[1]
    x = np.random.default_rng(0).integers(0, 100, grid[0] * grid[1] * threads - 1).astype(np.float64)
    want = np.add.reduceat(np.append(x, 0.0), np.arange(0, x.size + 1, threads))
    np.testing.assert_array_equal(block_sums(BLOCK_SUM, grid, block, x), want)


def test_without_the_barrier_the_sum_is_wrong():
    """The check can fail: drop the barrier inside the loop and thread 0 reads partial sums too early."""
    racy = BLOCK_SUM.replace("if (t < half) partial[t] += partial[t + half];\n        __syncthreads();",
                             "if (t < half) partial[t] += partial[t + half];")
    assert racy != BLOCK_SUM
    assert block_sums(racy, (1, 1), (64, 1), np.ones(64))[0] != 64.0


def test_a_divergent_barrier_is_reported():
    """Only even threads reach the barrier: on a GPU that is undefined; here it is an error."""
    divergent = BLOCK_SUM.replace("partial[t] = i < n ? x[i] : T(0);\n    __syncthreads();",
                                  "partial[t] = i < n ? x[i] : T(0);\n    if (t % 2 == 0) __syncthreads();")
    assert divergent != BLOCK_SUM
    backend = cpu.CpuBackend(sources={"block_sum.cu": divergent})
    with pytest.raises(cpu.DivergentBarrier, match="__syncthreads"):
        backend.launch_blocks("block_sum.cu", "block_sum", np.float64, (1, 1), (4, 1), (np.ones(4), np.zeros(1), 4))
