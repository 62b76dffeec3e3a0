"""`MujocoArenaVecEnv`: the arena's vector environment with MuJoCo physics and rendering.

Everything the contract describes (observations, ``info``, termination causes and their order, the
env-step counter, autoreset modes, seeding, ``set_state``) is the built-in :class:`ArenaVecEnv`'s code;
through :class:`~vlnav_data.sim.scene_env.SceneArenaVecEnv` (shared with the Newton backend) the
:class:`MujocoScene` provides its three backend hooks:

* ``_advance_physics``: the wheel speeds of the action mapping (rad/s) become the velocity-servo
  commands of the two wheel joints, held for ``physics_substeps`` MuJoCo steps; the new pose is read from
  the free joint (root position and the heading of the body x axis). Wheels slip, the chassis pitches
  when it starts, nothing is integrated kinematically.
* ``_placed``: a new episode or ``set_state`` puts the robot at rest at its pose, wheels on the floor.
* ``_render_frames``: ``mujoco.Renderer`` offscreen, one environment after the other in this process (a
  pool of worker processes was measured and was not faster on 2 cores: Mesa's llvmpipe already
  rasterises on every core; ``bench/RESULTS.md``).

The simulator runs on the CPU: ``device`` must be ``cpu`` (the task tensors stay there too). Both
observation backends work: with ``obs_backend="torch"`` the frames MuJoCo rendered into host memory are
wrapped as CPU tensors (no copy), so a torch consumer on the CPU reads the same bytes.
"""

from __future__ import annotations

from vlnav_data.sim.mujoco.scene import MujocoScene
from vlnav_data.sim.scene_env import SceneArenaVecEnv


class MujocoArenaVecEnv(SceneArenaVecEnv):
    """N arenas simulated and rendered by MuJoCo (build with ``make_arena("text2nav-mujoco", ...)``).
    (:class:`ArenaVecEnv`'s spaces, ``info`` and methods; ``ConfigError`` for a non-CPU device, the ``mujoco``
    package missing or a config the backend does not model)."""

    engine = "MuJoCo"
    scene_type = MujocoScene
