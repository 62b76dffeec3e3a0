"""`vlnav-expert train|eval`: result.json on success; bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vlnav_data.cli.expert import app
from vlnav_data.expert import SHIPPED_CHECKPOINT, episode_seeds

runner = CliRunner()


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("expert") / "run"
    args = ["train", "--out", str(out), "--num-envs", "16", "--total-steps", "1024", "--eval-episodes", "0"]
    res = runner.invoke(app, [*args, "--seed", "3"])
    assert res.exit_code == 0, res.output
    return out, res


def test_train_writes_checkpoint_and_result(trained):
    out, res = trained
    result = json.loads((out / "result.json").read_text())
    assert result["env_steps"] == 1024
    assert result["config"]["seed"] == 3 and result["config"]["preset"] == "text2nav"
    assert result["action_mapping"] == "bang_bang"
    assert (out / "expert.pt").is_file() and (out / "sb3_model.zip").is_file()
    assert "final losses finite: True" in res.stdout
    assert f"checkpoint: {out / 'expert.pt'}" in res.stdout


def _episodes(policy, config, seeds):
    """(success, env steps) per seed, rolled out here with the simulator's own rollout()."""
    from vlnav_data.sim import make_arena, rollout

    env = make_arena(config, num_envs=3, render=False)
    by_seed = {int(e.episode_seed): (bool(e.success), int(e.num_steps)) for e in rollout(env, policy, seeds)}
    return np.array([by_seed[s][0] for s in seeds]), np.array([by_seed[s][1] for s in seeds])


def test_eval_of_the_shipped_expert_matches_episodes_rolled_out_here(tmp_path):
    from vlnav_data.expert import PursuitController, load_expert
    from vlnav_data.sim import get_preset, sample_episode_start

    out = tmp_path / "eval"
    res = runner.invoke(app, ["eval", "--num-episodes", "6", "--out", str(out), "--seed", "1"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["num_episodes"] == 6 and result["preset"] == "text2nav"
    assert result["checkpoint"] == str(SHIPPED_CHECKPOINT)
    seeds = episode_seeds(1, 6)
    assert result["first_episode_seeds"] == seeds[:5]

    config = get_preset("text2nav")
    e_ok, e_steps = _episodes(load_expert(), config, seeds)
    p_ok, p_steps = _episodes(PursuitController.for_arena(config), config, seeds)
    for name, ok, steps in (("expert", e_ok, e_steps), ("pursuit", p_ok, p_steps)):
        s = result[name]
        assert s["success"]["successes"] == ok.sum() and s["success"]["trials"] == 6
        assert s["mean_env_steps_successes"] == pytest.approx(steps[ok].mean())
        assert s["median_env_steps_successes"] == pytest.approx(np.median(steps[ok]))
        assert [s["min_env_steps_successes"], s["max_env_steps_successes"]] == [steps[ok].min(), steps[ok].max()]
        assert s["termination_causes"]["success"] == ok.sum()
        low, high = s["success"]["low"], s["success"]["high"]
        line = (
            f"{name:8s} success {ok.mean():.1%} [{low:.1%}, {high:.1%}] of 6, "
            f"mean env steps over successes {steps[ok].mean():.3f}"
        )
        assert line in res.stdout
    both = e_ok & p_ok
    ratio = result["paired_step_ratio"]
    assert (ratio["policy"], ratio["reference"], ratio["num_pairs"]) == ("expert", "pursuit", both.sum())
    assert ratio["ratio_of_means"] == pytest.approx(e_steps[both].mean() / p_steps[both].mean())
    assert ratio["median_of_ratios"] == pytest.approx(np.median(e_steps[both] / p_steps[both]))
    assert result["unpaired_step_ratio"] == pytest.approx(e_steps[e_ok].mean() / p_steps[p_ok].mean())

    # Geometry: no success can come sooner than driving straight at full speed into the success disc.
    radius = config.success_radius_xy_m
    metres_per_step = config.max_linear_speed_mps * config.dt_s
    for seed, ok, steps in zip(seeds, e_ok, e_steps, strict=True):
        start = sample_episode_start(config, seed)
        gap = np.linalg.norm(start.sphere_positions_xy_m[start.target_index] - start.pose[:2]) - radius
        if ok:
            assert steps >= gap / metres_per_step


def test_eval_missing_checkpoint(tmp_path):
    path = tmp_path / "missing.pt"
    res = runner.invoke(app, ["eval", "--checkpoint", str(path)])
    assert _error(res) == (
        f"error: expert checkpoint not found: {path}; expected an expert.pt written by `vlnav-expert train` (or "
        "its output directory); omit --checkpoint to use the shipped text2nav expert"
    )


def test_eval_corrupt_checkpoint(tmp_path):
    path = tmp_path / "expert.pt"
    path.write_text("garbage")
    res = runner.invoke(app, ["eval", "--checkpoint", str(path)])
    line = _error(res)
    assert line.startswith(f"error: cannot read expert checkpoint {path}: it is corrupt or not a torch file (")
    assert line.endswith("); expected an expert.pt written by `vlnav-expert train`")


def test_eval_preset_mismatch(trained):
    ckpt, _ = trained
    res = runner.invoke(app, ["eval", "--checkpoint", str(ckpt), "--preset", "text2nav-velocity"])
    assert _error(res) == (
        f"error: expert checkpoint ({ckpt / 'expert.pt'}) was trained on preset 'text2nav' with action mapping "
        "'bang_bang', but the arena is preset 'text2nav-velocity' with action mapping 'velocity'; evaluate it on "
        "'text2nav'/'bang_bang', or train an expert for this arena with `vlnav-expert train --preset text2nav-velocity`"
    )


def test_eval_not_an_expert_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, path)
    res = runner.invoke(app, ["eval", "--checkpoint", str(path)])
    assert _error(res) == (
        f"error: {path} is not a vlnav expert checkpoint (format 'something-else', expected 'vlnav-expert'); "
        "pass an expert.pt written by `vlnav-expert train`"
    )


def test_train_bad_input(tmp_path):
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--preset", "text2nva"])
    assert _error(res) == (
        "error: unknown preset 'text2nva'; expected one of: text2nav, text2nav-isaaclab, text2nav-mujoco, "
        "text2nav-newton, "
        "text2nav-random, text2nav-velocity. Did you mean 'text2nav'?"
    )
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--reward", "papers"])
    assert _error(res) == "error: unknown reward variant 'papers'; expected one of: fixed, published."
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--device", "gpu"])
    assert _error(res) == (
        "error: device must be one of auto (CUDA when available, else CPU), cpu, cuda or cuda:N; received 'gpu'."
    )
    assert not (tmp_path / "r").exists()


def test_eval_bad_numbers():
    res = runner.invoke(app, ["eval", "--num-episodes", "0"])
    assert _error(res) == "error: num_episodes must be > 0, got 0"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_cuda_without_cuda():
    res = runner.invoke(app, ["eval", "--device", "cuda", "--num-episodes", "1"])
    assert _error(res) == (
        f"error: device 'cuda' was requested but torch {torch.__version__} sees no CUDA GPU here; "
        "use --device cpu (or auto)."
    )
