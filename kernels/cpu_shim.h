// cpu_shim.h: just enough of CUDA to compile a kernels/*.cu file as ordinary C++.
//
// kernels/cpu.py passes this with `-include cpu_shim.h`, so the .cu text is compiled
// unchanged. That is only possible because every kernel here is a grid-stride loop
// without shared memory, atomics or __syncthreads(): a "thread" is then just a call
// of the function with threadIdx/blockIdx set, and threads never talk to each other.
// One block of one thread walks the whole loop; cpu_shim_set_thread() lets the caller
// also play a larger grid, one thread after another, to exercise the loop's indexing.
#pragma once
#include <cmath>

// Qualifiers that mean nothing on a CPU.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

// The launch geometry, as CUDA's built-in variables (x only: these kernels are 1-D).
struct cpu_shim_dim3 { unsigned int x, y, z; };
static cpu_shim_dim3 threadIdx = {0, 0, 0};
static cpu_shim_dim3 blockIdx = {0, 0, 0};
static cpu_shim_dim3 blockDim = {1, 1, 1};
static cpu_shim_dim3 gridDim = {1, 1, 1};

extern "C" void cpu_shim_set_thread(unsigned int thread, unsigned int block,
                                    unsigned int block_dim, unsigned int grid_dim) {
    threadIdx.x = thread; blockIdx.x = block; blockDim.x = block_dim; gridDim.x = grid_dim;
}

// CUDA overloads exp, log, ... for float and double at global scope; <cmath> puts the
// float overloads in std::. Without these using-declarations exp(float) would silently
// compute in double on the CPU and the float32 checks would test something else.
using std::exp;
using std::fabs;
using std::fmax;
using std::log;
using std::log1p;
using std::tanh;
