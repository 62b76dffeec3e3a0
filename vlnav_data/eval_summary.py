"""The one schema of evaluation summaries in ``result.json`` (importable from any layer).

``vlnav-expert eval`` (expert against the pursuit controller), ``vlnav-policy eval`` (student against the
expert), each DAgger iteration and each arm of a study report the same quantities with the same names,
computed here once. Every length is in **env steps** (one 30 Hz control step, counted once); a statistic
that is undefined (no success, no pair) is ``None`` (``null`` in JSON), never NaN.

One policy's episodes, :class:`OutcomeSummary`::

    "success": {"successes": k, "trials": n, "rate": k/n, "low": ..., "high": ..., "confidence": 0.95}
    "mean_env_steps_successes", "median_env_steps_successes"   float | null (null: no success)
    "min_env_steps_successes", "max_env_steps_successes"       int | null
    "termination_causes": {cause: count}                       sorted by cause

(``low``/``high``: the Wilson interval of :func:`vlnav_data.stats.wilson_interval`; ``rate`` is 0.0 for 0
trials.) A policy and its reference on the same seeded starts, :class:`PairedStepRatio`, over the starts
both solved::

    "policy", "reference"                                    who is compared with whom ("student", "expert")
    "num_pairs"                                              starts both solved
    "ratio_of_means"                                         mean policy steps / mean reference steps
    "median_of_ratios"                                       median of the per-start ratios
    "policy_mean_env_steps", "reference_mean_env_steps"     the two means over those starts

and ``unpaired_step_ratio`` (:func:`unpaired_step_ratio`): the published papers' unpaired "efficiency",
the ratio of each policy's mean over its *own* successes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlnav_data.stats import Z_95, wilson_interval

#: Keys of the success summary, in the order they are documented.
SUCCESS_KEYS = ("successes", "trials", "rate", "low", "high", "confidence")


def success_summary(successes: int, trials: int, z: float = Z_95) -> dict[str, Any]:
    """A success count with its rate and Wilson interval.

    Args:
        successes: number of successes, ``0 <= successes <= trials``.
        trials: number of trials (0 gives rate 0.0 and the interval [0, 1]).
        z: normal quantile; the default gives 95%.

    Returns:
        ``{"successes", "trials", "rate", "low", "high", "confidence"}``; ``confidence`` is the nominal
        coverage of ``z`` (0.95 for the default).

    Raises:
        ValueError: counts out of range (a programming error, not user input).
    """
    low, high = wilson_interval(int(successes), int(trials), z)
    return {
        "successes": int(successes),
        "trials": int(trials),
        "rate": successes / trials if trials else 0.0,
        "low": low,
        "high": high,
        "confidence": math.erf(z / math.sqrt(2.0)),
    }


@dataclass(frozen=True, kw_only=True)
class OutcomeSummary:
    """One policy's episodes: success with its Wilson interval, env steps over successes, causes.

    Attributes:
        success: :func:`success_summary` of the episodes.
        mean_env_steps_successes: mean env steps of the successful episodes (None without success).
        median_env_steps_successes: their median (None without success).
        min_env_steps_successes: the shortest success (None without success).
        max_env_steps_successes: the longest success (None without success).
        termination_causes: cause -> number of episodes, sorted by cause.
    """

    success: dict[str, Any]
    mean_env_steps_successes: float | None
    median_env_steps_successes: float | None
    min_env_steps_successes: int | None
    max_env_steps_successes: int | None
    termination_causes: dict[str, int]


def summarize_outcomes(
    success: Sequence[bool] | np.ndarray, num_steps: Sequence[int] | np.ndarray, termination: Sequence[str] | np.ndarray
) -> OutcomeSummary:
    """The :class:`OutcomeSummary` of a set of episodes.

    Args:
        success: ``(E,)`` per-episode success flags.
        num_steps: ``(E,)`` env steps per episode.
        termination: ``(E,)`` termination cause per episode.

    Raises:
        ValueError: the arrays differ in length (a programming error).
    """
    ok = np.asarray(success, dtype=bool).reshape(-1)
    steps = np.asarray(num_steps, dtype=np.int64).reshape(-1)
    causes = [str(t) for t in np.asarray(termination).reshape(-1)]
    if not ok.size == steps.size == len(causes):
        raise ValueError(f"outcome arrays differ in length: {ok.size}, {steps.size}, {len(causes)}")
    won = steps[ok]
    some = bool(won.size)
    return OutcomeSummary(
        success=success_summary(int(ok.sum()), int(ok.size)),
        mean_env_steps_successes=float(won.mean()) if some else None,
        median_env_steps_successes=float(np.median(won)) if some else None,
        min_env_steps_successes=int(won.min()) if some else None,
        max_env_steps_successes=int(won.max()) if some else None,
        termination_causes=dict(sorted(Counter(causes).items())),
    )


@dataclass(frozen=True, kw_only=True)
class PairedStepRatio:
    """Env steps of a policy relative to a reference on the same starts, over the starts both solved.

    Attributes:
        policy: name of the numerator (``student``, ``expert``).
        reference: name of the denominator (``expert``, ``pursuit``).
        num_pairs: starts where both succeeded.
        ratio_of_means: mean policy steps / mean reference steps over those starts (None without pairs).
        median_of_ratios: median of the per-start ratios (None without pairs).
        policy_mean_env_steps: the policy's mean env steps over those starts (None without pairs).
        reference_mean_env_steps: the reference's (None without pairs).
    """

    policy: str
    reference: str
    num_pairs: int
    ratio_of_means: float | None
    median_of_ratios: float | None
    policy_mean_env_steps: float | None
    reference_mean_env_steps: float | None


def paired_step_ratio(
    steps: Sequence[int] | np.ndarray,
    success: Sequence[bool] | np.ndarray,
    reference_steps: Sequence[int] | np.ndarray,
    reference_success: Sequence[bool] | np.ndarray,
    *,
    policy: str,
    reference: str,
) -> PairedStepRatio:
    """Compare episode lengths only where both policies succeeded from the same start.

    Args:
        steps: ``(E,)`` env steps of the policy, start ``i`` at index ``i``.
        success: ``(E,)`` its success flags.
        reference_steps: ``(E,)`` env steps of the reference from the same ``E`` starts.
        reference_success: ``(E,)`` its success flags.
        policy: name of the policy (recorded).
        reference: name of the reference (recorded).

    Raises:
        ValueError: the arrays differ in shape (they are not paired: a programming error).
    """
    a = np.asarray(steps, dtype=np.float64)
    b = np.asarray(reference_steps, dtype=np.float64)
    ok_a, ok_b = np.asarray(success, dtype=bool), np.asarray(reference_success, dtype=bool)
    if not a.shape == b.shape == ok_a.shape == ok_b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape}, {ok_a.shape} vs {b.shape}, {ok_b.shape}")
    both = ok_a & ok_b
    if not both.any():
        return PairedStepRatio(
            policy=policy,
            reference=reference,
            num_pairs=0,
            ratio_of_means=None,
            median_of_ratios=None,
            policy_mean_env_steps=None,
            reference_mean_env_steps=None,
        )
    pa, pb = a[both], b[both]
    return PairedStepRatio(
        policy=policy,
        reference=reference,
        num_pairs=int(both.sum()),
        ratio_of_means=float(pa.mean() / pb.mean()),
        median_of_ratios=float(np.median(pa / pb)),
        policy_mean_env_steps=float(pa.mean()),
        reference_mean_env_steps=float(pb.mean()),
    )


def unpaired_step_ratio(policy: OutcomeSummary, reference: OutcomeSummary) -> float | None:
    """Mean env steps over the policy's own successes / the reference's (the published, unpaired ratio).

    Returns:
        The ratio, or None when either has no success.
    """
    a, b = policy.mean_env_steps_successes, reference.mean_env_steps_successes
    return None if a is None or b is None else a / b


def format_paired_ratio(ratio: PairedStepRatio) -> str:
    """One phrase for a paired step ratio: ``paired ratio 1.12x over 37 pairs``, or, without a start both
    solved, ``no paired ratio: no start solved by both student and expert`` (never ``n/ax``)."""
    if ratio.num_pairs == 0 or ratio.ratio_of_means is None:
        return f"no paired ratio: no start solved by both {ratio.policy} and {ratio.reference}"
    pairs = "pair" if ratio.num_pairs == 1 else "pairs"
    return f"paired ratio {ratio.ratio_of_means:.2f}x over {ratio.num_pairs} {pairs}"
