"""Arena configuration: one frozen dataclass and the named presets.

Every number of the published text2nav arena (reference spec §1, §11) lives here as a documented
field, so a preset is a complete, hashable description of an experiment. Variants are made with
:func:`dataclasses.replace` (or keyword overrides of :func:`vlnav_data.sim.make_arena`), which runs
the same validation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from vlnav_data.errors import ConfigError, unknown_name

#: Named sphere colours (linear RGB in [0, 1]). The first five are the published ones.
COLOR_PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "pink": (1.0, 0.0, 1.0),
    "orange": (1.0, 0.5, 0.0),
    "purple": (0.5, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
    "brown": (0.45, 0.25, 0.1),
}

ACTION_MAPPINGS = ("bang_bang", "velocity")
#: Simulators behind the one contract (``vlnav_data.sim.check_arena``): the built-in batched PyTorch arena
#: MuJoCo (contact physics, OpenGL rendering; the optional ``mujoco`` extra), NVIDIA Newton (MuJoCo-Warp
#: physics, ray-traced tiled camera; the optional ``newton`` extra) and Isaac Lab 3 on Newton physics, kit-less
#: (``vlnav_data.sim.isaaclab``; Python 3.12, the environment ``scripts/isaaclab-venv.sh`` makes).
BACKENDS = ("builtin", "mujoco", "newton", "isaaclab")
INSTRUCTION_STYLES = ("paper", "spatial", "color")

#: Published camera: focal length 0.75, horizontal aperture 2.35, square image (spec §1.6).
PUBLISHED_FOV_RAD = 2.0 * math.atan(2.35 / 1.5)


@dataclass(frozen=True, kw_only=True)
class ArenaConfig:
    """Complete description of one arena experiment (geometry, robot, camera, task).

    Attributes:
        name: Preset name this config came from (informational, stored with datasets).
        backend: Simulator that runs the arena: ``builtin`` (kinematic differential drive, batched
            PyTorch ray caster), ``mujoco`` (MuJoCo contact physics and OpenGL rendering of the same
            arena, ``vlnav_data.sim.mujoco``), ``newton`` (the same MJCF arena in NVIDIA Newton:
            MuJoCo-Warp physics, ray-traced tiled camera; ``vlnav_data.sim.newton``) or ``isaaclab`` (Isaac Lab 3
            with Newton physics and the Newton Warp renderer, ``vlnav_data.sim.isaaclab``). Everything else in the
            config means the same in all four.
        image_height_px: Camera image height in pixels.
        image_width_px: Camera image width in pixels.
        camera_hfov_rad: Horizontal field of view of the pinhole camera.
        camera_vfov_rad: Vertical field of view of the pinhole camera.
        camera_height_m: Height of the optical centre above the floor (not in the published repo;
            0.09 m is our documented choice, spec §1.6 infers 0.05-0.1 m from sample frames).
        camera_forward_offset_m: Optical centre ahead of the robot root along the heading.
        camera_near_m: Near clipping distance (published 0.076 m); geometry closer is not drawn.
        camera_far_m: Far clipping distance (published 10 m); floor beyond it renders as sky.
        sphere_radius_m: Radius of every sphere.
        sphere_height_m: Height of the sphere centres above the floor.
        sphere_positions_xy_m: Fixed sphere centres ``((x, y), ...)``; with ``randomize_spheres``
            they are only the default layout used by :func:`render_views` when none is given.
        sphere_colors: Colour names (keys of ``COLOR_PALETTE``) of the fixed spheres, same order.
        randomize_spheres: Draw sphere positions and colours per episode (harder presets).
        num_random_spheres: Number of spheres per episode when ``randomize_spheres``.
        random_sphere_palette: Colour names drawn from (without repetition) when randomising.
        sphere_region_x_m: ``(lo, hi)`` range of random sphere x positions.
        sphere_region_y_m: ``(lo, hi)`` range of random sphere y positions.
        sphere_min_separation_m: Minimum centre distance between random spheres.
        start_min_target_distance_m: Minimum horizontal start distance to every sphere when
            randomising (so an episode never starts inside a success radius).
        floor_rgb: Floor colour (published (0.67, 0.84, 0.9), light blue).
        floor_rgb_jitter: Per-episode uniform jitter of each floor channel (0 = fixed).
        floor_grid_spacing_m: Spacing of the white grid lines on the floor (inferred: 0.5 m).
        floor_grid_line_width_m: Width of a grid line.
        wall_rgb: Wall colour (published grey 0.6).
        wall_height_m: Wall height (published 0.5 m).
        wall_segments_xy_m: Visual walls as floor segments ``((x0, y0, x1, y1), ...)``.
        sky_rgb: Colour above the walls and horizon (published: black, no dome light).
        light_position_m: Point light position (published sphere light at (1.35, 0, 2.0)).
        light_jitter_m: Per-episode uniform jitter of the light's x and y (0 = fixed).
        ambient_light: Ambient term of the Lambert shading in [0, 1].
        start_x_range_m: ``(lo, hi)`` uniform range of the start x.
        start_y_range_m: ``(lo, hi)`` uniform range of the start y.
        start_yaw_range_rad: ``(lo, hi)`` uniform range of the start yaw.
        bounds_x_m: ``(lo, hi)``: the episode fails when x < lo (back) or x > hi (front).
        bounds_y_m: ``(lo, hi)``: the episode fails when y < lo (right) or y > hi (left).
        success_radius_m: Success when the 3-D distance robot root -> target centre is below this.
        robot_root_height_m: Height of the robot root used in the 3-D success distance.
        max_episode_steps: Time limit in env steps; the step that reaches it is truncated.
        dt_s: Control period (one env step).
        physics_substeps: Integration substeps per env step (MuJoCo: physics steps of
            ``dt_s / physics_substeps`` per control step).
        wheel_radius_m: Wheel radius of the differential drive.
        wheel_base_m: Distance between the wheels.
        max_wheel_speed_radps: Wheel speed limit.
        action_mapping: ``bang_bang`` (published: ``ω = max·clip(gain·a, -1, 1)``) or
            ``velocity`` (``ω = max·a``).
        bang_bang_gain: Gain of the published position-target mapping (200 rad target x 800 / 4).
        instructions: Instruction style: ``paper``, ``spatial`` or ``color``.
        paper_lateral_threshold_m: The one threshold of the ``paper`` style (lateral robot-frame
            offset of the target, metres), used for data and evaluation alike.
        spatial_threshold_rad: The one threshold of the ``spatial`` style: half-angle of the
            ``ahead`` and ``behind`` cones around the robot-frame bearing.
        reward_distance_coef: Per-step reward ``-coef * 3-D distance`` (published 0.1).
        reward_success: Reward on the success step (replaces the distance term; published +10).
        reward_out_of_bounds: Reward on an out-of-bounds step (replaces everything; published -5).
    """

    name: str = "text2nav"
    backend: str = "builtin"
    # camera
    image_height_px: int = 256
    image_width_px: int = 256
    camera_hfov_rad: float = PUBLISHED_FOV_RAD
    camera_vfov_rad: float = PUBLISHED_FOV_RAD
    camera_height_m: float = 0.09
    camera_forward_offset_m: float = 0.0243
    camera_near_m: float = 0.076
    camera_far_m: float = 10.0
    # spheres
    sphere_radius_m: float = 0.075
    sphere_height_m: float = 0.1
    sphere_positions_xy_m: tuple[tuple[float, float], ...] = (
        (2.5, 0.0),
        (2.5, 0.5),
        (2.5, -0.5),
        (2.5, 1.0),
        (2.5, -1.0),
    )
    sphere_colors: tuple[str, ...] = ("red", "green", "blue", "yellow", "pink")
    randomize_spheres: bool = False
    num_random_spheres: int = 8
    random_sphere_palette: tuple[str, ...] = tuple(COLOR_PALETTE)
    sphere_region_x_m: tuple[float, float] = (0.9, 2.45)
    sphere_region_y_m: tuple[float, float] = (-1.3, 1.3)
    sphere_min_separation_m: float = 0.35
    start_min_target_distance_m: float = 0.6
    # floor, walls, light
    floor_rgb: tuple[float, float, float] = (0.67, 0.84, 0.9)
    floor_rgb_jitter: float = 0.0
    floor_grid_spacing_m: float = 0.5
    floor_grid_line_width_m: float = 0.008
    wall_rgb: tuple[float, float, float] = (0.6, 0.6, 0.6)
    wall_height_m: float = 0.5
    wall_segments_xy_m: tuple[tuple[float, float, float, float], ...] = (
        (2.7, -1.5, 2.7, 1.5),
        (-1.3, -1.5, 2.7, -1.5),
        (-1.3, 1.5, 2.7, 1.5),
    )
    sky_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)
    light_position_m: tuple[float, float, float] = (1.35, 0.0, 2.0)
    light_jitter_m: float = 0.0
    ambient_light: float = 0.5
    # start distribution and bounds
    start_x_range_m: tuple[float, float] = (-0.05, 0.75)
    start_y_range_m: tuple[float, float] = (-0.2, 0.25)
    start_yaw_range_rad: tuple[float, float] = (-math.pi, math.pi)
    bounds_x_m: tuple[float, float] = (-0.2, 2.5)
    bounds_y_m: tuple[float, float] = (-1.45, 1.45)
    # task
    success_radius_m: float = 0.3
    robot_root_height_m: float = 0.0
    max_episode_steps: int = 600
    # robot and control
    dt_s: float = 1.0 / 30.0
    physics_substeps: int = 2
    wheel_radius_m: float = 0.03
    wheel_base_m: float = 0.1125
    max_wheel_speed_radps: float = 20.0
    action_mapping: str = "bang_bang"
    bang_bang_gain: float = 40000.0
    # instructions
    instructions: str = "paper"
    paper_lateral_threshold_m: float = 0.2
    spatial_threshold_rad: float = math.radians(15.0)
    # reward
    reward_distance_coef: float = 0.1
    reward_success: float = 10.0
    reward_out_of_bounds: float = -5.0

    def __post_init__(self) -> None:
        positive = (
            "image_height_px",
            "image_width_px",
            "camera_height_m",
            "camera_near_m",
            "camera_far_m",
            "sphere_radius_m",
            "floor_grid_spacing_m",
            "floor_grid_line_width_m",
            "wall_height_m",
            "success_radius_m",
            "max_episode_steps",
            "dt_s",
            "physics_substeps",
            "wheel_radius_m",
            "wheel_base_m",
            "max_wheel_speed_radps",
            "bang_bang_gain",
            "paper_lateral_threshold_m",
            "spatial_threshold_rad",
        )
        for field in positive:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"ArenaConfig.{field} must be a finite number, got {value!r}")
            if value <= 0:
                raise ConfigError(f"ArenaConfig.{field} must be > 0, got {value!r}; use a positive value")
        for field in ("image_height_px", "image_width_px", "max_episode_steps", "physics_substeps"):
            if not isinstance(getattr(self, field), int):
                raise ConfigError(f"ArenaConfig.{field} must be an integer, got {getattr(self, field)!r}")
        for field in ("camera_hfov_rad", "camera_vfov_rad"):
            value = getattr(self, field)
            if not (0 < value < math.pi):
                raise ConfigError(f"ArenaConfig.{field} must be in (0, pi) radians, got {value!r}")
        if self.camera_far_m <= self.camera_near_m:
            raise ConfigError(
                f"ArenaConfig.camera_far_m must exceed camera_near_m ({self.camera_near_m}), got {self.camera_far_m}"
            )
        if self.spatial_threshold_rad >= math.pi / 2:
            raise ConfigError(
                "ArenaConfig.spatial_threshold_rad must be < pi/2 so left/right exist, "
                f"got {self.spatial_threshold_rad}"
            )
        if self.action_mapping not in ACTION_MAPPINGS:
            raise unknown_name("action_mapping", str(self.action_mapping), ACTION_MAPPINGS)
        if self.backend not in BACKENDS:
            raise unknown_name("simulator backend", str(self.backend), BACKENDS)
        if self.instructions not in INSTRUCTION_STYLES:
            raise unknown_name("instruction style", str(self.instructions), INSTRUCTION_STYLES)
        for field in (
            "start_x_range_m",
            "start_y_range_m",
            "start_yaw_range_rad",
            "bounds_x_m",
            "bounds_y_m",
            "sphere_region_x_m",
            "sphere_region_y_m",
        ):
            lo, hi = getattr(self, field)
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ConfigError(f"ArenaConfig.{field} must be a finite (lo, hi) with lo <= hi, got {(lo, hi)!r}")
        if len(self.sphere_positions_xy_m) == 0:
            raise ConfigError("ArenaConfig.sphere_positions_xy_m must hold at least one (x, y), got ()")
        if len(self.sphere_colors) != len(self.sphere_positions_xy_m):
            raise ConfigError(
                f"ArenaConfig.sphere_colors has {len(self.sphere_colors)} names but sphere_positions_xy_m has "
                f"{len(self.sphere_positions_xy_m)} positions; give one colour per sphere"
            )
        for color in (*self.sphere_colors, *self.random_sphere_palette):
            if color not in COLOR_PALETTE:
                raise unknown_name("sphere colour", str(color), COLOR_PALETTE)
        if self.randomize_spheres:
            if self.num_random_spheres <= 0:
                raise ConfigError(f"ArenaConfig.num_random_spheres must be > 0, got {self.num_random_spheres}")
            if self.num_random_spheres > len(self.random_sphere_palette):
                raise ConfigError(
                    f"ArenaConfig.num_random_spheres ({self.num_random_spheres}) exceeds the "
                    f"{len(self.random_sphere_palette)} colours of random_sphere_palette; colours must be distinct"
                )
        for field in ("floor_rgb_jitter", "light_jitter_m", "sphere_min_separation_m", "start_min_target_distance_m"):
            if getattr(self, field) < 0:
                raise ConfigError(f"ArenaConfig.{field} must be >= 0, got {getattr(self, field)!r}")
        if not (0.0 <= self.ambient_light <= 1.0):
            raise ConfigError(f"ArenaConfig.ambient_light must be in [0, 1], got {self.ambient_light!r}")

    @property
    def num_spheres(self) -> int:
        """Number of spheres in every episode of this config."""
        return self.num_random_spheres if self.randomize_spheres else len(self.sphere_positions_xy_m)

    @property
    def color_names(self) -> tuple[str, ...]:
        """All colour names sphere colour indices refer to (the palette order)."""
        return tuple(COLOR_PALETTE)

    @property
    def focal_length_px(self) -> tuple[float, float]:
        """Pinhole focal lengths ``(fx, fy)`` in pixels from the fields of view."""
        fx = 0.5 * self.image_width_px / math.tan(0.5 * self.camera_hfov_rad)
        fy = 0.5 * self.image_height_px / math.tan(0.5 * self.camera_vfov_rad)
        return fx, fy

    @property
    def max_linear_speed_mps(self) -> float:
        """Rim speed at the wheel speed limit (0.6 m/s for the JetBot)."""
        return self.max_wheel_speed_radps * self.wheel_radius_m

    @property
    def success_radius_xy_m(self) -> float:
        """Radius of the success disc on the floor (0.283 m on text2nav).

        Success is the 3-D test ``distance(root, target centre) < success_radius_m`` with the target centre
        ``sphere_height_m - robot_root_height_m`` above the root, so on the floor the disc is narrower.
        """
        dz = self.sphere_height_m - self.robot_root_height_m
        return math.sqrt(max(self.success_radius_m**2 - dz**2, 0.0))


_TEXT2NAV = ArenaConfig()

_TEXT2NAV_RANDOM = ArenaConfig(
    name="text2nav-random",
    randomize_spheres=True,
    num_random_spheres=8,
    sphere_region_x_m=(0.9, 2.45),
    sphere_region_y_m=(-1.3, 1.3),
    start_x_range_m=(-0.15, 2.4),
    start_y_range_m=(-1.35, 1.35),
    floor_rgb_jitter=0.08,
    light_jitter_m=1.0,
)

_PRESETS: dict[str, ArenaConfig] = {
    "text2nav": _TEXT2NAV,
    "text2nav-velocity": dataclasses.replace(_TEXT2NAV, name="text2nav-velocity", action_mapping="velocity"),
    "text2nav-random": _TEXT2NAV_RANDOM,
    # The published arena in MuJoCo: same geometry, task and starts; contact physics at 30 Hz control with
    # 16 physics steps per control step (2.1 ms), rendered by mujoco.Renderer (see vlnav_data.sim.mujoco).
    "text2nav-mujoco": dataclasses.replace(_TEXT2NAV, name="text2nav-mujoco", backend="mujoco", physics_substeps=16),
    # The same MJCF arena in NVIDIA Newton: MuJoCo-Warp physics at the same 16 steps per control step, frames
    # from Newton's ray-traced tiled camera sensor (see vlnav_data.sim.newton).
    "text2nav-newton": dataclasses.replace(_TEXT2NAV, name="text2nav-newton", backend="newton", physics_substeps=16),
    # The published arena in Isaac Lab 3, kit-less: one sim.step per control step split into 16 Newton
    # (MuJoCo-Warp) substeps of 2.1 ms; the Newton Warp ray tracer renders (see vlnav_data.sim.isaaclab).
    "text2nav-isaaclab": dataclasses.replace(
        _TEXT2NAV, name="text2nav-isaaclab", backend="isaaclab", physics_substeps=16
    ),
}

#: Presets that run another preset's task in another simulator: the task (and so the expert) is the same.
_TASK_PRESETS: dict[str, str] = {
    "text2nav-mujoco": "text2nav",
    "text2nav-newton": "text2nav",
    "text2nav-isaaclab": "text2nav",
}

#: Names accepted by :func:`get_preset`.
PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def get_preset(name: str) -> ArenaConfig:
    """Return the frozen config of a named preset.

    Presets:
        ``text2nav``: the published arena (code values, spec §1), bang-bang wheels.
        ``text2nav-velocity``: the same arena with proportional wheel speeds (``velocity``).
        ``text2nav-random``: 8 spheres at random positions with distinct random colours from a
        10-colour palette, start anywhere in the arena, jittered floor colour and light position.
        ``text2nav-mujoco``: ``text2nav`` simulated and rendered by MuJoCo (needs the ``mujoco`` extra).
        ``text2nav-newton``: ``text2nav`` simulated by Newton's MuJoCo-Warp solver and rendered by its tiled
        camera sensor (needs the ``newton`` extra).
        ``text2nav-isaaclab``: ``text2nav`` in Isaac Lab 3 with Newton physics, kit-less (Python 3.12, the
        environment ``bash scripts/isaaclab-venv.sh DIR`` makes).

    Raises:
        ConfigError: unknown name (with a did-you-mean suggestion).
    """
    if name not in _PRESETS:
        raise unknown_name("preset", str(name), PRESET_NAMES)
    return _PRESETS[name]


def task_preset(name: str) -> str:
    """The built-in preset whose task ``name`` runs: ``text2nav`` for ``text2nav-mujoco`` and
    ``text2nav-isaaclab``, else ``name`` itself.

    Two presets with the same task have the same arena, starts, instructions and termination rules (only
    the simulator differs), so an expert trained on one acts in the other.

    Raises:
        ConfigError: unknown preset name.
    """
    get_preset(name)
    return _TASK_PRESETS.get(name, name)


#: The fields a dataset build may override on its preset (``vlnav-data build --instructions/--action-mapping/
#: --image-size/--max-episode-steps``): evaluating a model in another preset keeps them.
BUILD_OVERRIDE_FIELDS: tuple[str, ...] = (
    "instructions",
    "action_mapping",
    "image_height_px",
    "image_width_px",
    "max_episode_steps",
)


def arena_in_preset(preset: str, recorded: ArenaConfig) -> ArenaConfig:
    """The arena of ``preset`` with the build overrides of a recorded arena (``BUILD_OVERRIDE_FIELDS``).

    This is how a policy trained on one preset is evaluated in another (``vlnav-policy eval --preset``): the
    simulator, geometry and physics are the preset's; the instructions, camera resolution, action mapping and
    time limit the policy was trained with are kept.

    Raises:
        ConfigError: unknown preset.
    """
    return dataclasses.replace(get_preset(preset), **{f: getattr(recorded, f) for f in BUILD_OVERRIDE_FIELDS})


def arena_config_from_json(sim_config: Any) -> ArenaConfig:
    """Rebuild the :class:`ArenaConfig` a file recorded (``sim_config_json``, a model's or an evaluation's record).

    Lists become tuples again. A field the record lacks (written before the field existed) takes the value
    of the recorded ``name``'s preset, or of the default arena for another name; a ``{"arena": {...}}``
    wrapper and a ``preset`` key are accepted.

    Raises:
        ConfigError: the record is not an arena config (empty, not a dict, or with fields ArenaConfig lacks).
    """
    names = {f.name for f in dataclasses.fields(ArenaConfig)}
    payload = sim_config.get("arena", sim_config) if isinstance(sim_config, dict) else None
    if not isinstance(payload, dict) or not payload or not set(payload) <= names | {"preset"}:
        extra = sorted(set(payload or {}) - names - {"preset"}) if isinstance(payload, dict) else []
        raise ConfigError(
            "the recorded sim_config is not an arena config"
            + (f" (unknown fields: {', '.join(extra[:5])})" if extra else "")
            + "; this needs a dataset or model recorded in the arena (`vlnav-data build`)"
        )
    fields = {k: _tuples(v) for k, v in payload.items() if k in names}
    base = _PRESETS.get(str(fields.get("name")), _TEXT2NAV)
    return dataclasses.replace(base, **fields)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
