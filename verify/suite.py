"""Runs every check with hypothesis-drawn configurations and reports one Outcome each.

Used by `python -m verify` (prints a line per check) and by tests/ (asserts
each Outcome passed), so both run exactly the same checks.
"""
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

import refnet

from . import closed_forms
from .cases import CASES, conv_configs
from .gradcheck import TOLERANCE, check_gradients
from .kernel_cases import EXACT_CASES, EXACT_MUTANTS, KERNEL_CASES, KERNEL_MUTANTS
from .mutation import MUTANTS

PROFILES = {
    # At least 50 configurations per check; CI additionally derandomizes so a run is repeatable.
    "default": dict(max_examples=50),
    "ci": dict(max_examples=50, derandomize=True),
    "thorough": dict(max_examples=500),
}


def hypothesis_settings(profile="default", **overrides):
    base = dict(deadline=None, database=None, verbosity=Verbosity.quiet,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    return settings(**{**base, **PROFILES[profile], **overrides})


@dataclass
class Outcome:
    kind: str          # grad, exact, adjoint, closed-form, mutation
    name: str
    examples: int
    max_error: float
    tolerance: float
    passed: bool
    detail: str        # the worst configuration, or why it failed

    def line(self):
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{self.kind:<11} {self.name:<62} {self.examples:>4} configs  max err {self.max_error:9.2e}  "
                f"tol {self.tolerance:7.1e}  {verdict}  {self.detail}")


def _run(kind, name, strategy, measure, tolerance, hyp_settings, expect_failure=False):
    """Drive `measure(config, seed) -> (error, detail)` over hypothesis examples.

    A check passes when every example is within tolerance; a mutation check
    passes when some example is not (hypothesis stops at the first one).
    """
    worst = {"error": 0.0, "detail": "", "examples": 0}

    @hyp_settings
    @given(config=strategy, seed=st.integers(0, 2**32 - 1))
    def check(config, seed):
        error, detail = measure(config, seed)
        worst["examples"] += 1
        if error >= worst["error"]:
            worst.update(error=error, detail=f"{_describe(config)}: {detail}")
        assert error <= tolerance, f"{_describe(config)} seed={seed}: {detail} (err {error:.3g} > tol {tolerance:g})"

    try:
        check()
        failure = None
    except AssertionError as e:
        failure = str(e).splitlines()[0]
    except Exception as e:  # the check could not run (no C++ compiler...): a FAIL, even for a mutant
        reason = str(e).splitlines()[0] if str(e) else ""
        return Outcome(kind, name, worst["examples"], worst["error"], tolerance, False,
                       f"ERROR {type(e).__name__}: {reason}")
    if expect_failure:
        passed = failure is not None
        detail = f"detected: {failure}" if passed else "NOT detected: the checker could not see this bug"
    else:
        passed = failure is None
        detail = failure if failure else f"worst at {worst['detail']}"
    return Outcome(kind, name, worst["examples"], worst["error"], tolerance, passed, detail)


def _describe(config):
    return " ".join(f"{k}={v}" for k, v in config.items()) if isinstance(config, dict) else str(config)


def _gradient_measure(case):
    def measure(config, seed):
        rng = np.random.default_rng(seed)
        forward, backward, arrays = case.build(config, rng)
        limit = {} if case.per_element_limit is None else {"per_element_limit": case.per_element_limit}
        result = check_gradients(forward, backward, arrays, rng, **limit)
        return result.max_error, result.worst
    return measure


def gradient_outcome(case, hyp_settings, expect_failure=False):
    kind = "mutation" if expect_failure else "grad"
    if case.max_examples is not None:
        hyp_settings = settings(hyp_settings, max_examples=min(case.max_examples, hyp_settings.max_examples))
    if expect_failure:  # the first failing example is enough; shrinking it only costs time
        hyp_settings = settings(hyp_settings, phases=[Phase.explicit, Phase.generate])
    return _run(kind, case.name, case.strategy, _gradient_measure(case), TOLERANCE, hyp_settings, expect_failure)


def _exact_measure(case):
    """The number of elements in which kernel and reference differ in any bit (0 to pass), and the first one."""
    def measure(config, seed):
        kernel, reference = case.build(config, np.random.default_rng(seed))
        got, want = kernel(), reference()
        differing, first = 0, "every bit equal"
        for name, w in want.items():
            g = got[name]
            if g.dtype != w.dtype or g.shape != w.shape:
                return float("inf"), f"{name}: kernel {g.dtype} {g.shape}, reference {w.dtype} {w.shape}"
            bits = f"u{w.dtype.itemsize}"    # compared as integers: -0 is not 0, and every last bit counts
            at = np.flatnonzero(g.view(bits) != w.view(bits))
            if len(at) and not differing:
                i = int(at[0])
                first = f"{name}[{i}]: kernel {g.flat[i]:.9g}, reference {w.flat[i]:.9g}"
            differing += len(at)
        return differing, first
    return measure


def exact_outcome(case, hyp_settings, expect_failure=False):
    """A kernel that must equal its reference bit for bit (kernel_cases.EXACT_CASES), or a mutant that must not."""
    kind = "mutation" if expect_failure else "exact"
    if expect_failure:
        hyp_settings = settings(hyp_settings, phases=[Phase.explicit, Phase.generate])
    return _run(kind, case.name, case.strategy, _exact_measure(case), 0, hyp_settings, expect_failure)


def adjoint_outcome(hyp_settings):
    """<im2col(x), c> == <x, col2im(c)>: col2im is im2col's adjoint, so each is the other's backward."""
    def measure(cfg, seed):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"]))
        cols = refnet.im2col(x, cfg["kernel"], cfg["stride"], cfg["padding"])
        c = rng.standard_normal(cols.shape)
        lhs = float(np.sum(cols * c))
        rhs = float(np.sum(x * refnet.col2im(c, x.shape, cfg["stride"], cfg["padding"])))
        return abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1.0), f"<im2col(x),c>={lhs:.6g} <x,col2im(c)>={rhs:.6g}"
    return _run("adjoint", ADJOINT, conv_configs(), measure, 1e-12, hyp_settings)


CLOSED_FORMS = ("kl_normal vs Monte Carlo (200k samples)", "kl_normal vs numerical integration",
                "kl_categorical_uniform vs definition")
ADJOINT = "im2col / col2im"


def check_names():
    """The name of every check run_all runs, in its order (what --only matches against)."""
    return ([case.name for case in CASES + KERNEL_CASES + EXACT_CASES] + [ADJOINT] + list(CLOSED_FORMS)
            + [mutant.name for mutant in MUTANTS + KERNEL_MUTANTS + EXACT_MUTANTS])


def matches(name, only):
    """--only's rule: the check's name contains `only`, ignoring case (every check when only is None)."""
    return only is None or only.lower() in name.lower()


def closed_form_outcomes(hyp_settings, wanted=lambda name: True):
    normal = st.fixed_dictionaries(dict(mu=st.floats(-3, 3), logvar=st.floats(-4, 4)))

    def monte_carlo(cfg, seed):
        err = closed_forms.kl_normal_monte_carlo_error(cfg["mu"], cfg["logvar"], np.random.default_rng(seed))
        return err, f"{err:.2f} standard errors"

    def integration(cfg, seed):
        return closed_forms.kl_normal_integration_error(cfg["mu"], cfg["logvar"]), "relative error"

    categorical = st.fixed_dictionaries(dict(n=st.integers(1, 4), k=st.integers(1, 10), zeros=st.booleans()))

    def definition(cfg, seed):
        rng = np.random.default_rng(seed)
        alpha = rng.dirichlet(np.ones(cfg["k"]), size=cfg["n"])
        if cfg["zeros"] and cfg["k"] > 1:  # exact zeros: 0 log 0 = 0 in the definition
            alpha[:, 0] = 0.0
            alpha /= alpha.sum(axis=1, keepdims=True)
        return closed_forms.kl_categorical_definition_error(alpha), "absolute error"

    few = settings(hyp_settings, max_examples=min(hyp_settings.max_examples, 20))  # each MC example is 200k samples
    checks = zip(CLOSED_FORMS, (normal, normal, categorical), (monte_carlo, integration, definition),
                 (closed_forms.MC_TOLERANCE, closed_forms.INTEGRATION_TOLERANCE, closed_forms.CATEGORICAL_TOLERANCE),
                 (few, hyp_settings, hyp_settings))
    return [_run("closed-form", name, strategy, measure, tolerance, chosen)
            for name, strategy, measure, tolerance, chosen in checks if wanted(name)]


def run_all(profile="default", only=None):
    """Yield an Outcome per check: gradients (layers, then kernels on the CPU), exact kernels, adjoint, closed
    forms, mutants."""
    hyp_settings = hypothesis_settings(profile)

    def wanted(name):
        return matches(name, only)

    for case in CASES + KERNEL_CASES:
        if wanted(case.name):
            yield gradient_outcome(case, hyp_settings)
    for case in EXACT_CASES:
        if wanted(case.name):
            yield exact_outcome(case, hyp_settings)
    if wanted(ADJOINT):
        yield adjoint_outcome(hyp_settings)
    yield from closed_form_outcomes(hyp_settings, wanted)
    for mutant in MUTANTS + KERNEL_MUTANTS:
        if wanted(mutant.name):
            yield gradient_outcome(mutant, hyp_settings, expect_failure=True)
    for mutant in EXACT_MUTANTS:
        if wanted(mutant.name):
            yield exact_outcome(mutant, hyp_settings, expect_failure=True)
