"""The shared evaluation schema (vlnav_data.eval_summary) against hand-computed answers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vlnav_data.eval_summary import (
    SUCCESS_KEYS,
    OutcomeSummary,
    PairedStepRatio,
    paired_step_ratio,
    success_summary,
    summarize_outcomes,
    unpaired_step_ratio,
)
from vlnav_data.jsonio import dumps


def test_success_summary_matches_hand_value():
    # 74/100 (the paper's SigLIP result): p=0.74, z=1.96
    # centre = (0.74 + 1.96²/200)/(1 + 1.96²/100) = 0.759208/1.038416 = 0.731121
    # half   = 1.96/1.038416 * sqrt(0.74*0.26/100 + 1.96²/40000) = 1.887494 * 0.044949 = 0.084833
    s = success_summary(74, 100)
    assert tuple(s) == SUCCESS_KEYS
    assert s["successes"] == 74 and s["trials"] == 100 and s["rate"] == pytest.approx(0.74)
    assert s["low"] == pytest.approx(0.731121 - 0.084833, abs=1e-5)
    assert s["high"] == pytest.approx(0.731121 + 0.084833, abs=1e-5)
    assert s["confidence"] == pytest.approx(0.95, abs=1e-6)


def test_success_summary_is_not_degenerate_at_the_extremes():
    s = success_summary(100, 100)
    assert s["high"] == 1.0
    assert s["low"] == pytest.approx(100 / (100 + 1.959964**2), abs=1e-6)  # n/(n+z²) at p=1
    s0 = success_summary(0, 10)
    assert s0["low"] == 0.0 and s0["high"] == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)
    assert success_summary(0, 0) == {**success_summary(0, 0), "rate": 0.0, "low": 0.0, "high": 1.0}
    # Exactly 1 at n/n for every n (10/10 came out as 1 - 1.1e-16 before, and a plot's error bar went negative).
    assert all(success_summary(n, n)["high"] == 1.0 and success_summary(0, n)["low"] == 0.0 for n in range(1, 500))
    with pytest.raises(ValueError):
        success_summary(3, 2)


def test_outcome_summary_hand_values():
    s = summarize_outcomes(
        [True, False, True, True, False],
        [100, 600, 80, 121, 40],
        ["success", "time_limit", "success", "success", "out_of_bounds_left"],
    )
    assert s.success == success_summary(3, 5)
    assert s.mean_env_steps_successes == pytest.approx(301 / 3)
    assert s.median_env_steps_successes == 100.0
    assert (s.min_env_steps_successes, s.max_env_steps_successes) == (80, 121)
    assert s.termination_causes == {"out_of_bounds_left": 1, "success": 3, "time_limit": 1}
    assert list(s.termination_causes) == sorted(s.termination_causes)


def test_outcome_summary_without_success_is_null_not_nan():
    s = summarize_outcomes(np.zeros(3, bool), np.array([600, 10, 20]), np.array(["time_limit"] * 3))
    assert s.success["successes"] == 0 and s.success["rate"] == 0.0
    for name in ("mean", "median", "min", "max"):
        assert getattr(s, f"{name}_env_steps_successes") is None
    text = dumps(s)  # strict JSON: would raise on NaN
    assert json.loads(text)["mean_env_steps_successes"] is None
    with pytest.raises(ValueError, match="differ in length"):
        summarize_outcomes([True], [1, 2], ["success"])


def test_paired_ratio_uses_only_starts_where_both_succeeded():
    student = np.array([120, 300, 90, 600])
    s_ok = np.array([True, True, False, False])
    expert = np.array([100, 200, 80, 110])
    e_ok = np.array([True, True, True, True])
    r = paired_step_ratio(student, s_ok, expert, e_ok, policy="student", reference="expert")
    assert (r.policy, r.reference, r.num_pairs) == ("student", "expert", 2)
    assert r.ratio_of_means == pytest.approx(210 / 150)
    assert r.median_of_ratios == pytest.approx((1.2 + 1.5) / 2)
    assert (r.policy_mean_env_steps, r.reference_mean_env_steps) == (210.0, 150.0)
    none = paired_step_ratio(student, ~np.ones(4, bool), expert, e_ok, policy="a", reference="b")
    assert none.num_pairs == 0
    assert none.ratio_of_means is None and none.median_of_ratios is None and none.policy_mean_env_steps is None
    with pytest.raises(ValueError, match="differ in shape"):
        paired_step_ratio(student, s_ok, expert[:3], e_ok[:3], policy="a", reference="b")


def test_unpaired_ratio_uses_each_policys_own_successes():
    a = summarize_outcomes([True, True, False], [120, 300, 90], ["success", "success", "time_limit"])
    b = summarize_outcomes([True, False, True], [100, 600, 50], ["success", "time_limit", "success"])
    assert unpaired_step_ratio(a, b) == pytest.approx(210 / 75)
    none = summarize_outcomes([False], [600], ["time_limit"])
    assert unpaired_step_ratio(none, b) is None and unpaired_step_ratio(a, none) is None


def test_schema_names_are_the_documented_ones():
    """The names result.json files carry; ARCHITECTURE.md and the README's command contract list them."""
    assert [f.name for f in dataclasses.fields(OutcomeSummary)] == [
        "success",
        "mean_env_steps_successes",
        "median_env_steps_successes",
        "min_env_steps_successes",
        "max_env_steps_successes",
        "termination_causes",
    ]
    assert [f.name for f in dataclasses.fields(PairedStepRatio)] == [
        "policy",
        "reference",
        "num_pairs",
        "ratio_of_means",
        "median_of_ratios",
        "policy_mean_env_steps",
        "reference_mean_env_steps",
    ]
