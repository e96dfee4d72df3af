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

// Candidates, not yet the default (kernels/gemm.py: VARIANTS; bench/gemm_speed.py times them on a GPU):
// gemm_register_tiled<T, MICRO> has the same arguments, grid axes and summation order as gemm, but each thread of
// a 16 x 16 block computes MICRO x MICRO elements of C, so a block covers a (16 MICRO) x (16 MICRO) tile:
//   - thread (tx, ty) owns C[row0 + ty + 16 i, col0 + tx + 16 j], i, j < MICRO: interleaved, so that a warp's
//     shared-memory reads and its writes of C fall on neighbouring addresses;
//   - per k of a 16-deep tile, it reads MICRO numbers of A's column and MICRO of B's row into registers and adds
//     their MICRO^2 products: MICRO^2 multiply-adds per 2 MICRO shared reads (gemm: 1 per 2);
//   - the tiles are loaded with neighbouring threads on neighbouring addresses: along K where the operand's K
//     stride is 1, else along M or N. A padding column keeps stores down a column off one bank.
// Each sum still runs k = 0, 1, ..., K - 1 within its chunk, so for the same split of K it equals gemm bit for bit.
// Fewer, larger tiles use fewer blocks: a small product may leave multiprocessors idle (gemm.py's k_splits
// counts this variant's tiles).
#define GEMM_THREADS 16
#define GEMM_DEPTH 16

template <typename T, int MICRO>
__device__ void gemm_register_tiled(const T* a, const T* b, T* c, long long m, long long n, long long k,
                                    long long a_row, long long a_col, long long b_row, long long b_col,
                                    long long c_row, long long c_col, long long k_chunk, long long c_split) {
    constexpr int BLOCK = GEMM_THREADS * MICRO;          // C tile per block along each axis
    constexpr int LOADS = GEMM_DEPTH * BLOCK;           // elements of each tile to load per K step
    __shared__ T a_tile[GEMM_DEPTH][BLOCK + 1];         // a_tile[j][r] = A[row0 + r, k0 + j]
    __shared__ T b_tile[GEMM_DEPTH][BLOCK + 1];         // b_tile[j][q] = B[k0 + j, col0 + q]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int thread = ty * GEMM_THREADS + tx;
    const long long row0 = blockIdx.y * (long long)BLOCK, col0 = blockIdx.x * (long long)BLOCK;
    const long long k_begin = blockIdx.z * k_chunk;
    const long long k_end = k_begin + k_chunk < k ? k_begin + k_chunk : k;
    T sum[MICRO][MICRO];
    for (int i = 0; i < MICRO; ++i)
        for (int q = 0; q < MICRO; ++q) sum[i][q] = T(0);
    for (long long k0 = k_begin; k0 < k_end; k0 += GEMM_DEPTH) {
        for (int e = thread; e < LOADS; e += GEMM_THREADS * GEMM_THREADS) {
            const int r = a_col == 1 ? e / GEMM_DEPTH : e % BLOCK;
            const int j = a_col == 1 ? e % GEMM_DEPTH : e / BLOCK;
            const long long arow = row0 + r, kk = k0 + j;
            a_tile[j][r] = (arow < m && kk < k_end) ? a[arow * a_row + kk * a_col] : T(0);
        }
        for (int e = thread; e < LOADS; e += GEMM_THREADS * GEMM_THREADS) {
            const int q = b_row == 1 ? e / GEMM_DEPTH : e % BLOCK;
            const int j = b_row == 1 ? e % GEMM_DEPTH : e / BLOCK;
            const long long bcol = col0 + q, kk = k0 + j;
            b_tile[j][q] = (kk < k_end && bcol < n) ? b[kk * b_row + bcol * b_col] : T(0);
        }
        __syncthreads();
        for (int j = 0; j < GEMM_DEPTH; ++j) {
            T a_frag[MICRO], b_frag[MICRO];
            for (int i = 0; i < MICRO; ++i) a_frag[i] = a_tile[j][ty + GEMM_THREADS * i];
            for (int q = 0; q < MICRO; ++q) b_frag[q] = b_tile[j][tx + GEMM_THREADS * q];
            for (int i = 0; i < MICRO; ++i)
                for (int q = 0; q < MICRO; ++q) sum[i][q] += a_frag[i] * b_frag[q];
        }
        __syncthreads();
    }
    for (int i = 0; i < MICRO; ++i) {
        const long long row = row0 + ty + GEMM_THREADS * i;
        for (int q = 0; q < MICRO; ++q) {
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
// The candidates: 32 x 32 (MICRO 2) and 64 x 64 (MICRO 4) tiles of C per block, same arguments as gemm_*.
extern "C" __global__ void gemm_rt2_f32(const float* a, const float* b, float* c, long long m, long long n,
                                        long long k, long long a_row, long long a_col, long long b_row,
                                        long long b_col, long long c_row, long long c_col, long long k_chunk,
                                        long long c_split) {
    gemm_register_tiled<float, 2>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
extern "C" __global__ void gemm_rt2_f64(const double* a, const double* b, double* c, long long m, long long n,
                                        long long k, long long a_row, long long a_col, long long b_row,
                                        long long b_col, long long c_row, long long c_col, long long k_chunk,
                                        long long c_split) {
    gemm_register_tiled<double, 2>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
extern "C" __global__ void gemm_rt4_f32(const float* a, const float* b, float* c, long long m, long long n,
                                        long long k, long long a_row, long long a_col, long long b_row,
                                        long long b_col, long long c_row, long long c_col, long long k_chunk,
                                        long long c_split) {
    gemm_register_tiled<float, 4>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
extern "C" __global__ void gemm_rt4_f64(const double* a, const double* b, double* c, long long m, long long n,
                                        long long k, long long a_row, long long a_col, long long b_row,
                                        long long b_col, long long c_row, long long c_col, long long k_chunk,
                                        long long c_split) {
    gemm_register_tiled<double, 4>(a, b, c, m, n, k, a_row, a_col, b_row, b_col, c_row, c_col, k_chunk, c_split);
}
