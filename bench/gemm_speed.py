"""gemm.cu against cuBLAS (cupy.matmul) on the products of a dSprites FactorVAE step, on one GPU.

    python -m bench.gemm_speed

For each product: cuBLAS's time, and for each kernel of kernels/gemm.py's VARIANTS (the step's 16 x 16 tiled one
and the register-tiled candidates) its time with the default split of K (k_splits) and its best time over K split
into 1, 4, 16 or 64 chunks (the grid's third axis), medians of CUDA-event times; then each variant's relative error
against cuBLAS. The winner per shape says which kernel, and how busy a long-K product should keep the GPU
(gemm.py's BUSY_BLOCKS, MIN_K_CHUNK), the step should use.

The shapes, (M, K, N) at batch 64 on 64 x 64 images:
    the discriminator's hidden layer: forward and dX (64, 1000, 1000), dW (1000, 64, 1000);
    the 32 -> 32 convolution (16 x 16 out): forward (32, 512, 16384), dW (32, 16384, 512), dcols (512, 32, 16384);
    the 32 -> 64 convolution (8 x 8 out): dW (64, 4096, 512);
    the first convolution (32 x 32 out): dW (32, 65536, 16);
    the 64 -> 64 convolution (4 x 4 out): forward (64, 1024, 1024).
"""
import cupy as cp
import numpy as np

from kernels import gemm

SHAPES = [(64, 1000, 1000), (1000, 64, 1000), (32, 512, 16384), (32, 16384, 512), (512, 32, 16384),
          (64, 4096, 512), (32, 65536, 16), (64, 1024, 1024)]
SPLITS = (1, 4, 16, 64)


def median_ms(fn, repeats=30):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    print("milliseconds, medians of 30; per variant: the default split of K, then the best split (in brackets)")
    print(f"{'M x K x N':>18} {'cuBLAS':>8}" + "".join(f" {v + ' (split)':>22}" for v in gemm.VARIANTS)
          + "   rel err vs cuBLAS")
    for m, k, n in SHAPES:
        a = cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        want = cp.matmul(a, b)
        line = f"{f'{m} x {k} x {n}':>18} {median_ms(lambda: cp.matmul(a, b)):8.4f}"
        errors = []
        for variant in gemm.VARIANTS:
            default = median_ms(lambda: gemm.matmul(a, b, variant=variant))
            splits = [s for s in SPLITS if s <= k]
            times = [median_ms(lambda s=s: gemm.matmul(a, b, splits=s, variant=variant)) for s in splits]
            best = int(np.argmin(times))
            line += f" {default:9.4f} {times[best]:8.4f} ({splits[best]:2d})"
            got = gemm.matmul(a, b, variant=variant)
            errors.append(float(cp.linalg.norm(got - want) / cp.linalg.norm(want)))
        print(line + "   " + " ".join(f"{e:.1e}" for e in errors))


if __name__ == "__main__":
    main()
