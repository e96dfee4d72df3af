"""gemm.cu against cuBLAS (cupy.matmul) on the products of a training step, on one GPU: medians of CUDA-event times.

    python -m bench.gemm_speed

Shapes: the FactorVAE discriminator's hidden layer forward (64 x 1000 x 1000) and weight gradient, and the 64 x 64
convolutions' products at batch 64 (cols (512, 16384) against a 32-channel weight).
"""
import cupy as cp
import numpy as np

from kernels import gemm

SHAPES = [(64, 1000, 1000), (1000, 64, 1000), (32, 512, 16384), (512, 32, 16384), (32, 16384, 512)]


def median_ms(fn, repeats=50):
    for _ in range(5):
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
    print(f"{'M x K x N':>20} {'gemm.cu ms':>11} {'cuBLAS ms':>10} {'gemm.cu TFLOP/s':>16} {'cuBLAS / ours':>14}")
    for m, k, n in SHAPES:
        a = cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
        b = cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
        ours = median_ms(lambda: gemm.matmul(a, b))
        theirs = median_ms(lambda: cp.matmul(a, b))
        err = float(cp.linalg.norm(gemm.matmul(a, b) - cp.matmul(a, b)) / cp.linalg.norm(cp.matmul(a, b)))
        print(f"{f'{m} x {k} x {n}':>20} {ours:11.4f} {theirs:10.4f} {2 * m * k * n / ours / 1e9:16.2f} "
              f"{theirs / ours:14.2f}   rel err {err:.1e}")


if __name__ == "__main__":
    main()
