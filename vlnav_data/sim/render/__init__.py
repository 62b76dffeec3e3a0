"""The built-in arena's batched first-person renderer (pure PyTorch, CPU or CUDA).

``render_batch`` renders poses into frames on their device; ``render_views_builtin`` is the ``builtin``
backend's pure ``render_views`` (the public :func:`vlnav_data.sim.render_views` dispatches on the config's
backend, ``sim/backends.py``); ``warm_up_compiled`` compiles the shaders before a clock starts.

Pieces, each importing only those below it: ``scene.py`` (:class:`Scene`, the cached :class:`Camera`
constants), ``spheres.py`` (ray-traced spheres), ``batch.py`` (the floor/wall/sky shaders and the frame).
"""

from __future__ import annotations

from vlnav_data.sim.render.batch import render_batch, render_views_builtin, warm_up_compiled
from vlnav_data.sim.render.scene import Camera, Scene, camera, default_scene, scene_from_arrays

__all__ = [
    "Camera",
    "Scene",
    "camera",
    "default_scene",
    "render_batch",
    "render_views_builtin",
    "scene_from_arrays",
    "warm_up_compiled",
]
