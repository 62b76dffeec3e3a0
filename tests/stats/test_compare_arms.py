"""compare_arms: the training run is the unit; its numbers, its edge cases and its calibration."""

import math

import numpy as np
import pytest
from scipy import stats

from vlnav_data.stats import NO_TEST, PERMUTATION, WELCH, compare_arms, permutation_p_floor
from vlnav_data.study.power import POOLED_MCNEMAR, RUN_LEVEL, SimulatedDesign, rejection_rates


def _runs(rates, num_starts=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.arange(num_starts) < round(r * num_starts)) for r in rates]).astype(int)


def test_welch_numbers_match_scipy_ttest_and_mann_whitney():
    a = _runs([0.60, 0.64, 0.55])
    b = _runs([0.50, 0.47, 0.53, 0.45, 0.49], seed=1)
    res = compare_arms(a, b, alpha=0.1, rng=3)
    ra, rb = a.mean(1), b.mean(1)
    ref = stats.ttest_ind(ra, rb, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert res.method == WELCH
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (res.low, res.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert res.difference == pytest.approx(ra.mean() - rb.mean())
    u = stats.mannwhitneyu(ra, rb).statistic
    assert res.probability_of_improvement == pytest.approx(u / (3 * 5))
    assert res.probability_of_improvement_low <= res.probability_of_improvement <= res.probability_of_improvement_high
    assert (res.num_runs_a, res.num_runs_b, res.num_starts) == (3, 5, 200)
    assert res.run_success_a == pytest.approx(tuple(ra))
    assert res.smallest_p_value == 0.0
    with pytest.raises(AttributeError):
        res.p_value = 0.0  # frozen


def test_probability_of_improvement_counts_ties_half_and_bootstraps_within_arms():
    a = _runs([0.5, 0.6, 0.7])
    b = _runs([0.5, 0.55, 0.2])
    res = compare_arms(a, b)
    # pairs (a > b): 0.5>0.2; 0.6>0.5,0.55,0.2; 0.7> all three -> 7; one tie (0.5 = 0.5) -> 7.5 / 9
    assert res.probability_of_improvement == pytest.approx(7.5 / 9)
    assert res.probability_of_improvement == compare_arms(a, b, rng=1).probability_of_improvement
    assert 0.0 <= res.probability_of_improvement_low < res.probability_of_improvement_high <= 1.0


def test_permutation_floor_makes_too_few_runs_visible():
    assert permutation_p_floor(3, 3) == pytest.approx(0.1)
    assert permutation_p_floor(5, 5) == pytest.approx(2 / 252)
    assert permutation_p_floor(10, 10) == pytest.approx(2 / math.comb(20, 10))
    # Identical runs within each arm: no spread to estimate, so the exact permutation test decides.
    res = compare_arms(_runs([0.05] * 3), _runs([0.15] * 3))
    assert res.method == PERMUTATION
    assert res.p_value == pytest.approx(0.1) == res.smallest_p_value
    assert res.probability_of_improvement == 0.0
    same = compare_arms(_runs([0.05] * 3), _runs([0.05] * 3, seed=4))
    assert (same.method, same.p_value, same.difference) == (PERMUTATION, 1.0, 0.0)


def test_one_run_in_an_arm_gives_no_test():
    res = compare_arms(_runs([0.9]), _runs([0.1, 0.2, 0.15]))
    assert res.method == NO_TEST
    assert (res.p_value, res.low, res.high, res.smallest_p_value) == (1.0, -1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((3, 10)), np.zeros((3, 11)), "different starts"),
        (np.zeros(10), np.zeros((3, 10)), "runs, starts"),
        (np.full((2, 10), 2), np.zeros((2, 10)), "0/1"),
        (np.zeros((0, 10)), np.zeros((2, 10)), "runs >= 1"),
    ],
)
def test_bad_arrays_are_refused(a, b, match):
    with pytest.raises(ValueError, match=match):
        compare_arms(a, b)


@pytest.mark.parametrize("runs", [3, 10])
def test_false_positive_rate_at_most_alpha_with_15_point_run_spread(runs):
    design = SimulatedDesign(runs_a=runs, runs_b=runs, num_starts=200, success_a=0.5, success_b=0.5, run_spread=0.15)
    rates = {r.method: r for r in rejection_rates(design, num_studies=400, alpha=0.05, rng=runs)}
    new = rates[RUN_LEVEL]
    assert new.rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)
    # The pooled test the report used before rejects most of these null studies: the test above can fail.
    assert rates[POOLED_MCNEMAR].rate > 0.4


def test_ten_runs_detect_twenty_points_at_five_point_spread():
    design = SimulatedDesign(runs_a=10, runs_b=10, num_starts=200, success_a=0.6, success_b=0.4, run_spread=0.05)
    (new,) = rejection_rates(design, num_studies=300, alpha=0.05, rng=7, pooled=False)
    assert new.rate >= 0.8
