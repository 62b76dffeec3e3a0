"""Where `vlnav-probe linear`'s time goes, stage by stage, beside the replaced stages run in the same process.

Usage::

    python bench/linear_probe.py                       # builds the issue's profile set: 40 episodes, oracle
    python bench/linear_probe.py --dataset demos.h5 --encoder oracle --max-train-rows 5000

Prints the machine, the load average before and after, wall and CPU seconds of every stage of
``run_linear_probe`` (from its progress callback), and -- the same-run baseline -- what the two stages
that changed cost the way they were done before: the shuffled-label logistic control cross-validated
over C (now: one fit at the C chosen on the true labels) and ridge's fold eigendecompositions recomputed
for every fit (now: computed once, :class:`~vlnav_data.probes.ridge.RidgeFolds`). CPU seconds are the
figure to compare on a shared machine; wall seconds grow with the load.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def machine() -> str:
    import sklearn
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )


def build_profile_set(directory: Path) -> Path:
    from vlnav_data.collect import BuildConfig, build_dataset

    config = BuildConfig(
        out=str(directory / "probe40.h5"),
        num_episodes=40,
        encoders=("oracle",),
        expert="pursuit",
        image_size_px=32,
        device="cpu",
    )
    return build_dataset(config).path


class Clock:
    """Wall and CPU seconds between progress lines."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []
        self.label = "load rows"
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __call__(self, line: str) -> None:
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        self.rows.append((self.label, now_wall - self.wall, now_cpu - self.cpu))
        self.label, self.wall, self.cpu = line, now_wall, now_cpu

    def close(self) -> None:
        self("done")


def baseline(dataset: Path, encoder: str, max_train_rows: int, seed: int, n_folds: int) -> list[tuple[str, float]]:
    """CPU seconds of the replaced stages, the way they ran before, on the same rows and labels."""
    from vlnav_data.probes.fitting import fit_logistic
    from vlnav_data.probes.linear import REGRESSION_TARGETS, _labels
    from vlnav_data.probes.ridge import RidgeFolds
    from vlnav_data.probes.rows import load_probe_data

    data = load_probe_data(dataset, encoder=encoder, features="joint", need_state=False)
    train = data.train.subsample(max_train_rows, seed)
    labels = _labels(data, train)
    rng = np.random.default_rng(seed)
    out = []
    cpu = time.process_time()
    fits = 0
    for target in REGRESSION_TARGETS:
        if labels[target][0] is not None:
            for _ in range(2):  # true labels and the shuffled control, each from scratch
                RidgeFolds(train.features, train.episode_index, n_folds)
                fits += 1
    out.append((f"ridge folds recomputed for each of {fits} fits (before)", time.process_time() - cpu))
    for target in ("colour", "spatial_word"):
        y = labels[target][0]
        if y is None or len(np.unique(y[y != ""])) < 2:
            continue
        keep = y != ""
        cpu = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_logistic(train.features[keep], y[keep][rng.permutation(int(keep.sum()))], train.episode_index[keep])
        out.append((f"{target}: shuffled-label control cross-validated over C (before)", time.process_time() - cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="a vlnav-demos file (default: build the 40-episode set)")
    parser.add_argument("--encoder", default="oracle")
    parser.add_argument("--max-train-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mlp", action="store_true", help="skip the MLP capacity control")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    from vlnav_data.probes.linear import LinearProbeConfig, run_linear_probe

    print(f"machine: {machine()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or build_profile_set(Path(tmp))
        config = LinearProbeConfig(
            path=dataset,
            out_dir=Path(tmp) / "probe",
            encoder=args.encoder,
            max_train_rows=args.max_train_rows,
            mlp=not args.no_mlp,
            seed=args.seed,
        )
        clock = Clock()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = run_linear_probe(config, progress=clock)
        clock.close()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"dataset: {dataset} ({result.num_train} train rows, {result.num_valid} valid rows, {result.dim}-d)")
        print(f"{'stage':<58} {'wall s':>8} {'CPU s':>8}")
        for label, w, c in clock.rows:
            print(f"{label[:58]:<58} {w:8.1f} {c:8.1f}")
        print(f"{'total':<58} {wall:8.1f} {cpu:8.1f}")
        for group in ("MLP", "shuffled", "ridge", "logistic"):
            share = sum(c for label, _, c in clock.rows if group in label)
            print(f"  CPU share of stages naming '{group}': {share:.1f} s ({100 * share / cpu:.0f}%)")
        for s in result.scores:
            print(
                f"  {s.target:<13} linear {s.probe:.3f}  MLP {s.mlp}  shuffled {s.shuffled:.3f}  "
                f"baseline {s.baseline:.3f}"
            )
        if not args.no_baseline:
            print("same-run baseline (CPU s of the stages as they ran before this change):")
            for label, c in baseline(dataset, args.encoder, args.max_train_rows, args.seed, config.n_folds):
                print(f"  {label:<72} {c:8.1f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
