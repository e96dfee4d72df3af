// Gaussian reparameterisation fused with its KL term to N(0, 1), with the backward.
// Elementwise over the N*D units, one thread per element.
//
//   z  = mu + exp(logvar / 2) eps                         mu, logvar, eps, z, kl: (N, D), any layout
//   kl = -1/2 (1 + logvar - mu^2 - exp(logvar))           both read mu and logvar once
//   dmu     = dz + dkl mu
//   dlogvar = dz eps exp(logvar / 2) / 2 + dkl (exp(logvar) - 1) / 2
//
// Same semantics as the references refnet.latent.reparameterize_normal(_backward)
// plus refnet.latent.kl_normal(_backward); the Python side is kernels/normal.py.
// The backward recomputes the two exps rather than storing them: on a GPU reading
// two more arrays costs more than the arithmetic.

template <typename T>
__device__ void reparameterize_kl_forward(const T* mu, const T* logvar, const T* eps, T* z, T* kl, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T sigma = exp(T(0.5) * logvar[i]);
        T var = exp(logvar[i]);  // not sigma * sigma: the reference computes exp(logvar)
        z[i] = mu[i] + sigma * eps[i];
        kl[i] = T(-0.5) * (T(1) + logvar[i] - mu[i] * mu[i] - var);
    }
}

template <typename T>
__device__ void reparameterize_kl_backward(const T* mu, const T* logvar, const T* eps, const T* dz, const T* dkl,
                                           T* dmu, T* dlogvar, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T sigma = exp(T(0.5) * logvar[i]);
        T var = exp(logvar[i]);
        // Each input reaches the loss along two paths, through z and through kl: the gradients add.
        dmu[i] = dz[i] + dkl[i] * mu[i];
        dlogvar[i] = dz[i] * eps[i] * sigma * T(0.5) + dkl[i] * T(0.5) * (var - T(1));
    }
}

extern "C" __global__ void reparameterize_kl_forward_f32(const float* mu, const float* logvar, const float* eps,
                                                         float* z, float* kl, long long n) {
    reparameterize_kl_forward<float>(mu, logvar, eps, z, kl, n);
}
extern "C" __global__ void reparameterize_kl_forward_f64(const double* mu, const double* logvar, const double* eps,
                                                         double* z, double* kl, long long n) {
    reparameterize_kl_forward<double>(mu, logvar, eps, z, kl, n);
}
extern "C" __global__ void reparameterize_kl_backward_f32(const float* mu, const float* logvar, const float* eps,
                                                          const float* dz, const float* dkl,
                                                          float* dmu, float* dlogvar, long long n) {
    reparameterize_kl_backward<float>(mu, logvar, eps, dz, dkl, dmu, dlogvar, n);
}
extern "C" __global__ void reparameterize_kl_backward_f64(const double* mu, const double* logvar, const double* eps,
                                                          const double* dz, const double* dkl,
                                                          double* dmu, double* dlogvar, long long n) {
    reparameterize_kl_backward<double>(mu, logvar, eps, dz, dkl, dmu, dlogvar, n);
}
