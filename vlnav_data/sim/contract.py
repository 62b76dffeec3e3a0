"""The simulator contract, checkable: what `rollout`, the experts, the builder and the evaluator rely on.

A *backend* is any ``gymnasium.vector.VectorEnv`` that passes :func:`check_arena`. The built-in arena
(:class:`~vlnav_data.sim.ArenaVecEnv`) and the MuJoCo arena (``text2nav-mujoco``) do; an Isaac Lab
environment wrapped as in ``docs/simulator-backends.md`` can. This module is the one written source of
the contract (ARCHITECTURE.md points here); every rule below is checked, and :func:`check_arena`
reports every violation it finds, not just the first.

Rules (the ``rule`` id of each :class:`ContractViolation`):

``attributes``
    ``num_envs`` (int > 0); ``config`` (an :class:`~vlnav_data.sim.ArenaConfig`: the task, arena and
    camera the env simulates); ``render_enabled`` (bool); ``metadata["autoreset_mode"]`` (a
    ``gymnasium.vector.AutoresetMode``); ``single_action_space`` = ``Box(-1, 1, (2,), float32)``
    (left, right wheel).
``spaces``
    ``single_observation_space`` is a ``Dict`` with ``privileged_state`` ``Box((D,), float32)``,
    ``D = len(PRIVILEGED_STATE_NAMES)``, and, exactly when ``render_enabled``, ``rgb``
    ``Box((H, W, 3), uint8)`` with the config's image size.
``observation``
    ``obs["privileged_state"]`` float32 ``(N, D)``, finite; ``obs["rgb"]`` uint8 ``(N, H, W, 3)``
    when rendering: numpy arrays, or, for an env whose ``obs_backend`` attribute is ``"torch"``, torch
    tensors of those dtypes and shapes on the env's ``device`` (also in ``info["final_obs"]``); the
    rules below read them on the host.
``info``
    every step and reset returns the keys of :data:`INFO_KEYS` with their dtype and shape:
    ``instruction`` (N strings), ``target_index`` int ``(N,)``, ``target_color`` str ``(N,)``,
    ``termination`` str ``(N,)``, ``env_steps`` int ``(N,)``, ``episode_seed`` int ``(N,)``,
    ``reached_wrong_sphere`` bool ``(N,)``, ``nearest_sphere_index`` int ``(N,)``,
    ``wheel_speeds_radps`` float ``(N, 2)``.
``privileged_state``
    the columns mean what their names (:data:`~vlnav_data.sim.PRIVILEGED_STATE_NAMES`) say:
    ``cos_yaw² + sin_yaw² = 1``; ``target_x_m, target_y_m`` = the centre of sphere ``target_index`` of
    the episode's layout (``sample_episode_start(config, episode_seed)``); ``target_forward_m,
    target_left_m`` = that centre in the robot frame; ``target_distance_xy_m`` = their norm; the bearing
    columns = their direction.
``instruction`` / ``target``
    ``instruction`` = ``instruction_texts(config, pose, target, colour)`` of the observed pose;
    ``target_color`` = the colour of sphere ``target_index``.
``starts``
    ``reset(options={"reset_mask": m, "episode_seeds": s})`` starts episode ``s[j]`` in the ``j``-th
    masked slot at ``sample_episode_start(config, s[j])`` (pose within 1e-4 m / rad, target, colour)
    and reports ``info["episode_seed"]``.
``step``
    ``step(actions (N, 2))`` returns float rewards ``(N,)`` (finite), bool ``terminated`` and
    ``truncated`` ``(N,)``; ``wheel_speeds_radps`` = the config's action mapping of the clipped actions.
``actions``
    ``(1, 1)`` drives forward along the heading, ``(-1, 1)`` turns counter-clockwise (left wheel first).
``env_steps``
    0 after a reset, +1 per ``step()`` of a running episode (never more: one control step counted once).
``termination``
    ``termination`` is ``""`` while running, else one of ``TERMINATION_CAUSES``, and agrees with the pose
    that ended the episode, checked in the order success, front, back, left, right, time limit;
    ``terminated`` = a cause other than ``time_limit``, ``truncated`` = ``time_limit``, never both;
    ``nearest_sphere_index`` and ``reached_wrong_sphere`` agree with that pose. Success and leaving the
    arena are driven on purpose; the time limit when ``max_episode_steps`` is at most
    ``max_time_limit_steps``.
``autoreset``
    the declared mode is what happens: ``same_step`` (``final_obs``/``final_info`` + masks on the step
    that finished, the returned observation already the next episode's), ``next_step`` (the next step
    is a reset step: reward 0, not done, ``env_steps`` 0) or ``disabled`` (stepping a finished env
    raises; ``reset(options={"reset_mask": ...})`` restarts it).
``determinism``
    ``reset(seed=s)`` and the same actions give identical observations and infos (frames included).
``set_state``
    ``set_state(env_ids, poses, target_indices)`` places the robots (pose within 1e-4), sets the
    targets, zeroes ``env_steps`` and returns ``(obs, info)`` of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim import dynamics, task
from vlnav_data.sim.config import ArenaConfig

#: ``info`` keys every reset and step returns: name -> (numpy dtype kind, trailing shape after N).
INFO_KEYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "instruction": ("list[str]", ()),
    "target_index": ("i", ()),
    "target_color": ("U", ()),
    "termination": ("U", ()),
    "env_steps": ("i", ()),
    "episode_seed": ("i", ()),
    "reached_wrong_sphere": ("b", ()),
    "nearest_sphere_index": ("i", ()),
    "wheel_speeds_radps": ("f", (2,)),
}

#: Rule ids, in the order they are checked and reported.
RULES: tuple[str, ...] = (
    "attributes",
    "spaces",
    "observation",
    "info",
    "privileged_state",
    "instruction",
    "target",
    "starts",
    "step",
    "actions",
    "env_steps",
    "termination",
    "autoreset",
    "determinism",
    "set_state",
)

POSE_TOLERANCE = 1e-4
_COLUMN = {name: i for i, name in enumerate(task.PRIVILEGED_STATE_NAMES)}


@dataclass(frozen=True)
class ContractViolation:
    """One broken rule: ``rule`` (an id of :data:`RULES`) and what was expected and found."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


@dataclass(frozen=True)
class ArenaReport:
    """Outcome of :func:`check_arena`.

    Attributes:
        violations: every violation found (at most ``max_per_rule`` per rule, then a count).
        notes: what could not be exercised and why (not violations).
        env: a short description of the checked env.
    """

    violations: tuple[ContractViolation, ...]
    notes: tuple[str, ...]
    env: str

    @property
    def ok(self) -> bool:
        """True when the env meets every rule."""
        return not self.violations

    def messages(self) -> list[str]:
        """``"[rule] message"`` of every violation."""
        return [str(v) for v in self.violations]

    def raise_if_violated(self, what: str = "the environment") -> None:
        """Raise :class:`ConfigError` naming every violation (one line) unless the env conforms."""
        if self.violations:
            listed = "; ".join(self.messages())
            raise ConfigError(
                f"{what} does not meet the simulator contract ({len(self.violations)} violations): {listed}. "
                "See vlnav_data.sim.contract and docs/simulator-backends.md"
            )


class _Collector:
    def __init__(self, max_per_rule: int) -> None:
        self.items: list[ContractViolation] = []
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []
        self.max_per_rule = max_per_rule

    def add(self, rule: str, message: str) -> None:
        n = self.counts.get(rule, 0) + 1
        self.counts[rule] = n
        if n <= self.max_per_rule:
            self.items.append(ContractViolation(rule, message))

    def has(self, rule: str) -> bool:
        return rule in self.counts

    def finish(self) -> list[ContractViolation]:
        out = sorted(self.items, key=lambda v: RULES.index(v.rule) if v.rule in RULES else len(RULES))
        for rule, n in self.counts.items():
            if n > self.max_per_rule:
                out.append(ContractViolation(rule, f"{n - self.max_per_rule} more violations of this rule"))
        return out


class _Abort(Exception):
    """The env cannot be exercised further (e.g. reset() itself fails)."""


def check_arena(
    env: Any,
    *,
    seed: int = 0,
    max_time_limit_steps: int = 60,
    max_per_rule: int = 5,
) -> ArenaReport:
    """Check ``env`` against every rule of the contract (module docstring) and report all violations.

    The env is reset and stepped (a few dozen steps: driven starts, placed robots, one episode per
    termination cause it can reach quickly); afterwards reset it before use.

    Args:
        env: the vector environment to check.
        seed: seed of the resets the check makes.
        max_time_limit_steps: exercise the time limit when ``config.max_episode_steps`` is at most this
            (otherwise a note says it was not exercised).
        max_per_rule: violations listed per rule (the rest are counted).

    Returns:
        :class:`ArenaReport` (``ok`` when there is no violation).
    """
    out = _Collector(max_per_rule)
    desc = f"{type(env).__name__}(num_envs={getattr(env, 'num_envs', '?')})"
    try:
        _Checker(env, out, seed).run(max_time_limit_steps)
    except _Abort:
        pass
    return ArenaReport(violations=tuple(out.finish()), notes=tuple(out.notes), env=desc)


class _Checker:
    def __init__(self, env: Any, out: _Collector, seed: int) -> None:
        self.env = env
        self.out = out
        self.seed = seed
        self.n = 0
        self.config: ArenaConfig | None = None
        self.mode: Any = None
        self.render = False
        self.pending = np.zeros(0, dtype=bool)  # next_step mode: rows whose next step() is a reset step
        self.spheres = np.zeros((0, 2))  # sphere centres of the layout every slot shares (same_layout)

    # ------------------------------------------------------------------ driver
    def run(self, max_time_limit_steps: int) -> None:
        self.check_attributes()
        self.check_spaces()
        obs, info = self.host(
            self.call("reset", lambda: self.env.reset(seed=self.seed), rule="info", fatal=True), "reset"
        )
        self.check_transition(obs, info, None, None, "reset(seed)")
        self.expect_all("env_steps", info, "env_steps", 0, "after reset")
        self.expect_all("termination", info, "termination", "", "after reset")
        self.check_starts()
        self.check_set_state()
        self.check_action_meaning()
        self.check_episode_end("success")
        for side in ("front", "back", "left", "right"):
            self.check_episode_end(f"out_of_bounds_{side}")
        if self.config.max_episode_steps <= max_time_limit_steps:
            self.check_episode_end("time_limit")
        else:
            self.out.notes.append(
                f"time limit not exercised: max_episode_steps={self.config.max_episode_steps} > "
                f"{max_time_limit_steps}; build a checking env with a smaller max_episode_steps to exercise it"
            )
        self.check_determinism()

    def call(self, what: str, fn: Callable[[], Any], rule: str = "step", fatal: bool = False) -> Any:
        try:
            return fn()
        except _Abort:
            raise
        except Exception as exc:  # reported as a violation; the checker carries on where it can
            self.out.add(rule, f"{what} raised {type(exc).__name__}: {exc}")
            if fatal:
                raise _Abort from exc
            return None

    def host(self, result: Any, where: str) -> Any:
        """``result`` of reset/step/set_state with its observations (and ``final_obs``) as numpy arrays.

        An env with ``obs_backend == "torch"`` must return tensors on its ``device``; anything else is reported
        under ``observation`` and passed on as it is.
        """
        if not isinstance(result, tuple) or len(result) not in (2, 5):
            return result
        obs, info = result[0], result[-1]
        obs = self.host_obs(obs, where)
        if isinstance(info, dict) and isinstance(info.get("final_obs"), dict):
            info = {**info, "final_obs": self.host_obs(info["final_obs"], f"{where} final_obs")}
        return (obs, *result[1:-1], info)

    def host_obs(self, obs: Any, where: str) -> Any:
        tensors = getattr(self.env, "obs_backend", "numpy") == "torch"
        if not isinstance(obs, dict):
            return obs
        out = {}
        for key, value in obs.items():
            if tensors and not isinstance(value, torch.Tensor):
                self.out.add("observation", f"{where}: obs_backend is 'torch' but obs['{key}'] is {_desc(value)}")
            elif isinstance(value, torch.Tensor):
                device = torch.device(getattr(self.env, "device", "cpu"))
                if not tensors:
                    self.out.add(
                        "observation",
                        f"{where}: obs['{key}'] is a torch tensor, but the env does not declare obs_backend = 'torch'",
                    )
                elif value.device.type != device.type or (device.index is not None and value.device != device):
                    self.out.add("observation", f"{where}: obs['{key}'] is on {value.device}, the env on {device}")
                value = value.detach().cpu().numpy()
            out[key] = value
        return out

    # ------------------------------------------------------------------ static rules
    def check_attributes(self) -> None:
        from gymnasium.vector import AutoresetMode

        env, add = self.env, self.out.add
        n = getattr(env, "num_envs", None)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            add("attributes", f"num_envs must be a positive int, got {n!r}")
            raise _Abort
        self.n = int(n)
        self.pending = np.zeros(self.n, dtype=bool)
        config = getattr(env, "config", None)
        if not isinstance(config, ArenaConfig):
            add("attributes", f"config must be an ArenaConfig (the task it simulates), got {type(config).__name__}")
            raise _Abort
        self.config = config
        render = getattr(env, "render_enabled", None)
        if not isinstance(render, bool):
            add("attributes", f"render_enabled must be a bool, got {render!r}")
        self.render = bool(render)
        mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
        if not isinstance(mode, AutoresetMode):
            add("attributes", f"metadata['autoreset_mode'] must be a gymnasium AutoresetMode, got {mode!r}")
            raise _Abort
        self.mode = mode
        space = getattr(env, "single_action_space", None)
        ok = (
            space is not None
            and tuple(getattr(space, "shape", ())) == (2,)
            and np.dtype(getattr(space, "dtype", None)) == np.float32
            and np.all(np.asarray(getattr(space, "low", 0)) == -1.0)
            and np.all(np.asarray(getattr(space, "high", 0)) == 1.0)
        )
        if not ok:
            add(
                "attributes",
                f"single_action_space must be Box(-1, 1, (2,), float32) (left, right wheel), got {space!r}",
            )

    def check_spaces(self) -> None:
        space = getattr(self.env, "single_observation_space", None)
        spaces = getattr(space, "spaces", None)
        if not isinstance(spaces, dict):
            self.out.add("spaces", f"single_observation_space must be a Dict space, got {space!r}")
            return
        d = len(task.PRIVILEGED_STATE_NAMES)
        ps = spaces.get("privileged_state")
        if ps is None or tuple(ps.shape) != (d,) or np.dtype(ps.dtype) != np.float32:
            self.out.add("spaces", f"privileged_state must be Box(({d},), float32), got {ps!r}")
        rgb = spaces.get("rgb")
        hw = (self.config.image_height_px, self.config.image_width_px, 3)
        if self.render and (rgb is None or tuple(rgb.shape) != hw or np.dtype(rgb.dtype) != np.uint8):
            self.out.add("spaces", f"rgb must be Box({hw}, uint8) when render_enabled, got {rgb!r}")
        if not self.render and rgb is not None:
            self.out.add("spaces", "rgb is in the observation space but render_enabled is False")

    # ------------------------------------------------------------------ per-transition rules
    def check_obs(self, obs: Any, where: str) -> bool:
        add = self.out.add
        if not isinstance(obs, dict):
            add("observation", f"{where}: obs must be a dict, got {type(obs).__name__}")
            return False
        d = len(task.PRIVILEGED_STATE_NAMES)
        ok = True
        ps = obs.get("privileged_state")
        if not isinstance(ps, np.ndarray) or ps.dtype != np.float32 or ps.shape != (self.n, d):
            add("observation", f"{where}: privileged_state must be a float32 array ({self.n}, {d}), got {_desc(ps)}")
            ok = False
        elif not np.isfinite(ps).all():
            add("observation", f"{where}: privileged_state has NaN/inf")
            ok = False
        if self.render:
            rgb = obs.get("rgb")
            hw = (self.n, self.config.image_height_px, self.config.image_width_px, 3)
            if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != hw:
                add("observation", f"{where}: rgb must be a uint8 array {hw}, got {_desc(rgb)}")
        return ok

    def check_info(self, info: Any, where: str) -> bool:
        add = self.out.add
        if not isinstance(info, dict):
            add("info", f"{where}: info must be a dict, got {type(info).__name__}")
            return False
        ok = True
        for key, (kind, tail) in INFO_KEYS.items():
            if key not in info:
                add("info", f"{where}: info lacks '{key}'")
                ok = False
                continue
            value = info[key]
            if kind == "list[str]":
                if (
                    not isinstance(value, (list, tuple))
                    or len(value) != self.n
                    or not all(isinstance(s, str) for s in value)
                ):
                    add("info", f"{where}: info['{key}'] must be a list of {self.n} str, got {_desc(value)}")
                    ok = False
                continue
            arr = np.asarray(value) if isinstance(value, np.ndarray) else None
            if arr is None or arr.shape != (self.n, *tail) or arr.dtype.kind != kind:
                want = {"i": "int", "U": "str", "b": "bool", "f": "float"}[kind]
                add(
                    "info", f"{where}: info['{key}'] must be a numpy {want} array {(self.n, *tail)}, got {_desc(value)}"
                )
                ok = False
        return ok

    def check_transition(
        self,
        obs: Any,
        info: Any,
        actions: np.ndarray | None,
        moving: np.ndarray | None,
        where: str,
    ) -> bool:
        """Observation/info structure and the meaning of every row (state columns, target, instruction)."""
        ok_obs = self.check_obs(obs, where)
        ok_info = self.check_info(info, where)
        if not (ok_obs and ok_info):
            return False
        self.check_state_meaning(obs["privileged_state"], info, where)
        if actions is not None and moving is not None:
            want = dynamics.wheel_speeds_radps(self.config, torch.as_tensor(actions, dtype=torch.float64)).numpy()
            got = np.asarray(info["wheel_speeds_radps"], dtype=np.float64)
            bad = moving & ~np.isclose(got, want, rtol=1e-4, atol=1e-4).all(axis=1)
            for i in np.flatnonzero(bad)[:2]:
                self.out.add(
                    "step",
                    f"{where}: env {i} reports wheel_speeds_radps {got[i].round(4).tolist()} for action "
                    f"{np.round(actions[i], 4).tolist()}, the {self.config.action_mapping} mapping gives "
                    f"{want[i].round(4).tolist()}",
                )
        return True

    def check_state_meaning(self, state: np.ndarray, info: dict[str, Any], where: str, rows: Any = None) -> None:
        config = self.config
        rows = range(self.n) if rows is None else rows
        for i in rows:
            s = state[i].astype(np.float64)
            seed = int(info["episode_seed"][i])
            tgt = int(info["target_index"][i])
            try:
                start = task.sample_episode_start(config, seed)
            except ConfigError as exc:
                self.out.add("starts", f"{where}: env {i}: episode_seed {seed} is not a valid seed ({exc})")
                continue
            if not 0 <= tgt < len(start.sphere_positions_xy_m):
                self.out.add("target", f"{where}: env {i}: target_index {tgt} is not a sphere index")
                continue
            txy = start.sphere_positions_xy_m[tgt]
            color = task.PALETTE_NAMES[int(start.sphere_color_indices[tgt])]
            if str(info["target_color"][i]) != color:
                self.out.add(
                    "target", f"{where}: env {i}: target_color '{info['target_color'][i]}' but sphere {tgt} is {color}"
                )
            c = _COLUMN
            x, y, cy, sy = s[c["x_m"]], s[c["y_m"]], s[c["cos_yaw"]], s[c["sin_yaw"]]
            errors = []
            if abs(cy * cy + sy * sy - 1.0) > 1e-4:
                errors.append(f"cos_yaw²+sin_yaw² = {cy * cy + sy * sy:.5f}, not 1")
            if abs(s[c["target_x_m"]] - txy[0]) > 1e-4 or abs(s[c["target_y_m"]] - txy[1]) > 1e-4:
                errors.append(
                    f"target_x_m, target_y_m = {s[c['target_x_m']]:.4f}, {s[c['target_y_m']]:.4f} but sphere {tgt} "
                    f"is at {txy[0]:.4f}, {txy[1]:.4f}"
                )
            dx, dy = txy[0] - x, txy[1] - y
            fwd, left = cy * dx + sy * dy, -sy * dx + cy * dy
            dist = math.hypot(fwd, left)
            checks = {
                "target_forward_m": fwd,
                "target_left_m": left,
                "target_distance_xy_m": dist,
                "target_bearing_cos": fwd / dist if dist > 0 else 1.0,
                "target_bearing_sin": left / dist if dist > 0 else 0.0,
            }
            for name, want in checks.items():
                if abs(s[c[name]] - want) > 1e-3:
                    errors.append(f"{name} = {s[c[name]]:.4f}, the pose and target give {want:.4f}")
            if errors:
                self.out.add("privileged_state", f"{where}: env {i}: " + "; ".join(errors))
            yaw = math.atan2(sy, cy)
            pose = torch.tensor([[x, y, yaw]], dtype=torch.float64)
            want_text = task.instruction_texts(config, pose, torch.as_tensor(np.asarray(txy)[None]), [color])[0]
            if info["instruction"][i] != want_text:
                self.out.add(
                    "instruction",
                    f"{where}: env {i}: instruction {info['instruction'][i]!r}, the '{config.instructions}' style "
                    f"gives {want_text!r} for this pose and target",
                )

    def expect_all(self, rule: str, info: Any, key: str, value: Any, where: str) -> None:
        if not isinstance(info, dict) or key not in info:
            return
        got = np.asarray(info[key])
        if got.shape != (self.n,) or not (got == value).all():
            self.out.add(rule, f"{where}: info['{key}'] must be all {value!r}, got {got.tolist()}")

    # ------------------------------------------------------------------ scenarios
    def step(self, actions: np.ndarray, where: str) -> tuple:
        from gymnasium.vector import AutoresetMode

        moving = ~self.pending
        result = self.host(self.call(f"{where}: step()", lambda: self.env.step(actions)), where)
        if result is None:
            raise _Abort
        if not isinstance(result, tuple) or len(result) != 5:
            self.out.add("step", f"{where}: step() must return (obs, reward, terminated, truncated, info)")
            raise _Abort
        obs, reward, terminated, truncated, info = result
        for name, value, kind in (
            ("reward", reward, "f"),
            ("terminated", terminated, "b"),
            ("truncated", truncated, "b"),
        ):
            if not isinstance(value, np.ndarray) or value.shape != (self.n,) or value.dtype.kind != kind:
                want = {"f": "float", "b": "bool"}[kind]
                self.out.add("step", f"{where}: {name} must be a numpy {want} array ({self.n},), got {_desc(value)}")
                raise _Abort
        if not np.isfinite(reward).all():
            self.out.add("step", f"{where}: reward has NaN/inf")
        if not self.check_transition(obs, info, actions, moving, where):
            raise _Abort
        self.pending = (
            (terminated | truncated) if self.mode == AutoresetMode.NEXT_STEP else np.zeros(self.n, dtype=bool)
        )
        both = np.flatnonzero(terminated & truncated)
        if len(both):
            self.out.add("termination", f"{where}: envs {both.tolist()} are both terminated and truncated")
        return result

    def reset_rows(self, mask: np.ndarray, seeds: list[int] | None, where: str) -> tuple:
        options: dict[str, Any] = {"reset_mask": mask}
        if seeds is not None:
            options["episode_seeds"] = seeds
        result = self.host(
            self.call(
                f"{where}: reset(options={{'reset_mask', ...}})", lambda: self.env.reset(options=options), rule="starts"
            ),
            where,
        )
        if result is None:
            raise _Abort
        obs, info = result
        self.pending &= ~mask
        if not self.check_transition(obs, info, None, None, where):
            raise _Abort
        return obs, info

    def check_starts(self) -> None:
        seeds = [int(s) for s in np.random.default_rng([self.seed, 0x57A27]).integers(0, 2**62, self.n)]
        mask = np.ones(self.n, dtype=bool)
        obs, info = self.reset_rows(mask, seeds, "starts")
        got_seeds = np.asarray(info["episode_seed"]).tolist()
        if got_seeds != seeds:
            self.out.add(
                "starts", f"info['episode_seed'] is {got_seeds[:4]}..., the requested episode_seeds are {seeds[:4]}..."
            )
        self.expect_all("env_steps", info, "env_steps", 0, "after reset(options)")
        for i, s in enumerate(seeds):
            start = task.sample_episode_start(self.config, s)
            pose = _pose(obs["privileged_state"][i])
            if not _pose_close(pose, start.pose):
                self.out.add(
                    "starts",
                    f"env {i} started episode seed {s} at {np.round(pose, 4).tolist()}, "
                    f"sample_episode_start gives {np.round(start.pose, 4).tolist()}",
                )
            if int(info["target_index"][i]) != start.target_index:
                self.out.add(
                    "starts",
                    f"env {i}: target_index {int(info['target_index'][i])}, episode seed {s} draws "
                    f"{start.target_index}",
                )

    def set_state(self, ids: list[int], poses: np.ndarray, targets: list[int], where: str) -> tuple:
        result = self.host(
            self.call(
                f"{where}: set_state()",
                lambda: self.env.set_state(np.asarray(ids), np.asarray(poses, dtype=np.float64), np.asarray(targets)),
                rule="set_state",
            ),
            where,
        )
        if result is None or not isinstance(result, tuple) or len(result) != 2:
            if result is not None:
                self.out.add("set_state", f"{where}: set_state() must return (obs, info)")
            raise _Abort
        obs, info = result
        self.pending[ids] = False
        if not self.check_transition(obs, info, None, None, where):
            raise _Abort
        for j, i in enumerate(ids):
            pose = _pose(obs["privileged_state"][i])
            if not _pose_close(pose, poses[j]):
                self.out.add(
                    "set_state",
                    f"{where}: env {i} was placed at {np.round(poses[j], 4).tolist()} but observes "
                    f"{np.round(pose, 4).tolist()}",
                )
            if int(info["target_index"][i]) != targets[j]:
                self.out.add(
                    "set_state", f"{where}: env {i}: target_index {int(info['target_index'][i])}, set {targets[j]}"
                )
            if int(info["env_steps"][i]) != 0 or str(info["termination"][i]) != "":
                self.out.add(
                    "set_state",
                    f"{where}: env {i}: a placed robot starts a fresh episode (env_steps 0, termination ''), got "
                    f"{int(info['env_steps'][i])}, {str(info['termination'][i])!r}",
                )
        return obs, info

    def same_layout(self, where: str) -> np.ndarray:
        """Start one episode seed in every slot (one sphere layout for all, also in randomised arenas).

        Returns the ``(K, 2)`` sphere centres of that layout; the placements below are computed from it.
        """
        seed = int(np.random.default_rng([self.seed, 0x1A7]).integers(0, 2**62))
        self.reset_rows(np.ones(self.n, dtype=bool), [seed] * self.n, where)
        self.spheres = task.sample_episode_start(self.config, seed).sphere_positions_xy_m
        return self.spheres

    def safe_pose(self) -> np.ndarray:
        """A pose inside the bounds, facing +x, as far as possible from every sphere of the current layout."""
        (x0, x1), (y0, y1) = self.config.bounds_x_m, self.config.bounds_y_m
        spheres = self.spheres
        best, best_d = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.0]), -1.0
        for fx in np.linspace(0.15, 0.85, 8):
            for fy in np.linspace(0.15, 0.85, 8):
                p = np.array([x0 + fx * (x1 - x0), y0 + fy * (y1 - y0), 0.0])
                d = np.min(np.hypot(*(spheres - p[:2]).T))
                if d > best_d:
                    best, best_d = p, d
        return best

    def check_set_state(self) -> None:
        self.same_layout("set_state")
        base = self.safe_pose()
        ids = list(range(self.n))
        poses = np.array([base + [0.01 * i, -0.01 * i, 0.3 * i - 0.5] for i in ids])
        k = self.config.num_spheres
        self.set_state(ids, poses, [i % k for i in ids], "set_state")
        last = None
        for t in range(1, 4):
            result = self.step(np.zeros((self.n, 2)), f"set_state + step {t}")
            last = result[4]
            steps = np.asarray(last["env_steps"])
            if not (steps == t).all():
                self.out.add(
                    "env_steps",
                    f"env_steps must count each step() of an episode once: after {t} steps from set_state got "
                    f"{steps.tolist()}",
                )
                break

    def check_action_meaning(self) -> None:
        self.same_layout("actions")
        base = self.safe_pose()
        ids = list(range(self.n))
        steps = 5
        for action, what in (((1.0, 1.0), "drive"), ((-1.0, 1.0), "turn")):
            self.set_state(ids, np.tile(base, (self.n, 1)), [0] * self.n, f"actions: {what}")
            for _ in range(steps):
                obs, _, te, tr, _ = self.step(np.tile(action, (self.n, 1)), f"actions: {what}")
                if te[0] or tr[0]:
                    self.out.notes.append(f"action meaning ({what}) not checked: the episode ended")
                    break
            else:
                moved = _pose(obs["privileged_state"][0]) - base
                if what == "drive":
                    forward = float(moved[0] * math.cos(base[2]) + moved[1] * math.sin(base[2]))
                    expected = self.config.max_linear_speed_mps * self.config.dt_s * steps
                    if not 0.4 * expected <= forward <= 1.2 * expected:
                        self.out.add(
                            "actions",
                            f"action (1, 1) for {steps} steps moved {forward:.4f} m along the heading; full speed "
                            f"({self.config.max_linear_speed_mps} m/s) gives {expected:.4f} m",
                        )
                elif not _wrap(moved[2]) > 0.05:
                    self.out.add(
                        "actions",
                        "action (-1, 1) (left wheel back, right forward) must turn counter-clockwise; the yaw "
                        f"changed by {_wrap(moved[2]):.4f} rad in {steps} steps",
                    )

    def episode_pose(self, cause: str) -> tuple[np.ndarray, int, np.ndarray]:
        """A placement that ends with ``cause`` when driven with the returned action (or standing still)."""
        config = self.config
        spheres = self.spheres
        (x0, x1), (y0, y1) = config.bounds_x_m, config.bounds_y_m
        radius = math.sqrt(
            max(config.success_radius_m**2 - (config.sphere_height_m - config.robot_root_height_m) ** 2, 0.0)
        )
        step_m = config.max_linear_speed_mps * config.dt_s
        go = np.array([1.0, 1.0])
        if cause == "success":
            sx, sy = spheres[0]
            return np.array([sx - radius - 2.5 * step_m, sy, 0.0]), 0, go
        if cause == "time_limit":
            return self.safe_pose(), 0, np.zeros(2)
        side = cause.removeprefix("out_of_bounds_")
        margin = 2.5 * step_m
        # A point on the inside of that boundary as far as possible from every sphere.
        if side in ("front", "back"):
            x = x1 - margin if side == "front" else x0 + margin
            ys = np.linspace(y0 + 0.1, y1 - 0.1, 41)
            d = [np.min(np.hypot(spheres[:, 0] - x, spheres[:, 1] - y)) for y in ys]
            yaw = 0.0 if side == "front" else math.pi
            return np.array([x, ys[int(np.argmax(d))], yaw]), 0, go
        y = y1 - margin if side == "left" else y0 + margin
        xs = np.linspace(x0 + 0.1, x1 - 0.1, 41)
        d = [np.min(np.hypot(spheres[:, 0] - x, spheres[:, 1] - y)) for x in xs]
        yaw = math.pi / 2 if side == "left" else -math.pi / 2
        return np.array([xs[int(np.argmax(d))], y, yaw]), 0, go

    def check_episode_end(self, cause: str) -> None:
        """Drive env 0 into ``cause``; check the cause against the final pose, the counters and the autoreset."""
        from gymnasium.vector import AutoresetMode

        self.same_layout(cause)  # also restarts envs a disabled-autoreset scenario left finished
        pose, target, action = self.episode_pose(cause)
        ids = list(range(self.n))
        self.set_state(ids, np.tile(self.safe_pose(), (self.n, 1)), [0] * self.n, cause)
        self.set_state([0], pose[None], [target], cause)
        actions = np.zeros((self.n, 2))
        actions[0] = action
        limit = self.config.max_episode_steps + 2 if cause == "time_limit" else 30
        for t in range(1, limit + 1):
            obs, reward, terminated, truncated, info = self.step(actions, f"{cause} episode step {t}")
            if int(info["env_steps"][0]) != t:
                self.out.add(
                    "env_steps",
                    f"{cause} episode: env_steps {int(info['env_steps'][0])} after {t} step() calls; each step "
                    "counts once",
                )
                return
            done = bool(terminated[0] or truncated[0])
            reported = str(info["termination"][0])
            if not done:
                if reported:
                    self.out.add("termination", f"{cause} episode step {t}: termination {reported!r} but not done")
                continue
            final_obs, final_info = obs, info
            if self.mode != AutoresetMode.SAME_STEP and ("final_obs" in info or "final_info" in info):
                self.out.add(
                    "autoreset",
                    f"{self.mode.name.lower()}: the step that ended the episode returned final_obs/final_info, so "
                    "the env resets within that step; declare metadata['autoreset_mode'] = AutoresetMode.SAME_STEP",
                )
                return
            if self.mode == AutoresetMode.SAME_STEP:
                if "final_info" not in info or "final_obs" not in info or not np.asarray(info.get("_final_info"))[0]:
                    self.out.add(
                        "autoreset",
                        "same_step: the step that ends an episode must carry final_obs, final_info and their masks",
                    )
                    return
                final_obs, final_info = info["final_obs"], info["final_info"]
                if str(final_info["termination"][0]) != reported or int(final_info["env_steps"][0]) != t:
                    self.out.add(
                        "autoreset", "same_step: final_info must describe the transition (termination, env_steps)"
                    )
            self.check_cause(cause, reported, terminated[0], truncated[0], final_obs, final_info, t)
            self.check_after_end(cause, obs, info)
            return
        self.out.add(
            "termination",
            f"placed at {np.round(pose, 3).tolist()} and driven with {action.tolist()} for {limit} steps, env 0 never "
            f"ended (expected '{cause}')",
        )

    def check_cause(self, cause: str, reported: str, term: bool, trunc: bool, obs: Any, info: Any, t: int) -> None:
        config = self.config
        if reported not in task.TERMINATION_CAUSES:
            self.out.add("termination", f"termination {reported!r} is not one of {task.TERMINATION_CAUSES}")
            return
        state = np.asarray(obs["privileged_state"])[0]
        pose = torch.as_tensor(_pose(state)[None])
        start = task.sample_episode_start(config, int(info["episode_seed"][0]))
        spheres = torch.as_tensor(start.sphere_positions_xy_m[None], dtype=torch.float64)
        ev = task.evaluate_step(config, pose, spheres, torch.tensor([int(info["target_index"][0])]), torch.tensor([t]))
        code = int(ev["cause"][0])
        expected = task.TERMINATION_CAUSES[code - 1] if code else ""
        if reported != expected:
            self.out.add(
                "termination",
                f"episode ended with {reported!r} at pose {np.round(pose[0].numpy(), 4).tolist()} after {t} steps; "
                f"the task's rules give {expected or 'running'!r}",
            )
        if reported != cause and not self.out.has("termination"):
            self.out.notes.append(
                f"'{cause}' not exercised: the placed robot ended with {reported!r} (as the rules say)"
            )
        is_limit = reported == "time_limit"
        if bool(term) != (not is_limit) or bool(trunc) != is_limit:
            self.out.add(
                "termination",
                f"{reported!r}: terminated={bool(term)}, truncated={bool(trunc)}; expected terminated="
                f"{not is_limit}, truncated={is_limit}",
            )
        nearest = int(ev["nearest_sphere_index"][0])
        if int(info["nearest_sphere_index"][0]) != nearest:
            self.out.add(
                "termination",
                f"nearest_sphere_index {int(info['nearest_sphere_index'][0])}, the final pose gives {nearest}",
            )
        if bool(info["reached_wrong_sphere"][0]) != bool(ev["reached_wrong_sphere"][0]):
            self.out.add("termination", "reached_wrong_sphere disagrees with the final pose")

    def check_after_end(self, cause: str, obs: Any, info: Any) -> None:
        from gymnasium.vector import AutoresetMode

        zeros = np.zeros((self.n, 2))
        if self.mode == AutoresetMode.SAME_STEP:
            _, _, te, tr, nxt = self.step(zeros, f"after {cause}")
            if int(nxt["env_steps"][0]) != 1:
                self.out.add(
                    "autoreset",
                    f"same_step: the step after an episode ended is step 1 of the next episode, got env_steps "
                    f"{int(nxt['env_steps'][0])}",
                )
        elif self.mode == AutoresetMode.NEXT_STEP:
            _, reward, te, tr, nxt = self.step(zeros, f"reset step after {cause}")
            if int(nxt["env_steps"][0]) != 0 or te[0] or tr[0] or float(reward[0]) != 0.0:
                self.out.add(
                    "autoreset",
                    "next_step: the step after an episode ended is a reset step (reward 0, not done, env_steps 0), got "
                    f"reward {float(reward[0])}, done {bool(te[0] or tr[0])}, env_steps {int(nxt['env_steps'][0])}",
                )
        else:
            raised = False
            try:
                self.env.step(zeros)
            except Exception:
                raised = True
            if not raised:
                self.out.add("autoreset", "disabled: stepping an env whose episode ended must raise until it is reset")
            mask = np.zeros(self.n, dtype=bool)
            mask[0] = True
            _, info2 = self.reset_rows(mask, None, f"reset after {cause}")
            if int(info2["env_steps"][0]) != 0:
                self.out.add("autoreset", "disabled: reset(options={'reset_mask'}) must restart the env (env_steps 0)")

    def check_determinism(self) -> None:
        rng = np.random.default_rng([self.seed, 0xDE7])
        actions = rng.uniform(-1, 1, (6, self.n, 2))

        def run() -> list[Any]:
            obs, info = self.host(self.env.reset(seed=self.seed), "determinism reset")
            trace = [_snapshot(obs, info)]
            for a in actions:
                obs, reward, te, tr, info = self.host(self.env.step(a), "determinism step")
                trace.append(_snapshot(obs, info) + [reward.copy(), te.copy(), tr.copy()])
            return trace

        first = self.call("determinism run", run, rule="determinism")
        second = self.call("determinism run", run, rule="determinism")
        self.pending[:] = False
        if first is None or second is None:
            return
        for t, (a, b) in enumerate(zip(first, second, strict=True)):
            for part_a, part_b, name in zip(
                a, b, ("privileged_state", "rgb", "info", "reward", "terminated", "truncated"), strict=False
            ):
                same = (
                    part_a == part_b
                    if not isinstance(part_a, np.ndarray)
                    else (part_a.shape == part_b.shape and np.array_equal(part_a, part_b))
                )
                if not same:
                    self.out.add(
                        "determinism",
                        f"reset(seed={self.seed}) and the same actions gave a different {name} at step {t}",
                    )
                    return


def _snapshot(obs: dict[str, Any], info: dict[str, Any]) -> list[Any]:
    rgb = obs.get("rgb")
    keys = [k for k in INFO_KEYS if k in info]
    info_part = repr([np.asarray(info[k]).tolist() if not isinstance(info[k], list) else info[k] for k in keys])
    return [np.asarray(obs["privileged_state"]).copy(), None if rgb is None else np.asarray(rgb).copy(), info_part]


def _pose(state_row: np.ndarray) -> np.ndarray:
    c = _COLUMN
    s = np.asarray(state_row, dtype=np.float64)
    return np.array([s[c["x_m"]], s[c["y_m"]], math.atan2(s[c["sin_yaw"]], s[c["cos_yaw"]])])


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def _pose_close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.hypot(a[0] - b[0], a[1] - b[1]) <= POSE_TOLERANCE and abs(_wrap(a[2] - b[2])) <= POSE_TOLERANCE)


def _desc(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def check_env_factory(
    env_factory: Callable[[int], Any], *, need_frames: bool, what: str = "env_factory"
) -> ArenaConfig:
    """Build a one-environment instance with ``env_factory(1)``, check it, and return its arena config.

    This is what ``build_dataset`` and ``evaluate_policy`` run before any model loads when they are given a
    factory instead of a preset name.

    Args:
        env_factory: ``env_factory(num_envs) -> env``.
        need_frames: the caller reads ``obs["rgb"]``; the env must render.
        what: how the factory is named in error messages.

    Returns:
        ``env.config`` of the checked instance (the arena, task and camera it simulates).

    Raises:
        ConfigError: the factory fails, the env breaks the contract (every violation named), or it has no
            frames where they are needed.
    """
    if not callable(env_factory):
        raise ConfigError(f"{what} must be a callable num_envs -> env, got {type(env_factory).__name__}")
    try:
        env = env_factory(1)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{what}(1) raised {type(exc).__name__}: {exc}") from exc
    try:
        if need_frames and getattr(env, "render_enabled", False) is not True:
            raise ConfigError(f"{what} must return an env that renders frames (render_enabled=True): they are recorded")
        check_arena(env).raise_if_violated(f"the env of {what}")
        return env.config
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()


def load_env_factory(path: str) -> Callable[[int], Any]:
    """Import an env factory named ``"package.module:callable"`` (``callable(num_envs) -> env``).

    Raises:
        ConfigError: not ``module:name``, the module cannot be imported, or the name is missing / not callable.
    """
    import importlib

    module_name, sep, attr = str(path).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"an env factory is given as MODULE:CALLABLE (e.g. my_sim.envs:make_env), got '{path}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module '{module_name}' of env factory '{path}': {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"module '{module_name}' has no callable '{attr}' (env factory '{path}')")
    return factory
