"""`ArenaVecEnv`: N arenas as one Gymnasium vector environment (glue around the pure functions).

State is struct-of-arrays on ``device``: poses ``(N, 3)`` float64, per-env sphere layout, target
index, episode seed and the env-step counter. ``step()`` = validate actions -> wheel speeds ->
integrate -> advance counters (the only place they change) -> reward/termination -> autoreset ->
observe.

Autoreset (``metadata["autoreset_mode"]``, chosen with ``make_arena(autoreset_mode=...)``):

* ``same_step`` (default, what SB3-style learners expect): a finished env is reset inside the same
  ``step()``. The returned observation, ``instruction``, ``target_index``, ``target_color`` and
  ``episode_seed`` belong to the *new* episode; the transition fields ``termination``, ``env_steps``,
  ``reached_wrong_sphere``, ``nearest_sphere_index`` and ``wheel_speeds_radps`` describe the step just
  taken. ``info["final_obs"]`` / ``info["final_info"]`` hold the finished episode's last observation and
  info (rows valid where ``info["_final_obs"]`` is true; other rows of ``final_obs["rgb"]`` are zero).
  As in Gymnasium, these four keys are present only on steps where some env finished.
* ``next_step`` (Gymnasium's default): the finished env is reset by the *next* ``step()``, whose
  action is ignored for it ("reset step": reward 0, not done, ``env_steps`` 0).
* ``disabled``: the caller resets finished envs with ``reset(options={"reset_mask": mask})``;
  stepping a finished env raises.

``reset(seed=s)`` seeds one stream of episode seeds shared by all sub-environments (episodes are drawn
from it in the order slots start them); ``reset(seed=[s_0, ..., s_{N-1}])`` gives sub-environment ``i``
a stream of its own seeded with ``s_i`` (``None`` entries: fresh entropy), as Gymnasium's vector
environments take one seed per sub-environment -- so sub-environment ``i`` runs exactly the episodes of
``gymnasium.make("vlnav/Arena-v0")`` reset with ``seed=s_i`` (``vlnav_data.sim.env.ArenaEnv``). Every
episode's start is ``sample_episode_start(config, episode_seed)``. ``reset(options=...)`` accepts
``reset_mask`` (bool ``(N,)``) and ``episode_seeds`` (one per reset env) to start chosen episodes in
chosen slots.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from vlnav_data.devices import DEVICE_HELP, resolve_device
from vlnav_data.errors import ConfigError, did_you_mean, unknown_name
from vlnav_data.sim import dynamics, task
from vlnav_data.sim.config import ArenaConfig, get_preset
from vlnav_data.sim.render import Scene, render_batch

AUTORESET_MODES = {
    "same_step": AutoresetMode.SAME_STEP,
    "next_step": AutoresetMode.NEXT_STEP,
    "disabled": AutoresetMode.DISABLED,
}
_CAUSE_NAMES = np.array(("", *task.TERMINATION_CAUSES))
_PALETTE_NAMES = np.array(task.PALETTE_NAMES)


class ArenaVecEnv(VectorEnv):
    """N batched arenas. Build with :func:`make_arena`.

    Observations: ``{"rgb": uint8 (N, H, W, 3)}`` (only with ``render=True``) and
    ``{"privileged_state": float32 (N, D)}``, columns ``PRIVILEGED_STATE_NAMES``.
    Actions: float ``(N, 2)`` (left, right) in [-1, 1]; values outside are clipped; NaN/inf or a wrong
    shape raise :class:`ConfigError`.
    """

    def __init__(
        self,
        config: ArenaConfig,
        num_envs: int,
        device: str | torch.device = "cpu",
        render: bool = True,
        autoreset_mode: str = "same_step",
        compile_renderer: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        if autoreset_mode not in AUTORESET_MODES:
            raise unknown_name("autoreset_mode", str(autoreset_mode), AUTORESET_MODES)
        self.config = config
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.render_enabled = bool(render)
        self.compile_renderer = bool(compile_renderer)
        self.autoreset_mode = AUTORESET_MODES[autoreset_mode]
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": []}
        self.render_mode = None
        d = len(task.PRIVILEGED_STATE_NAMES)
        spaces: dict[str, gymnasium.Space] = {
            "privileged_state": gymnasium.spaces.Box(-np.inf, np.inf, (d,), np.float32),
        }
        if self.render_enabled:
            shape = (config.image_height_px, config.image_width_px, 3)
            spaces = {"rgb": gymnasium.spaces.Box(0, 255, shape, np.uint8), **spaces}
        self.single_observation_space = gymnasium.spaces.Dict(spaces)
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, k, dev = self.num_envs, config.num_spheres, self.device
        self._poses = torch.zeros((n, 3), dtype=torch.float64, device=dev)
        self._sphere_xy = torch.zeros((n, k, 2), dtype=torch.float64, device=dev)
        self._sphere_color = torch.zeros((n, k), dtype=torch.long, device=dev)
        self._floor_rgb = torch.zeros((n, 3), dtype=torch.float32, device=dev)
        self._light = torch.zeros((n, 3), dtype=torch.float32, device=dev)
        self._target = torch.zeros(n, dtype=torch.long, device=dev)
        self._env_steps = torch.zeros(n, dtype=torch.long, device=dev)
        self._wheel = torch.zeros((n, 2), dtype=torch.float32, device=dev)
        self._episode_seed = np.zeros(n, dtype=np.int64)
        self._needs_reset = torch.zeros(n, dtype=torch.bool, device=dev)
        self._seed_rng: np.random.Generator | None = None
        self._env_rngs: list[np.random.Generator] | None = None  # per-sub-env streams (reset(seed=[...]))
        self._palette_rgb = torch.as_tensor(task.PALETTE_RGB, device=dev)

    # ------------------------------------------------------------------ public API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Start new episodes; returns ``(obs, info)`` for the whole batch.

        Args:
            seed: an int seeds one stream of episode seeds shared by the batch (same seed -> same
                episodes); a list of ``num_envs`` ints (or ``None``) gives each sub-environment a stream of
                its own (module docstring).
            options: ``reset_mask`` bool ``(N,)`` (default: all) and ``episode_seeds`` (one int per
                reset env; default: drawn from the stream).

        Raises:
            ConfigError: a seed that is not an integer in [0, 2**63), a seed list of the wrong length,
                unknown options or a malformed mask.
        """
        if isinstance(seed, (list, tuple, np.ndarray)):
            seeds_per_env = list(seed)
            if len(seeds_per_env) != self.num_envs:
                raise ConfigError(
                    f"reset(seed=[...]) takes one seed per sub-environment ({self.num_envs}), got {len(seeds_per_env)}"
                )
            self._env_rngs = [
                np.random.default_rng(None if s is None else task.check_seed(s, f"seed[{i}]"))
                for i, s in enumerate(seeds_per_env)
            ]
            self._seed_rng = None
        elif seed is not None:
            self._seed_rng = np.random.default_rng(task.check_seed(seed, "seed"))
            self._env_rngs = None
        options = dict(options or {})
        unknown = set(options) - {"reset_mask", "episode_seeds"}
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(
                f"unknown reset option '{name}'; expected reset_mask, episode_seeds."
                f"{did_you_mean(name, ['reset_mask', 'episode_seeds'])}"
            )
        mask = options.get("reset_mask")
        if mask is None:
            ids = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ConfigError(f"reset_mask must be a bool array of shape ({self.num_envs},), got {mask!r}")
            ids = np.flatnonzero(mask)
        seeds = options.get("episode_seeds")
        if seeds is not None:
            seeds = [task.check_seed(s) for s in np.asarray(seeds).reshape(-1).tolist()]
            if len(seeds) != len(ids):
                raise ConfigError(f"episode_seeds must hold one seed per reset env ({len(ids)}), got {len(seeds)}")
        self._start_episodes(ids, seeds)
        self._wheel[torch.as_tensor(ids, device=self.device)] = 0.0
        cause = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        return self._observe(), self._info(cause)

    def step(self, actions: Any):
        """Advance every env by one control step (see the module docstring for autoreset)."""
        a = dynamics.validate_actions(actions, self.num_envs).to(self.device)
        pending = self._needs_reset.clone()
        if bool(pending.any()):
            if self.autoreset_mode == AutoresetMode.DISABLED:
                ids = pending.nonzero()[:, 0].tolist()
                raise ConfigError(
                    f"envs {ids} finished their episodes and autoreset is disabled; call "
                    "reset(options={'reset_mask': mask}) before stepping them"
                )
            self._start_episodes(pending.nonzero()[:, 0].cpu().numpy(), None)  # NEXT_STEP reset step
        moving = ~pending
        wheel = dynamics.wheel_speeds_radps(self.config, a) * moving[:, None]
        self._poses = self._advance_physics(wheel, moving)
        self._wheel = wheel.to(torch.float32)
        self._advance_counters(moving)
        ev = task.evaluate_step(self.config, self._poses, self._sphere_xy, self._target, self._env_steps)
        cause = torch.where(moving, ev["cause"], torch.zeros_like(ev["cause"]))
        reward = torch.where(moving, ev["reward"], torch.zeros_like(ev["reward"]))
        terminated = (cause > 0) & (cause < task.CAUSE_TIME_LIMIT)
        truncated = cause == task.CAUSE_TIME_LIMIT
        done = terminated | truncated
        steps = self._env_steps.cpu().numpy().astype(np.int64)  # this transition's episode step count
        extra: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            done_np = done.cpu().numpy()
            if done_np.any():  # like Gymnasium, the final_* keys are present only when an env finished
                final_info = self._info(cause, ev, steps)
                final_obs = self._observe(rows=done_np)
                self._start_episodes(np.flatnonzero(done_np), None)
                extra = {
                    "final_obs": final_obs,
                    "_final_obs": done_np,
                    "final_info": final_info,
                    "_final_info": done_np,
                }
        else:
            self._needs_reset = done
        info = self._info(cause, ev, steps)
        info.update(extra)
        return (
            self._observe(),
            reward.cpu().numpy(),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )

    def set_state(self, env_ids: Any, poses: Any, target_indices: Any):
        """Place robots exactly and start a fresh episode in those slots (counters zeroed).

        The sphere layout of each slot is kept. Returns ``(obs, info)`` for the whole batch.

        Args:
            env_ids: int ``(M,)`` distinct env indices.
            poses: ``(M, 3)`` ``[x_m, y_m, yaw_rad]``.
            target_indices: int ``(M,)`` sphere indices in ``[0, K)``.
        """
        ids = np.asarray(env_ids).reshape(-1)
        if (
            ids.dtype.kind not in "iu"
            or len(np.unique(ids)) != len(ids)
            or (ids < 0).any()
            or (ids >= self.num_envs).any()
        ):
            raise ConfigError(f"env_ids must be distinct integers in [0, {self.num_envs}), got {ids.tolist()}")
        p = np.asarray(poses, dtype=np.float64)
        if p.shape != (len(ids), 3) or not np.isfinite(p).all():
            raise ConfigError(f"poses must be finite with shape ({len(ids)}, 3) = [x_m, y_m, yaw_rad], got {p!r}")
        tgt = np.asarray(target_indices).reshape(-1)
        k = self.config.num_spheres
        if tgt.shape != ids.shape or tgt.dtype.kind not in "iu" or (tgt < 0).any() or (tgt >= k).any():
            raise ConfigError(f"target_indices must be {len(ids)} integers in [0, {k}), got {tgt.tolist()}")
        if self._seed_rng is None and self._env_rngs is None:
            self.reset()
        idx = torch.as_tensor(ids, device=self.device)
        self._poses[idx] = torch.as_tensor(p, device=self.device)
        self._target[idx] = torch.as_tensor(tgt, device=self.device, dtype=torch.long)
        self._env_steps[idx] = 0
        self._wheel[idx] = 0.0
        self._needs_reset[idx] = False
        self._placed(ids)
        cause = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        return self._observe(), self._info(cause)

    @property
    def poses(self) -> np.ndarray:
        """float64 ``(N, 3)`` current ``[x_m, y_m, yaw_rad]`` (a copy)."""
        return self._poses.cpu().numpy().copy()

    @property
    def sphere_positions_xy_m(self) -> np.ndarray:
        """float64 ``(N, K, 2)`` current sphere centres (a copy)."""
        return self._sphere_xy.cpu().numpy().copy()

    @property
    def sphere_color_names(self) -> np.ndarray:
        """str ``(N, K)`` colour names of the current spheres."""
        return _PALETTE_NAMES[self._sphere_color.cpu().numpy()]

    @property
    def episode_seeds(self) -> np.ndarray:
        """int64 ``(N,)`` seeds of the current episodes."""
        return self._episode_seed.copy()

    # ------------------------------------------------------------------ internals
    def _advance_counters(self, moving: torch.Tensor) -> None:
        """The one place episode step counters change (besides zeroing at episode start)."""
        self._env_steps += moving.long()

    def _start_episodes(self, ids: np.ndarray, seeds: list[int] | None) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return
        if seeds is None and self._env_rngs is not None:
            seeds = [int(self._env_rngs[i].integers(0, 2**63 - 1)) for i in ids.tolist()]
        elif seeds is None:
            if self._seed_rng is None:
                self._seed_rng = np.random.default_rng()
            seeds = self._seed_rng.integers(0, 2**63 - 1, size=len(ids)).tolist()
        starts = [task.sample_episode_start(self.config, s) for s in seeds]
        dev = self.device
        idx = torch.as_tensor(ids, device=dev)
        self._poses[idx] = torch.as_tensor(np.stack([s.pose for s in starts]), device=dev)
        self._sphere_xy[idx] = torch.as_tensor(np.stack([s.sphere_positions_xy_m for s in starts]), device=dev)
        self._sphere_color[idx] = torch.as_tensor(np.stack([s.sphere_color_indices for s in starts]), device=dev)
        self._floor_rgb[idx] = torch.as_tensor(np.stack([s.floor_rgb for s in starts]), device=dev).float()
        self._light[idx] = torch.as_tensor(np.stack([s.light_position_m for s in starts]), device=dev).float()
        self._target[idx] = torch.as_tensor([s.target_index for s in starts], device=dev, dtype=torch.long)
        self._env_steps[idx] = 0
        self._needs_reset[idx] = False
        self._episode_seed[ids] = np.asarray(seeds, dtype=np.int64)
        self._placed(ids)

    # Backend hooks: the built-in kinematics and renderer. A physics backend (vlnav_data.sim.mujoco)
    # overrides these three; everything else (task, counters, autoreset, info) is shared.
    def _advance_physics(self, wheel: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Poses ``(N, 3)`` after one control step with wheel speeds ``wheel`` (rad/s); rows not ``moving`` stay."""
        new_poses = dynamics.integrate_pose(self.config, self._poses, wheel)
        return torch.where(moving[:, None], new_poses, self._poses)

    def _placed(self, ids: np.ndarray) -> None:
        """Robots ``ids`` were placed at ``self._poses[ids]`` (episode start or ``set_state``); nothing to do here."""

    def _render_frames(self, rows: torch.Tensor | None) -> np.ndarray:
        """uint8 ``(M, H, W, 3)`` frames of the envs ``rows`` (all when None)."""
        poses = self._poses if rows is None else self._poses[rows]
        frames = render_batch(self.config, poses, self._scene(rows), compile_shaders=self.compile_renderer)
        return frames.cpu().numpy()

    def _target_xy(self) -> torch.Tensor:
        return self._sphere_xy[torch.arange(self.num_envs, device=self.device), self._target]

    def _scene(self, rows: torch.Tensor | None = None) -> Scene:
        sel = slice(None) if rows is None else rows
        return Scene(
            sphere_xy=self._sphere_xy[sel].float(),
            sphere_rgb=self._palette_rgb[self._sphere_color[sel]],
            floor_rgb=self._floor_rgb[sel],
            light_position=self._light[sel],
        )

    def _observe(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Observation dict; with ``rows`` only those rows of ``rgb`` are rendered (others zero)."""
        obs = {"privileged_state": task.privileged_state(self._poses, self._target_xy()).cpu().numpy()}
        if self.render_enabled:
            h, w = self.config.image_height_px, self.config.image_width_px
            if rows is None:
                obs = {"rgb": self._render_frames(None), **obs}
            else:
                rgb = np.zeros((self.num_envs, h, w, 3), dtype=np.uint8)
                rgb[rows] = self._render_frames(torch.as_tensor(np.flatnonzero(rows), device=self.device))
                obs = {"rgb": rgb, **obs}
        return obs

    def _info(
        self,
        cause: torch.Tensor,
        ev: dict[str, torch.Tensor] | None = None,
        env_steps: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Info dict: observation fields from the current state, transition fields from ``ev``/``env_steps``."""
        target_xy = self._target_xy()
        colors = _PALETTE_NAMES[self._sphere_color.gather(1, self._target[:, None])[:, 0].cpu().numpy()]
        if ev is None:
            ev = task.evaluate_step(self.config, self._poses, self._sphere_xy, self._target, self._env_steps)
        if env_steps is None:
            env_steps = self._env_steps.cpu().numpy().astype(np.int64)
        return {
            "instruction": task.instruction_texts(self.config, self._poses, target_xy, colors.tolist()),
            "target_index": self._target.cpu().numpy().astype(np.int64),
            "target_color": colors,
            "termination": _CAUSE_NAMES[cause.cpu().numpy()],
            "env_steps": env_steps,
            "episode_seed": self._episode_seed.copy(),
            "reached_wrong_sphere": ev["reached_wrong_sphere"].cpu().numpy(),
            "nearest_sphere_index": ev["nearest_sphere_index"].cpu().numpy().astype(np.int64),
            "wheel_speeds_radps": self._wheel.cpu().numpy().copy(),
        }


def make_arena(
    preset: str | ArenaConfig = "text2nav",
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    render: bool = True,
    autoreset_mode: str = "same_step",
    compile_renderer: bool = False,
    **overrides: Any,
) -> ArenaVecEnv:
    """Build a batched arena in the simulator its config names (``ArenaConfig.backend``).

    ``builtin`` gives an :class:`ArenaVecEnv`; ``mujoco`` (``text2nav-mujoco``) a
    ``vlnav_data.sim.mujoco.MujocoArenaVecEnv`` (CPU only; ``compile_renderer`` does not apply).

    Args:
        preset: Preset name (``PRESET_NAMES``) or an :class:`ArenaConfig`.
        num_envs: Number of arenas N.
        device: ``cpu``, ``cuda``, ``cuda:1``, ... or ``auto``.
        render: Render ``obs["rgb"]``; ``False`` is the fast state-only mode.
        autoreset_mode: ``same_step`` (default), ``next_step`` or ``disabled``.
        compile_renderer: Fuse the per-pixel shaders with ``torch.compile`` (about 1.3x the eager
            frames/s on the 2-core CPU; first use compiles for up to a minute; see ``render.render_batch``).
        **overrides: :class:`ArenaConfig` fields to replace (e.g. ``action_mapping="velocity"``).

    Raises:
        ConfigError: unknown preset / field / device, invalid values.
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    if not isinstance(config, ArenaConfig):
        raise ConfigError(f"preset must be a preset name or an ArenaConfig, got {preset!r}")
    if overrides:
        fields = {f.name for f in dataclasses.fields(ArenaConfig)}
        for key in overrides:
            if key not in fields:
                raise unknown_name("ArenaConfig field", key, fields)
        config = dataclasses.replace(config, **overrides)
    if isinstance(device, str):
        device = resolve_device(device)  # auto|cpu|cuda|cuda:N, the one device rule
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be one of {DEVICE_HELP}, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was requested but CUDA is not available here; use device='cpu'")
    if config.backend == "mujoco":
        from vlnav_data.sim.mujoco import MujocoArenaVecEnv

        return MujocoArenaVecEnv(config, num_envs, dev, render=render, autoreset_mode=autoreset_mode)
    return ArenaVecEnv(
        config, num_envs, dev, render=render, autoreset_mode=autoreset_mode, compile_renderer=compile_renderer
    )
