"""Presets and config validation."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.sim import PRESET_NAMES, ArenaConfig, get_preset, make_arena


def test_text2nav_preset_has_the_published_code_values():
    cfg = get_preset("text2nav")
    assert cfg.sphere_positions_xy_m == ((2.5, 0.0), (2.5, 0.5), (2.5, -0.5), (2.5, 1.0), (2.5, -1.0))
    assert cfg.sphere_colors == ("red", "green", "blue", "yellow", "pink")
    assert (cfg.sphere_radius_m, cfg.sphere_height_m) == (0.075, 0.1)
    assert cfg.start_x_range_m == (-0.05, 0.75) and cfg.start_y_range_m == (-0.2, 0.25)
    assert cfg.bounds_x_m == (-0.2, 2.5) and cfg.bounds_y_m == (-1.45, 1.45)
    assert (cfg.success_radius_m, cfg.max_episode_steps, cfg.physics_substeps) == (0.3, 600, 2)
    assert cfg.dt_s == pytest.approx(1 / 30)
    assert (cfg.wheel_radius_m, cfg.wheel_base_m, cfg.max_wheel_speed_radps) == (0.03, 0.1125, 20.0)
    assert math.degrees(cfg.camera_hfov_rad) == pytest.approx(114.9, abs=0.05)
    assert cfg.camera_vfov_rad == cfg.camera_hfov_rad
    assert (cfg.image_height_px, cfg.image_width_px) == (256, 256)
    assert cfg.max_linear_speed_mps == pytest.approx(0.6)
    assert cfg.action_mapping == "bang_bang" and cfg.instructions == "paper"


def test_every_preset_is_frozen_and_valid():
    assert {"text2nav", "text2nav-random"} <= set(PRESET_NAMES)
    for name in PRESET_NAMES:
        cfg = get_preset(name)
        assert cfg.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.dt_s = 0.1  # type: ignore[misc]
    assert get_preset("text2nav-random").num_spheres > get_preset("text2nav").num_spheres


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(ConfigError) as err:
        get_preset("text2nv")
    assert str(err.value) == (
        "unknown preset 'text2nv'; expected one of: text2nav, text2nav-isaaclab, text2nav-mujoco, text2nav-newton, "
        "text2nav-random, "
        "text2nav-velocity. "
        "Did you mean 'text2nav'?"
    )


@pytest.mark.parametrize("field", ["image_width_px", "wheel_base_m", "sphere_radius_m", "dt_s"])
def test_non_positive_sizes_name_the_field_and_value(field):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(ArenaConfig(), **{field: 0})
    assert str(err.value) == f"ArenaConfig.{field} must be > 0, got 0; use a positive value"


def test_make_arena_rejects_unknown_override_and_mapping():
    with pytest.raises(ConfigError, match="unknown ArenaConfig field 'wheel_bas_m'.*Did you mean 'wheel_base_m'"):
        make_arena("text2nav", num_envs=1, render=False, wheel_bas_m=0.2)
    with pytest.raises(ConfigError, match="unknown action_mapping 'bangbang'.*Did you mean 'bang_bang'"):
        make_arena("text2nav", num_envs=1, render=False, action_mapping="bangbang")
    with pytest.raises(ConfigError, match="num_envs must be a positive integer, got 0"):
        make_arena("text2nav", num_envs=0, render=False)


@pytest.mark.parametrize("backend", ["mujoco", "newton", "isaaclab"])
def test_the_physics_presets_are_the_published_arena_in_another_simulator(backend):
    from vlnav_data.sim import arena_in_preset, task_preset

    builtin, other = get_preset("text2nav"), get_preset(f"text2nav-{backend}")
    differing = {f.name for f in dataclasses.fields(builtin) if getattr(builtin, f.name) != getattr(other, f.name)}
    assert differing == {"name", "backend", "physics_substeps"}
    assert (other.backend, other.physics_substeps) == (backend, 16)
    assert task_preset(other.name) == "text2nav" and task_preset("text2nav-random") == "text2nav-random"
    trained = dataclasses.replace(builtin, instructions="color", image_height_px=64, image_width_px=64)
    moved = arena_in_preset(other.name, trained)
    assert (moved.backend, moved.instructions, moved.image_height_px) == (backend, "color", 64)
    with pytest.raises(
        ConfigError, match=r"^unknown simulator backend 'isaac'; expected one of: builtin, isaaclab, mujoco, newton\."
    ):
        dataclasses.replace(builtin, backend="isaac")


def test_without_the_mujoco_package_the_error_says_how_to_install_it(monkeypatch):
    import sys

    from vlnav_data.sim import make_arena

    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` raises ImportError
    with pytest.raises(ConfigError) as err:
        make_arena("text2nav-mujoco", num_envs=1, render=False)
    assert str(err.value).startswith(
        "the MuJoCo backend needs the 'mujoco' package, which is not installed; install the MuJoCo backend with "
        "`pip install 'vlnav-data[mujoco]'`"
    )


@pytest.mark.parametrize("module", ["newton", "mujoco_warp", "warp"])
def test_without_the_newton_package_the_cli_says_how_to_install_it_in_one_line(monkeypatch, module):
    import sys

    from typer.testing import CliRunner

    from vlnav_data.cli.data import app

    monkeypatch.setitem(sys.modules, module, None)  # `import newton` (or its solver, or warp) raises ImportError
    result = CliRunner().invoke(app, ["check-arena", "--preset", "text2nav-newton"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the Newton backend needs the 'newton' package with its MuJoCo-Warp solver, which is not installed"
    )
    assert lines[0].endswith("; install the Newton backend with `pip install 'vlnav-data[newton]'`")


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_arena_config_from_json_round_trips_every_preset(name):
    import json

    from vlnav_data.jsonio import to_jsonable
    from vlnav_data.sim import arena_config_from_json

    preset = get_preset(name)
    recorded = json.loads(json.dumps(to_jsonable(preset)))  # as a file stores it: lists, no tuples
    assert arena_config_from_json(recorded) == preset
    assert arena_config_from_json({"arena": recorded, "preset": name}) == preset
    # A record written before a field existed: the missing field takes its preset's value, not text2nav's.
    older = {k: v for k, v in recorded.items() if k != "floor_rgb_jitter"}
    assert arena_config_from_json(older).floor_rgb_jitter == preset.floor_rgb_jitter


def test_arena_config_from_json_refuses_what_is_not_an_arena():
    from vlnav_data.sim import arena_config_from_json

    for bad in ({}, None, {"name": "text2nav", "gravity": 9.8}):
        with pytest.raises(ConfigError, match="the recorded sim_config is not an arena config"):
            arena_config_from_json(bad)
    with pytest.raises(ConfigError, match=r"\(unknown fields: gravity\)"):
        arena_config_from_json({"name": "text2nav", "gravity": 9.8})


def test_success_radius_on_the_floor():
    cfg = get_preset("text2nav")  # 0.3 m in 3-D, target centre 0.1 m above the root
    assert cfg.success_radius_xy_m == pytest.approx((0.3**2 - 0.1**2) ** 0.5)
    assert dataclasses.replace(cfg, sphere_height_m=0.5).success_radius_xy_m == 0.0


def test_the_isaaclab_preset_needs_python_3_12_and_isaaclab_and_names_the_script(monkeypatch):
    import sys

    from vlnav_data.sim.isaaclab.scene import require_isaaclab

    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    with pytest.raises(ConfigError) as err:
        require_isaaclab()
    assert str(err.value) == (
        "the Isaac Lab backend needs Python 3.12 and isaaclab==3.0.0, and this is Python 3.11; make its environment "
        "with `bash scripts/isaaclab-venv.sh DIR` and run vlnav-data from DIR/bin"
    )
    monkeypatch.setattr(sys, "version_info", (3, 12, 1, "final", 0))
    monkeypatch.setitem(sys.modules, "isaaclab", None)  # `import isaaclab` raises ImportError
    with pytest.raises(
        ConfigError, match=r"^the Isaac Lab backend needs isaaclab(, \w+)*, which .* not installed in "
    ) as err:
        require_isaaclab()
    assert str(err.value).endswith("environment; make its environment with `bash scripts/isaaclab-venv.sh DIR`")


def test_the_isaaclab_preset_is_the_published_arena_and_its_runtime_flag_is_checked(monkeypatch):
    from vlnav_data.sim import task_preset
    from vlnav_data.sim.isaaclab.scene import RUNTIME_ENV, runtime

    builtin, isaac = get_preset("text2nav"), get_preset("text2nav-isaaclab")
    differing = {f.name for f in dataclasses.fields(builtin) if getattr(builtin, f.name) != getattr(isaac, f.name)}
    assert differing == {"name", "backend", "physics_substeps"} and task_preset("text2nav-isaaclab") == "text2nav"
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert runtime() == "kitless"
    monkeypatch.setenv(RUNTIME_ENV, "rtx")
    with pytest.raises(ConfigError, match=r"^VLNAV_ISAACLAB_RUNTIME must be one of kitless, kit, got 'rtx'$"):
        runtime()


_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "isaaclab-venv.sh"


@pytest.mark.parametrize(
    ("args", "env", "first_words"),
    [
        ([], {}, "error: expected one argument, the directory to make the environment in"),
        (["a", "b"], {}, "error: expected one argument, the directory to make the environment in"),
        (["{existing}"], {}, "error: '{existing}' already exists; bash scripts/isaaclab-venv.sh makes a new"),
        (
            ["{new}"],
            {"VLNAV_PYTHON312": sys.executable},
            f"error: Isaac Lab 3 needs Python 3.12, found {sys.executable}",
        ),
    ],
    ids=["no-dir", "two-dirs", "existing-dir", "not-python-3.12"],
)
def test_the_isaaclab_env_script_refuses_bad_input_in_one_line_and_makes_nothing(tmp_path, args, env, first_words):
    if sys.version_info[:2] == (3, 12) and env:
        pytest.skip("this interpreter is Python 3.12")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    names = {"existing": str(existing), "new": str(tmp_path / "new")}
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    res = subprocess.run(
        ["bash", str(_SCRIPT), *[a.format(**names) for a in args]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(first_words.format(**names)), res.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (existing / "keep.txt").read_text() == "mine"
