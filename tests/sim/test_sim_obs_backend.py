"""``make_arena(obs_backend="torch")``: the same numbers as numpy, as tensors on the simulator's device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.expert import PursuitController
from vlnav_data.sim import check_arena, make_arena, render_views, rollout

SMALL = {"image_height_px": 32, "image_width_px": 32, "max_episode_steps": 50}


def _host(obs):
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in obs.items()}


def _assert_same(a, b, where):
    """numpy-backend result ``a`` and torch-backend result ``b`` hold the same arrays, dtypes and keys."""
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, (np.ndarray, torch.Tensor)), where
        got = b.numpy() if isinstance(b, torch.Tensor) else b
        assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a), where
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("preset", ["text2nav", "text2nav-random"])
@pytest.mark.parametrize("mode", ["same_step", "next_step", "disabled"])
def test_both_backends_step_through_identical_observations_and_infos(preset, mode):
    envs = [make_arena(preset, num_envs=4, autoreset_mode=mode, obs_backend=b, **SMALL) for b in ("numpy", "torch")]
    results = [env.reset(seed=7) for env in envs]
    _assert_same(results[0], results[1], "reset")
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in results[1][0].values())
    assert results[1][0]["rgb"].dtype == torch.uint8 and results[1][0]["privileged_state"].dtype == torch.float32
    rng = np.random.default_rng(0)
    finished = 0
    for t in range(120):
        if t % 29 == 3:  # masked reset with chosen seeds, and a placed robot
            mask = np.array([False, True, False, True])
            results = [env.reset(options={"reset_mask": mask, "episode_seeds": [t, t + 1]}) for env in envs]
            _assert_same(results[0], results[1], f"reset mask {t}")
            results = [env.set_state([2], [[1.2, 0.1, 0.4]], [3]) for env in envs]
            _assert_same(results[0], results[1], f"set_state {t}")
        actions = rng.uniform(-1, 1, (4, 2))
        results = [env.step(actions) for env in envs]
        _assert_same(results[0], results[1], f"step {t}")
        done = results[0][2] | results[0][3]
        finished += int(done.sum())
        if mode == "disabled" and done.any():
            results = [env.reset(options={"reset_mask": done}) for env in envs]
            _assert_same(results[0], results[1], f"disabled reset {t}")
    assert finished > 0


def test_masked_reset_renders_only_the_reset_rows_and_equals_a_full_render(monkeypatch):
    env = make_arena("text2nav-random", num_envs=5, obs_backend="torch", **SMALL)
    env.reset(seed=1)
    env.step(np.full((5, 2), 0.3))
    rendered: list[int] = []
    original = type(env)._render_frames

    def recording(self, rows):
        rendered.append(self.num_envs if rows is None else len(rows))
        return original(self, rows)

    monkeypatch.setattr(type(env), "_render_frames", recording)
    mask = np.array([False, True, False, False, True])
    obs, _ = env.reset(options={"reset_mask": mask, "episode_seeds": [11, 12]})
    assert rendered == [2]
    full = render_views(
        env.config,
        env.poses,
        sphere_positions_xy_m=env.sphere_positions_xy_m,
        sphere_color_indices=env._sphere_color.numpy(),
        floor_rgb=env._floor_rgb.numpy(),
        light_position_m=env._light.numpy(),
    )
    np.testing.assert_array_equal(obs["rgb"].numpy(), full)


def test_rollout_gives_the_same_episodes_and_device_frames_sharing_host_memory_on_cpu():
    episodes = {}
    for backend in ("numpy", "torch"):
        env = make_arena("text2nav", num_envs=3, obs_backend=backend, **SMALL)
        policy = PursuitController.for_arena(env.config)
        episodes[backend] = sorted(rollout(env, policy, [5, 6, 7, 8], max_ahead=4), key=lambda e: e.episode_index)
    for a, b in zip(episodes["numpy"], episodes["torch"], strict=True):
        assert a.rgb_device is None
        for field in ("rgb", "privileged_state", "actions", "wheel_speeds_radps", "rewards", "final_privileged_state"):
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), field
        assert (a.termination, a.num_steps, a.instructions) == (b.termination, b.num_steps, b.instructions)
        assert isinstance(b.rgb_device, torch.Tensor) and b.rgb_device.shape == b.rgb.shape
        assert np.shares_memory(b.rgb_device.numpy(), b.rgb)  # on the CPU the "device copy" is the host array


def test_torch_backend_passes_the_contract():
    env = make_arena("text2nav", num_envs=3, obs_backend="torch", **SMALL)
    report = check_arena(env)
    assert report.ok, report.messages()


def test_mujoco_backend_supports_torch_observations():
    pytest.importorskip("mujoco")
    envs = [make_arena("text2nav-mujoco", num_envs=2, obs_backend=b, **SMALL) for b in ("numpy", "torch")]
    results = [env.reset(seed=3) for env in envs]
    _assert_same(results[0], results[1], "mujoco reset")
    for t in range(4):
        results = [env.step(np.full((2, 2), 0.5)) for env in envs]
        _assert_same(results[0], results[1], f"mujoco step {t}")
    assert check_arena(envs[1]).ok


class _SaysTorch:
    """A wrapper that declares torch observations and passes on the numpy ones of the env it wraps."""

    obs_backend = "torch"

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)


def test_the_contract_reports_an_env_that_declares_torch_but_returns_numpy():
    report = check_arena(_SaysTorch(make_arena("text2nav", num_envs=2, **SMALL)))
    assert not report.ok
    assert any("obs_backend is 'torch' but obs['rgb'] is" in m for m in report.messages())


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="unknown obs_backend 'tensor'"):
        make_arena("text2nav", obs_backend="tensor")
