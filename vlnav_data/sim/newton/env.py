"""`NewtonArenaVecEnv`: the arena's vector environment with NVIDIA Newton physics (MuJoCo-Warp) and frames.

Everything the contract describes is the built-in :class:`~vlnav_data.sim.vector_env.ArenaVecEnv`'s code;
through :class:`~vlnav_data.sim.scene_env.SceneArenaVecEnv` (shared with the MuJoCo backend) the
:class:`~vlnav_data.sim.newton.scene.NewtonScene` provides its three backend hooks: the wheel speeds of
the action mapping become the wheel joints' velocity targets, held for ``physics_substeps`` solver steps
of all worlds at once; a new episode or ``set_state`` puts the robot at rest at its pose; frames come
from Newton's tiled camera sensor (one ray-traced pinhole camera per world). CPU only (warp's ``cpu``
device); with ``obs_backend="torch"`` the host frames are wrapped as CPU tensors without a copy.
"""

from __future__ import annotations

from vlnav_data.sim.newton.scene import NewtonScene
from vlnav_data.sim.scene_env import SceneArenaVecEnv


class NewtonArenaVecEnv(SceneArenaVecEnv):
    """N arenas simulated and rendered by Newton (build with ``make_arena("text2nav-newton", ...)``).
    (:class:`ArenaVecEnv`'s spaces, ``info`` and methods; ``ConfigError`` for a non-CPU device, the ``newton``
    package missing or a config the backend does not model)."""

    engine = "Newton"
    scene_type = NewtonScene
