"""The Isaac Lab 3 backend of the arena (preset ``text2nav-isaaclab``): Newton physics, no Isaac Sim.

The published arena as an Isaac Lab ``InteractiveScene`` (:mod:`~vlnav_data.sim.isaaclab.scene`: a JetBot
articulation and the static arena authored in USD by :mod:`~vlnav_data.sim.isaaclab.usd`, a robot camera)
stepped by Newton's MuJoCo-Warp solver and rendered by the Newton Warp ray tracer, kit-less (no Omniverse
Kit, no Isaac Sim), behind the same contract as the built-in arena (:func:`vlnav_data.sim.check_arena`).
Isaac Lab 3 needs Python 3.12 and its own pins: ``bash scripts/isaaclab-venv.sh DIR`` makes that
environment. Isaac Lab is imported only when such an arena (or a frame of it) is made; elsewhere
``make_arena("text2nav-isaaclab")`` raises one :class:`~vlnav_data.errors.ConfigError` line naming the script.
``VLNAV_ISAACLAB_RUNTIME=kit`` switches to PhysX and Isaac Sim's RTX renderer where Isaac Sim is installed
(untested).
"""

from __future__ import annotations

from typing import Any

from vlnav_data.sim.backends import Backend, register_backend


def _make_env(*args: Any, **kwargs: Any) -> Any:
    from vlnav_data.sim.isaaclab.env import IsaacLabArenaVecEnv

    return IsaacLabArenaVecEnv(*args, **kwargs)


def _render_views(*args: Any, device: Any = "cpu", compile_shaders: bool = False, **kwargs: Any) -> Any:
    from vlnav_data.sim.isaaclab.render import render_views_isaaclab

    return render_views_isaaclab(*args, **kwargs)  # the Warp ray tracer: no torch shaders to compile


register_backend(Backend("isaaclab", make_env=_make_env, render_views=_render_views))
