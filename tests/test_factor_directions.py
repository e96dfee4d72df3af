"""Reading a factor's direction in a code: aligned, rotated and dead units (jointvae.evaluation.directions)."""
import numpy as np
import pytest

from jointvae.evaluation.directions import angle_degrees, dependence_bias, factor_directions, rotation_dependence, turn

NAMES = ("posX", "posY")


def codes(theta, spreads=(1.0, 1.0), seed=0):
    """Two independent factors of 32 classes (the whole grid, so that they are exactly uncorrelated), each scaled
    by its spread, coded by two units rotated by theta, then a dead unit -> mu (1024, 3), factors (1024, 2)."""
    rng = np.random.default_rng(seed)
    factors = np.stack(np.meshgrid(np.arange(32), np.arange(32), indexing="ij"), axis=-1).reshape(-1, 2)
    n = len(factors)
    u = (factors - 15.5) / 9.23 * spreads
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
@pytest.mark.parametrize("spreads", [(1.0, 1.0), (3.0, 1.0), (1.0, 0.2)])
def test_a_rotated_code_holds_the_factors_along_orthogonal_mixes(degrees, spreads):
    found = factor_directions(*codes(np.radians(degrees), spreads), NAMES)
    x, y = found["factors"]["posX"], found["factors"]["posY"]
    share = max(np.cos(np.radians(degrees)), np.sin(np.radians(degrees))) ** 2
    assert x["largest_share"] == pytest.approx(share, abs=1e-6) and y["largest_share"] == pytest.approx(share, abs=1e-6)
    assert x["r2"] > 0.999 and y["spearman"] > 0.999             # the information is all there
    assert angle_degrees(x["direction"], y["direction"]) == pytest.approx(90, abs=0.5)
    assert np.sum(np.square(x["direction"])) == pytest.approx(1)


def test_a_nearly_dead_unit_barely_moves_a_direction():
    mu, factors = codes(np.radians(45))
    noisy = mu[:, :2] + np.random.default_rng(1).normal(0, 0.3, (len(mu), 2))
    weak = 0.06 * (factors[:, 0] - 15.5) / 9.23                 # active (std 0.06) and exact, but small
    found = factor_directions(np.c_[noisy, weak], factors, NAMES)
    assert found["units"] == [0, 1, 2]
    x = found["factors"]["posX"]
    assert abs(x["direction"][2]) < 0.1 and x["largest_unit"] != 2     # least squares would lean on it
    assert x["r2"] > 0.999                                      # though it reads posX best


def test_a_factor_no_unit_moves_with_has_no_direction():
    mu, factors = codes(0.0)
    found = factor_directions(mu[:, :1], factors, NAMES)          # one unit, posX's; the grid: posY uncorrelated
    assert found["factors"]["posX"]["largest_unit"] == 0
    y = found["factors"]["posY"]
    assert y["largest_unit"] is None and y["largest_share"] == 0 and np.isnan(y["spearman"])


def test_a_code_of_one_factor_reads_the_other_poorly():
    mu, factors = codes(0.0)
    found = factor_directions(mu[:, [0, 2]] * [1, 100], factors, NAMES)     # posX, and noise made active
    assert found["factors"]["posX"]["r2"] > 0.999 and found["factors"]["posY"]["r2"] < 0.01


def test_a_monotone_but_curved_code_orders_the_factor_perfectly():
    mu, factors = codes(0.0)
    found = factor_directions(np.c_[np.exp(3 * mu[:, 0]), mu[:, 2]], factors, NAMES, "posX")   # curved; dead unit
    x = found["factors"]["posX"]
    assert x["spearman"] > 0.999 and x["r2"] < 0.8                 # ordered exactly, read linearly in part


def test_the_angle_ignores_the_sign_of_a_direction():
    assert angle_degrees([1, 1], [-1, -1]) == pytest.approx(0, abs=1e-4)
    assert angle_degrees([1, 0], [-1, 1]) == pytest.approx(45)


@pytest.mark.parametrize("change, message", [
    (lambda mu, f: (mu * 1e-3, f, NAMES, None), "no continuous unit"),
    (lambda mu, f: (mu, f, NAMES, ["posX", "scale"]), "no factor named 'scale': the factors are posX, posY"),
    (lambda mu, f: (mu, f * [1, 0], NAMES, "posY"), "factor posY takes one value only"),
])
def test_what_cannot_be_read_is_a_clear_error(change, message):
    with pytest.raises(ValueError, match=message):
        factor_directions(*change(*codes(0.0)))


def test_a_name_alone_is_one_factor():
    found = factor_directions(*codes(0.0), NAMES, which="posY")
    assert list(found["factors"]) == ["posY"]


def test_a_direction_of_length_0_has_no_angle():
    with pytest.raises(ValueError, match="length 0"):
        angle_degrees([0, 0], [1, 0])


def test_codes_holding_nan_are_named_as_such():
    mu, factors = codes(0.0)
    mu[5, 1] = np.nan
    with pytest.raises(ValueError, match="1 values that are NaN or infinite"):
        factor_directions(mu, factors, NAMES)


# ---------------------------------------------------------------- can a TC penalty see a rotation?

def rotated(z, degrees):
    """Turn the plane of z (n, 2) by +degrees: a code whose independent axes lie at that angle."""
    t = np.radians(degrees)
    return z @ np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])


def test_turning_by_the_codes_angle_gives_back_its_axes():
    z = np.random.default_rng(4).normal(size=(10, 2))
    assert turn(rotated(z, 30), 30) == pytest.approx(z, abs=1e-12)
    assert turn(z, 90) == pytest.approx(np.c_[z[:, 1], -z[:, 0]], abs=1e-12)


def test_independent_uniform_units_depend_on_each_other_once_rotated():
    z = np.random.default_rng(0).uniform(-1, 1, (20000, 2))
    mi = rotation_dependence(z, [0, 45])
    bias = dependence_bias(len(z))
    assert mi[0] == pytest.approx(bias, abs=0.003)      # independent: only the estimate's bias
    assert mi[1] > 0.2                                  # the square turned into a diamond


def test_the_least_dependent_angle_turns_a_rotated_code_back():
    z = rotated(np.random.default_rng(1).uniform(-1, 1, (20000, 2)), 30)
    degrees = np.arange(0, 90, 5)
    assert degrees[np.argmin(rotation_dependence(z, degrees))] == 30
    assert rotation_dependence(z, 30) == pytest.approx(rotation_dependence(z, [30]))    # one angle alone


def test_independent_gaussian_units_look_alike_at_every_angle():
    z = np.random.default_rng(2).standard_normal((20000, 2))
    mi = rotation_dependence(z, np.arange(0, 90, 15))
    assert np.ptp(mi) < 0.003 and np.all(mi < 0.012)    # the bias, 0.009, and noise: nothing for TC to prefer


def test_dependence_repeats_every_quarter_turn_and_ignores_each_units_scale():
    z = rotated(np.random.default_rng(3).uniform(-1, 1, (5000, 2)), 20)
    degrees = np.arange(0, 90, 10)
    assert rotation_dependence(z, degrees + 90) == pytest.approx(rotation_dependence(z, degrees), abs=1e-12)
    stretched = np.c_[np.sinh(3 * z[:, 0]), 0.01 * z[:, 1]]          # monotone in each unit
    assert rotation_dependence(stretched, [0])[0] == pytest.approx(rotation_dependence(z, [0])[0], abs=1e-12)


@pytest.mark.parametrize("z, message", [
    (np.zeros((500, 3)), r"shape \(n, 2\)"),
    (np.zeros((100, 2)), "too few"),
    (np.full((500, 2), np.nan), "NaN"),
])
def test_rotation_dependence_refuses_what_it_cannot_measure(z, message):
    with pytest.raises(ValueError, match=message):
        rotation_dependence(z, [0])
