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

Observation backends (``make_arena(obs_backend=...)``): ``numpy`` (default; what Gymnasium users and
SB3 expect) returns ``obs`` as numpy arrays; ``torch`` returns ``obs["rgb"]`` and
``obs["privileged_state"]`` as tensors on the simulator's device, so frames can go from the renderer to
an encoder on the same GPU without a round trip through host memory (``rollout``, ``build_dataset``).
Both give the same numbers (``tests/sim/test_sim_obs_backend.py``). ``info``, rewards and done flags are
numpy in both: they are what the host acts on. ``make_arena`` is in ``sim/make.py``.

Host synchronisation. The host must learn, every step, which envs finished (to draw the next episode
seeds, which come from numpy generators so that any process can reproduce episode ``i``) and the info
fields (instruction strings are host strings). Those are exactly one device->host read per step: every
per-env number (cause, reward, counters, sphere flags, wheel speeds, target, colour and instruction
codes, and with the numpy backend the privileged state) is packed into one float64 tensor and read with
one :func:`~vlnav_data.sim.transfer.to_host`. When some envs finished in ``same_step`` mode, the
new episodes' observation fields need a second read after their starts are uploaded. Everything else
stays on the device: the reset flags are mirrored on the host (no ``.any()`` on a device tensor),
episode starts and actions go up in one pinned non-blocking copy each
(:func:`~vlnav_data.sim.transfer.upload`), and the renderer reads one number per batch (the count of
sphere candidate pixels, which sizes its arrays). ``tests/sim/test_sim_syncs.py`` counts these reads
per ``step()`` on the CPU with ``Tensor``'s reading methods wrapped.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from vlnav_data.errors import ConfigError, did_you_mean, unknown_name
from vlnav_data.sim import dynamics, task, transfer
from vlnav_data.sim.backends import Backend, register_backend
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.render import Scene, render_batch, render_views_builtin, warm_up_compiled

AUTORESET_MODES = {
    "same_step": AutoresetMode.SAME_STEP,
    "next_step": AutoresetMode.NEXT_STEP,
    "disabled": AutoresetMode.DISABLED,
}

OBS_BACKENDS = ("numpy", "torch")
"""``make_arena(obs_backend=...)``: observations as numpy arrays (default) or as tensors on the device."""
CAUSE_NAMES = np.array(("", *task.TERMINATION_CAUSES))
"""``info["termination"]`` by cause code (0: still running)."""
PALETTE_NAMES = np.array(task.PALETTE_NAMES)
"""Colour names by palette index, as a numpy array (indexed by arrays of colour indices)."""
_NUMPY_DTYPES = {torch.bool: np.bool_, torch.long: np.int64, torch.float32: np.float32, torch.float64: np.float64}


class ArenaVecEnv(VectorEnv):
    """N batched arenas. Build with :func:`~vlnav_data.sim.make.make_arena`.

    Observations: ``{"rgb": uint8 (N, H, W, 3)}`` (only with ``render=True``) and
    ``{"privileged_state": float32 (N, D)}``, columns ``PRIVILEGED_STATE_NAMES``: numpy arrays
    (``obs_backend="numpy"``, the Gymnasium default) or torch tensors on ``device`` (``obs_backend="torch"``,
    same dtypes, shapes and numbers; the observation spaces describe both). ``info``, rewards and the done
    flags are numpy in both. Actions: float ``(N, 2)`` (left, right) in [-1, 1] as a numpy array or a tensor;
    values outside are clipped; NaN/inf or a wrong shape raise :class:`ConfigError`.

    The numpy arrays of an observation may share memory with the env's frame cache (a masked ``reset``
    reuses the frames of the rows it does not reset): copy them before writing into them.
    """

    def __init__(
        self,
        config: ArenaConfig,
        num_envs: int,
        device: str | torch.device,
        *,
        render: bool,
        autoreset_mode: str,
        obs_backend: str,
        compile_renderer: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise ConfigError(f"num_envs must be a positive integer, got {num_envs!r}")
        if autoreset_mode not in AUTORESET_MODES:
            raise unknown_name("autoreset_mode", str(autoreset_mode), AUTORESET_MODES)
        if obs_backend not in OBS_BACKENDS:
            raise unknown_name("obs_backend", str(obs_backend), OBS_BACKENDS)
        self.config = config
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.render_enabled = bool(render)
        self.compile_renderer = bool(compile_renderer)
        self.obs_backend = obs_backend
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
        self._needs_reset_host = np.zeros(n, dtype=bool)  # host mirror: the host decides resets without a read
        self._frames: torch.Tensor | None = None  # frames of the last observation (device), reused by masked resets
        self._seed_rng: np.random.Generator | None = None
        self._env_rngs: list[np.random.Generator] | None = None  # per-sub-env streams (reset(seed=[...]))
        self._palette_rgb = torch.as_tensor(task.PALETTE_RGB, device=dev)
        self._rows = torch.arange(n, device=dev)

    # ------------------------------------------------------------------ public API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Start new episodes; returns ``(obs, info)`` for the whole batch.

        With ``reset_mask`` only the masked rows are rendered again; the other rows keep the frames of the
        last observation (their state has not changed since).

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
        idx = self._start_episodes(ids, seeds)
        if idx is not None:
            self._wheel[idx] = 0.0
        return self._current(rerender=None if mask is None else ids)

    def step(self, actions: Any):
        """Advance every env by one control step (see the module docstring for autoreset).

        Host synchronisation (what a CUDA device waits for; the module docstring says why): one read of
        the step's bookkeeping numbers; when some env finished and is reset in this step (``same_step``), a
        second read of the new episodes' observation fields; plus, when rendering, one read per rendered
        batch (the renderer sizes its sphere arrays) and, with ``obs_backend="numpy"``, the frames.
        """
        a = dynamics.validate_actions(actions, self.num_envs)
        if a.device != self.device:
            a = transfer.upload(a, self.device)
        pending_host = self._needs_reset_host.copy()
        pending = self._needs_reset.clone()
        if pending_host.any():
            if self.autoreset_mode == AutoresetMode.DISABLED:
                ids = np.flatnonzero(pending_host).tolist()
                raise ConfigError(
                    f"envs {ids} finished their episodes and autoreset is disabled; call "
                    "reset(options={'reset_mask': mask}) before stepping them"
                )
            self._start_episodes(np.flatnonzero(pending_host), None)  # NEXT_STEP reset step
        moving = ~pending
        wheel = dynamics.wheel_speeds_radps(self.config, a) * moving[:, None]
        self._poses = self._advance_physics(wheel, moving)
        self._wheel = wheel.to(torch.float32)
        self._advance_counters(moving)
        ev = task.evaluate_step(self.config, self._poses, self._sphere_xy, self._target, self._env_steps)
        cause = torch.where(moving, ev["cause"], torch.zeros_like(ev["cause"]))
        reward = torch.where(moving, ev["reward"], torch.zeros_like(ev["reward"]))
        fields = self._observation_fields()
        # The one read every step needs: the transition and the current observation fields, together.
        host = self._read({**self._transition_fields(cause, ev, reward), **fields})
        cause_h = host["cause"]
        terminated = (cause_h > 0) & (cause_h < task.CAUSE_TIME_LIMIT)
        truncated = cause_h == task.CAUSE_TIME_LIMIT
        done = terminated | truncated
        extra: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            if done.any():  # like Gymnasium, the final_* keys are present only when an env finished
                final_info = self._info(host, host)
                final_obs = self._observation(fields, host, rows=done)
                self._start_episodes(np.flatnonzero(done), None)
                fields = self._observation_fields()
                host = {**host, **self._read(fields)}  # the new episodes' observation fields
                extra = {
                    "final_obs": final_obs,
                    "_final_obs": done,
                    "final_info": final_info,
                    "_final_info": done,
                }
        else:
            self._needs_reset = cause > 0
            self._needs_reset_host = done.copy()
        obs = self._observation(fields, host, cache=True)
        info = self._info(host, host)
        info.update(extra)
        return obs, host["reward"], terminated, truncated, info

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
        if len(ids):
            block = transfer.upload(np.concatenate([p, tgt[:, None], ids[:, None]], axis=1), self.device)
            idx = block[:, 4].long()
            self._poses[idx] = block[:, 0:3]
            self._target[idx] = block[:, 3].long()
            self._env_steps[idx] = 0
            self._wheel[idx] = 0.0
            self._needs_reset[idx] = False
            self._needs_reset_host[ids] = False
            self._placed(ids)
        return self._current(rerender=ids)

    def compile_warm_up(self) -> float:
        """With ``compile_renderer``: compile the renderer's shaders for this env's batch sizes now and return
        the seconds it took (0.0 otherwise), so that commands report compile time apart from frames/s."""
        if not (self.render_enabled and self.compile_renderer):
            return 0.0
        return warm_up_compiled(self.config, self.device, self.num_envs)

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
        return PALETTE_NAMES[self._sphere_color.cpu().numpy()]

    @property
    def episode_seeds(self) -> np.ndarray:
        """int64 ``(N,)`` seeds of the current episodes."""
        return self._episode_seed.copy()

    # ------------------------------------------------------------------ internals
    def _advance_counters(self, moving: torch.Tensor) -> None:
        """The one place episode step counters change (besides zeroing at episode start)."""
        self._env_steps += moving.long()

    def _start_episodes(self, ids: np.ndarray, seeds: list[int] | None) -> torch.Tensor | None:
        """Start episodes in slots ``ids`` (seeds drawn from the stream when None); returns the slots on the device.

        Every start is drawn on the host (``sample_episode_start``) and the whole batch of starts goes to the
        device in one non-blocking copy.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return None
        if seeds is None and self._env_rngs is not None:
            seeds = [int(self._env_rngs[i].integers(0, 2**63 - 1)) for i in ids.tolist()]
        elif seeds is None:
            if self._seed_rng is None:
                self._seed_rng = np.random.default_rng()
            seeds = self._seed_rng.integers(0, 2**63 - 1, size=len(ids)).tolist()
        starts = [task.sample_episode_start(self.config, s) for s in seeds]
        m, k = len(ids), self.config.num_spheres
        # float64 holds every value exactly (indices < 2**53; the float32 fields are float64 draws cast below).
        block = np.concatenate(
            [
                np.stack([s.pose for s in starts]),
                np.stack([s.sphere_positions_xy_m for s in starts]).reshape(m, 2 * k),
                np.stack([s.sphere_color_indices for s in starts]),
                np.stack([s.floor_rgb for s in starts]),
                np.stack([s.light_position_m for s in starts]),
                np.array([[s.target_index] for s in starts]),
                ids[:, None],
            ],
            axis=1,
            dtype=np.float64,
        )
        dev_block = transfer.upload(block, self.device)
        c = 3 + 3 * k
        idx = dev_block[:, -1].long()
        self._poses[idx] = dev_block[:, 0:3]
        self._sphere_xy[idx] = dev_block[:, 3 : 3 + 2 * k].reshape(m, k, 2)
        self._sphere_color[idx] = dev_block[:, 3 + 2 * k : c].long()
        self._floor_rgb[idx] = dev_block[:, c : c + 3].float()
        self._light[idx] = dev_block[:, c + 3 : c + 6].float()
        self._target[idx] = dev_block[:, c + 6].long()
        self._env_steps[idx] = 0
        self._needs_reset[idx] = False
        self._needs_reset_host[ids] = False
        self._episode_seed[ids] = np.asarray(seeds, dtype=np.int64)
        self._placed(ids)
        return idx

    # Backend hooks: the built-in kinematics and renderer. A physics backend (vlnav_data.sim.mujoco)
    # overrides these three; everything else (task, counters, autoreset, info) is shared.
    def _advance_physics(self, wheel: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Poses ``(N, 3)`` after one control step with wheel speeds ``wheel`` (rad/s); rows not ``moving`` stay."""
        new_poses = dynamics.integrate_pose(self.config, self._poses, wheel)
        return torch.where(moving[:, None], new_poses, self._poses)

    def _placed(self, ids: np.ndarray) -> None:
        """Robots ``ids`` were placed at ``self._poses[ids]`` (episode start or ``set_state``); nothing to do here."""

    def _render_frames(self, rows: torch.Tensor | None) -> torch.Tensor | np.ndarray:
        """uint8 ``(M, H, W, 3)`` frames of the envs ``rows`` (all when None): a tensor on the device (or numpy)."""
        poses = self._poses if rows is None else self._poses[rows]
        return render_batch(self.config, poses, self._scene(rows), compile_shaders=self.compile_renderer)

    # ------------------------------------------------------------------ observation and info
    def _observation_fields(self) -> dict[str, torch.Tensor]:
        """Device tensors of the current state that an observation and its info are made of."""
        target_xy = self._target_xy()
        return {
            "state": task.privileged_state(self._poses, target_xy),
            "target_index": self._target,
            "color": self._sphere_color.gather(1, self._target[:, None])[:, 0],
            "instruction": task.instruction_codes(self.config, self._poses, target_xy),
        }

    def _transition_fields(
        self, cause: torch.Tensor, ev: dict[str, torch.Tensor], reward: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Device tensors of a transition (or, after a reset, of the current state with cause 0)."""
        return {
            "cause": cause,
            "reward": reward,
            "env_steps": self._env_steps,
            "reached_wrong_sphere": ev["reached_wrong_sphere"],
            "nearest_sphere_index": ev["nearest_sphere_index"],
            "wheel": self._wheel,
        }

    def _read(self, fields: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Bring per-env tensors to the host in ONE transfer (see the module docstring).

        The privileged state travels only with ``obs_backend="numpy"`` (the torch backend keeps it on the
        device). Every value is packed as float64, which holds all of them exactly (float32 states and
        wheel speeds, small integers, flags), and cast back.
        """
        if self.obs_backend == "torch":
            fields = {k: v for k, v in fields.items() if k != "state"}
        n = self.num_envs
        block = torch.cat([v.reshape(n, -1).to(torch.float64) for v in fields.values()], dim=1)
        host = transfer.to_host(block)
        out: dict[str, np.ndarray] = {}
        col = 0
        for key, value in fields.items():
            width = int(np.prod(value.shape[1:], dtype=np.int64))
            part = host[:, col : col + width].reshape((n, *value.shape[1:]))
            out[key] = part.astype(_NUMPY_DTYPES[value.dtype])
            col += width
        return out

    def _current(self, rerender: np.ndarray | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(obs, info)`` of the current state after a reset or ``set_state`` (cause 0, counters as they are)."""
        fields = self._observation_fields()
        ev = task.evaluate_step(self.config, self._poses, self._sphere_xy, self._target, self._env_steps)
        zero = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        host = self._read({**self._transition_fields(zero, ev, ev["reward"]), **fields})
        return self._observation(fields, host, cache=True, rerender=rerender), self._info(host, host)

    def _observation(
        self,
        fields: dict[str, torch.Tensor],
        host: dict[str, np.ndarray],
        *,
        rows: np.ndarray | None = None,
        cache: bool = False,
        rerender: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The observation dict in the env's backend.

        Args:
            fields: :meth:`_observation_fields` of the observed state.
            host: what :meth:`_read` brought of them (the numpy backend's privileged state).
            rows: bool ``(N,)``: render only these rows, the others are zero (``final_obs``).
            cache: keep the frames as the env's current frames (for :meth:`reset`'s masked re-render).
            rerender: int ids: render only these rows and take the others from the current frames (when
                there are current frames to take them from).
        """
        torch_obs = self.obs_backend == "torch"
        obs: dict[str, Any] = {"privileged_state": fields["state"] if torch_obs else host["state"]}
        if not self.render_enabled:
            return obs
        if rows is not None:
            idx = np.flatnonzero(rows)
            idx_dev = transfer.upload(idx, self.device)
            frames = self._as_frames(self._render_frames(idx_dev))
            if torch_obs:
                rgb = torch.zeros((self.num_envs, *frames.shape[1:]), dtype=torch.uint8, device=self.device)
                rgb[idx_dev] = frames
                return {"rgb": rgb, **obs}
            host_rgb = np.zeros((self.num_envs, *frames.shape[1:]), dtype=np.uint8)
            host_rgb[idx] = transfer.to_host(frames)
            return {"rgb": host_rgb, **obs}
        if rerender is not None and self._frames is not None:
            rgb = self._frames.clone()
            if len(rerender):
                ids = transfer.upload(np.asarray(rerender, dtype=np.int64), self.device)
                rgb[ids] = self._as_frames(self._render_frames(ids))
        else:
            rgb = self._as_frames(self._render_frames(None))
        if cache:
            self._frames = rgb
        return {"rgb": rgb if torch_obs else transfer.to_host(rgb), **obs}

    def _as_frames(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """A backend's frames as a tensor on the device (a numpy renderer's frames are wrapped or copied)."""
        if isinstance(frames, torch.Tensor):
            return frames
        return transfer.upload(frames, self.device) if self.device.type != "cpu" else torch.from_numpy(frames)

    def _info(self, obs_host: dict[str, np.ndarray], step_host: dict[str, np.ndarray]) -> dict[str, Any]:
        """Info dict: observation fields from ``obs_host``, transition fields from ``step_host`` (host arrays)."""
        colors = PALETTE_NAMES[obs_host["color"]]
        return {
            "instruction": task.format_instructions(self.config, obs_host["instruction"].tolist(), colors.tolist()),
            "target_index": obs_host["target_index"].astype(np.int64),
            "target_color": colors,
            "termination": CAUSE_NAMES[step_host["cause"]],
            "env_steps": step_host["env_steps"].astype(np.int64),
            "episode_seed": self._episode_seed.copy(),
            "reached_wrong_sphere": step_host["reached_wrong_sphere"].astype(bool),
            "nearest_sphere_index": step_host["nearest_sphere_index"].astype(np.int64),
            "wheel_speeds_radps": step_host["wheel"].astype(np.float32),
        }

    def _target_xy(self) -> torch.Tensor:
        return self._sphere_xy[self._rows, self._target]

    def _scene(self, rows: torch.Tensor | None = None) -> Scene:
        sel = slice(None) if rows is None else rows
        return Scene(
            sphere_xy=self._sphere_xy[sel].float(),
            sphere_rgb=self._palette_rgb[self._sphere_color[sel]],
            floor_rgb=self._floor_rgb[sel],
            light_position=self._light[sel],
        )


register_backend(Backend("builtin", make_env=ArenaVecEnv, render_views=render_views_builtin))
