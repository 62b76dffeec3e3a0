"""Cross-simulator evaluation: eval --preset text2nav-mujoco / text2nav-newton, env factories, diagnose --compare."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.policy import app
from vlnav_data.errors import ConfigError
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.model_dir import read_policy_spec
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.sim import arena_config_from_json, make_arena

runner = CliRunner()
ARGS = ["--num-episodes", "6", "--num-envs", "3", "--expert", "pursuit", "--device", "cpu", "--seed", "4"]


def _eval(model_dir, out, *extra):
    result = runner.invoke(app, ["eval", str(model_dir), "--out", str(out), *ARGS, *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "result.json").read_text())


@pytest.mark.parametrize(  # Newton steps ~10x slower than MuJoCo on the CPU: fewer episodes there
    ("backend", "num_episodes"), [("mujoco", 6), pytest.param("newton", 2, marks=pytest.mark.newton)]
)
def test_eval_in_a_physics_simulator_from_the_same_starts_and_diagnose_reports_what_changed(
    oracle_model_dir, tmp_path, backend, num_episodes
):
    os.environ.setdefault("MUJOCO_GL", "egl")
    pytest.importorskip(backend)
    preset = f"text2nav-{backend}"
    n = ["--num-episodes", str(num_episodes), "--num-envs", str(min(3, num_episodes))]
    builtin = _eval(oracle_model_dir, tmp_path / "builtin", *n)
    other = _eval(oracle_model_dir, tmp_path / backend, "--preset", preset, *n)
    assert (builtin["arena"], builtin["trained_arena"]) == ("text2nav", "text2nav")
    assert (other["arena"], other["trained_arena"]) == (preset, "text2nav")
    assert other["sim_config"]["backend"] == backend and other["sim_config"]["max_episode_steps"] == 150
    b = EpisodeRecords.load(tmp_path / "builtin" / "episodes.npz")
    m = EpisodeRecords.load(tmp_path / backend / "episodes.npz")
    assert b.episode_seed.tolist() == m.episode_seed.tolist()
    for i in range(len(b)):  # the same seeded start pose in both simulators
        np.testing.assert_allclose(m.poses_of(i)[0], b.poses_of(i)[0], atol=1e-6)

    result = runner.invoke(app, ["diagnose", str(tmp_path / backend), "--compare", str(tmp_path / "builtin"), "--json"])
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)["comparison"]
    student = comparison["student"]
    assert student["num_paired"] == num_episodes
    assert student["success_this"] == int(m.success.sum()) == other["student"]["success"]["successes"]
    assert student["success_other"] == int(b.success.sum())
    assert student["kept"] + student["lost"] == student["success_other"]
    causes = {c: int((m.termination == c).sum()) for c in set(m.termination)}
    assert {k: v["this"] for k, v in student["termination_causes"].items() if v["this"]} == causes
    assert student["changed_episode_seeds"] == [
        int(s) for s, x, y in zip(m.episode_seed, m.termination, b.termination, strict=True) if x != y
    ]
    assert comparison["expert"]["success_this"] == other["expert"]["success"]["successes"]
    report = (tmp_path / backend / "diagnosis" / "report.md").read_text()
    assert f"## What changed: {preset} ({backend}) vs text2nav (builtin) (same starts)" in report
    assert (tmp_path / backend / "diagnosis" / "compare_topdown.png").stat().st_size > 1000


def test_eval_through_an_env_factory_equals_the_eval_of_the_models_arena(oracle_model_dir, tmp_path):
    arena = arena_config_from_json(read_policy_spec(oracle_model_dir).sim_config)
    made = []

    def factory(num_envs):
        made.append(num_envs)
        return make_arena(arena, num_envs=num_envs, render=False)

    cfg = EvalConfig(model_dir=oracle_model_dir, out_dir=tmp_path / "a", num_episodes=5, num_envs=2, expert="pursuit")
    plain = evaluate_policy(cfg)
    via = evaluate_policy(EvalConfig(**{**cfg.__dict__, "out_dir": tmp_path / "b"}), env_factory=factory)
    assert made == [1, 2, 2]  # contract check, student, expert
    for name in ("episodes.npz", "expert_episodes.npz"):
        a, b = EpisodeRecords.load(tmp_path / "a" / name), EpisodeRecords.load(tmp_path / "b" / name)
        for field in ("episode_seed", "termination", "num_steps", "poses", "actions"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert plain.student == via.student and plain.expert == via.expert


def test_a_factory_and_a_preset_together_or_an_unknown_preset_are_refused(oracle_model_dir, tmp_path):
    cfg = EvalConfig(model_dir=oracle_model_dir, out_dir=tmp_path, preset="text2nav-mujoco")
    with pytest.raises(ConfigError, match=r"^give an env factory or a preset \('text2nav-mujoco'\), not both$"):
        evaluate_policy(cfg, env_factory=lambda n: make_arena("text2nav", num_envs=n, render=False))
    result = runner.invoke(app, ["eval", str(oracle_model_dir), "--out", str(tmp_path), "--preset", "text2nav-mujuco"])
    assert result.exit_code == 2
    assert result.output.strip().endswith("Did you mean 'text2nav-mujoco'?")


def test_diagnose_compare_needs_the_same_starts(oracle_model_dir, tmp_path):
    _eval(oracle_model_dir, tmp_path / "a")
    runner.invoke(app, ["eval", str(oracle_model_dir), "--out", str(tmp_path / "b"), *ARGS[:-1], "5"])
    result = runner.invoke(app, ["diagnose", str(tmp_path / "a"), "--compare", str(tmp_path / "b"), "--num-gifs", "0"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: the two evaluations share no episode seed; evaluate both with the same --seed and --num-episodes"
    )
