"""Reading a factor's direction in a code: aligned, rotated and dead units (jointvae.evaluation.directions)."""
import numpy as np
import pytest

from jointvae.evaluation.directions import angle_degrees, factor_directions

NAMES = ("posX", "posY")


def codes(theta, n=4000, seed=0):
    """Two independent uniform factors (32 classes), coded by two units rotated by theta, plus a dead unit."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 32, (n, 2))
    u = (factors - 15.5) / 9.2
    c, s = np.cos(theta), np.sin(theta)
    mu = np.c_[c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1], rng.normal(0, 0.01, n)]
    return mu, factors


def test_an_aligned_code_reads_each_factor_off_one_unit():
    mu, factors = codes(0.0)
    found = factor_directions(mu[:, [2, 0, 1]], factors, NAMES)     # the dead unit first
    assert found["units"] == [1, 2]                                 # it is pruned
    x, y = found["factors"]["posX"], found["factors"]["posY"]
    assert x["largest_unit"] == 1 and y["largest_unit"] == 2       # indices of the code, not of the active units
    assert x["largest_share"] > 0.999 and y["largest_share"] > 0.999
    assert x["r2"] > 0.999 and x["spearman"] > 0.999
    assert angle_degrees(x["direction"], y["direction"]) == pytest.approx(90, abs=3)


@pytest.mark.parametrize("degrees", [30, 45, 60])
def test_a_rotated_code_holds_the_factors_along_orthogonal_mixes(degrees):
    found = factor_directions(*codes(np.radians(degrees)), NAMES)
    x, y = found["factors"]["posX"], found["factors"]["posY"]
    share = max(np.cos(np.radians(degrees)), np.sin(np.radians(degrees))) ** 2
    assert x["largest_share"] == pytest.approx(share, abs=0.03) and y["largest_share"] == pytest.approx(share, abs=0.03)
    assert x["r2"] > 0.999 and y["spearman"] > 0.999             # the information is all there
    assert angle_degrees(x["direction"], y["direction"]) == pytest.approx(90, abs=3)


def test_a_code_of_one_factor_reads_the_other_poorly():
    mu, factors = codes(0.0)
    found = factor_directions(mu[:, [0, 2]] * [1, 100], factors, NAMES)     # posX, and noise made active
    assert found["factors"]["posX"]["r2"] > 0.999 and found["factors"]["posY"]["r2"] < 0.01
    assert found["factors"]["posY"]["largest_share"] >= 0.5        # a direction is a unit vector, however weak


def test_the_angle_ignores_the_sign_of_a_direction():
    assert angle_degrees([1, 1], [-1, -1]) == pytest.approx(0, abs=1e-4)
    assert angle_degrees([1, 0], [-1, 1]) == pytest.approx(45)


def test_no_active_unit_is_a_clear_error():
    mu, factors = codes(0.0)
    with pytest.raises(ValueError, match="no continuous unit"):
        factor_directions(mu * 1e-3, factors, NAMES)


def test_a_monotone_but_curved_code_orders_the_factor_perfectly():
    mu, factors = codes(0.0)
    found = factor_directions(np.c_[np.exp(3 * mu[:, 0]), mu[:, 2]], factors, NAMES)    # posX, curved; dead unit
    x = found["factors"]["posX"]
    assert x["spearman"] > 0.999 and x["r2"] < 0.8                 # ordered exactly, read linearly in part
