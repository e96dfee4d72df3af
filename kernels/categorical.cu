// KL of Categorical(alpha) to the uniform prior over K, per row, with the backward.
//
//   kl_n       = log K + sum_k alpha_nk log(alpha_nk + 1e-12)      alpha, dalpha: (N, K) row-major; kl, dkl: (N,)
//   dalpha_nk  = dkl_n (log(alpha_nk + 1e-12) + alpha_nk / (alpha_nk + 1e-12))
//
// Same semantics as the reference refnet.latent.kl_categorical_uniform(_backward); the
// Python side is kernels/categorical.py. The forward sums a row, so it is one thread
// per row; the backward has no reduction, so it is one thread per element.
// The 1e-12 keeps log finite at alpha = 0, where alpha log(...) is then 0 * -27.6 = 0.

template <typename T>
__device__ void kl_categorical_forward(const T* alpha, T* kl, long long n, long long k) {
    const T eps = T(1e-12);
    for (long long row = blockIdx.x * (long long)blockDim.x + threadIdx.x; row < n;
         row += (long long)blockDim.x * gridDim.x) {
        const T* a = alpha + row * k;
        T total = T(0);
        for (long long j = 0; j < k; ++j) total += a[j] * log(a[j] + eps);
        kl[row] = log(T(k)) + total;
    }
}

template <typename T>
__device__ void kl_categorical_backward(const T* alpha, const T* dkl, T* dalpha, long long n, long long k) {
    const T eps = T(1e-12);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * k;
         i += (long long)blockDim.x * gridDim.x) {
        // alpha / (alpha + eps), not 1: the gradient of the expression actually computed.
        dalpha[i] = dkl[i / k] * (log(alpha[i] + eps) + alpha[i] / (alpha[i] + eps));
    }
}

extern "C" __global__ void kl_categorical_forward_f32(const float* alpha, float* kl, long long n, long long k) {
    kl_categorical_forward<float>(alpha, kl, n, k);
}
extern "C" __global__ void kl_categorical_forward_f64(const double* alpha, double* kl, long long n, long long k) {
    kl_categorical_forward<double>(alpha, kl, n, k);
}
extern "C" __global__ void kl_categorical_backward_f32(const float* alpha, const float* dkl, float* dalpha,
                                                       long long n, long long k) {
    kl_categorical_backward<float>(alpha, dkl, dalpha, n, k);
}
extern "C" __global__ void kl_categorical_backward_f64(const double* alpha, const double* dkl, double* dalpha,
                                                       long long n, long long k) {
    kl_categorical_backward<double>(alpha, dkl, dalpha, n, k);
}
