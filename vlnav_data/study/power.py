"""Simulated encoder studies: how often a comparison rejects, with and without a true difference.

One model of a study, shared by ``bench/study_calibration.py``, the calibration test and
``vlnav-study plan`` (:mod:`vlnav_data.study.power_plan`):

- each simulated study draws ``num_starts`` starts with a difficulty ``z_j ~ N(0, start_spread_logit)``
  on the logit scale, shared by every run of both arms (the study's fixed test set);
- each training run ``i`` of an arm draws an effect ``r_i ~ N(0, tau)``; run ``i`` succeeds on start
  ``j`` with probability ``sigmoid(c + z_j + r_i)``;
- the arm's offset ``c`` and ``tau`` are solved (Gauss-Hermite quadrature, ``scipy.optimize.brentq``)
  so that the arm's mean success is ``success`` and the standard deviation of a run's expected
  success rate across runs is ``run_spread`` (the "points" a retraining moves a rate; a run's observed
  rate adds the binomial noise of its starts on top).

Two tests are applied to every simulated study: the run-level test of
:func:`vlnav_data.stats.compare_arms` (the same function, :func:`vlnav_data.stats.run_level_p_values`)
and the pooled McNemar test the study report used before (run k of A paired with run k of B on
start j, one table over all pairs, exact McNemar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vlnav_data.stats import run_level_p_values

#: Per-start difficulty on the logit scale (sd): starts range from easy to hard, as in the shipped study.
START_SPREAD_LOGIT = 1.5
RUN_LEVEL = "run-level (compare_arms)"
POOLED_MCNEMAR = "pooled McNemar (runs x starts)"


@dataclass(frozen=True, kw_only=True)
class SimulatedDesign:
    """A two-arm study design and its true parameters (rates as fractions in (0, 1)).

    Attributes:
        runs_a, runs_b: training runs per arm.
        num_starts: evaluation starts, shared by every run.
        success_a, success_b: each arm's mean success over runs and starts.
        run_spread: sd across runs of a run's expected success rate (0.05 = 5 points).
        start_spread_logit: sd of the per-start difficulty on the logit scale.
    """

    runs_a: int
    runs_b: int
    num_starts: int
    success_a: float
    success_b: float
    run_spread: float
    start_spread_logit: float = START_SPREAD_LOGIT


@dataclass(frozen=True, kw_only=True)
class RejectionRate:
    """How often a test rejected at ``alpha`` over ``num_studies`` simulated studies."""

    method: str
    rate: float
    mc_se: float
    num_studies: int


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@lru_cache(maxsize=256)
def arm_parameters(success: float, run_spread: float, start_spread_logit: float) -> tuple[float, float]:
    """``(c, tau)``: logit offset and run-effect sd giving mean ``success`` and sd ``run_spread`` across runs.

    Raises:
        ValueError: ``success`` not in (0, 1), ``run_spread`` < 0, or a spread no run effect can give at
            this success (the rate of a run is bounded by 0 and 1).
    """
    from scipy.optimize import brentq

    if not 0.0 < success < 1.0:
        raise ValueError(f"success must be in (0, 1), got {success}")
    if run_spread < 0.0:
        raise ValueError(f"run spread must be >= 0, got {run_spread}")

    def offset(tau: float) -> float:
        total = math.hypot(start_spread_logit, tau)  # z + r is normal: one quadrature for the mean
        return brentq(lambda c: float(_WEIGHTS @ _sigmoid(c + total * _NODES)) - success, -60.0, 60.0)

    def spread(tau: float) -> float:
        c = offset(tau)
        g = _sigmoid(c + tau * _NODES[:, None] + start_spread_logit * _NODES[None, :]) @ _WEIGHTS  # E_z per r
        return float(np.sqrt(_WEIGHTS @ (g - success) ** 2))

    if run_spread == 0.0:
        return offset(0.0), 0.0
    top = 30.0
    if spread(top) <= run_spread:
        raise ValueError(
            f"a run spread of {100 * run_spread:.1f} points cannot occur at {100 * success:.1f}% mean success "
            f"(at most about {100 * spread(top):.0f} points: run rates stay within 0-100%)"
        )
    tau = brentq(lambda t: spread(t) - run_spread, 0.0, top, xtol=1e-6)
    return offset(tau), tau


def simulate_outcomes(
    design: SimulatedDesign, num_studies: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Bool outcomes ``(num_studies, runs_a, starts)`` and ``(num_studies, runs_b, starts)`` of simulated studies."""
    z = rng.normal(0.0, design.start_spread_logit, size=(num_studies, 1, design.num_starts))
    out = []
    for runs, success in ((design.runs_a, design.success_a), (design.runs_b, design.success_b)):
        c, tau = arm_parameters(success, design.run_spread, design.start_spread_logit)
        r = rng.normal(0.0, tau, size=(num_studies, runs, 1))
        out.append(rng.random((num_studies, runs, design.num_starts)) < _sigmoid(c + z + r))
    return out[0], out[1]


def pooled_mcnemar_p_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The old report's test, one p-value per study: run k of A paired with run k of B on every start.

    Exact McNemar on the pooled discordant pairs (``2 * Binom(n, 1/2).cdf(min)``, capped at 1; the
    numbers of :func:`vlnav_data.stats.mcnemar_exact`). Needs as many runs in both arms.
    """
    from scipy.stats import binom

    if a.shape != b.shape:
        raise ValueError(f"the pooled McNemar test pairs run k with run k: shapes {a.shape} and {b.shape}")
    a_only = (a & ~b).sum((1, 2))
    b_only = (~a & b).sum((1, 2))
    n = a_only + b_only
    p = np.minimum(1.0, 2.0 * binom.cdf(np.minimum(a_only, b_only), n, 0.5))
    return np.where(n == 0, 1.0, p)


def rejection_rates(
    design: SimulatedDesign,
    *,
    num_studies: int,
    alpha: float = 0.05,
    rng: np.random.Generator | int = 0,
    pooled: bool = True,
    batch: int = 100,
) -> list[RejectionRate]:
    """Share of simulated studies in which each test rejects at ``alpha``, with its Monte Carlo s.e.

    Under the null (``success_a == success_b``) that is the false-positive rate, otherwise the power.
    The pooled McNemar test is included when ``pooled`` and both arms have as many runs.
    """
    gen = np.random.default_rng(rng)
    run_rejects, pooled_rejects = 0, 0
    use_pooled = pooled and design.runs_a == design.runs_b
    done = 0
    while done < num_studies:
        size = min(batch, num_studies - done)
        a, b = simulate_outcomes(design, size, gen)
        p, _ = run_level_p_values(a.sum(2), b.sum(2), design.num_starts)
        run_rejects += int((p <= alpha).sum())
        if use_pooled:
            pooled_rejects += int((pooled_mcnemar_p_values(a, b) <= alpha).sum())
        done += size
    out = [_rate(RUN_LEVEL, run_rejects, num_studies)]
    if use_pooled:
        out.append(_rate(POOLED_MCNEMAR, pooled_rejects, num_studies))
    return out


def _rate(method: str, rejects: int, n: int) -> RejectionRate:
    rate = rejects / n
    return RejectionRate(method=method, rate=rate, mc_se=math.sqrt(max(rate * (1.0 - rate), 1e-12) / n), num_studies=n)
