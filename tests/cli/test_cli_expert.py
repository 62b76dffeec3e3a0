"""`vlnav-expert train|eval`: result.json on success; bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import json

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


def test_eval_of_the_shipped_expert_writes_paired_comparison(tmp_path):
    out = tmp_path / "eval"
    res = runner.invoke(app, ["eval", "--num-episodes", "6", "--out", str(out), "--seed", "1"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["num_episodes"] == 6 and result["preset"] == "text2nav"
    assert result["checkpoint"] == str(SHIPPED_CHECKPOINT)
    assert result["first_episode_seeds"] == episode_seeds(1, 5)
    assert result["pursuit"]["success_rate"] == 1.0
    assert result["step_ratio_to_pursuit"]["num_paired"] == result["expert"]["successes"]
    assert sum(result["expert"]["termination_causes"].values()) == 6
    low, high = result["pursuit"]["success_rate_ci95"]
    assert 0.5 < low < 1.0 and high == 1.0  # Wilson, 6/6
    assert result["published_expert"]["mean_env_steps_successes"] == 113.97
    assert "pursuit  success 100.0%" in res.stdout


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
        "error: unknown preset 'text2nva'; expected one of: text2nav, text2nav-mujoco, text2nav-random, "
        "text2nav-velocity. Did you mean 'text2nav'?"
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
