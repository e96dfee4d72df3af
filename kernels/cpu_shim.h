// cpu_shim.h: just enough of CUDA to compile a kernels/*.cu file as ordinary C++.
//
// kernels/cpu.py passes this with `-include cpu_shim.h`, so the .cu text is compiled unchanged
// (cpu.py appends, for each kernel, an entry point `cpu_shim_blocks_<kernel>` that runs a grid).
//
// A CUDA "thread" is a call of the kernel function with threadIdx and blockIdx set.
// - Grid-stride kernels (no shared memory): cpu.py calls the kernel once per thread, one after
//   another; the threads never talk to each other.
// - Kernels with __shared__ memory and __syncthreads(): the blocks run one after another, and a
//   block's threads run as fibers (ucontext) on one OS thread. Each fiber runs until it reaches
//   __syncthreads() or returns; when every fiber of the block waits at the barrier, all go on.
//   So every barrier is honoured exactly, the run is deterministic, and a barrier that not every
//   thread reaches (a divergent __syncthreads, undefined on a GPU) is detected and reported.
//   __shared__ is `static`: one copy, shared by the fibers of the block being run.
#pragma once
#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>
#include <ucontext.h>

// Qualifiers that mean nothing on a CPU.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

// The launch geometry, as CUDA's built-in variables (x and y).
struct cpu_shim_dim3 { unsigned int x, y, z; };
static cpu_shim_dim3 threadIdx = {0, 0, 0};
static cpu_shim_dim3 blockIdx = {0, 0, 0};
static cpu_shim_dim3 blockDim = {1, 1, 1};
static cpu_shim_dim3 gridDim = {1, 1, 1};

extern "C" void cpu_shim_set_thread(unsigned int tx, unsigned int ty, unsigned int bx, unsigned int by,
                                    unsigned int block_x, unsigned int block_y,
                                    unsigned int grid_x, unsigned int grid_y) {
    threadIdx = {tx, ty, 0}; blockIdx = {bx, by, 0};
    blockDim = {block_x, block_y, 1}; gridDim = {grid_x, grid_y, 1};
}

// ---------------------------------------------------------------- a block's threads as fibers

struct cpu_shim_fiber {
    ucontext_t context;
    std::vector<char> stack;
    unsigned int tx, ty;
    bool at_barrier, finished;
};

static struct {
    ucontext_t scheduler;
    std::vector<cpu_shim_fiber> fibers;
    cpu_shim_fiber* running = nullptr;
    void (*body)(void*) = nullptr;   // calls the kernel with the launch's arguments
    void* arguments = nullptr;
} cpu_shim_block;

// __syncthreads(): outside a fibered block (a grid-stride kernel) there is nothing to wait for.
static inline void __syncthreads() {
    cpu_shim_fiber* self = cpu_shim_block.running;
    if (self == nullptr) return;
    self->at_barrier = true;
    swapcontext(&self->context, &cpu_shim_block.scheduler);
}

static void cpu_shim_fiber_main() {
    cpu_shim_block.body(cpu_shim_block.arguments);
    cpu_shim_block.running->finished = true;   // returning resumes the scheduler (uc_link)
}

// Runs grid (gx, gy, gz) of blocks (bx, by); returns 0, or 1 for a barrier some threads never reached.
static int cpu_shim_run_grid(void (*body)(void*), void* arguments, unsigned int gx, unsigned int gy,
                             unsigned int gz, unsigned int bx, unsigned int by) {
    const std::size_t stack_bytes = 64 * 1024;
    cpu_shim_block.body = body;
    cpu_shim_block.arguments = arguments;
    cpu_shim_block.fibers.resize(bx * by);
    for (auto& f : cpu_shim_block.fibers) f.stack.resize(stack_bytes);
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, 1};
    int status = 0;
    for (unsigned int block = 0; block < gx * gy * gz && status == 0; ++block) {
        blockIdx = {block % gx, block / gx % gy, block / (gx * gy)};
        for (unsigned int i = 0; i < bx * by; ++i) {
            cpu_shim_fiber& f = cpu_shim_block.fibers[i];
            f.tx = i % bx; f.ty = i / bx; f.at_barrier = false; f.finished = false;
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = f.stack.data();
            f.context.uc_stack.ss_size = stack_bytes;
            f.context.uc_link = &cpu_shim_block.scheduler;
            makecontext(&f.context, cpu_shim_fiber_main, 0);
        }
        // Rounds: run every fiber up to its next barrier (or its end); all at the barrier: release.
        for (;;) {
            unsigned int waiting = 0, finished = 0;
            for (auto& f : cpu_shim_block.fibers) {
                if (f.finished) { ++finished; continue; }
                f.at_barrier = false;
                threadIdx = {f.tx, f.ty, 0};
                cpu_shim_block.running = &f;
                swapcontext(&cpu_shim_block.scheduler, &f.context);
                cpu_shim_block.running = nullptr;
                if (f.finished) ++finished; else ++waiting;
            }
            if (finished == bx * by) break;
            if (finished > 0) { status = 1; break; }   // some returned while others wait: divergent
        }
    }
    return status;
}

// The kernel called with its arguments unpacked: args[i] points to the i-th argument's value.
template <typename... P, std::size_t... I>
static void cpu_shim_call(void (*kernel)(P...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<P*>(args[I])...);
}

template <typename... P>
static int cpu_shim_launch(void (*kernel)(P...), void** args, unsigned int gx, unsigned int gy, unsigned int gz,
                           unsigned int bx, unsigned int by) {
    struct Launch { void (*kernel)(P...); void** args; } launch = {kernel, args};
    auto body = [](void* p) {
        Launch* l = static_cast<Launch*>(p);
        cpu_shim_call(l->kernel, l->args, std::index_sequence_for<P...>{});
    };
    return cpu_shim_run_grid(body, &launch, gx, gy, gz, bx, by);
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
