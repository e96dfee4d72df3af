// Gumbel-softmax sample with its backward: one thread per row of K categories.
//
//   g_k      = -log(-log(u_k + 1e-12) + 1e-12)                   Gumbel(0, 1) noise from u ~ U[0, 1)
//   y_k      = softmax_k((log(alpha_k + 1e-12) + g_k) / tau)      alpha, u, y, dy, dalpha: (N, K), row-major
//   dalpha_k = y_k (dy_k - sum_j dy_j y_j) / (tau (alpha_k + 1e-12))
//
// Same semantics as the reference refnet.latent.gumbel_softmax(_backward); the
// Python side is kernels/gumbel.py. Grid-stride loops, no shared memory: the same
// text also runs on a CPU (kernels/cpu_shim.h).

template <typename T>
__device__ void gumbel_softmax_forward(const T* alpha, const T* u, T* y, T tau, long long n, long long k) {
    const T eps = T(1e-12);  // keeps both logs finite at u = 0 and alpha = 0
    for (long long row = blockIdx.x * (long long)blockDim.x + threadIdx.x; row < n;
         row += (long long)blockDim.x * gridDim.x) {
        const T* a = alpha + row * k;
        const T* v = u + row * k;
        T* out = y + row * k;
        // Pass 1: the scaled logits s_k, parked in y, and their max.
        T top = T(0);
        for (long long j = 0; j < k; ++j) {
            T g = -log(-log(v[j] + eps) + eps);
            T s = (log(a[j] + eps) + g) / tau;
            out[j] = s;
            if (j == 0 || s > top) top = s;
        }
        // Pass 2: exp(s - max) <= 1 cannot overflow, even for tau -> 0.
        T total = T(0);
        for (long long j = 0; j < k; ++j) {
            out[j] = exp(out[j] - top);
            total += out[j];
        }
        // Pass 3: normalise; total >= 1 because the max term is exp(0).
        for (long long j = 0; j < k; ++j) out[j] = out[j] / total;
    }
}

template <typename T>
__device__ void gumbel_softmax_backward(const T* alpha, const T* y, const T* dy, T* dalpha, T tau,
                                        long long n, long long k) {
    const T eps = T(1e-12);
    for (long long row = blockIdx.x * (long long)blockDim.x + threadIdx.x; row < n;
         row += (long long)blockDim.x * gridDim.x) {
        const long long base = row * k;
        // The softmax Jacobian diag(y) - y y^T applied to dy needs the row's <dy, y> first.
        T dot = T(0);
        for (long long j = 0; j < k; ++j) dot += dy[base + j] * y[base + j];
        for (long long j = 0; j < k; ++j) {
            // Then the chain through s = (log(alpha + eps) + g) / tau: ds/dalpha = 1 / (tau (alpha + eps)).
            dalpha[base + j] = y[base + j] * (dy[base + j] - dot) / (tau * (alpha[base + j] + eps));
        }
    }
}

// C names for ctypes and RawModule.get_function, one per precision.
extern "C" __global__ void gumbel_softmax_forward_f32(const float* alpha, const float* u, float* y, float tau,
                                                      long long n, long long k) {
    gumbel_softmax_forward<float>(alpha, u, y, tau, n, k);
}
extern "C" __global__ void gumbel_softmax_forward_f64(const double* alpha, const double* u, double* y, double tau,
                                                      long long n, long long k) {
    gumbel_softmax_forward<double>(alpha, u, y, tau, n, k);
}
extern "C" __global__ void gumbel_softmax_backward_f32(const float* alpha, const float* y, const float* dy,
                                                       float* dalpha, float tau, long long n, long long k) {
    gumbel_softmax_backward<float>(alpha, y, dy, dalpha, tau, n, k);
}
extern "C" __global__ void gumbel_softmax_backward_f64(const double* alpha, const double* y, const double* dy,
                                                       double* dalpha, double tau, long long n, long long k) {
    gumbel_softmax_backward<double>(alpha, y, dy, dalpha, tau, n, k);
}
