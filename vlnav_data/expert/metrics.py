"""Evaluation summaries for the expert: Wilson interval, steps over successes, paired step ratio.

Every length is in **env steps** (one 30 Hz control step, counted once by the simulator's
``info["env_steps"]``); nothing here rescales a step count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from vlnav_data.stats import wilson_interval


def summarize_episodes(success: Sequence[bool], num_steps: Sequence[int], termination: Sequence[str]) -> dict:
    """Success rate with its Wilson 95% CI, env steps over successes, termination causes.

    Args:
        success: ``(E,)`` per-episode success flags.
        num_steps: ``(E,)`` env steps per episode.
        termination: ``(E,)`` termination cause per episode.

    Returns:
        dict with ``num_episodes``, ``successes``, ``success_rate``, ``success_rate_ci95`` ``[low, high]``,
        ``mean_env_steps_successes`` (None without successes), ``median_env_steps_successes``,
        ``min_env_steps_successes``, ``max_env_steps_successes``, ``termination_causes`` (cause -> count).
    """
    ok = np.asarray(success, dtype=bool)
    steps = np.asarray(num_steps, dtype=np.int64)
    k, n = int(ok.sum()), int(ok.size)
    low, high = wilson_interval(k, n)
    won = steps[ok]
    return {
        "num_episodes": n,
        "successes": k,
        "success_rate": k / n if n else 0.0,
        "success_rate_ci95": [low, high],
        "mean_env_steps_successes": float(won.mean()) if k else None,
        "median_env_steps_successes": float(np.median(won)) if k else None,
        "min_env_steps_successes": int(won.min()) if k else None,
        "max_env_steps_successes": int(won.max()) if k else None,
        "termination_causes": dict(sorted(Counter(str(t) for t in termination).items())),
    }


def paired_step_ratio(
    steps_a: Sequence[int], success_a: Sequence[bool], steps_b: Sequence[int], success_b: Sequence[bool]
) -> dict:
    """Step ratio of policy A to policy B on the same start states, over episodes both solved.

    Returns:
        dict with ``num_paired`` (episodes both succeeded), ``ratio_of_means`` (mean A steps / mean B
        steps over those episodes), ``mean_of_ratios`` (mean per-episode A/B), both None when no pair.
    """
    a, b = np.asarray(steps_a, dtype=np.float64), np.asarray(steps_b, dtype=np.float64)
    both = np.asarray(success_a, dtype=bool) & np.asarray(success_b, dtype=bool)
    if not both.any():
        return {"num_paired": 0, "ratio_of_means": None, "mean_of_ratios": None}
    return {
        "num_paired": int(both.sum()),
        "ratio_of_means": float(a[both].mean() / b[both].mean()),
        "mean_of_ratios": float((a[both] / b[both]).mean()),
    }
