"""`vlnav-data check-arena`: presets and user factories against the simulator contract."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app

runner = CliRunner()

BROKEN_SIM = '''
import numpy as np
from vlnav_data.sim import make_arena


class DoubleCounting:
    """A simulator that counts every step twice (the published evaluation's mistake, reference spec 8.3)."""

    def __init__(self, num_envs):
        self.env = make_arena("text2nav", num_envs=num_envs, render=False, max_episode_steps=30)

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = {**info, "env_steps": info["env_steps"] * 2}
        return obs, reward, terminated, truncated, info


def make_env(num_envs):
    return DoubleCounting(num_envs)
'''


def test_a_preset_meets_the_contract(tmp_path):
    result = runner.invoke(app, ["check-arena", "--preset", "text2nav", "--no-render", "--num-envs", "3"])
    assert result.exit_code == 0, result.output
    assert result.output == "text2nav: ArenaVecEnv(num_envs=3) meets the simulator contract\n"


def test_a_user_factory_that_double_counts_steps_lists_its_violations_and_exits_1(tmp_path, monkeypatch):
    (tmp_path / "my_broken_sim.py").write_text(BROKEN_SIM)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = runner.invoke(app, ["check-arena", "--factory", "my_broken_sim:make_env", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["ok"] is False and report["env"] == "DoubleCounting(num_envs=2)"
    assert report["violations"][0] == (
        "[env_steps] env_steps must count each step() of an episode once: after 1 steps from set_state got [2, 2]"
    )
    assert all(v.startswith("[env_steps]") for v in report["violations"])


def test_a_malformed_factory_name_is_one_error_line():
    result = runner.invoke(app, ["check-arena", "--factory", "no_colon_here"])
    assert result.exit_code == 2
    assert result.output == (
        "error: an env factory is given as MODULE:CALLABLE (e.g. my_sim.envs:make_env), got 'no_colon_here'\n"
    )


@pytest.mark.skipif(
    sys.version_info >= (3, 12) and importlib.util.find_spec("isaaclab") is not None,
    reason="Isaac Lab is installed here: tests/sim/test_sim_isaaclab.py checks the preset",
)
def test_the_isaaclab_preset_outside_its_environment_is_one_error_line_naming_the_script():
    result = runner.invoke(app, ["check-arena", "--preset", "text2nav-isaaclab"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the Isaac Lab backend needs "), lines
    assert "`bash scripts/isaaclab-venv.sh DIR`" in lines[0]
