"""Wilson interval, SPL and the paired ratio against hand-computed values."""

import math

import numpy as np
import pytest

from vlnav_data.policy.metrics import (
    mean_steps_over_successes,
    paired_step_ratio,
    path_length_m,
    shortest_path_m,
    spl,
    wilson_interval,
)


def test_wilson_matches_hand_value():
    # 74/100 (the paper's SigLIP result): p=0.74, z=1.96
    # centre = (0.74 + 1.96²/200)/(1 + 1.96²/100) = 0.759208/1.038416 = 0.731121
    # half   = 1.96/1.038416 * sqrt(0.74*0.26/100 + 1.96²/40000) = 1.887494 * 0.044949 = 0.084833
    ci = wilson_interval(74, 100)
    assert ci.rate == pytest.approx(0.74)
    assert ci.low == pytest.approx(0.731121 - 0.084833, abs=1e-5)
    assert ci.high == pytest.approx(0.731121 + 0.084833, abs=1e-5)
    assert ci.confidence == pytest.approx(0.95, abs=1e-6)


def test_wilson_is_not_degenerate_at_the_extremes():
    ci = wilson_interval(100, 100)
    assert ci.high == 1.0
    assert ci.low == pytest.approx(100 / (100 + 1.959964**2), abs=1e-6)  # n/(n+z²) at p=1
    ci0 = wilson_interval(0, 10)
    assert ci0.low == 0.0 and ci0.high == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)
    assert wilson_interval(0, 0).high == 1.0
    # Exactly 1 at n/n for every n (10/10 came out as 1 - 1.1e-16 before, and a plot's error bar went negative).
    assert all(wilson_interval(n, n).high == 1.0 and wilson_interval(0, n).low == 0.0 for n in range(1, 500))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_spl_hand_values():
    success = np.array([True, True, False, True])
    shortest = np.array([1.0, 2.0, 1.0, 0.0])
    taken = np.array([1.0, 4.0, 0.5, 0.3])
    # 1/1, 2/4, 0 (failed), 0 (l=0, succeeded after moving: 0/max(0.3, 0) = 0)
    assert spl(success, shortest, taken) == pytest.approx((1.0 + 0.5 + 0.0 + 0.0) / 4)
    # l=0 and never moved: 0/0 is taken as 1.
    assert spl(np.array([True]), np.array([0.0]), np.array([0.0])) == 1.0
    # A path shorter than the bound (cannot happen physically) is capped at 1.
    assert spl(np.array([True]), np.array([2.0]), np.array([1.0])) == 1.0
    assert spl(np.array([], bool), np.array([]), np.array([])) == 0.0


def test_path_and_shortest_lengths():
    assert path_length_m(np.array([[0, 0], [3, 4], [3, 5]])) == pytest.approx(6.0)
    assert path_length_m(np.zeros((1, 2))) == 0.0
    assert shortest_path_m(np.array([0.0, 0.0]), np.array([3.0, 4.0]), 0.5) == pytest.approx(4.5)
    assert shortest_path_m(np.array([0.0, 0.0]), np.array([0.1, 0.0]), 0.5) == 0.0


def test_paired_ratio_uses_only_starts_where_both_succeeded():
    student = np.array([120, 300, 90, 600])
    s_ok = np.array([True, True, False, False])
    expert = np.array([100, 200, 80, 110])
    e_ok = np.array([True, True, True, True])
    r = paired_step_ratio(student, s_ok, expert, e_ok)
    assert r.num_pairs == 2
    assert r.ratio_of_means == pytest.approx(210 / 150)
    assert r.median_ratio == pytest.approx((1.2 + 1.5) / 2)
    none = paired_step_ratio(student, ~np.ones(4, bool), expert, e_ok)
    assert none.num_pairs == 0 and math.isnan(none.ratio_of_means)
    assert mean_steps_over_successes(student, s_ok) == pytest.approx(210)
    assert math.isnan(mean_steps_over_successes(student, np.zeros(4, bool)))
