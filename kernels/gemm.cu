// The matrix product C = A B, tiled in shared memory: the one kernel behind every matrix product of a
// training step on the GPU (cuBLAS cannot be captured into a CUDA graph by CuPy; this can).
//
//   A (M, K), B (K, N), C (M, N), each a strided view: element (i, j) of A is a[i * a_row + j * a_col].
//   A transposed operand is the same memory with its two strides swapped, so x W^T, dy^T x and W2 cols
//   are all this one kernel.
//
// One block of TILE x TILE threads computes one TILE x TILE tile of C; thread (tx, ty) owns
// C[row, col] with row = blockIdx.y * TILE + ty and col = blockIdx.x * TILE + tx. The block walks
// the K axis TILE at a time:
//   1. each thread loads one element of A's tile and one of B's into shared memory (0 past an edge,
//      which adds nothing to the sum);
//   2. __syncthreads(): the tiles are complete;
//   3. each thread adds the TILE products of its row of A's tile and its column of B's tile;
//   4. __syncthreads(): nobody still reads the tiles when the next ones are loaded.
// So every element of A and B is read from global memory M / TILE and N / TILE times instead of N and
// M times. The sum runs in T (float accumulates in float, as cuBLAS without TF32 does); its order is
// k = 0, 1, ..., K - 1, so the result differs from BLAS's only by rounding.
//
// Split K: a product with few tiles of C and a long K (a convolution's weight gradient: C is 32 x 16, K is
// OH*OW*batch = 16384) would keep only a couple of blocks busy, each walking K alone. So the grid has a third
// axis: block z sums only its own chunk of K, k in [z * k_chunk, (z + 1) * k_chunk), into partial matrix z
// (at c + z * c_split), and sum_splits adds the partial matrices, z = 0, 1, ... in order: deterministic,
// no atomics. Without a split the grid's z is 1, k_chunk is K and c_split is 0.
//
// The reference it must equal: NumPy's a @ b (kernels/gemm.py). Launched with launch_blocks on a grid of
// (ceil(N / TILE), ceil(M / TILE), splits) blocks of (TILE, TILE) threads.

#define GEMM_TILE 16

template <typename T>
__device__ void gemm(const T* a, const T* b, T* c, long long m, long long n, long long k,
                     long long a_row, long long a_col, long long b_row, long long b_col,
                     long long c_row, long long c_col, long long k_chunk, long long c_split) {
    __shared__ T a_tile[GEMM_TILE][GEMM_TILE];   // a_tile[ty][j] = A[row, k0 + j]
    __shared__ T b_tile[GEMM_TILE][GEMM_TILE];   // b_tile[j][tx] = B[k0 + j, col]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long row = blockIdx.y * (long long)GEMM_TILE + ty;
    const long long col = blockIdx.x * (long long)GEMM_TILE + tx;
    const long long k_begin = blockIdx.z * k_chunk;
    const long long k_end = k_begin + k_chunk < k ? k_begin + k_chunk : k;
    T sum = T(0);
    for (long long k0 = k_begin; k0 < k_end; k0 += GEMM_TILE) {
        a_tile[ty][tx] = (row < m && k0 + tx < k_end) ? a[row * a_row + (k0 + tx) * a_col] : T(0);
        b_tile[ty][tx] = (k0 + ty < k_end && col < n) ? b[(k0 + ty) * b_row + col * b_col] : T(0);
        __syncthreads();
        for (int j = 0; j < GEMM_TILE; ++j) sum += a_tile[ty][j] * b_tile[j][tx];
        __syncthreads();
    }
    // Every thread took part in the loads and barriers above; only those inside C write.
    if (row < m && col < n) c[blockIdx.z * c_split + row * c_row + col * c_col] = sum;
}

// out[i] = partials[0][i] + partials[1][i] + ... : the split-K partial matrices added in order.
template <typename T>
__device__ void sum_splits(const T* partials, T* out, long long splits, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T sum = partials[i];
        for (long long z = 1; z < splits; ++z) sum += partials[z * n + i];
        out[i] = sum;
    }
}

// C names for ctypes and RawModule.get_function, one per precision.
extern "C" __global__ void gemm_f32(const float* a, const float* b, float* c, long long m, long long n, long long k,
                                    long long a_row, long long a_col, long long b_row, long long b_col,
                                    long long c_row, long long c_col, long long k_chunk, long long c_split) {
    gemm<float>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
extern "C" __global__ void gemm_f64(const double* a, const double* b, double* c, long long m, long long n,
                                    long long k, long long a_row, long long a_col, long long b_row, long long b_col,
                                    long long c_row, long long c_col, long long k_chunk, long long c_split) {
    gemm<double>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
extern "C" __global__ void sum_splits_f32(const float* partials, float* out, long long splits, long long n) {
    sum_splits<float>(partials, out, splits, n);
}
extern "C" __global__ void sum_splits_f64(const double* partials, double* out, long long splits, long long n) {
    sum_splits<double>(partials, out, splits, n);
}
