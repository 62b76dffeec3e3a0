"""The ``pixels`` recipe sweep: how the instruction enters the conv policy, and the learning-rate schedule.

Each variant is the shipped ``pixels`` recipe with ``conditioning`` (``concat``: the text features join the
image features after the trunk; ``film``: they also scale and shift every conv layer's channels) and
``lr_schedule`` (``constant`` or ``cosine``) set, trained with ``vlnav_data.policy.train_policy`` on
``DATASET`` (train/valid masks; the checkpoint with most successes on 10 validation starts, as the recipe
says) and evaluated in closed loop on ``--episodes`` unseen starts, paired with the dataset's expert on the
same starts (the same-run reference). Prints, per variant: success with its 95% interval, failures that
entered a wrong sphere, the kept step, training wall time and samples/s, the machine and its load; writes
``OUT_DIR/<variant>/result.json`` (training) and ``OUT_DIR/<variant>_eval/eval_meta.json`` (evaluation).

Usage (the issue-28 dataset: 150 colour episodes at 64 px)::

    vlnav-data build --out color64.h5 --num-episodes 150 --instructions color --image-size-px 64 \\
        --encoder oracle --encoder siglip-tiny-random --device cpu
    python bench/pixels_sweep.py color64.h5 --variant film-cosine --variant concat-cosine --out-dir sweep
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from machine_info import torch_cpu_machine

from vlnav_data.jsonio import write_json_atomic
from vlnav_data.policy import fit
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.policy.train import TrainConfig, train_policy

VARIANTS = {
    f"{c}-{s}": {"conditioning": c, "lr_schedule": s} for c in ("concat", "film") for s in ("constant", "cosine")
}


def run_variant(dataset: Path, variant: str, args: argparse.Namespace) -> str:
    name = f"sweep-{variant}"
    fit.RECIPES[name] = dataclasses.replace(fit.RECIPES["pixels"], name=name, **VARIANTS[variant])
    model_dir = args.out_dir / variant
    trained = train_policy(
        TrainConfig(
            dataset=dataset,
            out_dir=model_dir,
            encoder=args.encoder,
            features="pixels",
            recipe=name,
            num_steps=args.steps,
            seed=args.seed,
            num_threads=args.threads,
            device="cpu",
        )
    )
    write_json_atomic(model_dir / "result.json", trained)  # as `vlnav-policy train` writes it
    ev = evaluate_policy(
        EvalConfig(model_dir=model_dir, out_dir=args.out_dir / f"{variant}_eval", num_episodes=args.episodes)
    )
    s = ev.student.success
    records = EpisodeRecords.load(args.out_dir / f"{variant}_eval" / "episodes.npz")
    wrong = int((records.wrong_sphere & ~records.success).sum())  # failures that came within reach of another sphere
    paired = f"{ev.expert.success['successes']}/{ev.expert.success['trials']}" if ev.expert is not None else "-"
    return (
        f"| {variant} | {s['successes']}/{s['trials']} [{100 * s['low']:.1f}-{100 * s['high']:.1f}] | "
        f"{wrong} of {s['trials'] - s['successes']} | {trained.best_step} | {trained.train_time_s:.0f} s | "
        f"{trained.samples_per_s:,.0f} | {paired} "
        f"| {torch_cpu_machine(args.threads)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--encoder", default="siglip-tiny-random")
    parser.add_argument("--steps", type=int, default=None, help="gradient steps (default: the recipe's)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {torch_cpu_machine(args.threads)}", flush=True)
    print(
        "| variant | success [95% CI] | wrong-sphere failures | kept step | train wall | samples/s | expert | machine |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for variant in args.variant:
        print(run_variant(args.dataset, variant, args), flush=True)


if __name__ == "__main__":
    main()
