"""Benchmark of vlnav_data.policy: BC training rate (paper recipe) and a closed-loop evaluation's time.

Training: the paper recipe (MLP E->256->256->2, Adam 1e-3, batch 100) for ``--train-steps`` gradient
steps on random data of the paper's shape, timed for

- ``on-device``: ``fit_bc`` (data as two device tensors, random index batches, fused Adam), and
- ``dataloader`` (same-run baseline): a ``torch.utils.data.DataLoader`` over a ``TensorDataset``
  (shuffle, batch 100), batches copied to the device every step, foreach Adam;

then extrapolated to 1M steps (the published run length). Evaluation: ``evaluate_policy`` on a trained
model directory (``--model-dir``), ``--eval-episodes`` episodes with the expert on the same starts;
the time is reported per episode and scaled to 100 episodes when fewer were run.

Usage::

    python bench/policy.py --train-steps 2000 [--rows 50000] [--device auto] \
        [--model-dir MODEL_DIR --eval-episodes 100 --num-envs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"GPU {gpu}, load average {load:.1f}"
    )


def bench_on_device(x: np.ndarray, y: np.ndarray, steps: int, device: str) -> float:
    from vlnav_data.policy.fit import BCRecipe, fit_bc

    recipe = BCRecipe(name="paper", num_steps=steps, eval_every_steps=steps)
    res = fit_bc(x, y, recipe=recipe, seed=0, device=device)
    return res.train_time_s


def bench_dataloader(x: np.ndarray, y: np.ndarray, steps: int, device: str) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    from vlnav_data.policy.model import BCPolicyNet
    from vlnav_data.policy.threads import torch_threads

    with torch_threads(1, device):
        torch.manual_seed(0)
        model = BCPolicyNet(x.shape[1]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=100, shuffle=True)
        done = 0
        start = time.perf_counter()
        while done < steps:
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                loss = torch.mean((model(xb) - yb) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if done == steps:
                    break
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50_000, help="training rows (the paper had 156,672)")
    parser.add_argument("--dim", type=int, default=1152)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--num-envs", type=int, default=10)
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    print(f"machine: {machine(device)}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.uniform(-1, 1, (args.rows, 2)).astype(np.float32)
    out: dict[str, object] = {"device": device, "train_steps": args.train_steps, "rows": args.rows, "dim": args.dim}
    bench_on_device(x, y, 50, device)  # warm-up (allocator, kernels)
    for name, fn in (("on_device", bench_on_device), ("dataloader", bench_dataloader)):
        t = fn(x, y, args.train_steps, device)
        per_step_ms = 1e3 * t / args.train_steps
        out[name] = {"seconds": t, "ms_per_step": per_step_ms, "extrapolated_1M_steps_h": per_step_ms * 1e6 / 3.6e6}
        print(
            f"train {name:>10}: {args.train_steps} steps in {t:.2f} s = {per_step_ms:.3f} ms/step "
            f"-> 1M steps ~ {per_step_ms * 1e6 / 3.6e6:.2f} h (extrapolated)"
        )
    speedup = out["dataloader"]["ms_per_step"] / out["on_device"]["ms_per_step"]  # type: ignore[index]
    print(f"on-device indexing is {speedup:.2f}x the DataLoader loop")
    out["speedup_vs_dataloader"] = speedup
    if args.model_dir is not None:
        from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy

        with tempfile.TemporaryDirectory() as tmp:
            cfg = EvalConfig(
                model_dir=args.model_dir,
                out_dir=Path(tmp),
                num_episodes=args.eval_episodes,
                num_envs=args.num_envs,
                device=device,
            )
            start = time.perf_counter()
            res = evaluate_policy(cfg)
            total = time.perf_counter() - start
        steps = res.student.mean_env_steps_all * res.num_episodes
        per100 = total * 100 / args.eval_episodes
        print(
            f"eval {res.encoder}/{res.features} ({res.num_episodes} episodes, {args.num_envs} envs, expert paired): "
            f"{total:.1f} s total (student rollouts {res.wall_s:.1f} s, {res.student_env_steps_per_s:.0f} env steps/s "
            f"over {steps:.0f} steps) -> {per100:.1f} s per 100 episodes"
        )
        out["eval"] = {
            "encoder": res.encoder,
            "episodes": res.num_episodes,
            "total_s": total,
            "student_rollout_s": res.wall_s,
            "student_env_steps_per_s": res.student_env_steps_per_s,
            "seconds_per_100_episodes": per100,
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
