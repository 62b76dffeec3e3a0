"""The arena and the JetBot as USD layers, authored with ``pxr`` (usd-core) from an :class:`ArenaConfig`.

NVIDIA's ``jetbot.usd`` lives on its asset server, which this project cannot reach, and Isaac Lab's MJCF
importer needs Isaac Sim; so both layers are written here from the config and the published dimensions,
with the MuJoCo backend's robot (:mod:`vlnav_data.sim.mujoco.mjcf`: masses, casters, friction, contact
softness) as the reference. ``pxr`` is imported inside the functions (it ships with Isaac Lab's environment).

* **robot** (``author_robot``): an articulation root ``/jetbot`` with three rigid bodies. ``chassis`` is the
  root link: its origin is the midpoint of the wheel axle on the floor (the published root), x forward; it
  carries the chassis mass and two frictionless ball casters (MuJoCo ``condim`` 1 with priority 1, so the
  floor's friction never applies to them; they float ``CASTER_CLEARANCE_M`` above the floor when the
  chassis is level). ``left_wheel`` / ``right_wheel`` are spheres of ``wheel_radius_m`` (one smooth contact
  point each, as in the MuJoCo backend) on revolute joints about +y, ``wheel_base_m`` apart, with an
  angular velocity drive. No visual chassis: the published camera does not see its robot.
* **arena** (``author_arena``): a collision plane for the floor (friction ``WHEEL_FRICTION``; not drawn: the
  Newton Warp ray tracer drew it black) under a thin visual box in ``floor_rgb``,
  white grid lines every ``floor_grid_spacing_m`` as thin boxes 0.5 mm above it (visual only), the grey
  visual walls and the fixed spheres (visual only: the robot drives through them, as published).

Contact softness is authored as MuJoCo solver parameters (``mjc:solref`` / ``mjc:solimp``, read by
Newton's MuJoCo-Warp solver): the MuJoCo backend's stiff, critically damped contacts.
"""

from __future__ import annotations

import math

from vlnav_data.sim.config import COLOR_PALETTE, ArenaConfig
from vlnav_data.sim.mujoco import mjcf

#: Names inside the robot layer.
CHASSIS = "chassis"
WHEEL_JOINTS = ("left_wheel_joint", "right_wheel_joint")
#: Grid lines are drawn over this square around the arena (m): the far clipping distance past its walls.
GRID_HALF_EXTENT_M = 9.0
GRID_LINE_LIFT_M = 0.0005
#: Floor plane half size (m) and the thickness of the box that draws it (the Warp ray tracer draws no plane).
FLOOR_HALF_SIZE_M = 40.0
FLOOR_VISUAL_THICKNESS_M = 0.01
#: Casters: radius, offset and clearance of the MuJoCo backend.
CASTER_RADIUS_M = mjcf.CASTER_RADIUS_M
CASTER_OFFSET_M = mjcf.CASTER_OFFSET_M
CASTER_CLEARANCE_M = mjcf.CASTER_CLEARANCE_M
WHEEL_FRICTION = mjcf.WHEEL_FRICTION
#: MuJoCo's smallest friction coefficient for a ``condim`` 3 contact; the casters use ``condim`` 1 anyway.
_MIN_FRICTION = 1e-3


def _contact(prim) -> None:
    from pxr import Gf, Sdf

    prim.CreateAttribute("mjc:solref", Sdf.ValueTypeNames.Float2).Set(Gf.Vec2f(*mjcf.CONTACT_SOLREF))
    prim.CreateAttribute("mjc:solimp", Sdf.ValueTypeNames.FloatArray).Set([*mjcf.CONTACT_SOLIMP, 0.5, 2.0])


def _physics_material(stage, path: str, friction: float):
    from pxr import UsdPhysics, UsdShade

    material = UsdShade.Material.Define(stage, path)
    api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    api.CreateStaticFrictionAttr(max(friction, _MIN_FRICTION))
    api.CreateDynamicFrictionAttr(max(friction, _MIN_FRICTION))
    api.CreateRestitutionAttr(0.0)
    return material


def _bind_physics(prim, material) -> None:
    from pxr import UsdShade

    UsdShade.MaterialBindingAPI.Apply(prim).Bind(material, UsdShade.Tokens.weakerThanDescendants, "physics")


def display_to_linear(c: float) -> float:
    """The linear value the sRGB transfer function maps to the display value ``c`` in [0, 1]."""
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _look(stage, path: str, rgb) -> object:
    """A UsdPreviewSurface material that the Newton Warp renderer shows as ``rgb``.

    The config's colours are what the built-in renderer writes to the image; the Newton renderer encodes a
    material's colour with the sRGB transfer function on the way out, so the material holds its inverse.
    """
    from pxr import Gf, Sdf, UsdShade

    material = UsdShade.Material.Define(stage, path)
    shader = UsdShade.Shader.Define(stage, f"{path}/shader")
    shader.CreateIdAttr("UsdPreviewSurface")
    linear = Gf.Vec3f(*(display_to_linear(float(c)) for c in rgb))
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(linear)
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    return material


def _new_stage(path: str, root: str):
    from pxr import Usd, UsdGeom, UsdPhysics

    stage = Usd.Stage.CreateNew(path)
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    top = UsdGeom.Xform.Define(stage, f"/{root}")
    stage.SetDefaultPrim(top.GetPrim())
    return stage, top


def author_robot(path: str, config: ArenaConfig) -> None:
    """Write the JetBot layer (module docstring) to ``path`` (``.usda``)."""
    from pxr import Gf, Sdf, UsdGeom, UsdPhysics

    stage, top = _new_stage(path, "jetbot")
    UsdPhysics.ArticulationRootAPI.Apply(top.GetPrim())
    rubber = _physics_material(stage, "/jetbot/materials/rubber", WHEEL_FRICTION)
    slick = _physics_material(stage, "/jetbot/materials/slick", 0.0)
    r, half_base = config.wheel_radius_m, 0.5 * config.wheel_base_m

    chassis = UsdGeom.Xform.Define(stage, f"/jetbot/{CHASSIS}")
    UsdPhysics.RigidBodyAPI.Apply(chassis.GetPrim())
    UsdPhysics.MassAPI.Apply(chassis.GetPrim()).CreateMassAttr(mjcf.CHASSIS_MASS_KG)
    for name, x in (("front_caster", CASTER_OFFSET_M), ("back_caster", -CASTER_OFFSET_M)):
        caster = UsdGeom.Sphere.Define(stage, f"/jetbot/{CHASSIS}/{name}")
        caster.CreateRadiusAttr(CASTER_RADIUS_M)
        caster.AddTranslateOp().Set(Gf.Vec3d(x, 0.0, CASTER_RADIUS_M + CASTER_CLEARANCE_M))
        caster.CreatePurposeAttr(UsdGeom.Tokens.guide)  # collides, never drawn
        prim = caster.GetPrim()
        UsdPhysics.CollisionAPI.Apply(prim)
        _bind_physics(prim, slick)
        _contact(prim)
        # MuJoCo combines two geoms' friction by the maximum: priority 1 makes the caster's frictionless
        # contact (condim 1) win over the floor's.
        prim.CreateAttribute("mjc:priority", Sdf.ValueTypeNames.Int).Set(1)
        prim.CreateAttribute("mjc:condim", Sdf.ValueTypeNames.Int).Set(1)
    for (side, y), joint_name in zip((("left", half_base), ("right", -half_base)), WHEEL_JOINTS, strict=True):
        wheel = UsdGeom.Xform.Define(stage, f"/jetbot/{side}_wheel")
        wheel.AddTranslateOp().Set(Gf.Vec3d(0.0, y, r))
        UsdPhysics.RigidBodyAPI.Apply(wheel.GetPrim())
        UsdPhysics.MassAPI.Apply(wheel.GetPrim()).CreateMassAttr(mjcf.WHEEL_MASS_KG)
        tyre = UsdGeom.Sphere.Define(stage, f"/jetbot/{side}_wheel/tyre")
        tyre.CreateRadiusAttr(r)
        tyre.CreatePurposeAttr(UsdGeom.Tokens.guide)
        UsdPhysics.CollisionAPI.Apply(tyre.GetPrim())
        _bind_physics(tyre.GetPrim(), rubber)
        _contact(tyre.GetPrim())
        joint = UsdPhysics.RevoluteJoint.Define(stage, f"/jetbot/{joint_name}")
        joint.CreateBody0Rel().SetTargets([f"/jetbot/{CHASSIS}"])
        joint.CreateBody1Rel().SetTargets([f"/jetbot/{side}_wheel"])
        joint.CreateAxisAttr("Y")
        joint.CreateLocalPos0Attr(Gf.Vec3f(0.0, y, r))
        joint.CreateLocalPos1Attr(Gf.Vec3f(0.0, 0.0, 0.0))
        joint.CreateLocalRot0Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
        joint.CreateLocalRot1Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
        drive = UsdPhysics.DriveAPI.Apply(joint.GetPrim(), "angular")
        drive.CreateTypeAttr("force")
        drive.CreateStiffnessAttr(0.0)
    stage.GetRootLayer().Save()


def author_arena(path: str, config: ArenaConfig) -> None:
    """Write the static arena layer (module docstring) to ``path`` (``.usda``); spheres at the config's layout."""
    from pxr import Gf, UsdGeom, UsdPhysics, UsdShade

    stage, _ = _new_stage(path, "arena")
    floor = UsdGeom.Plane.Define(stage, "/arena/floor")
    floor.CreateAxisAttr("Z")
    floor.CreateWidthAttr(2 * FLOOR_HALF_SIZE_M)
    floor.CreateLengthAttr(2 * FLOOR_HALF_SIZE_M)
    floor.CreatePurposeAttr(UsdGeom.Tokens.guide)  # the collision plane; a thin box below it is what is seen
    prim = floor.GetPrim()
    UsdPhysics.CollisionAPI.Apply(prim)
    _contact(prim)
    _bind_physics(prim, _physics_material(stage, "/arena/materials/floor", WHEEL_FRICTION))

    def box(name: str, center, size, yaw: float, rgb, look) -> None:
        cube = UsdGeom.Cube.Define(stage, f"/arena/{name}")
        cube.CreateSizeAttr(1.0)
        cube.AddTranslateOp().Set(Gf.Vec3d(*map(float, center)))
        cube.AddRotateZOp().Set(math.degrees(yaw))
        cube.AddScaleOp().Set(Gf.Vec3f(*map(float, size)))
        cube.CreateDisplayColorAttr([Gf.Vec3f(*(display_to_linear(float(c)) for c in rgb))])
        UsdShade.MaterialBindingAPI.Apply(cube.GetPrim()).Bind(look)

    floor_look = _look(stage, "/arena/looks/floor", config.floor_rgb)
    size = 2 * FLOOR_HALF_SIZE_M
    box(
        "floor_visual",
        (0.0, 0.0, -FLOOR_VISUAL_THICKNESS_M / 2),
        (size, size, FLOOR_VISUAL_THICKNESS_M),
        0.0,
        config.floor_rgb,
        floor_look,
    )
    white = _look(stage, "/arena/looks/grid", (1.0, 1.0, 1.0))
    g, width, lift = GRID_HALF_EXTENT_M, config.floor_grid_line_width_m, GRID_LINE_LIFT_M
    for i in range(int(round(2 * g / config.floor_grid_spacing_m)) + 1):
        off = -g + i * config.floor_grid_spacing_m  # lines at multiples of the spacing, centred on x = 1 m
        box(f"grid_x_{i}", (1.0 + off, 0.0, lift), (width, 2 * g, 1e-4), 0.0, (1, 1, 1), white)
        box(f"grid_y_{i}", (1.0, off, lift), (2 * g, width, 1e-4), 0.0, (1, 1, 1), white)
    grey = _look(stage, "/arena/looks/wall", config.wall_rgb)
    for i, (x0, y0, x1, y1) in enumerate(config.wall_segments_xy_m):
        length = math.hypot(x1 - x0, y1 - y0)
        center = (0.5 * (x0 + x1), 0.5 * (y0 + y1), 0.5 * config.wall_height_m)
        box(
            f"wall_{i}",
            center,
            (length, 0.01, config.wall_height_m),
            math.atan2(y1 - y0, x1 - x0),
            config.wall_rgb,
            grey,
        )
    for k, ((sx, sy), name) in enumerate(zip(config.sphere_positions_xy_m, config.sphere_colors, strict=True)):
        sphere = UsdGeom.Sphere.Define(stage, f"/arena/sphere_{k}")
        sphere.CreateRadiusAttr(config.sphere_radius_m)
        sphere.AddTranslateOp().Set(Gf.Vec3d(sx, sy, config.sphere_height_m))
        sphere.CreateDisplayColorAttr([Gf.Vec3f(*(display_to_linear(c) for c in COLOR_PALETTE[name]))])
        UsdShade.MaterialBindingAPI.Apply(sphere.GetPrim()).Bind(
            _look(stage, f"/arena/looks/sphere_{k}", COLOR_PALETTE[name])
        )
    stage.GetRootLayer().Save()
