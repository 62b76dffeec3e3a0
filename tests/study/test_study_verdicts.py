"""The study's verdict column: compare_arms per pair, Holm over its p-values, 'too few runs' said plainly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vlnav_data.stats import compare_arms, holm_adjust
from vlnav_data.study.analysis import CellRecords, _comparisons
from vlnav_data.study.report import comparison_table, conditional_table, significance_sentences

NUM_STARTS = 200


def _arm(name: str, rates: list[float], seed: int) -> tuple[dict, list[CellRecords]]:
    rng = np.random.default_rng(seed)
    key = ("d", name, "joint", "paper")
    cells = [
        CellRecords(
            arm=key,
            train_seed=k,
            cell_id=f"{name}{k}",
            student=SimpleNamespace(success=rng.permutation(np.arange(NUM_STARTS) < round(r * NUM_STARTS))),
            expert=None,
        )
        for k, r in enumerate(rates)
    ]
    arm = {"label": name, "dataset": "d", "encoder": name, "features": "joint", "recipe": "paper"}
    return arm | {"train_seeds": list(range(len(rates)))}, cells


def _analysis(arms_rates: dict[str, list[float]], alpha: float = 0.05) -> dict:
    arms, by_arm = [], {}
    for i, (name, rates) in enumerate(arms_rates.items()):
        arm, cells = _arm(name, rates, i)
        arms.append(arm)
        by_arm[cells[0].arm] = cells
    return {"comparisons": _comparisons(arms, by_arm, alpha), "alpha": alpha}, by_arm


def test_three_identical_runs_per_arm_are_too_few_for_any_conclusion():
    # No spread within an arm: the exact permutation test decides, and 3 vs 3 runs cannot go below 0.1.
    analysis, _ = _analysis({"good": [0.9] * 3, "bad": [0.1] * 3})
    (c,) = analysis["comparisons"]
    assert c["method"] == "exact permutation over runs"
    assert c["smallest_p_value"] == pytest.approx(0.1) == c["p_value"]
    assert (c["verdict"], c["significant"]) == ("too few runs", False)
    text = significance_sentences(analysis)
    assert "**Too few runs for any conclusion** on 1 of 1 pairs: with 3 vs 3 runs" in text
    assert "the smallest p-value the test can produce is 0.100" in text
    assert "*too few runs*" in comparison_table(analysis)
    assert "| no |" not in comparison_table(analysis)


def test_holm_runs_over_compare_arms_p_values_and_the_verdicts_follow():
    rates = {
        "oracle": [0.97, 0.99, 0.95, 0.98, 0.96],
        "siglip": [0.55, 0.62, 0.48, 0.60, 0.52],
        "clip": [0.50, 0.66, 0.41, 0.58, 0.47],
    }
    analysis, by_arm = _analysis(rates)
    rows = analysis["comparisons"]
    assert [(r["a"], r["b"]) for r in rows] == [("oracle", "siglip"), ("oracle", "clip"), ("siglip", "clip")]
    stacks = {k[1]: np.stack([c.student.success for c in v]).astype(int) for k, v in by_arm.items()}
    raw = [compare_arms(stacks[r["a"]], stacks[r["b"]]).p_value for r in rows]
    assert [r["p_value"] for r in rows] == pytest.approx(raw)
    assert [r["p_holm"] for r in rows] == pytest.approx(holm_adjust(raw))
    assert [r["verdict"] for r in rows] == ["yes", "yes", "no"]
    assert rows[0]["run_success_a"] == pytest.approx(rates["oracle"])
    assert rows[0]["probability_of_improvement"] == 1.0
    text = significance_sentences(analysis)
    assert "Holm's correction over 3 pairs (training runs as the unit): `oracle` > `siglip`" in text
    assert "Not significant (these runs cannot tell them apart; more runs might): `siglip` vs `clip`" in text
    table = conditional_table(analysis)
    assert len(table.splitlines()) == 2 + 3 and "| `siglip` | `clip` | 0, 1, 2, 3, 4 |" in table
