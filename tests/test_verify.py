"""pytest runs exactly the checks of `python -m verify`, one test each."""
import pytest

from verify import suite
from verify.cases import CASES
from verify.mutation import MUTANTS


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradient(case, hyp_settings):
    outcome = suite.gradient_outcome(case, hyp_settings)
    assert outcome.passed, outcome.line()
    assert outcome.examples >= min(case.max_examples or 50, hyp_settings.max_examples)


def test_im2col_col2im_adjoint(hyp_settings):
    outcome = suite.adjoint_outcome(hyp_settings)
    assert outcome.passed, outcome.line()


def test_kl_closed_forms(hyp_settings):
    for outcome in suite.closed_form_outcomes(hyp_settings):
        assert outcome.passed, outcome.line()


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda c: c.name)
def test_checker_catches_broken_backward(mutant, hyp_settings):
    """A deliberately broken backward must make the gradient check fail."""
    outcome = suite.gradient_outcome(mutant, hyp_settings, expect_failure=True)
    assert outcome.passed, outcome.line()


def test_cli_exit_status(capsys):
    from verify.__main__ import main
    assert main(["--only", "Flatten", "--profile", "ci"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["--only", "no such check"]) == 2  # nothing to run: an error naming it, not a success
