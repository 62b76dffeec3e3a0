"""`IsaacLabScene`: the arena as an Isaac Lab 3 ``InteractiveScene`` on Newton physics, without Isaac Sim.

One ``SimulationContext`` (Isaac Lab allows one per process) holds N robots, each in its own Newton world
(``env_spacing`` 0: every robot starts from the same arena origin and never meets another), and one static
arena shared by all worlds (:func:`~vlnav_data.sim.isaaclab.usd.author_arena`, spawned once under
``/World/arena``). The robots have no visible geometry (their collision shapes are USD guides) and never
collide across worlds, so no robot or neighbouring arena is ever in view, unlike the published 3 m grid of
arenas (``tests/sim/test_sim_isaaclab.py`` checks both).

Runtimes (``VLNAV_ISAACLAB_RUNTIME``):

* ``kitless`` (default): ``NewtonCfg`` physics with the MuJoCo-Warp solver (``implicitfast`` integrator:
  the stiff wheel servos and contacts are integrated implicitly; ``euler`` exploded within 5 steps in a
  trial) and every camera on ``NewtonWarpRendererCfg`` (ray traced by Warp, on the CPU here): Isaac Lab's
  launcher then starts no Omniverse Kit (``isaaclab.app.sim_launcher``; checked with its ``validate_launch``).
  CUDA graphs are off on the CPU.
* ``kit``: PhysX (``PhysxCfg``) and Isaac Sim's RTX renderer (``IsaacRtxRendererCfg``), started through
  ``isaaclab.app.launch_simulation`` (which launches Kit). This needs Isaac Sim installed
  (``pip install isaaclab[isaacsim]``) and an RTX GPU; it is written from Isaac Lab's API and has **not been
  run** (this project's machines have neither). PhysX ignores the ``mjc:*`` contact attributes of the USD
  layers, so expect different traction.

Timing: one control step is ONE ``sim.step`` of ``dt_s``, split by Newton into ``physics_substeps``
solver steps (``NewtonCfg.num_substeps``); 16 substeps (2.1 ms, the MuJoCo backend's step) keep the stiff
contacts stable. Wheels: an implicit velocity drive per wheel joint (gain ``WHEEL_KV``, torque limit
``WHEEL_TORQUE_LIMIT_NM``, velocity limit ``max_wheel_speed_radps``). The camera is a ``CameraCfg`` on the
chassis with ``update_latest_camera_pose=True`` (without it the image stays at the first pose); it renders
depth too, and pixels nearer than ``camera_near_m`` become sky (Newton's ray tracer has no near plane).

Kernels: Warp compiles its kernels on first use (about 25 s on this 2-core CPU) into its kernel cache
(``WARP_CACHE_PATH``; tests point it at a temporary directory).
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.isaaclab import usd

#: The command that makes the environment this backend runs in.
VENV_COMMAND = "bash scripts/isaaclab-venv.sh DIR"
RUNTIMES = ("kitless", "kit")
RUNTIME_ENV = "VLNAV_ISAACLAB_RUNTIME"
#: Wheel velocity servo: gain (N·m per rad/s), torque limit (N·m), reflected motor inertia (kg·m²). The torque
#: limit is above the MuJoCo backend's 0.2 N·m: with 0.2 the robot covered 0.567 m in its first second here
#: (0.58 in MuJoCo), with 0.5 it covers 0.584 m without tipping the chassis onto a caster.
WHEEL_KV = 0.5
WHEEL_TORQUE_LIMIT_NM = 0.5
WHEEL_ARMATURE_KGM2 = 1e-4


def runtime() -> str:
    """The runtime ``VLNAV_ISAACLAB_RUNTIME`` names (``kitless`` when unset).

    Raises:
        ConfigError: another value.
    """
    value = os.environ.get(RUNTIME_ENV, "kitless")
    if value not in RUNTIMES:
        raise ConfigError(f"{RUNTIME_ENV} must be one of {', '.join(RUNTIMES)}, got {value!r}")
    return value


def require_isaaclab() -> None:
    """Check that this process can run the Isaac Lab backend.

    Raises:
        ConfigError: Python older than 3.12 or Isaac Lab / Newton / usd-core missing (one line naming the
            script that makes the environment).
    """
    version = tuple(sys.version_info[:2])
    here = f"Python {version[0]}.{version[1]}"
    if version < (3, 12):
        raise ConfigError(
            f"the Isaac Lab backend needs Python 3.12 and isaaclab==3.0.0, and this is {here}; make its "
            f"environment with `{VENV_COMMAND}` and run vlnav-data from DIR/bin"
        )
    missing = []
    for module in ("isaaclab", "isaaclab_newton", "newton", "warp", "pxr"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"the Isaac Lab backend needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed in this {here} environment; make its environment with `{VENV_COMMAND}`"
        )


def yaw_from_quat_xyzw(q: torch.Tensor) -> torch.Tensor:
    """Yaw (rad) of quaternions ``(..., 4)`` in Isaac Lab 3's ``(x, y, z, w)`` order."""
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return torch.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class _Live:
    """The scene that owns this process's ``SimulationContext`` (Isaac Lab allows one)."""

    scene: IsaacLabScene | None = None


class IsaacLabScene:
    """N robots in the arena of ``config``, simulated by Isaac Lab (module docstring).

    Making a scene ends the previous one of this process (Isaac Lab keeps one simulation per process);
    using an ended scene raises :class:`ConfigError`.

    Args:
        config: Arena config (fixed sphere layout, fixed floor and light).
        num_envs: Number of robots N.
        device: ``cpu`` or a CUDA device (Newton and the Warp renderer run on either).
        render: Make the camera (a scene without it steps physics only).

    Raises:
        ConfigError: the environment lacks Isaac Lab, or the config has per-episode scene randomisation.
    """

    def __init__(self, config: ArenaConfig, num_envs: int, device: torch.device, render: bool) -> None:
        require_isaaclab()
        if config.randomize_spheres or config.floor_rgb_jitter > 0 or config.light_jitter_m > 0:
            raise ConfigError(
                "the Isaac Lab backend shares one static arena between its robots, so the sphere layout, floor "
                "colour and light must be fixed (randomize_spheres=False, floor_rgb_jitter=0, light_jitter_m=0); "
                f"'{config.name}' randomises them: use the builtin backend for randomised scenes"
            )
        self.config = config
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.render_enabled = bool(render)
        self.runtime = runtime()
        if _Live.scene is not None:
            _Live.scene.close()
        self._stack = ExitStack()
        self._dir = tempfile.mkdtemp(prefix="vlnav-isaaclab-")
        self._stack.callback(shutil.rmtree, self._dir, True)
        self._closed = False
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        _Live.scene = self

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        import isaaclab.sim as sim_utils
        from isaaclab.actuators import ImplicitActuatorCfg
        from isaaclab.assets import ArticulationCfg, AssetBaseCfg
        from isaaclab.scene import InteractiveScene, InteractiveSceneCfg
        from isaaclab.sensors import CameraCfg
        from isaaclab.sim import SimulationCfg, SimulationContext
        from isaaclab.utils.configclass import configclass

        cfg = self.config
        robot_usd = os.path.join(self._dir, "jetbot.usda")
        arena_usd = os.path.join(self._dir, "arena.usda")
        usd.author_robot(robot_usd, cfg)
        usd.author_arena(arena_usd, cfg)
        physics, renderer = self._physics_and_renderer()
        sim_cfg = SimulationCfg(dt=cfg.dt_s, device=str(self.device), physics=physics)

        @configclass
        class ArenaSceneCfg(InteractiveSceneCfg):
            arena = AssetBaseCfg(prim_path="/World/arena", spawn=sim_utils.UsdFileCfg(usd_path=arena_usd))
            robot = ArticulationCfg(
                prim_path="{ENV_REGEX_NS}/Robot",
                spawn=sim_utils.UsdFileCfg(usd_path=robot_usd),
                init_state=ArticulationCfg.InitialStateCfg(pos=(0.0, 0.0, 0.0)),
                actuators={
                    "wheels": ImplicitActuatorCfg(
                        joint_names_expr=[".*_wheel_joint"],
                        stiffness=0.0,
                        damping=WHEEL_KV,
                        joint_effort_limit=WHEEL_TORQUE_LIMIT_NM,
                        joint_velocity_limit=cfg.max_wheel_speed_radps,
                        armature=WHEEL_ARMATURE_KGM2,
                    )
                },
            )

        scene_cfg = ArenaSceneCfg(num_envs=self.num_envs, env_spacing=0.0)
        if self.render_enabled:
            # Published camera: focal 0.75, aperture 2.35 (HFOV 114.9°); from the config's field of view.
            aperture = 2.35
            focal = 0.5 * aperture / math.tan(0.5 * cfg.camera_hfov_rad)
            scene_cfg.camera = CameraCfg(
                prim_path=f"{{ENV_REGEX_NS}}/Robot/{usd.CHASSIS}/camera",
                update_period=0.0,
                height=cfg.image_height_px,
                width=cfg.image_width_px,
                data_types=["rgb", "distance_to_image_plane"],
                update_latest_camera_pose=True,
                background_color=tuple(cfg.sky_rgb),
                spawn=sim_utils.PinholeCameraCfg(
                    focal_length=focal,
                    horizontal_aperture=aperture,
                    vertical_aperture=2.0 * focal * math.tan(0.5 * cfg.camera_vfov_rad),
                    clipping_range=(cfg.camera_near_m, cfg.camera_far_m),
                ),
                # "world" convention: the camera looks along the body's +x with +z up (quaternion x, y, z, w).
                offset=CameraCfg.OffsetCfg(
                    pos=(cfg.camera_forward_offset_m, 0.0, cfg.camera_height_m),
                    rot=(0.0, 0.0, 0.0, 1.0),
                    convention="world",
                ),
                renderer_cfg=renderer,
            )

        @configclass
        class LaunchCfg:  # what Isaac Lab's launcher scans: the physics and the cameras' renderers
            sim: SimulationCfg = sim_cfg
            scene: InteractiveSceneCfg = scene_cfg

        if self.runtime == "kit":  # Isaac Sim: start Kit before any USD work of Isaac Lab (untested here)
            from isaaclab.app import launch_simulation

            self._stack.enter_context(launch_simulation(LaunchCfg(), {"headless": True, "enable_cameras": True}))
        else:
            from isaaclab.app.sim_launcher import validate_launch

            _, kit_sources = validate_launch(LaunchCfg(), {})
            if kit_sources:  # pragma: no cover - a guard on Isaac Lab's own rules
                raise ConfigError(f"the kit-less Isaac Lab scene would need Omniverse Kit ({', '.join(kit_sources)})")
        SimulationContext.clear_instance()
        self.sim = SimulationContext(sim_cfg)
        self._stack.callback(SimulationContext.clear_instance)
        self.scene = InteractiveScene(scene_cfg)
        self.sim.reset()
        self.robot = self.scene["robot"]
        self.camera = self.scene["camera"] if self.render_enabled else None
        self._wheel_ids = [self.robot.joint_names.index(n) for n in usd.WHEEL_JOINTS]

    def _physics_and_renderer(self) -> tuple[Any, Any]:
        substeps = int(self.config.physics_substeps)
        if self.runtime == "kit":
            from isaaclab_physx.physics import PhysxCfg
            from isaaclab_physx.renderers import IsaacRtxRendererCfg

            return PhysxCfg(), IsaacRtxRendererCfg()
        from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg
        from isaaclab_newton.renderers import NewtonWarpRendererCfg

        cuda = self.device.type == "cuda"
        physics = NewtonCfg(
            solver_cfg=MJWarpSolverCfg(integrator="implicitfast"), num_substeps=substeps, use_cuda_graph=cuda
        )
        return physics, NewtonWarpRendererCfg(use_cuda_graph=cuda)

    # ------------------------------------------------------------------ use
    def _check_live(self) -> None:
        if self._closed:
            raise ConfigError(
                "this Isaac Lab arena was closed or replaced by a newer one: Isaac Lab runs one simulation per "
                "process, so only the arena made last can be stepped"
            )

    def place(self, ids: np.ndarray, poses: np.ndarray) -> None:
        """Put robots ``ids`` at rest at ``poses`` ``(M, 3)`` = ``[x_m, y_m, yaw_rad]``, wheels on the floor."""
        self._check_live()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return
        p = torch.as_tensor(np.asarray(poses, dtype=np.float64), dtype=torch.float32, device=self.device)
        env_ids = torch.as_tensor(ids, device=self.device)
        half = 0.5 * p[:, 2]
        zero = torch.zeros_like(half)
        root = torch.stack([p[:, 0], p[:, 1], zero, zero, zero, torch.sin(half), torch.cos(half)], dim=1)
        robot = self.robot
        robot.write_root_pose_to_sim_index(root_pose=root, env_ids=env_ids)
        robot.write_root_velocity_to_sim_index(
            root_velocity=torch.zeros((len(ids), 6), device=self.device), env_ids=env_ids
        )
        joints = torch.zeros((len(ids), robot.num_joints), device=self.device)
        robot.write_joint_position_to_sim_index(position=joints, env_ids=env_ids)
        robot.write_joint_velocity_to_sim_index(velocity=joints, env_ids=env_ids)
        robot.actuators.target_command.set_velocity_index(value=joints, env_ids=env_ids)
        robot.reset(env_ids=env_ids)
        # Body transforms from the new root and joint state now (the camera renders from them before any step),
        # and the solver's per-world warm start of the reset worlds cleared (same state, same next step).
        self.sim.forward()

    def step(self, wheel_speeds_radps: torch.Tensor) -> None:
        """Hold wheel-speed commands ``(N, 2)`` (left, right; rad/s) for one control step of every robot."""
        self._check_live()
        target = torch.zeros((self.num_envs, self.robot.num_joints), device=self.device)
        target[:, self._wheel_ids] = wheel_speeds_radps.to(device=self.device, dtype=torch.float32)
        self.robot.actuators.target_command.set_velocity_index(value=target)
        self.scene.write_data_to_sim()
        self.sim.step(render=False)
        self.scene.update(self.config.dt_s)

    def poses(self) -> torch.Tensor:
        """float64 ``(N, 3)`` ``[x_m, y_m, yaw_rad]`` of the root links (the chassis frame's origin and heading)."""
        self._check_live()
        pose = _tensor(self.robot.data.root_pose_w).to(torch.float64)
        return torch.stack([pose[:, 0], pose[:, 1], yaw_from_quat_xyzw(pose[:, 3:7])], dim=1)

    def body_tilt_rad(self) -> torch.Tensor:
        """``(N,)`` angle between each chassis' up axis and the world's."""
        q = _tensor(self.robot.data.root_pose_w)[:, 3:7].to(torch.float64)
        x, y = q[:, 0], q[:, 1]
        return torch.acos(torch.clamp(1.0 - 2.0 * (x * x + y * y), -1.0, 1.0))

    def render(self) -> torch.Tensor:
        """uint8 ``(N, H, W, 3)`` first-person frames of every robot (on the scene's device)."""
        self._check_live()
        if self.camera is None:
            raise ConfigError("this Isaac Lab arena was made with render=False: it has no camera")
        self.camera.update(self.config.dt_s, force_recompute=True)
        rgb = _tensor(self.camera.data.output["rgb"])[..., :3].to(torch.uint8)
        # Newton's ray tracer has no near plane: what lies nearer than camera_near_m (the floor at the bottom of
        # the published image) is sky, as in the other backends. A miss has depth 0: it is sky already.
        depth = _tensor(self.camera.data.output["distance_to_image_plane"])[..., 0]
        near = (depth > 0) & (depth < self.config.camera_near_m)
        if bool(near.any()):
            sky = torch.tensor([round(255 * c) for c in self.config.sky_rgb], dtype=torch.uint8, device=rgb.device)
            rgb = torch.where(near[..., None], sky, rgb)
        return rgb

    def close(self) -> None:
        """End the simulation (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if _Live.scene is self:
            _Live.scene = None
        self._stack.close()


def _tensor(value: Any) -> torch.Tensor:
    """An Isaac Lab 3 data buffer (a warp-backed array with ``.torch``) as a torch tensor."""
    return value.torch if hasattr(value, "torch") else torch.as_tensor(value)


@atexit.register
def _close_live() -> None:
    if _Live.scene is not None:
        _Live.scene.close()
