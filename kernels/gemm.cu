// The matrix product C = A B, tiled in shared memory and in registers: the one kernel behind every matrix
// product of a training step on the GPU (cuBLAS cannot be captured into a CUDA graph by CuPy; this can).
//
//   A (M, K), B (K, N), C (M, N), each a strided view: element (i, j) of A is a[i * a_row + j * a_col].
//   A transposed operand is the same memory with its two strides swapped, so x W^T, dy^T x and W2 cols
//   are all this one kernel.
//
// One block of 16 x 16 threads computes one 64 x 64 tile of C (GEMM_BLOCK = GEMM_THREADS * GEMM_MICRO);
// thread (tx, ty) owns the 4 x 4 elements C[row_i, col_j] with row_i = blockIdx.y * 64 + ty + 16 i and
// col_j = blockIdx.x * 64 + tx + 16 j (i, j = 0..3): interleaved, so that a warp's reads of the shared tiles
// and its writes of C fall on neighbouring addresses. The block walks the K axis GEMM_DEPTH at a time:
//   1. the block loads A's 64 x 16 tile and B's 16 x 64 tile into shared memory, 4 elements of each per
//      thread, neighbouring threads on neighbouring addresses (0 past an edge, which adds nothing to the sum);
//   2. __syncthreads(): the tiles are complete;
//   3. for each of the 16 k of the tile, each thread reads 4 numbers of A's column and 4 of B's row into
//      registers and adds their 16 products to its 16 sums: 16 multiply-adds per 8 shared-memory reads,
//      where one element per thread would do 1 per 2;
//   4. __syncthreads(): nobody still reads the tiles when the next ones are loaded.
// Every element of A and B is read from global memory M / 64 and N / 64 times. Each sum runs in T (float
// accumulates in float, as cuBLAS without TF32 does) in the order k = 0, 1, ..., K - 1, so the result differs
// from BLAS's only by rounding (and equals, bit for bit, a one-thread-per-element kernel's).
//
// Split K: a product with few tiles of C and a long K (a convolution's weight gradient: C is 32 x 16, K is
// OH*OW*batch = 16384) would keep only a couple of blocks busy, each walking K alone. So the grid has a third
// axis: block z sums only its own chunk of K, k in [z * k_chunk, (z + 1) * k_chunk), into partial matrix z
// (at c + z * c_split), and sum_splits adds the partial matrices, z = 0, 1, ... in order: deterministic,
// no atomics. Without a split the grid's z is 1, k_chunk is K and c_split is 0.
//
// The reference it must equal: NumPy's a @ b (kernels/gemm.py). Launched with launch_blocks on a grid of
// (ceil(N / 64), ceil(M / 64), splits) blocks of (16, 16) threads.

#define GEMM_THREADS 16                      // threads per block along each axis
#define GEMM_MICRO 4                         // C elements per thread along each axis
#define GEMM_BLOCK (GEMM_THREADS * GEMM_MICRO)   // C tile per block along each axis: 64
#define GEMM_DEPTH 16                        // K per shared-memory tile

template <typename T>
__device__ void gemm(const T* a, const T* b, T* c, long long m, long long n, long long k,
                     long long a_row, long long a_col, long long b_row, long long b_col,
                     long long c_row, long long c_col, long long k_chunk, long long c_split) {
    // One padding column: threads that store down a column (the loads along K below) hit other banks.
    __shared__ T a_tile[GEMM_DEPTH][GEMM_BLOCK + 1];   // a_tile[j][r] = A[row0 + r, k0 + j]
    __shared__ T b_tile[GEMM_DEPTH][GEMM_BLOCK + 1];   // b_tile[j][q] = B[k0 + j, col0 + q]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int thread = ty * GEMM_THREADS + tx;     // 0..255
    const long long row0 = blockIdx.y * (long long)GEMM_BLOCK, col0 = blockIdx.x * (long long)GEMM_BLOCK;
    const long long k_begin = blockIdx.z * k_chunk;
    const long long k_end = k_begin + k_chunk < k ? k_begin + k_chunk : k;
    T sum[GEMM_MICRO][GEMM_MICRO];
    for (int i = 0; i < GEMM_MICRO; ++i)
        for (int j = 0; j < GEMM_MICRO; ++j) sum[i][j] = T(0);
    for (long long k0 = k_begin; k0 < k_end; k0 += GEMM_DEPTH) {
        // 1024 elements of each tile, 4 per thread. Consecutive threads take neighbours in memory: along K
        // where the operand's K stride is 1 (x in x W^T, W^T in it), else along M or N (dy^T in dy^T x).
        for (int e = thread; e < GEMM_DEPTH * GEMM_BLOCK; e += GEMM_THREADS * GEMM_THREADS) {
            const int r = a_col == 1 ? e / GEMM_DEPTH : e % GEMM_BLOCK;
            const int j = a_col == 1 ? e % GEMM_DEPTH : e / GEMM_BLOCK;
            const long long arow = row0 + r, kk = k0 + j;
            a_tile[j][r] = (arow < m && kk < k_end) ? a[arow * a_row + kk * a_col] : T(0);
        }
        for (int e = thread; e < GEMM_DEPTH * GEMM_BLOCK; e += GEMM_THREADS * GEMM_THREADS) {
            const int q = b_row == 1 ? e / GEMM_DEPTH : e % GEMM_BLOCK;
            const int j = b_row == 1 ? e % GEMM_DEPTH : e / GEMM_BLOCK;
            const long long bcol = col0 + q, kk = k0 + j;
            b_tile[j][q] = (kk < k_end && bcol < n) ? b[kk * b_row + bcol * b_col] : T(0);
        }
        __syncthreads();
        for (int j = 0; j < GEMM_DEPTH; ++j) {
            T a_frag[GEMM_MICRO], b_frag[GEMM_MICRO];
            for (int i = 0; i < GEMM_MICRO; ++i) a_frag[i] = a_tile[j][ty + GEMM_THREADS * i];
            for (int i = 0; i < GEMM_MICRO; ++i) b_frag[i] = b_tile[j][tx + GEMM_THREADS * i];
            for (int i = 0; i < GEMM_MICRO; ++i)
                for (int q = 0; q < GEMM_MICRO; ++q) sum[i][q] += a_frag[i] * b_frag[q];
        }
        __syncthreads();
    }
    // Every thread took part in the loads and barriers above; only elements inside C are written.
    for (int i = 0; i < GEMM_MICRO; ++i) {
        const long long row = row0 + ty + GEMM_THREADS * i;
        for (int q = 0; q < GEMM_MICRO; ++q) {
            const long long col = col0 + tx + GEMM_THREADS * q;
            if (row < m && col < n) c[blockIdx.z * c_split + row * c_row + col * c_col] = sum[i][q];
        }
    }
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
