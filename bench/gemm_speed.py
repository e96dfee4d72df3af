"""gemm.cu against cuBLAS (cupy.matmul) on the products of a dSprites FactorVAE step, on one GPU.

    python -m bench.gemm_speed

For each product: cuBLAS's time, ours with the default split of K (kernels/gemm.py's k_splits), and ours with
K split into 1, 4, 16 and 64 chunks (the grid's third axis), medians of CUDA-event times. The split that wins
says how busy a long-K product should keep the GPU (gemm.py's BUSY_BLOCKS and MIN_K_CHUNK).

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
    header = f"{'M x K x N':>18} {'cuBLAS':>8} {'ours':>8}" + "".join(f" {f'split {s}':>9}" for s in SPLITS)
    print("milliseconds, median of 30 (ours: the default split, then K in 1, 4, 16, 64 chunks)")
    print(header + f" {'default':>8} {'rel err':>8}")
    for m, k, n in SHAPES:
        a = cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        want = cp.matmul(a, b)
        err = float(cp.linalg.norm(gemm.matmul(a, b) - want) / cp.linalg.norm(want))
        theirs = median_ms(lambda: cp.matmul(a, b))
        ours = median_ms(lambda: gemm.matmul(a, b))
        split_ms = [median_ms(lambda s=s: gemm.matmul(a, b, splits=s)) if s <= k else float("nan") for s in SPLITS]
        print(f"{f'{m} x {k} x {n}':>18} {theirs:8.4f} {ours:8.4f}" + "".join(f" {t:9.4f}" for t in split_ms)
              + f" {gemm.k_splits(m, n, k):>8} {err:8.1e}")


if __name__ == "__main__":
    main()
