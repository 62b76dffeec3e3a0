"""The checker of the simulator contract: one :class:`ArenaChecker` drives the env and checks every rule
(the rules are written in :mod:`vlnav_data.sim.contract`, whose :func:`~vlnav_data.sim.contract.check_arena`
runs it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim import dynamics, task
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.contract.report import Abort, Collector

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


POSE_TOLERANCE = 1e-4
_COLUMN = {name: i for i, name in enumerate(task.PRIVILEGED_STATE_NAMES)}


class ArenaChecker:
    """Every rule of the contract, in :data:`~vlnav_data.sim.contract.report.RULES` order: the calls every check
    makes (step, reset rows, place robots), each recording violations; the structural rules (attributes,
    spaces, observation and info keys, one transition, the state's meaning); the behavioural ones (starts,
    placement, actions, every termination cause, autoreset, determinism)."""

    def __init__(self, env: Any, out: Collector, seed: int) -> None:
        self.env = env
        self.out = out
        self.seed = seed
        self.n = 0
        self.config: ArenaConfig | None = None
        self.mode: Any = None
        self.render = False
        self.pending = np.zeros(0, dtype=bool)  # next_step mode: rows whose next step() is a reset step
        self.spheres = np.zeros((0, 2))  # sphere centres of the layout every slot shares (same_layout)

    def call(self, what: str, fn: Callable[[], Any], rule: str = "step", fatal: bool = False) -> Any:
        try:
            return fn()
        except Abort:
            raise
        except Exception as exc:  # reported as a violation; the checker carries on where it can
            self.out.add(rule, f"{what} raised {type(exc).__name__}: {exc}")
            if fatal:
                raise Abort from exc
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
                self.out.add("observation", f"{where}: obs_backend is 'torch' but obs['{key}'] is {describe(value)}")
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
            raise Abort
        self.n = int(n)
        self.pending = np.zeros(self.n, dtype=bool)
        config = getattr(env, "config", None)
        if not isinstance(config, ArenaConfig):
            add("attributes", f"config must be an ArenaConfig (the task it simulates), got {type(config).__name__}")
            raise Abort
        self.config = config
        render = getattr(env, "render_enabled", None)
        if not isinstance(render, bool):
            add("attributes", f"render_enabled must be a bool, got {render!r}")
        self.render = bool(render)
        mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode")
        if not isinstance(mode, AutoresetMode):
            add("attributes", f"metadata['autoreset_mode'] must be a gymnasium AutoresetMode, got {mode!r}")
            raise Abort
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
            add("observation", f"{where}: privileged_state must be a float32 array ({self.n}, {d}), got {describe(ps)}")
            ok = False
        elif not np.isfinite(ps).all():
            add("observation", f"{where}: privileged_state has NaN/inf")
            ok = False
        if self.render:
            rgb = obs.get("rgb")
            hw = (self.n, self.config.image_height_px, self.config.image_width_px, 3)
            if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != hw:
                add("observation", f"{where}: rgb must be a uint8 array {hw}, got {describe(rgb)}")
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
                    add("info", f"{where}: info['{key}'] must be a list of {self.n} str, got {describe(value)}")
                    ok = False
                continue
            arr = np.asarray(value) if isinstance(value, np.ndarray) else None
            if arr is None or arr.shape != (self.n, *tail) or arr.dtype.kind != kind:
                want = {"i": "int", "U": "str", "b": "bool", "f": "float"}[kind]
                add(
                    "info",
                    f"{where}: info['{key}'] must be a numpy {want} array {(self.n, *tail)}, got {describe(value)}",
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
            raise Abort
        if not isinstance(result, tuple) or len(result) != 5:
            self.out.add("step", f"{where}: step() must return (obs, reward, terminated, truncated, info)")
            raise Abort
        obs, reward, terminated, truncated, info = result
        for name, value, kind in (
            ("reward", reward, "f"),
            ("terminated", terminated, "b"),
            ("truncated", truncated, "b"),
        ):
            if not isinstance(value, np.ndarray) or value.shape != (self.n,) or value.dtype.kind != kind:
                want = {"f": "float", "b": "bool"}[kind]
                self.out.add("step", f"{where}: {name} must be a numpy {want} array ({self.n},), got {describe(value)}")
                raise Abort
        if not np.isfinite(reward).all():
            self.out.add("step", f"{where}: reward has NaN/inf")
        if not self.check_transition(obs, info, actions, moving, where):
            raise Abort
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
            raise Abort
        obs, info = result
        self.pending &= ~mask
        if not self.check_transition(obs, info, None, None, where):
            raise Abort
        return obs, info

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
            raise Abort
        obs, info = result
        self.pending[ids] = False
        if not self.check_transition(obs, info, None, None, where):
            raise Abort
        for j, i in enumerate(ids):
            pose = pose_of_state(obs["privileged_state"][i])
            if not pose_close(pose, poses[j]):
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

    # ------------------------------------------------------------------ behavioural rules
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
            pose = pose_of_state(obs["privileged_state"][i])
            if not pose_close(pose, start.pose):
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
                moved = pose_of_state(obs["privileged_state"][0]) - base
                if what == "drive":
                    forward = float(moved[0] * math.cos(base[2]) + moved[1] * math.sin(base[2]))
                    expected = self.config.max_linear_speed_mps * self.config.dt_s * steps
                    if not 0.4 * expected <= forward <= 1.2 * expected:
                        self.out.add(
                            "actions",
                            f"action (1, 1) for {steps} steps moved {forward:.4f} m along the heading; full speed "
                            f"({self.config.max_linear_speed_mps} m/s) gives {expected:.4f} m",
                        )
                elif not wrap_angle(moved[2]) > 0.05:
                    self.out.add(
                        "actions",
                        "action (-1, 1) (left wheel back, right forward) must turn counter-clockwise; the yaw "
                        f"changed by {wrap_angle(moved[2]):.4f} rad in {steps} steps",
                    )

    def episode_pose(self, cause: str) -> tuple[np.ndarray, int, np.ndarray]:
        """A placement that ends with ``cause`` when driven with the returned action (or standing still)."""
        config = self.config
        spheres = self.spheres
        (x0, x1), (y0, y1) = config.bounds_x_m, config.bounds_y_m
        radius = config.success_radius_xy_m
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
        pose = torch.as_tensor(pose_of_state(state)[None])
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
            trace = [snapshot(obs, info)]
            for a in actions:
                obs, reward, te, tr, info = self.host(self.env.step(a), "determinism step")
                trace.append(snapshot(obs, info) + [reward.copy(), te.copy(), tr.copy()])
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


def snapshot(obs: dict[str, Any], info: dict[str, Any]) -> list[Any]:
    rgb = obs.get("rgb")
    keys = [k for k in INFO_KEYS if k in info]
    info_part = repr([np.asarray(info[k]).tolist() if not isinstance(info[k], list) else info[k] for k in keys])
    return [np.asarray(obs["privileged_state"]).copy(), None if rgb is None else np.asarray(rgb).copy(), info_part]


def pose_of_state(state_row: np.ndarray) -> np.ndarray:
    c = _COLUMN
    s = np.asarray(state_row, dtype=np.float64)
    return np.array([s[c["x_m"]], s[c["y_m"]], math.atan2(s[c["sin_yaw"]], s[c["cos_yaw"]])])


def wrap_angle(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def pose_close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.hypot(a[0] - b[0], a[1] - b[1]) <= POSE_TOLERANCE and abs(wrap_angle(a[2] - b[2])) <= POSE_TOLERANCE)


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__
