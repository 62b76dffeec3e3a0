"""Statistics shared by every evaluation in the toolkit (stdlib only, importable from any layer)."""

from __future__ import annotations

import math

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
    return max(0.0, centre - half), min(1.0, centre + half)
