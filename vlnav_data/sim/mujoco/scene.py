"""`MujocoScene`: one compiled arena model, N independent robot states, one offscreen renderer per thread.

The arena is static and the robots never meet (each environment is its own world, as in the published
one-env evaluation), so the batch is one ``MjModel`` with N ``MjData``: stepping is a loop of
``mj_step`` calls, rendering is ``update_scene`` + ``render`` per environment on a shared
``mujoco.Renderer``. Per-environment scene differences (sphere positions and colours, light position of
the randomised presets) are mocap positions (in each ``MjData``) and geom colours / light positions
written just before each environment's ``update_scene``.

MuJoCo is imported here only, through :func:`import_mujoco`, which picks a headless OpenGL platform
(``MUJOCO_GL=egl`` unless the caller set one) before the first import.
"""

from __future__ import annotations

import atexit
import importlib
import math
import os
import sys
import threading
import weakref
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.mujoco import mjcf

#: The OpenGL platform used when ``MUJOCO_GL`` is unset: EGL with Mesa's software rasteriser (llvmpipe)
#: works on a machine without GPU or display; ``osmesa`` needs Debian's ``libosmesa6`` instead.
DEFAULT_GL = "egl"

INSTALL_HINT = (
    "install the MuJoCo backend with `pip install 'vlnav-data[mujoco]'`; headless rendering needs an OpenGL "
    "platform: MUJOCO_GL=egl (Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) or "
    "MUJOCO_GL=osmesa (libosmesa6)"
)


def import_mujoco() -> Any:
    """Import ``mujoco`` with a headless GL platform chosen first.

    Raises:
        ConfigError: the ``mujoco`` package is not installed (the message says how to install it).
    """
    chosen_here = "MUJOCO_GL" not in os.environ
    imported_before = "mujoco" in sys.modules
    os.environ.setdefault("MUJOCO_GL", DEFAULT_GL)
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    try:
        import mujoco
    except ImportError as exc:
        raise ConfigError(
            f"the MuJoCo backend needs the 'mujoco' package, which is not installed; {INSTALL_HINT}"
        ) from exc
    if imported_before and chosen_here:
        _headless_after_early_import(os.environ["MUJOCO_GL"])
    return mujoco


def _headless_after_early_import(platform: str) -> None:
    """Give MuJoCo the headless GL platform after the caller imported it with ``MUJOCO_GL`` unset.

    MuJoCo binds its OpenGL context class when it is imported: GLFW when ``MUJOCO_GL`` is unset, which
    needs a display. Without one, the ``GLContext`` MuJoCo's renderer creates is replaced by the headless
    one (``mujoco.egl`` / ``mujoco.osmesa``) before any context exists, as importing with ``MUJOCO_GL``
    set would have chosen. Where that is not possible (PyOpenGL already loaded for another platform,
    a MuJoCo without that module layout), a :class:`ConfigError` says how to start the process instead.

    Raises:
        ConfigError: the platform cannot be switched.
    """
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return  # GLFW can open a (hidden) window on this display
    holders = [sys.modules.get(m) for m in ("mujoco.rendering.classic.gl_context", "mujoco.gl_context")]
    holders = [h for h in holders if h is not None and hasattr(h, "GLContext")]
    bound = {getattr(h.GLContext, "__module__", "") for h in holders}
    if bound == {f"mujoco.{platform}"}:
        return
    how = (
        f"this process imported mujoco before vlnav_data set MUJOCO_GL, so MuJoCo chose GLFW, which needs a "
        f"display, and there is none; start the process with MUJOCO_GL={platform} set (e.g. `MUJOCO_GL={platform} "
        f"python ...`, or os.environ['MUJOCO_GL'] = '{platform}' before the first `import mujoco`)"
    )
    loaded = sys.modules.get("OpenGL")
    pyopengl_platform = getattr(getattr(loaded, "platform", None), "PLATFORM", None) if loaded else None
    if not holders or (loaded is not None and platform not in type(pyopengl_platform).__module__.lower()):
        raise ConfigError(how)
    try:
        module = importlib.import_module(f"mujoco.{platform}")
        context = module.GLContext
    except Exception as exc:
        raise ConfigError(f"{how} ({type(exc).__name__}: {exc})") from exc
    for holder in holders:
        holder.GLContext = context


#: Scenes that opened a renderer, closed at exit by :func:`_close_renderers_at_exit`.
_RENDERING_SCENES: weakref.WeakSet[MujocoScene] = weakref.WeakSet()
_EXIT_HANDLER: list[Any] = []


def _close_renderers_at_exit() -> None:
    """Close every live scene's renderers (their OpenGL contexts) before MuJoCo's own exit handlers run.

    MuJoCo 3.12 registers ``eglTerminate`` with ``atexit`` when its first EGL context opens; a renderer
    still alive after that (or garbage-collected while the interpreter tears its modules down) prints a
    traceback from ``Renderer.__del__`` at exit (MuJoCo 4.0 does not). Registered after the first
    renderer opened, this handler runs before MuJoCo's (``atexit`` runs handlers last-in first-out).
    """
    for scene in list(_RENDERING_SCENES):
        while scene._renderers:
            scene._renderers.popitem()[1].close()


def yaw_quaternion(yaw: float) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` of a rotation by ``yaw`` about +z."""
    return np.array([math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw)])


def quaternion_yaw(q: np.ndarray) -> np.ndarray:
    """Yaw (rad, in ``[-pi, pi]``) of quaternions ``(..., 4)`` ``(w, x, y, z)``: the heading of the body x axis."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class MujocoScene:
    """The compiled arena and N robot states.

    Args:
        config: Arena config (``backend`` is not checked here).
        num_envs: Number of independent robot states.

    Raises:
        ConfigError: ``mujoco`` missing, or a config feature the backend does not model
            (``floor_rgb_jitter`` > 0: the floor colour is baked into its texture).
    """

    def __init__(self, config: ArenaConfig, num_envs: int) -> None:
        if config.floor_rgb_jitter > 0:
            raise ConfigError(
                f"the MuJoCo backend bakes the floor colour into its texture, so floor_rgb_jitter must be 0, got "
                f"{config.floor_rgb_jitter}; use the builtin backend for floor-colour jitter"
            )
        self.mujoco = import_mujoco()
        mj = self.mujoco
        self.config = config
        self.num_envs = int(num_envs)
        self.model = mj.MjModel.from_xml_string(mjcf.arena_mjcf(config))
        self.datas = [mj.MjData(self.model) for _ in range(self.num_envs)]
        m = self.model
        root = m.joint("root")
        self._qpos = int(root.qposadr[0])
        self._qvel = int(root.dofadr[0])
        self._wheel_qpos = [int(m.joint(n).qposadr[0]) for n in (mjcf.LEFT_WHEEL_JOINT, mjcf.RIGHT_WHEEL_JOINT)]
        self._actuators = [int(m.actuator(n).id) for n in (mjcf.LEFT_ACTUATOR, mjcf.RIGHT_ACTUATOR)]
        k = config.num_spheres
        self._mocap = [int(m.body(mjcf.sphere_body(i)).mocapid[0]) for i in range(k)]
        self._sphere_geoms = np.array([m.geom(f"sphere_geom_{i}").id for i in range(k)], dtype=np.int64)
        self._light = int(m.light(mjcf.SPOTLIGHT_NAME).id)
        self._camera = int(m.camera(mjcf.CAMERA_NAME).id)
        self.sphere_rgb = np.tile(m.geom_rgba[self._sphere_geoms, :3], (self.num_envs, 1, 1))
        self.light_position = np.tile(np.asarray(config.light_position_m, dtype=np.float64), (self.num_envs, 1))
        self._renderers: dict[int, Any] = {}

    def place(self, i: int, pose: np.ndarray, sphere_xy: np.ndarray, sphere_rgb: np.ndarray, light: np.ndarray) -> None:
        """Put robot ``i`` at rest at ``pose`` = ``[x_m, y_m, yaw_rad]`` (wheels on the floor) in its scene.

        Args:
            i: Environment index.
            pose: ``(3,)`` pose of the robot root.
            sphere_xy: ``(K, 2)`` sphere centres of this environment.
            sphere_rgb: ``(K, 3)`` sphere colours in [0, 1].
            light: ``(3,)`` light position.
        """
        mj, d = self.mujoco, self.datas[i]
        mj.mj_resetData(self.model, d)
        d.qpos[self._qpos : self._qpos + 3] = (pose[0], pose[1], 0.0)
        d.qpos[self._qpos + 3 : self._qpos + 7] = yaw_quaternion(float(pose[2]))
        z = self.config.sphere_height_m
        for k, mocap in enumerate(self._mocap):
            d.mocap_pos[mocap] = (sphere_xy[k, 0], sphere_xy[k, 1], z)
        self.sphere_rgb[i] = sphere_rgb
        self.light_position[i] = light
        mj.mj_forward(self.model, d)

    def place_many(
        self, ids: np.ndarray, poses: np.ndarray, sphere_xy: np.ndarray, sphere_rgb: np.ndarray, light: np.ndarray
    ) -> np.ndarray:
        """:meth:`place` the robots ``ids`` (rows of the other arrays); float64 ``(M, 3)`` poses MuJoCo holds."""
        for row, i in enumerate(np.asarray(ids, dtype=np.int64).tolist()):
            self.place(i, poses[row], sphere_xy[row], sphere_rgb[row], light[row])
        return np.stack([self.pose(i) for i in np.asarray(ids, dtype=np.int64).tolist()])

    def advance(self, ids: np.ndarray, wheel_speeds_radps: np.ndarray) -> np.ndarray:
        """:meth:`step` the robots ``ids`` with wheel speeds ``(M, 2)``; float64 ``(M, 3)`` poses after it."""
        out = np.empty((len(ids), 3))
        for row, i in enumerate(np.asarray(ids, dtype=np.int64).tolist()):
            self.step(i, wheel_speeds_radps[row])
            out[row] = self.pose(i)
        return out

    def step(self, i: int, wheel_speeds_radps: np.ndarray) -> None:
        """Hold the wheel-speed commands ``(2,)`` (left, right) for one control step of robot ``i``."""
        d = self.datas[i]
        d.ctrl[self._actuators] = wheel_speeds_radps
        self.mujoco.mj_step(self.model, d, nstep=self.config.physics_substeps)

    def pose(self, i: int) -> np.ndarray:
        """float64 ``(3,)`` ``[x_m, y_m, yaw_rad]`` of robot ``i``'s root (the body frame's origin and heading)."""
        q = self.datas[i].qpos
        return np.array([q[self._qpos], q[self._qpos + 1], float(quaternion_yaw(q[self._qpos + 3 : self._qpos + 7]))])

    def body_tilt_rad(self, i: int) -> float:
        """Angle between robot ``i``'s up axis and the world's (pitch/roll; the camera tilts with the body)."""
        q = self.datas[i].qpos[self._qpos + 3 : self._qpos + 7]
        w, x, y, z = q
        up_z = 1.0 - 2.0 * (x * x + y * y)
        return float(math.acos(max(-1.0, min(1.0, up_z))))

    def _renderer(self) -> Any:
        """The renderer of the calling thread (an OpenGL context is current in one thread only)."""
        key = threading.get_ident()
        if key not in self._renderers:
            try:
                self._renderers[key] = self.mujoco.Renderer(
                    self.model, self.config.image_height_px, self.config.image_width_px
                )
            except Exception as exc:  # the GL platform is missing: name it and the packages that provide it
                raise ConfigError(
                    f"MuJoCo cannot open an offscreen OpenGL context with MUJOCO_GL={os.environ.get('MUJOCO_GL')} "
                    f"({type(exc).__name__}: {exc}); {INSTALL_HINT}"
                ) from exc
            if not _EXIT_HANDLER:  # once per process, after MuJoCo opened its first context
                atexit.register(_close_renderers_at_exit)
                _EXIT_HANDLER.append(_close_renderers_at_exit)
            _RENDERING_SCENES.add(self)
        return self._renderers[key]

    def render(self, ids: np.ndarray) -> np.ndarray:
        """uint8 ``(M, H, W, 3)`` first-person frames of the environments ``ids``."""
        renderer = self._renderer()
        m = self.model
        out = np.empty((len(ids), self.config.image_height_px, self.config.image_width_px, 3), dtype=np.uint8)
        for row, i in enumerate(np.asarray(ids, dtype=np.int64).tolist()):
            d = self.datas[i]
            m.geom_rgba[self._sphere_geoms, :3] = self.sphere_rgb[i]
            d.light_xpos[self._light] = self.light_position[i]
            renderer.update_scene(d, camera=self._camera)
            renderer.render(out=out[row])
        return out
