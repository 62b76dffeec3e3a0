"""The simulator contract, checkable: what `rollout`, the experts, the builder and the evaluator rely on.

A *backend* is any ``gymnasium.vector.VectorEnv`` that passes :func:`check_arena`. The built-in arena
(:class:`~vlnav_data.sim.ArenaVecEnv`), the MuJoCo arena (``text2nav-mujoco``) and the Newton arena
(``text2nav-newton``) do; an Isaac Lab environment wrapped as in ``docs/simulator-backends.md`` can. This
module is the one written source of the contract (ARCHITECTURE.md points here); every rule below is
checked, and :func:`check_arena` reports every violation it finds, not just the first.

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

Pieces: ``report.py`` (the rule ids, :class:`ArenaReport`, :class:`ContractViolation`), ``checker.py`` (one
:class:`~vlnav_data.sim.contract.checker.ArenaChecker` that drives the env and checks every rule). Checking an
env factory before a build or an evaluation is :mod:`vlnav_data.sim.env_factory`.
"""

from __future__ import annotations

from typing import Any

from vlnav_data.sim.contract.checker import INFO_KEYS, ArenaChecker
from vlnav_data.sim.contract.report import RULES, Abort, ArenaReport, Collector, ContractViolation

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
        ArenaChecker(env, out, seed).run(max_time_limit_steps)
    except Abort:
        pass
    return ArenaReport(violations=tuple(out.finish()), notes=tuple(out.notes), env=desc)
