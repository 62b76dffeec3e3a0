"""Paired statistics of vlnav_data.stats against hand-computed answers."""

from __future__ import annotations

import math

import pytest

from vlnav_data.stats import (
    Z_95,
    holm_adjust,
    mcnemar_exact,
    mean_spread,
    paired_difference_interval,
    paired_table,
)


def test_paired_table_counts_the_four_cells():
    a = [1, 1, 0, 0, 1, 0, True, False]
    b = [1, 0, 1, 0, 0, 0, True, True]
    assert paired_table(a, b) == (2, 2, 2, 2)
    with pytest.raises(ValueError, match="differ in length"):
        paired_table([1, 0], [1])


@pytest.mark.parametrize(
    ("a_only", "b_only", "expected"),
    [
        # p = 2 * P(X <= min) with X ~ Binomial(b + c, 1/2)
        (1, 9, 2 * (1 + 10) / 2**10),  # 22/1024 = 0.021484375
        (9, 1, 2 * (1 + 10) / 2**10),  # symmetric
        (0, 6, 2 / 2**6),  # 0.03125
        (3, 12, 2 * (1 + 15 + 105 + 455) / 2**15),  # 1152/32768 = 0.03515625
        (5, 5, 1.0),  # 2 * P(X <= 5) > 1 is capped
        (0, 0, 1.0),  # no discordant pair: no evidence
        (0, 1, 1.0),  # 2 * 1/2
    ],
)
def test_mcnemar_exact_matches_the_binomial_tail(a_only, b_only, expected):
    assert mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_holm_step_down_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max with 0.06)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, monotone, input order kept
    assert holm_adjust([0.5, 0.2, 0.9]) == pytest.approx([1.0, 0.6, 1.0])
    assert holm_adjust([0.04]) == [0.04]
    assert holm_adjust([]) == []
    with pytest.raises(ValueError):
        holm_adjust([0.1, 1.5])


def _wilson(x: int, n: int) -> tuple[float, float]:
    """The Wilson bounds written out again, independently of the library."""
    p, z = x / n, Z_95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_newcombe_paired_interval_with_zero_correlation_by_hand():
    # table 1 / 1 / 7 / 12 (n = 21): A*D - B*C = 12 - 7 = 5 <= n/2, so phi = 0 (Newcombe's correction)
    # p_A = 2/21, p_B = 8/21, D = -6/21; the interval is Wilson square-and-add.
    p_a, p_b = 2 / 21, 8 / 21
    l_a, u_a = _wilson(2, 21)
    l_b, u_b = _wilson(8, 21)
    low = (p_a - p_b) - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = (p_a - p_b) + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    diff, lo, hi = paired_difference_interval(1, 1, 7, 12)
    assert diff == pytest.approx(-6 / 21)
    assert (lo, hi) == pytest.approx((low, high), abs=1e-12)
    assert (lo, hi) == pytest.approx((-0.50692, -0.02556), abs=1e-5)


def test_newcombe_paired_interval_with_negative_and_positive_correlation():
    # 36 / 12 / 2 / 0 (n = 50): A*D - B*C = -24 < 0, phi = -24 / sqrt(48 * 2 * 38 * 12)
    phi = -24 / math.sqrt(48 * 2 * 38 * 12)
    p_a, p_b = 48 / 50, 38 / 50
    l_a, u_a = _wilson(48, 50)
    l_b, u_b = _wilson(38, 50)
    dl = math.sqrt((p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2)
    du = math.sqrt((u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2)
    diff, lo, hi = paired_difference_interval(36, 12, 2, 0)
    assert diff == pytest.approx(0.2)
    assert (lo, hi) == pytest.approx((0.2 - dl, 0.2 + du), abs=1e-12)
    assert (lo, hi) == pytest.approx((0.05693, 0.34043), abs=1e-5)
    # 59 / 6 / 16 / 80 (n = 161): A*D - B*C = 4624 > n/2, phi = (4624 - 80.5) / sqrt(65 * 96 * 75 * 86)
    phi = (4624 - 80.5) / math.sqrt(65 * 96 * 75 * 86)
    p_a, p_b = 65 / 161, 75 / 161
    l_a, u_a = _wilson(65, 161)
    l_b, u_b = _wilson(75, 161)
    dl = math.sqrt((p_a - l_a) ** 2 - 2 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2)
    du = math.sqrt((u_a - p_a) ** 2 - 2 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2)
    diff, lo, hi = paired_difference_interval(59, 6, 16, 80)
    assert (diff, lo, hi) == pytest.approx((p_a - p_b, p_a - p_b - dl, p_a - p_b + du), abs=1e-12)
    # positive correlation narrows the interval compared with ignoring the pairing (phi = 0)
    unpaired = math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    assert dl < unpaired


def test_newcombe_stays_inside_minus_one_one_at_the_extremes():
    diff, lo, hi = paired_difference_interval(0, 40, 0, 0)  # A always, B never
    assert diff == 1.0 and hi == 1.0 and 0.8 < lo < 1.0
    assert paired_difference_interval(0, 0, 0, 0) == (0.0, -1.0, 1.0)
    with pytest.raises(ValueError):
        paired_difference_interval(1, -1, 0, 0)


def test_mean_spread_by_hand():
    s = mean_spread([0.7, 0.8, 0.9])
    assert s.mean == pytest.approx(0.8) and s.std == pytest.approx(0.1) and (s.min, s.max, s.n) == (0.7, 0.9, 3)
    one = mean_spread([0.5])
    assert one.mean == 0.5 and math.isnan(one.std) and one.n == 1
    assert math.isnan(mean_spread([]).mean)
