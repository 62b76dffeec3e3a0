"""Benchmark of vlnav_data.policy: BC training rate (paper recipe) and a closed-loop evaluation's time.

Training: the paper recipe (MLP E->256->256->2, Adam 1e-3, batch 100) for ``--train-steps`` gradient
steps on random data of the paper's shape, timed for

- ``on-device``: ``fit_bc`` (data as two device tensors, random index batches, fused Adam), and
- ``dataloader`` (same-run baseline): a ``torch.utils.data.DataLoader`` over a ``TensorDataset``
  (shuffle, batch 100), batches copied to the device every step, foreach Adam;

then extrapolated to 1M steps (the published run length). Evaluation: ``evaluate_policy`` on a trained
model directory (``--model-dir``), ``--eval-episodes`` episodes with the expert on the same starts;
the time is reported per episode and scaled to 100 episodes when fewer were run.

``--eval-so400m-random``: the student rollouts of ``evaluate_policy`` (``run_policy_episodes`` with
``make_student_policy``) with the SigLIP so400m architecture (random weights, nothing downloaded) encoding
every live frame and an untrained BC net of the paper's shape, in env-steps/s, for the arena with torch
observations (frames rendered and encoded on one device) against numpy observations (the same-run
baseline: frames through host memory every step). ``--compile`` compiles encoder and renderer first
(time reported apart).

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
from machine_info import cpu_name


def machine(device: str) -> str:
    cpu = cpu_name(platform.processor() or platform.machine())
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"GPU {gpu}, load average {load:.1f}"
    )


def bench_on_device(x: np.ndarray, y: np.ndarray, steps: int, device: str) -> float:
    import dataclasses

    from vlnav_data.policy.fit import fit_bc, get_recipe

    recipe = dataclasses.replace(get_recipe("paper"), num_steps=steps, eval_every_steps=steps)  # the published recipe
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


def train_rows(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, device: str, out: dict) -> None:
    bench_on_device(x, y, 50, device)  # warm-up (allocator, kernels)
    for name, fn in (("on_device", bench_on_device), ("dataloader", bench_dataloader)):
        t = fn(x, y, args.train_steps, device)
        per_step_ms = 1e3 * t / args.train_steps
        out[name] = {"seconds": t, "ms_per_step": per_step_ms, "extrapolated_1M_steps_h": per_step_ms * 1e6 / 3.6e6}
        print(
            f"train {name:>10}: {args.train_steps} steps in {t:.2f} s = {per_step_ms:.3f} ms/step "
            f"({1e3 / per_step_ms:.0f} steps/s) -> 1M steps ~ {per_step_ms * 1e6 / 3.6e6:.2f} h (extrapolated)"
        )
    speedup = out["dataloader"]["ms_per_step"] / out["on_device"]["ms_per_step"]
    print(f"on-device indexing is {speedup:.2f}x the DataLoader loop")
    out["speedup_vs_dataloader"] = speedup


def bench_eval_so400m(args: argparse.Namespace, device: str) -> dict:
    """Student rollouts with the so400m architecture online: torch observations against numpy ones."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_throughput import so400m_random_encoder

    from vlnav_data.policy.actors import make_student_policy, torch_predictor
    from vlnav_data.policy.evaluate import evaluation_seeds
    from vlnav_data.policy.model import BCPolicyNet
    from vlnav_data.policy.records import run_policy_episodes
    from vlnav_data.sim import make_arena

    n = min(args.num_envs, args.eval_episodes)
    enc = so400m_random_encoder(device, n, args.compile)  # one batch = one step's frames
    torch.manual_seed(0)
    net = BCPolicyNet(enc.spec.dim).to(device).eval()
    policy = make_student_policy(torch_predictor(net, device, None), enc, "joint")
    seeds = evaluation_seeds(0, args.eval_episodes).tolist()
    rows: dict[str, object] = {"episodes": args.eval_episodes, "num_envs": n, "compile": args.compile}
    for backend in ("torch", "numpy"):
        env = make_arena(
            "text2nav",
            num_envs=n,
            device=device,
            render=True,
            obs_backend=backend,
            compile_renderer=args.compile,
            max_episode_steps=args.eval_max_episode_steps,
        )
        t0 = time.perf_counter()
        compile_s = enc.warm_up(env.config.image_height_px, env.config.image_width_px) + env.compile_warm_up()
        warm_s = time.perf_counter() - t0
        obs, info = env.reset(seed=0)
        policy(obs, info)  # eager warm-up: kernels, allocator
        start = time.perf_counter()
        records = run_policy_episodes(env, policy, seeds)
        wall = time.perf_counter() - start
        steps = int(records.num_steps.sum())
        rows[f"{backend}_obs"] = {"env_steps": steps, "seconds": wall, "env_steps_per_s": steps / wall}
        if args.compile:
            rows[f"{backend}_obs"]["compile_s"] = compile_s if compile_s else warm_s
        print(
            f"eval so400m-random online ({backend} observations, {n} envs, {enc.spec.dtype}): {steps} env steps in "
            f"{wall:.1f} s = {steps / wall:.1f} env-steps/s"
            + (f" (compiled first: {compile_s:.1f} s, excluded)" if args.compile else "")
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50_000, help="training rows (the paper had 156,672)")
    parser.add_argument("--dim", type=int, default=1152)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--num-envs", type=int, default=10)
    parser.add_argument("--eval-so400m-random", action="store_true", help="student rollouts with so400m online")
    parser.add_argument("--eval-max-episode-steps", type=int, default=100, help="time limit of those rollouts")
    parser.add_argument("--compile", action="store_true", help="torch.compile encoder and renderer (so400m eval)")
    parser.add_argument("--skip-train", action="store_true", help="only the evaluation rows")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    print(f"machine: {machine(device)}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = rng.uniform(-1, 1, (args.rows, 2)).astype(np.float32)
    out: dict[str, object] = {"device": device, "train_steps": args.train_steps, "rows": args.rows, "dim": args.dim}
    if not args.skip_train:
        train_rows(x, y, args, device, out)
    if args.eval_so400m_random:
        out["eval_so400m_random"] = bench_eval_so400m(args, device)
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
