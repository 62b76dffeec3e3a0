"""Statistics shared by every evaluation in the toolkit (importable from any layer).

Standard library only, except :func:`mcnemar_exact`, which imports scipy inside the function.
Wilson intervals for one proportion; for two policies evaluated on the same starts, the paired 2x2
table, McNemar's exact test, Holm's correction over a family of tests, and Newcombe's interval for
the paired difference; the across-seed mean and spread.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` of a binomial proportion.

    ``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z/(1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)``. Unlike the
    normal approximation the paper used, it stays inside [0, 1] and is not degenerate at 0% or 100%.

    Args:
        successes: number of successes, ``0 <= successes <= trials``.
        trials: number of trials; 0 gives the uninformative interval ``(0.0, 1.0)``.
        z: normal quantile; the default gives 95%.

    Raises:
        ValueError: counts out of range (a programming error, not user input).
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got successes={successes}, trials={trials}")
    if trials == 0:
        return 0.0, 1.0
    n = float(trials)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
    # At 0 and n successes the bound is exactly 0 (resp. 1); floating point would leave it 1e-16 off.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def paired_table(a_success: Sequence[object], b_success: Sequence[object]) -> tuple[int, int, int, int]:
    """The 2x2 table of two paired binary outcomes: ``(both, a_only, b_only, neither)``.

    Args:
        a_success: outcome of A on each pair (anything truthy counts as a success).
        b_success: outcome of B on the same pairs, in the same order.

    Returns:
        ``(n11, n10, n01, n00)``: both succeeded, only A, only B, neither.

    Raises:
        ValueError: the sequences differ in length (a programming error: they are not paired).
    """
    if len(a_success) != len(b_success):
        raise ValueError(f"paired outcomes differ in length: {len(a_success)} vs {len(b_success)}")
    n11 = n10 = n01 = n00 = 0
    for a, b in zip(a_success, b_success, strict=True):
        if a and b:
            n11 += 1
        elif a:
            n10 += 1
        elif b:
            n01 += 1
        else:
            n00 += 1
    return n11, n10, n01, n00


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar test of paired binary outcomes.

    Only the discordant pairs carry information: under the null hypothesis that A and B succeed
    equally often, each of the ``n = a_only + b_only`` discordant pairs favours A with probability 1/2,
    so ``a_only ~ Binomial(n, 1/2)``. The two-sided p-value is the exact binomial test
    (``scipy.stats.binomtest``), which for p = 1/2 equals ``min(1, 2 * P(X <= min(a_only, b_only)))``.
    With no discordant pair the p-value is 1.

    Args:
        a_only: pairs where only A succeeded.
        b_only: pairs where only B succeeded.

    Returns:
        The p-value in (0, 1].

    Raises:
        ValueError: a negative count.
    """
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {a_only}, {b_only}")
    n = int(a_only) + int(b_only)
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(int(a_only), n, 0.5, alternative="two-sided").pvalue))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    Sort the m p-values ascending, ``p_(1) <= ... <= p_(m)``; the adjusted value of the i-th smallest
    is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. A hypothesis is rejected at level alpha when its
    adjusted p-value is <= alpha, which is Holm's procedure (Holm 1979, Scand. J. Statist. 6:65-70).

    Args:
        p_values: the raw p-values, in any order.

    Returns:
        The adjusted p-values in the input order.

    Raises:
        ValueError: a value outside [0, 1] or NaN.
    """
    values = [float(p) for p in p_values]
    for p in values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be in [0, 1], got {p}")
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def paired_difference_interval(
    both: int, a_only: int, b_only: int, neither: int, z: float = Z_95
) -> tuple[float, float, float]:
    """Difference of two paired proportions, ``p_A - p_B``, with Newcombe's hybrid score interval.

    Newcombe (1998), "Improved confidence intervals for the difference between binomial proportions
    based on paired data", Statistics in Medicine 17:2635-2650, method 10 (no continuity correction).
    With ``n`` pairs, ``p_A = (both + a_only)/n``, ``p_B = (both + b_only)/n`` and their Wilson intervals
    ``(l_A, u_A)``, ``(l_B, u_B)``; ``phi`` estimates the correlation of the two outcomes from
    ``A = both*neither - a_only*b_only`` with Newcombe's correction: ``(A - n/2) / sqrt(r1 r2 c1 c2)`` when
    ``A > n/2``, 0 when ``0 <= A <= n/2``, ``A / sqrt(r1 r2 c1 c2)`` when ``A < 0`` (0 when a margin is
    empty; ``r1, r2, c1, c2`` are the row and column totals). Then

    ``low  = D - sqrt((p_A - l_A)^2 - 2 phi (p_A - l_A)(u_B - p_B) + (u_B - p_B)^2)``,
    ``high = D + sqrt((u_A - p_A)^2 - 2 phi (u_A - p_A)(p_B - l_B) + (p_B - l_B)^2)``.

    Chosen over the Wald interval because it keeps its coverage near 0% and 100% success (where encoder
    comparisons often sit), stays inside [-1, 1], and uses the pairing: it is never wider than the
    unpaired Newcombe interval when the outcomes are positively correlated.

    Args:
        both, a_only, b_only, neither: the paired 2x2 table (:func:`paired_table`).
        z: normal quantile; the default gives 95%.

    Returns:
        ``(difference, low, high)``; ``(0.0, -1.0, 1.0)`` for an empty table.

    Raises:
        ValueError: a negative count.
    """
    cells = (both, a_only, b_only, neither)
    if any(c < 0 for c in cells):
        raise ValueError(f"table counts must be >= 0, got {cells}")
    n = sum(cells)
    if n == 0:
        return 0.0, -1.0, 1.0
    p_a = (both + a_only) / n
    p_b = (both + b_only) / n
    l_a, u_a = wilson_interval(both + a_only, n, z)
    l_b, u_b = wilson_interval(both + b_only, n, z)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    cross = both * neither - a_only * b_only
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    else:
        phi = cross / math.sqrt(margins)
    diff = p_a - p_b
    dl = math.sqrt(max(0.0, (p_a - l_a) ** 2 - 2.0 * phi * (p_a - l_a) * (u_b - p_b) + (u_b - p_b) ** 2))
    du = math.sqrt(max(0.0, (u_a - p_a) ** 2 - 2.0 * phi * (u_a - p_a) * (p_b - l_b) + (p_b - l_b) ** 2))
    return diff, max(-1.0, diff - dl), min(1.0, diff + du)


@dataclass(frozen=True)
class MeanSpread:
    """Mean and spread of a few numbers (e.g. one success rate per training seed).

    Attributes:
        mean: arithmetic mean (NaN for no values).
        std: sample standard deviation (``n - 1`` in the denominator; NaN for fewer than 2 values).
        min: smallest value (NaN for none).
        max: largest value (NaN for none).
        n: number of values.
    """

    mean: float
    std: float
    min: float
    max: float
    n: int


def mean_spread(values: Sequence[float]) -> MeanSpread:
    """Across-seed mean and spread: mean, sample standard deviation, min and max.

    Args:
        values: one number per seed.

    Returns:
        A :class:`MeanSpread`.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        nan = float("nan")
        return MeanSpread(mean=nan, std=nan, min=nan, max=nan, n=0)
    mean = statistics.fmean(xs)
    std = statistics.stdev(xs) if n > 1 else float("nan")
    return MeanSpread(mean=mean, std=std, min=min(xs), max=max(xs), n=n)
