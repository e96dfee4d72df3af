// Adam's update (torch.optim.Adam's arithmetic) over every parameter of a model at once.
// Elementwise over one flat buffer each (refnet/flat.py), one thread per element: one launch per step.
//
//   g = g + weight_decay p                       (only if weight_decay != 0)      p, g, m, v: (n,);
//   m = m + (1 - beta1) (g - m)                                                   p, m, v in place
//   v = beta2 v + ((1 - beta2) g) g
//   p = p - (step_size m) / (sqrt(v) / bias_correction2_sqrt + eps)
//   step_size = lr / (1 - beta1^t),  bias_correction2_sqrt = sqrt(1 - beta2^t)
//
// The two scalars that change every step are read from device memory, step_scalars = [step_size,
// bias_correction2_sqrt], so that a captured CUDA graph, whose kernel arguments are fixed, replays
// each step with that step's values (the host writes the buffer before each replay).
//
// The reference it must equal bit for bit is refnet.optim.adam_update; the Python side is kernels/adam.py.
// Each scalar arrives as T, rounded once on the host from a double, as NumPy rounds a Python float before
// multiplying a float32 array; each operation then rounds once, in the reference's order. Hence mul_rn:
// left alone, the CUDA compiler fuses a product and the sum after it into one fma (one rounding instead of
// two), which NumPy never does.

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }    // never fused
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <typename T>
__device__ void adam_update(T* p, const T* g, T* m, T* v, long long n, const T* step_scalars,
                            T beta2, T one_minus_beta1, T one_minus_beta2, T eps, T weight_decay) {
    const T step_size = step_scalars[0], bias_correction2_sqrt = step_scalars[1];
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T grad = g[i];
        if (weight_decay != T(0)) grad = grad + mul_rn(weight_decay, p[i]);
        T m_i = m[i] + mul_rn(one_minus_beta1, grad - m[i]);
        T v_i = mul_rn(v[i], beta2) + mul_rn(mul_rn(one_minus_beta2, grad), grad);
        T denom = sqrt(v_i) / bias_correction2_sqrt + eps;
        p[i] = p[i] - mul_rn(step_size, m_i) / denom;
        m[i] = m_i;
        v[i] = v_i;
    }
}

extern "C" __global__ void adam_update_f32(float* p, const float* g, float* m, float* v, long long n,
                                           const float* step_scalars, float beta2, float one_minus_beta1,
                                           float one_minus_beta2, float eps, float weight_decay) {
    adam_update<float>(p, g, m, v, n, step_scalars, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay);
}
extern "C" __global__ void adam_update_f64(double* p, const double* g, double* m, double* v, long long n,
                                           const double* step_scalars, double beta2, double one_minus_beta1,
                                           double one_minus_beta2, double eps, double weight_decay) {
    adam_update<double>(p, g, m, v, n, step_scalars, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay);
}
