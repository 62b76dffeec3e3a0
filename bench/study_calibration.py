"""Calibration of the study's between-arm test: false-positive rate and power, run-level vs pooled McNemar.

Simulated studies (``vlnav_data/study/power.py``: per-start difficulty shared by every run, a random
effect per training run, 200 starts): 3, 5 and 10 runs per arm; a run-to-run spread of 0, 5 and 15
points; no true difference (both arms 50%) and true differences of 10 and 20 points (arms at 50 ± d/2).
Each cell gives the share of studies in which each test rejects at alpha = 0.05, with its Monte Carlo
standard error ``sqrt(r (1 - r) / studies)``:

- ``run-level``: :func:`vlnav_data.stats.compare_arms`'s test (Welch's t on per-run success rates);
- ``pooled McNemar``: the baseline, the test the study report used before (run k of A paired with run
  k of B on start j, one exact McNemar test over all runs x starts pairs).

Under the null the rate is the false-positive rate (should be <= alpha), otherwise the power.

Usage: ``python bench/study_calibration.py [--studies 1000] [--seed 0] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import scipy
from machine_info import cpu_name

from vlnav_data.study.power import POOLED_MCNEMAR, RUN_LEVEL, SimulatedDesign, rejection_rates

RUNS = (3, 5, 10)
SPREADS_PTS = (0, 5, 15)
DIFFERENCES_PTS = (0, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per cell")
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    machine = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    rows = []
    start = time.perf_counter()
    for diff in DIFFERENCES_PTS:
        for runs in RUNS:
            for spread in SPREADS_PTS:
                design = SimulatedDesign(
                    runs_a=runs,
                    runs_b=runs,
                    num_starts=args.starts,
                    success_a=0.5 + diff / 200.0,
                    success_b=0.5 - diff / 200.0,
                    run_spread=spread / 100.0,
                )
                rates = {
                    r.method: r
                    for r in rejection_rates(design, num_studies=args.studies, alpha=args.alpha, rng=args.seed)
                }
                rows.append(
                    {
                        "difference_pts": diff,
                        "runs": runs,
                        "run_spread_pts": spread,
                        **{
                            key: {"rate": rates[m].rate, "mc_se": rates[m].mc_se}
                            for key, m in (("run_level", RUN_LEVEL), ("pooled_mcnemar", POOLED_MCNEMAR))
                        },
                    }
                )
    wall_s = time.perf_counter() - start
    if args.json:
        print(json.dumps({"machine": machine, "studies": args.studies, "wall_s": wall_s, "rows": rows}, indent=1))
        return
    print(f"{args.studies} simulated studies per cell, {args.starts} starts, alpha {args.alpha}, seed {args.seed}")
    print("| true difference | runs per arm | run spread | run-level (compare_arms) | pooled McNemar (baseline) |")
    print("|---|---|---|---|---|")
    for r in rows:
        what = "FPR" if r["difference_pts"] == 0 else "power"
        cells = [f"{what} {r[k]['rate']:.3f} ± {r[k]['mc_se']:.3f}" for k in ("run_level", "pooled_mcnemar")]
        print(f"| {r['difference_pts']} pts | {r['runs']} | {r['run_spread_pts']} pts | {cells[0]} | {cells[1]} |")
    print(f"wall {wall_s:.1f} s, load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
