"""Benchmark: PPO expert training on the batched state-only arena.

Prints (and writes as JSON with --out) the machine, then:

1. throughput baselines measured in this run, all with the same policy-free random actions or the same
   short PPO run:
   - ``raw_sim``: env steps/s of ``ArenaVecEnv.step`` alone (state-only, N arenas, no SB3);
   - ``adapter``: the same through :class:`ArenaSB3VecEnv` (features, reward, SB3 infos);
   - ``ppo_batched`` vs ``ppo_per_env``: env steps/s of the same short PPO run (collection + updates) on
     our batched adapter and on SB3's ``DummyVecEnv`` over N single-arena gymnasium envs (the usual
     per-env Python loop);
2. the headline: wall time and env steps/s of ``train_expert`` with the shipped settings until the
   monitor (200 seeded episodes, deterministic policy, pursuit on the same starts) first reports >= 99%
   success with mean steps <= 1.10x pursuit; optionally (--eval-episodes) the stopped policy on 1000
   fresh seeded episodes.

Usage: ``python bench/expert_train.py [--device cpu|cuda] [--out DIR] [--skip-baselines]``.
Runs on CUDA when asked (the PPO networks; the arena state is tiny and stays on the CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch


def raw_sim_steps_per_s(num_envs: int, steps: int) -> float:
    from vlnav_data.sim import make_arena

    env = make_arena("text2nav", num_envs=num_envs, render=False)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, 2))
    env.step(actions[0])
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * num_envs / (time.perf_counter() - t0)


def adapter_steps_per_s(num_envs: int, steps: int) -> float:
    from vlnav_data.expert.sb3_vec_env import ArenaSB3VecEnv
    from vlnav_data.sim import make_arena

    venv = ArenaSB3VecEnv(make_arena("text2nav", num_envs=num_envs, render=False), seed=0)
    venv.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, 2)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    return steps * num_envs / (time.perf_counter() - t0)


class SingleArenaEnv(gymnasium.Env):
    """One arena as a plain gymnasium.Env (what a per-env vectoriser wraps); same features and reward."""

    def __init__(self, seed: int) -> None:
        from vlnav_data.expert.features import FEATURE_NAMES
        from vlnav_data.sim import make_arena

        self.arena = make_arena("text2nav", num_envs=1, render=False)
        self.seed_ = seed
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (len(FEATURE_NAMES),), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.dz = self.arena.config.sphere_height_m - self.arena.config.robot_root_height_m

    def reset(self, *, seed=None, options=None):
        from vlnav_data.expert.features import expert_features

        obs, _ = self.arena.reset(seed=self.seed_ if seed is None else seed)
        self.seed_ = None
        return expert_features(obs["privileged_state"])[0], {}

    def step(self, action):
        from vlnav_data.expert.features import expert_features
        from vlnav_data.expert.reward import expert_reward

        obs, reward, terminated, truncated, info = self.arena.step(np.asarray(action)[None])
        state = info["final_obs"]["privileged_state"] if (terminated | truncated)[0] else obs["privileged_state"]
        r = expert_reward(reward, state, info["termination"], target_dz_m=self.dz)
        # The arena autoresets; return the final features as SB3's Monitor-less DummyVecEnv expects a
        # terminal step, then the next reset() call (DummyVecEnv resets on done) starts a fresh episode.
        return expert_features(state)[0], float(r[0]), bool(terminated[0]), bool(truncated[0]), {}


def ppo_steps_per_s(venv, num_updates: int, device: str) -> float:
    from stable_baselines3 import PPO

    from vlnav_data.expert import TrainConfig

    cfg = TrainConfig(out_dir=Path("unused"), num_envs=venv.num_envs, rollout_steps=64)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=cfg.rollout_steps,
        batch_size=cfg.minibatch_size,
        n_epochs=cfg.num_epochs,
        use_sde=cfg.use_sde,
        sde_sample_freq=cfg.sde_sample_freq,
        policy_kwargs={"net_arch": {"pi": list(cfg.hidden_sizes), "vf": list(cfg.hidden_sizes)}},
        seed=0,
        device=device,
    )
    steps = num_updates * cfg.rollout_steps * venv.num_envs
    t0 = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--eval-episodes", type=int, default=1000, help="fresh episodes for the stopped policy")
    args = parser.parse_args()

    from stable_baselines3.common.vec_env import DummyVecEnv

    from vlnav_data.expert import EvalConfig, TrainConfig, evaluate_expert, train_expert
    from vlnav_data.expert.sb3_vec_env import ArenaSB3VecEnv
    from vlnav_data.expert.train import machine_info
    from vlnav_data.sim import make_arena

    torch.set_num_threads(1)
    report: dict = {"machine": machine_info(1), "device": args.device}
    print(json.dumps(report["machine"]), flush=True)

    if not args.skip_baselines:
        base: dict = {}
        for n in (64, 256):
            base[f"raw_sim_N{n}"] = raw_sim_steps_per_s(n, 200)
            base[f"adapter_N{n}"] = adapter_steps_per_s(n, 200)
            print(f"raw sim N={n}: {base[f'raw_sim_N{n}']:.0f} env steps/s; adapter: {base[f'adapter_N{n}']:.0f}")
        n = 64
        batched = ArenaSB3VecEnv(make_arena("text2nav", num_envs=n, render=False), seed=0)
        base["ppo_batched_N64"] = ppo_steps_per_s(batched, 2, args.device)
        per_env = DummyVecEnv([lambda i=i: SingleArenaEnv(seed=i) for i in range(n)])
        base["ppo_per_env_N64"] = ppo_steps_per_s(per_env, 2, args.device)
        print(
            f"PPO env steps/s at N=64, same settings: batched adapter {base['ppo_batched_N64']:.0f}, "
            f"per-env DummyVecEnv {base['ppo_per_env_N64']:.0f} "
            f"({base['ppo_batched_N64'] / base['ppo_per_env_N64']:.1f}x)",
            flush=True,
        )
        report["baselines_env_steps_per_s"] = base

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            out_dir=Path(tmp) / "run",
            seed=args.seed,
            device=args.device,
            eval_every_steps=32_768,
            stop_at_success_rate=0.99,
        )
        result = train_expert(cfg)
        hit = result.target_reached_at
        report["time_to_99"] = {
            "reached": hit is not None,
            "env_steps": hit["env_steps"] if hit else None,
            "wall_time_s": hit["wall_time_s"] if hit else None,
            "train_time_s_excluding_monitor": hit["train_time_s"] if hit else None,
            "env_steps_per_s": result.env_steps_per_s,
            "monitor": {
                "success_rate": result.final_monitor["expert"]["success"]["rate"],
                "ratio_to_pursuit": result.final_monitor["paired_step_ratio"]["ratio_of_means"],
            },
            "history": [
                (h["env_steps"], round(h["wall_time_s"], 1), h["expert"]["success"]["rate"]) for h in result.history
            ],
        }
        if hit:
            print(
                f"99% success (monitor, 200 episodes, ratio <= 1.10): {hit['env_steps']} env steps, "
                f"{hit['wall_time_s']:.1f} s wall ({hit['train_time_s']:.1f} s without monitor evaluations); "
                f"{result.env_steps_per_s:.0f} env steps/s",
                flush=True,
            )
        else:
            print(f"target not reached in {result.env_steps} env steps ({result.wall_time_s:.1f} s)", flush=True)
        if args.eval_episodes > 0:
            ev = evaluate_expert(EvalConfig(checkpoint=result.checkpoint, num_episodes=args.eval_episodes, seed=1))
            report["stopped_policy_eval"] = {
                "num_episodes": ev.num_episodes,
                "success_rate": ev.expert.success["rate"],
                "ci95": [ev.expert.success["low"], ev.expert.success["high"]],
                "mean_env_steps": ev.expert.mean_env_steps_successes,
                "pursuit_mean_env_steps": ev.pursuit.mean_env_steps_successes,
                "ratio_to_pursuit": ev.paired_step_ratio.ratio_of_means,
            }
            print(f"stopped policy on {ev.num_episodes} fresh episodes: {json.dumps(report['stopped_policy_eval'])}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "expert_train.json").write_text(json.dumps(report, indent=2) + "\n")
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
