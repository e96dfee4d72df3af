"""Gradient checks of the CUDA kernels, run from their own .cu text on the CPU.

Each case runs one kernel's forward and backward through kernels.cpu (the .cu
file compiled as C++ with kernels/cpu_shim.h, called through ctypes) in float64,
and hands them to the same checker as cases.py: the kernel's backward must be
the derivative of the kernel's forward. (That the kernel's forward is the
reference's forward is tests/test_kernels.py's job.)

KERNEL_MUTANTS are the same cases on a .cu text with one operator changed: the
checker must fail on each. Without a C++ compiler every case here FAILS with
that reason (suite._run reports errors as failures, never as passes).

A kernel that is not a derivative (adam.cu, the optimiser step) has no gradient
to check; it must instead equal its reference bit for bit. EXACT_CASES build

    kernel, reference = case.build(config, rng)      # two functions () -> {name: array}

and the suite requires every array equal in every bit; EXACT_MUTANTS, a .cu text
rounding in another order (a difference no tolerance would see), must fail that.
"""
import functools
from functools import partial

import numpy as np
from hypothesis import strategies as st

import refnet

from .cases import Case, conv_configs, small


def kernel_backend(mutation=None):
    """kernels.cpu.CPU, or for mutation=(file, old, new) a CPU backend on that file with `old` -> `new`."""
    from kernels import cpu
    return cpu.CPU if mutation is None else mutant_backend(mutation)


@functools.lru_cache(maxsize=None)
def mutant_backend(mutation):
    """One backend per mutation, so each mutant compiles once; `old` must occur exactly once in the
    file, so that a mutant cannot silently become the original kernel when the file changes."""
    from kernels import cpu
    from kernels.dispatch import source_text
    source, old, new = mutation
    text = source_text(source)
    if text.count(old) != 1:
        raise ValueError(f"mutation {old!r} -> {new!r} must match {source} exactly once, "
                         f"matches {text.count(old)} times")
    return cpu.CpuBackend(sources={source: text.replace(old, new)})


def build_gumbel(cfg, rng, mutation=None):
    from kernels import gumbel
    backend, shape = kernel_backend(mutation), (cfg["n"], cfg["k"])
    u = rng.uniform(0, 1, shape)

    def forward(alpha):
        return gumbel.gumbel_softmax(alpha, u, cfg["temperature"], backend=backend)

    def backward(dy, cache):
        return {"alpha": gumbel.gumbel_softmax_backward(dy, cache)}

    alpha = refnet.softmax(rng.normal(0, 2, shape)) + 1e-2  # away from 0, where log(alpha) bends sharply
    return forward, backward, {"alpha": alpha}


def build_normal(cfg, rng, mutation=None):
    """z and kl stacked into one output (2, N, D), so the probe weighs both paths of the fused backward."""
    from kernels import normal
    backend, shape = kernel_backend(mutation), (cfg["n"], cfg["d"])
    eps = rng.standard_normal(shape)

    def forward(mu, logvar):
        (z, kl), cache = normal.reparameterize_with_kl(mu, logvar, eps, backend=backend)
        return np.stack([z, kl]), cache

    def backward(dout, cache):
        dmu, dlogvar = normal.reparameterize_with_kl_backward(dout[0], dout[1], cache)
        return {"mu": dmu, "logvar": dlogvar}

    limit = cfg["logvar_range"]
    return forward, backward, {"mu": rng.normal(0, 2, shape), "logvar": rng.uniform(-limit, limit, shape)}


def build_categorical(cfg, rng, mutation=None):
    from kernels import categorical
    backend = kernel_backend(mutation)

    def forward(alpha):
        return categorical.kl_categorical_uniform(alpha, backend=backend)

    def backward(dkl, cache):
        return {"alpha": categorical.kl_categorical_uniform_backward(dkl, cache)}

    alpha = refnet.softmax(rng.normal(0, 2, (cfg["n"], cfg["k"])))
    return forward, backward, {"alpha": alpha + 1e-3}  # away from 0: log has no finite difference there


def build_gemm(cfg, rng, mutation=None):
    """A Linear layer's three products through gemm.cu: y = x W^T, dx = dy W, dW = dy^T x (each transpose a view)."""
    from kernels import gemm
    backend = kernel_backend(mutation)

    def forward(x, weight):
        return gemm.matmul(x, weight.T, backend=backend), (x, weight)

    def backward(dy, cache):   # the weight gradient with K (the batch) split in two: both paths of gemm.cu
        x, weight = cache
        return {"x": gemm.matmul(dy, weight, backend=backend),
                "weight": gemm.matmul(dy.T, x, backend=backend, splits=2)}

    return forward, backward, {"x": rng.normal(0, 1, (cfg["n"], cfg["k"])), "weight": rng.normal(0, 1, (cfg["m"], cfg["k"]))}
def build_im2col(cfg, rng, mutation=None):
    """im2col through the kernel, with col2im through the kernel as its backward: the check holds only if
    each kernel is the other's adjoint, so a wrong window in either shows. x is a batch_first view, the
    strided layout refnet's layers pass."""
    from kernels.im2col import col2im, im2col
    backend, kernel, stride, padding = kernel_backend(mutation), cfg["kernel"], cfg["stride"], cfg["padding"]

    def forward(x):
        return im2col(x, kernel, stride, padding, backend=backend), x.shape

    def backward(dcols, x_shape):
        return {"x": col2im(dcols, x_shape, stride, padding, backend=backend)}

    x = refnet.batch_first(rng.standard_normal((cfg["c_in"], cfg["h"], cfg["w"], cfg["n"])))
    return forward, backward, {"x": x}


# Keyed by the kernel file each case runs.
CASES_BY_SOURCE = {
    "gumbel.cu": Case("kernel gumbel.cu: gumbel_softmax",
                      st.fixed_dictionaries(dict(n=small, k=st.integers(1, 8),
                                                 temperature=st.sampled_from([0.67, 0.1, 0.5, 2.0]))),
                      build_gumbel),
    "normal.cu": Case("kernel normal.cu: reparameterize + kl_normal",
                      st.fixed_dictionaries(dict(n=small, d=st.integers(1, 6),
                                                 logvar_range=st.sampled_from([1.0, 5.0, 20.0]))),
                      build_normal),
    "categorical.cu": Case("kernel categorical.cu: kl_categorical_uniform",
                           st.fixed_dictionaries(dict(n=small, k=st.integers(1, 8))), build_categorical),
    # Each product is one launch of a 16 x 16 block, ~20 ms on the CPU shim: few examples, small arrays.
    "gemm.cu": Case("kernel gemm.cu: a Linear layer's products (x W^T, dy W, dy^T x)",
                    st.fixed_dictionaries(dict(n=st.integers(1, 3), k=st.integers(1, 5), m=st.integers(1, 4))),
                    build_gemm, max_examples=4),
    "im2col.cu": Case("kernel im2col.cu: im2col, col2im as its backward", conv_configs(), build_im2col),
}
KERNEL_CASES = list(CASES_BY_SOURCE.values())

# One changed operator per kernel file, of the kind a hand-written kernel gets wrong: (old, new, what).
MUTATIONS = {
    "gumbel.cu": ("dy[base + j] - dot", "dy[base + j] + dot", "backward adds <dy, y> to dy"),
    "normal.cu": ("(var - T(1))", "(var + T(1))", "dlogvar with exp(logvar) + 1"),
    "categorical.cu": ("log(alpha[i] + eps) + alpha[i]", "log(alpha[i] + eps) - alpha[i]",
                       "dalpha with log(alpha) - alpha/alpha"),
    "gemm.cu": ("sum += a_tile[ty][j] * b_tile[j][tx];", "sum += a_tile[ty][j] * b_tile[tx][j];",
                "B's tile read transposed"),
    "im2col.cu": ("i < kh && i <= prow", "i < kh && i < prow", "col2im drops window row a = 0"),
}

KERNEL_MUTANTS = [
    Case(f"kernel {source} mutant: {what}", CASES_BY_SOURCE[source].strategy,
         partial(CASES_BY_SOURCE[source].build, mutation=(source, old, new)))
    for source, (old, new, what) in MUTATIONS.items()
]


# ---------------------------------------------------------------- exactness: the optimiser step

@st.composite
def adam_configs(draw, dtype):
    """Hyper-parameters as training uses them and beyond; a run of steps from step 1 or from far on (t = 10^6,
    where both bias corrections are 1 to rounding)."""
    return dict(dtype=dtype, n=draw(st.integers(1, 64)), steps=draw(st.integers(1, 4)),
                first_step=draw(st.sampled_from([1, 2, 10, 10**6])),
                lr=draw(st.sampled_from([1e-4, 5e-4, 1e-3]) | st.floats(1e-6, 1.0)),
                beta1=draw(st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0.0, 0.999)),
                beta2=draw(st.sampled_from([0.9, 0.999]) | st.floats(0.5, 0.99999)),
                eps=draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
                weight_decay=draw(st.sampled_from([0.0, 1e-2]) | st.floats(0.0, 0.1)))


def build_adam(cfg, rng, mutation=None):
    """cfg's steps of refnet.Adam.step_flat on one flat buffer, its update once the kernel's, once the
    reference's. Gradients span 10^-20 (squares below float32's normal range) to 10^3."""
    from kernels import adam
    n, dtype = cfg["n"], cfg["dtype"]
    layout = refnet.FlatLayout({"p": (n,)})
    p = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * 10.0 ** rng.integers(-20, 4, n)).astype(dtype) for _ in range(cfg["steps"])]
    fresh = cfg["first_step"] == 1   # else moments as a run would have them by then
    m = np.zeros(n, dtype) if fresh else (0.1 * rng.standard_normal(n)).astype(dtype)
    v = np.zeros(n, dtype) if fresh else (0.01 * rng.random(n)).astype(dtype)
    state = {"step": cfg["first_step"] - 1, "lr": cfg["lr"], "betas": (cfg["beta1"], cfg["beta2"]),
             "eps": cfg["eps"], "weight_decay": cfg["weight_decay"], "m.p": m, "v.p": v}

    def run(update):
        def steps():
            optimizer, params, out = refnet.Adam(layout=layout).load_state_dict(state), p.copy(), {}
            for g in grads:
                optimizer.step_flat(params, g, update=update)
                t = optimizer.step_count
                out.update({f"p@t={t}": params.copy(), f"m@t={t}": optimizer.flat_m.copy(),
                            f"v@t={t}": optimizer.flat_v.copy()})
            return out
        return steps

    return run(partial(adam.adam_update, backend=kernel_backend(mutation))), run(adam.reference)


EXACT_BY_SOURCE = {
    "adam.cu": [Case(f"kernel adam.cu: refnet.optim.adam_update bit for bit, {dtype}",
                     adam_configs(dtype), build_adam) for dtype in ("float32", "float64")],
}
EXACT_CASES = [case for cases in EXACT_BY_SOURCE.values() for case in cases]

# As MUTATIONS, for the exactness check: the same sum, each product rounded in another order.
EXACT_MUTATIONS = {
    "adam.cu": ("mul_rn(mul_rn(one_minus_beta2, grad), grad)", "mul_rn(one_minus_beta2, mul_rn(grad, grad))",
                "(1 - beta2) (g g) for ((1 - beta2) g) g"),
}

EXACT_MUTANTS = [
    Case(f"kernel {source} mutant: {what}", EXACT_BY_SOURCE[source][0].strategy,
         partial(EXACT_BY_SOURCE[source][0].build, mutation=(source, old, new)))
    for source, (old, new, what) in EXACT_MUTATIONS.items()
]
