"""The text2nav arena as an MJCF model, generated from an :class:`~vlnav_data.sim.ArenaConfig` (no MuJoCo import).

Every geometric number comes from the config, so the MuJoCo arena is the built-in one by construction:

* **floor**: a plane in ``floor_rgb`` with white grid lines every ``floor_grid_spacing_m`` (a built-in
  ``flat`` texture with an ``edge`` mark, one texture tile per grid cell; the line is one texel of a
  ``_GRID_TEXELS``-texel tile, i.e. about ``floor_grid_line_width_m`` wide), sky black (no skybox, no
  haze); collisions only with the wheels and casters.
* **walls**: thin grey boxes along ``wall_segments_xy_m``, ``wall_height_m`` high, visual only (no
  collision, as published).
* **spheres**: ``sphere_radius_m`` at ``sphere_height_m``, one mocap body each so that every
  environment can place its own layout (``text2nav-random``); visual only (the robot drives through
  them, as published).
* **robot**: a differential-drive JetBot on a free joint. The body origin is the midpoint of the wheel
  axle on the floor (the published root, ``robot_root_height_m`` = 0), x forward. Two wheels of
  ``wheel_radius_m`` on hinge joints ``wheel_base_m`` apart, driven by velocity actuators whose control is
  the wheel speed in rad/s (``ctrlrange`` = ``max_wheel_speed_radps``); a frictionless ball caster in
  front and one behind keep the chassis level. Wheel/floor friction 1.0 (rubber on a hard floor).
* **camera**: ``camera_forward_offset_m`` ahead of the root, ``camera_height_m`` high, level, looking
  along +x, ``fovy`` = ``camera_vfov_rad`` (square pixels; MuJoCo derives the horizontal FOV from the
  aspect ratio, which equals ``camera_hfov_rad`` for the published square camera), near/far clipping
  ``camera_near_m`` / ``camera_far_m`` (MuJoCo scales them by the model extent, which is fixed to 1).
* **lights**: ambient ``ambient_light`` (headlight, ambient only) plus a spotlight at
  ``light_position_m`` pointing down with a cone wide enough to cover the arena, diffuse
  ``1 - ambient_light``, casting shadows (the published sphere light; a MuJoCo point light casts none).

Physics: ``timestep = dt_s / physics_substeps``, ``implicitfast`` integrator (the stiff velocity
servos are integrated implicitly). Choices the published task leaves open are module constants below.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

from vlnav_data.sim.config import COLOR_PALETTE, ArenaConfig

#: Camera, robot and sphere names used by the backend.
CAMERA_NAME = "jetbot_camera"
ROBOT_BODY = "jetbot"
LEFT_WHEEL_JOINT = "left_wheel_joint"
RIGHT_WHEEL_JOINT = "right_wheel_joint"
LEFT_ACTUATOR = "left_wheel_velocity"
RIGHT_ACTUATOR = "right_wheel_velocity"
SPOTLIGHT_NAME = "arena_light"


def sphere_body(k: int) -> str:
    """Name of the mocap body of sphere ``k``."""
    return f"sphere_{k}"


#: Chassis mass (kg), half sizes and centre height (m): the JetBot weighs about 0.6 kg (choice: a low,
#: 0.16 m long chassis, so that full-torque starts do not tip it onto a caster for long).
CHASSIS_MASS_KG = 0.5
CHASSIS_HALF_SIZE_M = (0.08, 0.045, 0.015)
CHASSIS_CENTER_HEIGHT_M = 0.025
WHEEL_MASS_KG = 0.05
WHEEL_HALF_WIDTH_M = 0.008
CASTER_RADIUS_M = 0.012
CASTER_OFFSET_M = 0.07
#: The casters float this far above the floor when the chassis is level: the wheels carry the weight
#: (full traction), the casters only catch the chassis when it pitches.
CASTER_CLEARANCE_M = 0.001
#: Velocity-servo gain (N·m per rad/s) and torque limit (N·m) of each wheel. The published PD position
#: servo saturates at the 20 rad/s joint velocity limit (spec §1.5); a stiff velocity servo reaches the
#: commanded speed within a few milliseconds, so the wheels behave as the built-in arena's wheel speeds.
WHEEL_KV = 0.5
WHEEL_TORQUE_LIMIT_NM = 0.2
#: Rubber tyre on a hard floor.
WHEEL_FRICTION = 1.5
#: Wheels collide as spheres of ``wheel_radius_m``: one smooth contact point each (MuJoCo's cylinder/plane
#: contact chatters between its rim points at 20 rad/s, which costs traction).
WHEEL_GEOM = "sphere"
#: Stiff, critically damped wheel/floor contacts: the wheel sinks about 0.06 mm, so the rolling radius
#: stays within 0.2% of ``wheel_radius_m`` (MuJoCo's default contact sinks about 1 mm = 3% slower).
CONTACT_SOLREF = (0.005, 1.0)
CONTACT_SOLIMP = (0.95, 0.99, 0.0001)
#: Reflected inertia of each geared wheel motor (kg·m²).
WHEEL_ARMATURE_KGM2 = 1e-4
#: Texels per grid tile of the floor texture (a one-texel edge line is ``spacing / texels`` wide).
_GRID_TEXELS = 64
#: Half size of the floor plane (m): past the far clipping distance in every direction from the arena.
_FLOOR_HALF_SIZE_M = 40.0
#: Spotlight cone half-angle (degrees): covers the arena corners seen from the light (57 degrees).
SPOT_CUTOFF_DEG = 80.0
#: Shadow-map resolution (texels) at the published 256 px image: 8 texels per image pixel, at most this.
SHADOW_MAP_SIZE = 2048


def _v(*values: float) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def arena_mjcf(config: ArenaConfig, num_spheres: int | None = None) -> str:
    """MJCF XML of the arena of ``config`` (see the module docstring).

    Args:
        config: The arena config (geometry, robot, camera, lights, physics rate).
        num_spheres: Number of sphere bodies (default ``config.num_spheres``); their poses and colours
            start at the config's fixed layout (padded with the first sphere for randomised configs)
            and are set per environment by the backend.

    Returns:
        The XML string.
    """
    k = config.num_spheres if num_spheres is None else num_spheres
    h, w = config.image_height_px, config.image_width_px
    timestep = config.dt_s / config.physics_substeps
    shadow_px = min(SHADOW_MAP_SIZE, max(512, 8 * max(h, w)))  # 2048 at the published 256 px
    fovy_deg = math.degrees(config.camera_vfov_rad)
    amb = config.ambient_light
    r = config.wheel_radius_m
    contact = f'solref="{_v(*CONTACT_SOLREF)}" solimp="{_v(*CONTACT_SOLIMP)}"'
    tyre = f'friction="{WHEEL_FRICTION:g} 0.005 0.0001" condim="3" {contact}'
    half_base = 0.5 * config.wheel_base_m
    cx, cy, cz = CHASSIS_HALF_SIZE_M
    chassis_z = CHASSIS_CENTER_HEIGHT_M
    caster_z = CASTER_RADIUS_M + CASTER_CLEARANCE_M
    floor = config.floor_rgb
    spacing = config.floor_grid_spacing_m
    repeat = 2.0 * _FLOOR_HALF_SIZE_M / spacing
    wmax = config.max_wheel_speed_radps
    walls = []
    for i, (x0, y0, x1, y1) in enumerate(config.wall_segments_xy_m):
        length = math.hypot(x1 - x0, y1 - y0)
        yaw = math.atan2(y1 - y0, x1 - x0)
        walls.append(
            f'    <geom name="wall_{i}" type="box" '
            f'pos="{_v(0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * config.wall_height_m)}" '
            f'euler="0 0 {yaw:.9g}" size="{_v(0.5 * length, 0.005, 0.5 * config.wall_height_m)}" '
            f'rgba="{_v(*config.wall_rgb, 1)}" contype="0" conaffinity="0" group="1"/>'
        )
    spheres = []
    positions = list(config.sphere_positions_xy_m)
    colors = list(config.sphere_colors)
    for i in range(k):
        (sx, sy), name = positions[min(i, len(positions) - 1)], colors[min(i, len(colors) - 1)]
        spheres.append(
            f'    <body name="{sphere_body(i)}" mocap="true" pos="{_v(sx, sy, config.sphere_height_m)}">\n'
            f'      <geom name="sphere_geom_{i}" type="sphere" size="{_v(config.sphere_radius_m)}" '
            f'rgba="{_v(*COLOR_PALETTE[name], 1)}" contype="0" conaffinity="0" group="1"/>\n'
            "    </body>"
        )
    lx, ly, lz = config.light_position_m
    wall_xml = "\n".join(walls)
    sphere_xml = "\n".join(spheres)
    return f"""<mujoco model={quoteattr("vlnav " + config.name)}>
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep:.9g}" integrator="implicitfast" gravity="0 0 -9.81"/>
  <statistic extent="1" center="1 0 0"/>
  <visual>
    <global offwidth="{max(w, 640)}" offheight="{max(h, 480)}"/>
    <map znear="{config.camera_near_m:.9g}" zfar="{config.camera_far_m:.9g}" haze="0"/>
    <quality shadowsize="{shadow_px}" offsamples="4"/>
    <headlight active="1" ambient="{_v(amb, amb, amb)}" diffuse="0 0 0" specular="0 0 0"/>
    <rgba haze="0 0 0 1" fog="0 0 0 1"/>
  </visual>
  <asset>
    <texture name="floor_grid" type="2d" builtin="flat" mark="edge" width="{_GRID_TEXELS}" height="{_GRID_TEXELS}"
             rgb1="{_v(*floor)}" rgb2="{_v(*floor)}" markrgb="1 1 1"/>
    <material name="floor_material" texture="floor_grid" texrepeat="{_v(repeat, repeat)}" texuniform="false"
              specular="0" shininess="0" reflectance="0"/>
  </asset>
  <worldbody>
    <light name="{SPOTLIGHT_NAME}" pos="{_v(lx, ly, lz)}" dir="0 0 -1" directional="false" castshadow="true"
           cutoff="{SPOT_CUTOFF_DEG:g}" exponent="0" attenuation="1 0 0"
           diffuse="{_v(1 - amb, 1 - amb, 1 - amb)}" specular="0.25 0.25 0.25" ambient="0 0 0"/>
    <geom name="floor" type="plane" size="{_v(_FLOOR_HALF_SIZE_M, _FLOOR_HALF_SIZE_M, 0.1)}" material="floor_material"
          friction="{WHEEL_FRICTION:g} 0.005 0.0001" condim="3" {contact} group="0"/>
{wall_xml}
{sphere_xml}
    <body name="{ROBOT_BODY}" pos="0 0 0">
      <freejoint name="root"/>
      <geom name="chassis" type="box" pos="{_v(0, 0, chassis_z)}" size="{_v(cx, cy, cz)}" mass="{CHASSIS_MASS_KG:g}"
            rgba="0.1 0.1 0.1 1" contype="0" conaffinity="0" group="2"/>
      <geom name="front_caster" type="sphere" pos="{_v(CASTER_OFFSET_M, 0, caster_z)}" size="{CASTER_RADIUS_M:g}"
            mass="0.01" condim="1" priority="1" friction="0 0 0" rgba="0.3 0.3 0.3 1" group="2"/>
      <geom name="back_caster" type="sphere" pos="{_v(-CASTER_OFFSET_M, 0, caster_z)}" size="{CASTER_RADIUS_M:g}"
            mass="0.01" condim="1" priority="1" friction="0 0 0" rgba="0.3 0.3 0.3 1" group="2"/>
      <camera name="{CAMERA_NAME}" pos="{_v(config.camera_forward_offset_m, 0, config.camera_height_m)}"
              xyaxes="0 -1 0 0 0 1" fovy="{fovy_deg:.9g}"/>
      <body name="left_wheel" pos="{_v(0, half_base, r)}">
        <joint name="{LEFT_WHEEL_JOINT}" type="hinge" axis="0 1 0" armature="{WHEEL_ARMATURE_KGM2:g}"/>
        <geom name="left_wheel_geom" type="{WHEEL_GEOM}" euler="{_v(math.pi / 2, 0, 0)}"
              size="{_v(r, WHEEL_HALF_WIDTH_M)}" mass="{WHEEL_MASS_KG:g}" {tyre} rgba="0.2 0.2 0.2 1" group="2"/>
      </body>
      <body name="right_wheel" pos="{_v(0, -half_base, r)}">
        <joint name="{RIGHT_WHEEL_JOINT}" type="hinge" axis="0 1 0" armature="{WHEEL_ARMATURE_KGM2:g}"/>
        <geom name="right_wheel_geom" type="{WHEEL_GEOM}" euler="{_v(math.pi / 2, 0, 0)}"
              size="{_v(r, WHEEL_HALF_WIDTH_M)}" mass="{WHEEL_MASS_KG:g}" {tyre} rgba="0.2 0.2 0.2 1" group="2"/>
      </body>
    </body>
  </worldbody>
  <contact>
    <exclude body1="{ROBOT_BODY}" body2="left_wheel"/>
    <exclude body1="{ROBOT_BODY}" body2="right_wheel"/>
  </contact>
  <actuator>
    <velocity name="{LEFT_ACTUATOR}" joint="{LEFT_WHEEL_JOINT}" kv="{WHEEL_KV:g}" ctrlrange="{_v(-wmax, wmax)}"
              forcerange="{_v(-WHEEL_TORQUE_LIMIT_NM, WHEEL_TORQUE_LIMIT_NM)}"/>
    <velocity name="{RIGHT_ACTUATOR}" joint="{RIGHT_WHEEL_JOINT}" kv="{WHEEL_KV:g}" ctrlrange="{_v(-wmax, wmax)}"
              forcerange="{_v(-WHEEL_TORQUE_LIMIT_NM, WHEEL_TORQUE_LIMIT_NM)}"/>
  </actuator>
</mujoco>
"""
