// cpu_shim.h: just enough of CUDA to compile a kernels/*.cu file as ordinary C++.
//
// kernels/cpu.py passes this with `-include cpu_shim.h`, so the .cu text is compiled unchanged.
//
// A CUDA "thread" is a call of the kernel function with threadIdx and blockIdx set. They are
// thread_local here, so the threads of one block can be real OS threads running at once:
// kernels/cpu.py starts blockDim.x * blockDim.y of them (through ctypes, which releases the
// GIL) and plays the blocks of a launch one after another. Then
//   __shared__       is `static`: one copy per kernel, shared by the block's threads (the next
//                    block starts only when every thread of this one has returned);
//   __syncthreads()  is a barrier over the block's threads (a mutex and a condition variable).
// A barrier that not every thread reaches (a divergent __syncthreads, undefined on a GPU) would
// hang: after the launch's timeout (CpuBackend.barrier_timeout_s) the waiting threads give up and
// the launch reports it.
// Grid-stride kernels without shared memory are played one thread at a time, as before.
#pragma once
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>

// Qualifiers that mean nothing on a CPU.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

// The launch geometry, as CUDA's built-in variables (x and y), one copy per OS thread.
struct cpu_shim_dim3 { unsigned int x, y, z; };
static thread_local cpu_shim_dim3 threadIdx = {0, 0, 0};
static thread_local cpu_shim_dim3 blockIdx = {0, 0, 0};
static thread_local cpu_shim_dim3 blockDim = {1, 1, 1};
static thread_local cpu_shim_dim3 gridDim = {1, 1, 1};

extern "C" void cpu_shim_set_thread(unsigned int tx, unsigned int ty, unsigned int bx, unsigned int by,
                                    unsigned int block_x, unsigned int block_y,
                                    unsigned int grid_x, unsigned int grid_y) {
    threadIdx = {tx, ty, 0}; blockIdx = {bx, by, 0};
    blockDim = {block_x, block_y, 1}; gridDim = {grid_x, grid_y, 1};
}

// __syncthreads(): every thread of the block waits until all have arrived. A generation counter
// makes the barrier reusable: a thread leaving barrier g cannot be caught by barrier g + 1.
static struct {
    std::mutex mutex;
    std::condition_variable all_arrived;
    unsigned int threads = 1, waiting = 0, generation = 0;
    double timeout_s = 20.0;
    bool timed_out = false;
} cpu_shim_barrier;

extern "C" void cpu_shim_set_block_threads(unsigned int threads, double timeout_s) {
    std::lock_guard<std::mutex> lock(cpu_shim_barrier.mutex);
    cpu_shim_barrier.threads = threads;
    cpu_shim_barrier.waiting = 0;
    cpu_shim_barrier.timeout_s = timeout_s;
    cpu_shim_barrier.timed_out = false;
}

extern "C" int cpu_shim_barrier_timed_out() { return cpu_shim_barrier.timed_out ? 1 : 0; }

static inline void __syncthreads() {
    std::unique_lock<std::mutex> lock(cpu_shim_barrier.mutex);
    const unsigned int generation = cpu_shim_barrier.generation;
    if (++cpu_shim_barrier.waiting == cpu_shim_barrier.threads) {
        cpu_shim_barrier.waiting = 0;
        ++cpu_shim_barrier.generation;
        cpu_shim_barrier.all_arrived.notify_all();
        return;
    }
    const auto limit = std::chrono::duration<double>(cpu_shim_barrier.timeout_s);
    if (!cpu_shim_barrier.all_arrived.wait_for(lock, limit,
                                               [&] { return generation != cpu_shim_barrier.generation; })) {
        cpu_shim_barrier.timed_out = true;   // a divergent barrier: let the launch fail instead of hanging
    }
}

// CUDA's products that the compiler may not fuse into an fma; here -ffp-contract=off fuses none anyway.
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }

// CUDA overloads exp, log, ... for float and double at global scope; <cmath> puts the
// float overloads in std::. Without these using-declarations exp(float) would silently
// compute in double on the CPU and the float32 checks would test something else.
using std::exp;
using std::fabs;
using std::fmax;
using std::log;
using std::log1p;
using std::sqrt;
using std::tanh;
