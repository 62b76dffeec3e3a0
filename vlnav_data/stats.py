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


#: How :func:`compare_arms` tested: Welch's t-test on per-run success, or the exact permutation test over run labels.
WELCH = "welch-t over runs"
PERMUTATION = "exact permutation over runs"
NO_TEST = "no test (an arm has one run)"


@dataclass(frozen=True)
class ArmComparison:
    """Two arms compared with the training run as the unit (:func:`compare_arms`).

    Attributes:
        difference: mean success of A minus that of B (each the mean of its runs' success rates).
        low, high: the ``1 - alpha`` interval of ``difference`` (between-run variance included).
        p_value: two-sided p-value of "A and B succeed equally often, run for run".
        probability_of_improvement: P(X_a > X_b) + P(X_a = X_b)/2 over per-run success rates.
        probability_of_improvement_low, probability_of_improvement_high: its ``1 - alpha`` stratified
            bootstrap interval (percentile; runs resampled within each arm).
        method: :data:`WELCH`, :data:`PERMUTATION` or :data:`NO_TEST` (p = 1, interval (-1, 1)).
        smallest_p_value: the smallest p-value ``method`` can produce with these run counts (0 for Welch's
            test; ``2 / C(n_a + n_b, n_a)`` for the exact permutation test; 1 without a test).
        num_runs_a, num_runs_b, num_starts: the design.
        run_success_a, run_success_b: success rate of each run (the spread the verdict is about).
        alpha: the level of the intervals.
    """

    difference: float
    low: float
    high: float
    p_value: float
    probability_of_improvement: float
    probability_of_improvement_low: float
    probability_of_improvement_high: float
    method: str
    smallest_p_value: float
    num_runs_a: int
    num_runs_b: int
    num_starts: int
    run_success_a: tuple[float, ...]
    run_success_b: tuple[float, ...]
    alpha: float


def permutation_p_floor(num_runs_a: int, num_runs_b: int) -> float:
    """Smallest two-sided p-value of an exact permutation test over run labels: ``2 / C(n_a + n_b, n_a)``.

    0.1 for 3 runs against 3, 0.0079 for 5 against 5, 1.1e-5 for 10 against 10: with 3 runs per arm no
    assumption-free test can reject at 0.05, and Holm over ``m`` pairs needs the floor below ``alpha / m``.
    """
    return min(1.0, 2.0 / math.comb(int(num_runs_a) + int(num_runs_b), int(num_runs_a)))


def run_level_p_values(successes_a: object, successes_b: object, num_starts: int) -> tuple[object, list[str]]:
    """Two-sided p-values of per-run success counts, one study per row (the test of :func:`compare_arms`).

    Args:
        successes_a: int array ``(studies, runs_a)``: successes of each run of A over ``num_starts`` starts.
        successes_b: int array ``(studies, runs_b)``, the same starts.
        num_starts: starts per run.

    Returns:
        ``(p_values, methods)``: float array ``(studies,)`` and the method of each row.
    """
    import numpy as np
    from scipy import stats

    ka = np.asarray(successes_a, dtype=np.int64)
    kb = np.asarray(successes_b, dtype=np.int64)
    na, nb = ka.shape[1], kb.shape[1]
    p = np.ones(ka.shape[0])
    # Variances from integer counts: exact zero when every run of an arm succeeded equally often.
    ssa = na * (ka * ka).sum(1) - ka.sum(1) ** 2  # = na (na - 1) * sample variance of the counts
    ssb = nb * (kb * kb).sum(1) - kb.sum(1) ** 2
    welch = (na > 1) & (nb > 1) & ((ssa > 0) | (ssb > 0))
    if np.any(welch):
        va = ssa[welch] / (na * (na - 1) * num_starts**2) / na  # variance of the mean of A's rates
        vb = ssb[welch] / (nb * (nb - 1) * num_starts**2) / nb
        diff = (ka[welch].mean(1) - kb[welch].mean(1)) / num_starts
        df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
        p[welch] = 2.0 * stats.t.sf(np.abs(diff) / np.sqrt(va + vb), df)
    if na < 2 or nb < 2:
        return p, [NO_TEST] * len(p)
    methods = [WELCH if w else PERMUTATION for w in welch]
    for i in np.flatnonzero(~welch):
        if not np.array_equal(np.sort(ka[i]), np.sort(kb[i])):  # the same runs on both sides: p = 1
            res = stats.permutation_test(
                (ka[i] / num_starts, kb[i] / num_starts),
                lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                permutation_type="independent",
                vectorized=True,
                n_resamples=np.inf,
            )
            p[i] = min(1.0, float(res.pvalue))
    return p, methods


def _probability_of_improvement(x: object, y: object, axis: int = -1) -> object:
    import numpy as np

    x = np.moveaxis(np.asarray(x), axis, -1)[..., :, None]
    y = np.moveaxis(np.asarray(y), axis, -1)[..., None, :]
    return (x > y).mean((-2, -1)) + 0.5 * (x == y).mean((-2, -1))


def compare_arms(a: object, b: object, *, alpha: float = 0.05, rng: object = 0) -> ArmComparison:
    """Compare two arms (e.g. encoders) whose training runs were evaluated on the same starts.

    **The unit is the training run.** What a user can repeat, and wants a verdict about, is training a
    policy on an encoder's features; the starts are the study's fixed test set, shared by every run of
    both arms. Each run is summarised by its success rate over the starts, and the two samples of run
    rates are compared. Pooling (run k of A, run k of B, start j) into one McNemar table instead treats
    run-to-run variation as if it did not exist: with no true difference its false-positive rate grows
    with the spread between runs (``bench/study_calibration.py``, ``bench/RESULTS.md``).

    - **p-value**: Welch's t-test on the per-run success rates (unequal variances, Welch-Satterthwaite
      degrees of freedom, ``scipy.stats.t``; the numbers of ``scipy.stats.ttest_ind(equal_var=False)``,
      computed from integer counts so that identical runs give an exact zero variance). Colas, Sigaud
      and Oudeyer (2019, "A Hitchhiker's Guide to Statistical Comparisons of RL Algorithms") found it the
      best-calibrated of the usual tests at 2-20 runs. Assumption: runs are independent and each arm's
      run rates roughly normal (a rate is a mean over hundreds of starts). When a test is impossible
      (fewer than 2 runs in an arm) or the runs of both arms have no spread at all, the exact permutation
      test over run labels (``scipy.stats.permutation_test``) is used instead: assumption-free but
      discrete, its smallest p-value is :func:`permutation_p_floor` (0.1 for 3 runs against 3).
    - **interval** of the difference: Welch's t interval at ``1 - alpha`` (between-run variance, the
      t quantile at few degrees of freedom: wide with 3 runs, as it must be); with the permutation
      test, the stratified bootstrap percentile interval over runs.
    - **probability of improvement** ``P(X_a > X_b) + P(X_a = X_b)/2`` over per-run rates (Agarwal et
      al. 2021, "Deep RL at the edge of the statistical precipice"; the Mann-Whitney U over
      ``n_a * n_b``) with a stratified bootstrap interval (``scipy.stats.bootstrap``, percentile, runs
      resampled within each arm, 2000 resamples). Descriptive: bootstrap intervals are too narrow with
      very few runs.
    - **the starts** are shared, so per-start difficulty is common to both arms and cancels in the
      difference; they are not a sampling unit: the verdict is about these starts' population only in
      so far as 200 starts represent it.

    Calibration (``bench/RESULTS.md``, tests/stats): the false-positive rate stays at or below ``alpha``
    at run spreads of 0-15 points with 3, 5 and 10 runs per arm. Power is the price: with 3 runs per arm
    a 10-point difference is detected 28% of the time at a 5-point run spread and 8% at 15 points (10
    runs: 95% and 27%), and after Holm's correction over many pairs less still; ``vlnav-study plan`` says
    how many runs a target difference needs.

    ``rliable`` (Agarwal et al.'s library) is not used: version 1.2.0 pulls in ``arch``, ``pandas``,
    ``seaborn`` and ``absl-py`` for one bootstrap that ``scipy.stats.bootstrap`` already provides.

    Args:
        a: 0/1 array ``(runs_a, starts)``: success of each run of A on each start.
        b: 0/1 array ``(runs_b, starts)`` on the same starts, in the same order.
        alpha: ``1 - alpha`` is the level of the intervals (the test's level when the caller compares).
        rng: seed or ``numpy.random.Generator`` of the bootstrap.

    Raises:
        ValueError: not 2-D 0/1 arrays, no run, no start, or different starts.
    """
    import numpy as np
    from scipy import stats

    xa, xb = np.asarray(a), np.asarray(b)
    if xa.ndim != 2 or xb.ndim != 2 or xa.shape[0] < 1 or xb.shape[0] < 1 or xa.shape[1] < 1:
        raise ValueError(f"need 0/1 arrays (runs, starts) with runs >= 1, got shapes {xa.shape} and {xb.shape}")
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"the arms ran different starts: {xa.shape[1]} vs {xb.shape[1]}")
    if not (np.isin(xa, (0, 1)).all() and np.isin(xb, (0, 1)).all()):
        raise ValueError("outcomes must be 0/1 (or bool)")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    num_starts = xa.shape[1]
    ka, kb = xa.sum(1).astype(np.int64), xb.sum(1).astype(np.int64)
    ra, rb = ka / num_starts, kb / num_starts
    na, nb = ra.size, rb.size
    p, methods = run_level_p_values(ka[None], kb[None], num_starts)
    diff = float(ra.mean() - rb.mean())
    generator = np.random.default_rng(rng)
    boot = dict(n_resamples=2000, confidence_level=1.0 - alpha, method="percentile", vectorized=True, rng=generator)
    if methods[0] == WELCH:
        va, vb = ra.var(ddof=1) / na, rb.var(ddof=1) / nb
        df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
        half = float(stats.t.ppf(1.0 - alpha / 2.0, df) * math.sqrt(va + vb))
        low, high, floor = diff - half, diff + half, 0.0
    elif methods[0] == NO_TEST:
        low, high, floor = -1.0, 1.0, 1.0
    else:
        ci = stats.bootstrap((ra, rb), lambda x, y, axis: x.mean(axis) - y.mean(axis), **boot).confidence_interval
        low, high, floor = float(ci.low), float(ci.high), permutation_p_floor(na, nb)
    poi = float(_probability_of_improvement(ra, rb))
    if methods[0] == NO_TEST:
        poi_low, poi_high = 0.0, 1.0
    else:
        poi_ci = stats.bootstrap((ra, rb), _probability_of_improvement, **boot).confidence_interval
        poi_low, poi_high = float(poi_ci.low), float(poi_ci.high)
    return ArmComparison(
        difference=diff,
        low=max(-1.0, low),
        high=min(1.0, high),
        p_value=float(p[0]),
        probability_of_improvement=poi,
        probability_of_improvement_low=poi_low,
        probability_of_improvement_high=poi_high,
        method=methods[0],
        smallest_p_value=floor,
        num_runs_a=int(na),
        num_runs_b=int(nb),
        num_starts=int(num_starts),
        run_success_a=tuple(float(x) for x in ra),
        run_success_b=tuple(float(x) for x in rb),
        alpha=float(alpha),
    )
