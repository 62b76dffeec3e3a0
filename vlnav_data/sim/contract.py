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

Modules: the report types and the structural checks are :mod:`vlnav_data.sim.contract_checks`; checking
an env factory before a build or an evaluation is :mod:`vlnav_data.sim.env_factory`; this one holds the
rules, :func:`check_arena` and the behavioural checks (starts, placement, actions, every termination cause,
autoreset, determinism).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from vlnav_data.sim import task
from vlnav_data.sim.contract_checks import (
    INFO_KEYS,
    StructuralChecks,
    pose_close,
    pose_of_state,
    snapshot,
    wrap_angle,
)
from vlnav_data.sim.contract_report import RULES, Abort, ArenaReport, Collector, ContractViolation

__all__ = ["INFO_KEYS", "RULES", "ArenaReport", "ContractViolation", "check_arena"]


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
    out = Collector(max_per_rule)
    desc = f"{type(env).__name__}(num_envs={getattr(env, 'num_envs', '?')})"
    try:
        _Checker(env, out, seed).run(max_time_limit_steps)
    except Abort:
        pass
    return ArenaReport(violations=tuple(out.finish()), notes=tuple(out.notes), env=desc)


class _Checker(StructuralChecks):
    """Every rule: the structural ones (inherited) and the behavioural ones below, in :data:`RULES` order."""

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
