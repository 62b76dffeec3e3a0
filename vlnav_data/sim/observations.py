"""How an :class:`~vlnav_data.sim.vector_env.ArenaVecEnv`'s state becomes ``(obs, info)``.

Observation backends (``make_arena(obs_backend=...)``): ``numpy`` (default; what Gymnasium users and
SB3 expect) returns ``obs`` as numpy arrays; ``torch`` returns ``obs["rgb"]`` and
``obs["privileged_state"]`` as tensors on the simulator's device, so frames can go from the renderer to
an encoder on the same GPU without a round trip through host memory (``rollout``, ``build_dataset``).
Both give the same numbers (``tests/sim/test_sim_obs_backend.py``). ``info``, rewards and done flags are
numpy in both: they are what the host acts on.

The methods here are a mixin of ``ArenaVecEnv`` (``sim/vector_env.py``: state, ``reset``, ``step``,
autoreset, the backend hooks): the device fields an observation and its info are made of, the ONE packed
device->host read of them per step (``_read``; the module docstring of ``vector_env`` counts the reads),
the observation in the env's backend (frames from the ``_render_frames`` hook, the frame cache a masked
``reset`` reuses, ``final_obs`` rows) and the info dict. ``make_arena`` is in ``sim/make.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlnav_data.sim import task, transfer
from vlnav_data.sim.config import ArenaConfig

OBS_BACKENDS = ("numpy", "torch")
"""``make_arena(obs_backend=...)``: observations as numpy arrays (default) or as tensors on the device."""
CAUSE_NAMES = np.array(("", *task.TERMINATION_CAUSES))
"""``info["termination"]`` by cause code (0: still running)."""
PALETTE_NAMES = np.array(task.PALETTE_NAMES)
"""Colour names by palette index, as a numpy array (indexed by arrays of colour indices)."""
_NUMPY_DTYPES = {torch.bool: np.bool_, torch.long: np.int64, torch.float32: np.float32, torch.float64: np.float64}


class ArenaObservations:
    """Observation and info assembly of :class:`~vlnav_data.sim.vector_env.ArenaVecEnv` (a mixin).

    It reads the env's state below and calls its hooks ``_target_xy()`` and ``_render_frames(rows)``.
    """

    config: ArenaConfig
    num_envs: int
    device: torch.device
    render_enabled: bool
    obs_backend: str
    _poses: torch.Tensor
    _sphere_xy: torch.Tensor
    _sphere_color: torch.Tensor
    _target: torch.Tensor
    _env_steps: torch.Tensor
    _wheel: torch.Tensor
    _episode_seed: np.ndarray
    _frames: torch.Tensor | None

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
