"""Frozen configuration dataclasses, one per component, composed into `EnvConfig`.

Every config is immutable and validated on construction; building one from a mapping
(`from_dict`) raises on unknown keys so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value has the wrong type, or a keyword argument is unknown (a `TypeError`, as
    Python raises for an unexpected keyword argument, and a `ConfigError`)."""


# Accepted value types per annotation (numpy scalars included, bool never counts as a number).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "float": ((int, float, np.integer, np.floating), "a number"),
    "int": ((int, np.integer), "an integer"),
    "bool": ((bool, np.bool_), "a bool"),
    "str": ((str,), "a string"),
}


def _check_types(obj: Any, prefix: str) -> None:
    """Raises `ConfigTypeError` naming the dotted path of the first field of `obj` whose value does
    not have its annotated type (a nested config must be an instance of its class)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if name in _TYPES:
            types, what = _TYPES[name]
            ok = isinstance(v, types) and (name == "bool" or not isinstance(v, (bool, np.bool_)))
        else:
            ok, what = type(v).__name__ == name, f"a {name} (or a dict of its fields)"
        if not ok:
            raise ConfigTypeError(f"{prefix}{f.name} must be {what}, got {v!r} ({type(v).__name__})")


def _from_dict(cls, values: dict[str, Any] | None, where: str):
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigTypeError(f"unknown {where} keys {unknown}; known keys: {sorted(known)}")
    return cls(**values)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class DynamicsConfig:
    """The ego's dynamic bicycle (Ford-Fusion-like, as AlpaSim's vehicle) and its actuator limits.

    Attributes:
        mass: Vehicle mass, kg.
        yaw_inertia: Yaw moment of inertia, kg m^2.
        lf: Centre of gravity to front axle, m.
        lr: Centre of gravity to rear axle, m.
        cornering_front: Front-axle cornering stiffness, N/rad.
        cornering_rear: Rear-axle cornering stiffness, N/rad.
        tau_acc: First-order lag of the acceleration actuator, s.
        tau_steer: First-order lag of the steering actuator, s.
        blend_lo: Below this speed the model is purely kinematic, m/s.
        blend_hi: Above this speed the model is purely dynamic, m/s.
        substeps: RK2 sub-steps per 0.1 s step (10 gives 10 ms sub-steps).
        max_acc: Largest acceleration command, m/s^2 (action +1).
        max_brake: Largest braking deceleration, m/s^2 (action -1).
        max_steer: Largest front-wheel angle, rad (action +-1).
        max_steer_rate: Steering-rate limit, rad/s.
        max_speed: Speed cap, m/s.
        mu: Tyre-road friction coefficient (0.9 dry asphalt, about 0.5 wet, 0.1-0.3 snow and ice): each
            axle's tyre force stays within mu times its static load, so the car's acceleration, braking
            and cornering combined stay within mu g.
    """

    mass: float = 1750.0
    yaw_inertia: float = 2900.0
    lf: float = 1.2
    lr: float = 1.6
    cornering_front: float = 80000.0
    cornering_rear: float = 80000.0
    tau_acc: float = 0.1
    tau_steer: float = 0.1
    blend_lo: float = 3.0
    blend_hi: float = 5.0
    substeps: int = 10
    max_acc: float = 3.0
    max_brake: float = 6.0
    max_steer: float = 0.5
    max_steer_rate: float = 0.7
    max_speed: float = 40.0
    mu: float = 0.9

    def __post_init__(self) -> None:
        _check_types(self, "dynamics.")
        for f in fields(self):
            v = getattr(self, f.name)
            _check(np.isfinite(v) and v > 0, f"dynamics.{f.name} must be a positive number, got {v!r}")
        _check(self.blend_lo < self.blend_hi, "dynamics.blend_lo must be below dynamics.blend_hi")
        _check(self.mu <= 2.0, f"dynamics.mu must be at most 2 (racing slicks reach ~1.7), got {self.mu!r}")

    def to_array(self) -> np.ndarray:
        """The (NUM_PARAMS,) float64 parameter vector the dynamics kernels read."""
        from alpagym_env.sim import dynamics as d

        p = np.zeros(d.NUM_PARAMS)
        p[d.P_MASS], p[d.P_IZ], p[d.P_LF], p[d.P_LR] = self.mass, self.yaw_inertia, self.lf, self.lr
        p[d.P_CF], p[d.P_CR] = self.cornering_front, self.cornering_rear
        p[d.P_TAU_ACC], p[d.P_TAU_STEER] = self.tau_acc, self.tau_steer
        p[d.P_BLEND_LO], p[d.P_BLEND_HI], p[d.P_SUBSTEPS] = self.blend_lo, self.blend_hi, self.substeps
        p[d.P_MAX_ACC], p[d.P_MAX_BRAKE] = self.max_acc, self.max_brake
        p[d.P_MAX_STEER], p[d.P_MAX_STEER_RATE], p[d.P_MAX_SPEED] = (
            self.max_steer,
            self.max_steer_rate,
            self.max_speed,
        )
        p[d.P_MU] = self.mu
        return p


AGENT_MODES = ("replay", "idm")


@dataclass(frozen=True)
class AgentsConfig:
    """How the vehicles the policy does not control move.

    Attributes:
        mode: ``"replay"`` follows the logs exactly (non-reactive, as the AlpaSim challenge);
            ``"idm"`` drives each agent along its logged path with IDM car-following, tracking its
            logged position when unobstructed (so it still stops where the log stopped, e.g. at reds).
        a_max: IDM maximum acceleration, m/s^2.
        b_comf: IDM comfortable deceleration, m/s^2.
        b_max: Hardest braking a reactive agent applies, m/s^2.
        s0: IDM jam distance, m.
        headway: IDM time headway, s.
        track_gain: Gain pulling a reactive agent back to its logged position, 1/s.
        lookahead: Distance within which a leader is searched, m.
    """

    mode: str = "replay"
    a_max: float = 2.0
    b_comf: float = 2.5
    b_max: float = 8.0
    s0: float = 2.0
    headway: float = 1.0
    track_gain: float = 0.5
    lookahead: float = 60.0

    def __post_init__(self) -> None:
        _check_types(self, "agents.")
        _check(self.mode in AGENT_MODES, f"agents.mode must be one of {AGENT_MODES}, got {self.mode!r}")
        for f in fields(self)[1:]:
            v = getattr(self, f.name)
            _check(np.isfinite(v) and v > 0, f"agents.{f.name} must be a positive number, got {v!r}")

    def to_array(self) -> np.ndarray:
        """(7,) float64 ``[a_max, b_comf, b_max, s0, headway, track_gain, lookahead]``."""
        return np.array([getattr(self, f.name) for f in fields(self)[1:]], dtype=np.float64)


@dataclass(frozen=True)
class ObsConfig:
    """Sizes of the flat observation (layout in `alpagym_env.sim.observation`).

    Besides these, the observation always holds 6 lane slots (leader and follower in the ego's lane and
    in the lanes to its left and right) and the speed limit with its next change along the lane route.

    Attributes:
        num_agents: K nearest other agents observed (those not in a lane slot).
        agent_range: Agents farther than this (straight line) are masked out of the lane slots and the
            nearest others, m.
        route_points: Lane-route waypoints ahead of the ego.
        route_spacing: Arc-length spacing of the waypoints, m.
        position_scale: Positions are divided by this, m.
        speed_scale: Speeds are divided by this, m/s.
    """

    num_agents: int = 8
    agent_range: float = 60.0
    route_points: int = 10
    route_spacing: float = 5.0
    position_scale: float = 50.0
    speed_scale: float = 20.0

    def __post_init__(self) -> None:
        _check_types(self, "obs.")
        _check(1 <= self.num_agents <= 63, f"obs.num_agents must be in 1..63, got {self.num_agents}")
        _check(2 <= self.route_points <= 64, f"obs.route_points must be in 2..64, got {self.route_points}")
        for name in ("agent_range", "route_spacing", "position_scale", "speed_scale"):
            v = getattr(self, name)
            _check(np.isfinite(v) and v > 0, f"obs.{name} must be a positive number, got {v!r}")


HEADING_MODES = ("given", "derived")


@dataclass(frozen=True)
class TrajectoryConfig:
    """Layout and scaling of ``action_type="trajectory"`` (see `alpagym_env.sim.trajectory`).

    The action holds `num_poses` future poses of the ego at `spacing`, 2 * spacing, ... seconds, in the
    ego frame at the time of the action (+x along the heading, +y to the left, origin at the box centre),
    flattened pose by pose as ``[x / x_scale, y / y_scale, heading / pi]`` (``heading="given"``) or
    ``[x / x_scale, y / y_scale]`` (``heading="derived"``: the tangent of the chord through the
    neighbouring poses). Each pose's heading is the path's tangent there.

    Attributes:
        num_poses: H, poses per action.
        spacing: Time between poses, s; a multiple of the 0.1 s step.
        x_scale: Longitudinal scale, m (default 160: 4 s at the 40 m/s speed cap).
        y_scale: Lateral scale, m.
        heading: ``"given"`` or ``"derived"``.
    """

    num_poses: int = 8
    spacing: float = 0.5
    x_scale: float = 160.0
    y_scale: float = 40.0
    heading: str = "given"

    def __post_init__(self) -> None:
        _check_types(self, "trajectory.")
        _check(1 <= self.num_poses <= 200, f"trajectory.num_poses must be in 1..200, got {self.num_poses}")
        _check(
            np.isfinite(self.spacing) and self.spacing > 0 and abs(self.spacing / 0.1 - self.steps()) < 1e-6,
            f"trajectory.spacing must be a positive multiple of the 0.1 s step, got {self.spacing!r}",
        )
        for name in ("x_scale", "y_scale"):
            v = getattr(self, name)
            _check(np.isfinite(v) and v > 0, f"trajectory.{name} must be a positive number, got {v!r}")
        _check(self.heading in HEADING_MODES, f"trajectory.heading must be one of {HEADING_MODES}")

    def steps(self, dt: float = 0.1) -> int:
        """Simulation steps between poses."""
        return max(int(round(self.spacing / dt)), 1)

    @property
    def action_dim(self) -> int:
        return self.num_poses * (2 if self.heading == "derived" else 3)


@dataclass(frozen=True)
class ControllerConfig:
    """The tracking controller of trajectory actions (time-varying LQ, `alpagym_env.sim.controller`).

    Weights are per preview step of 0.1 s; the vehicle model is the ego's `DynamicsConfig`.

    Attributes:
        q_lateral: Lateral path error, 1/m^2.
        q_heading: Course error to the path tangent, 1/rad^2.
        r_steer: Steering away from the path's steady-state angle, 1/rad^2.
        r_steer_rate: Steering command change from the current angle, 1/rad^2.
        q_progress: Arc length behind or ahead of the plan, 1/m^2.
        q_speed: Speed error, s^2/m^2.
        r_accel: Acceleration away from the plan's, s^4/m^2.
        r_jerk: Acceleration command change from the current value, s^4/m^2.
        max_jerk: Largest change of the actual acceleration over a step / dt, m/s^3.
        max_lat_acc: Lateral-acceleration cap of the plan: steering is capped so v^2 kappa stays below
            it and below the grip the ego's tyres leave beside the acceleration command
            (`alpagym_env.sim.controller.lateral_limit`), m/s^2.
        feasibility_margin: Relative slack before a plan is flagged infeasible.
        preview: LQ horizon, s (capped by the plan's length).
    """

    q_lateral: float = 1.0
    q_heading: float = 4.0
    r_steer: float = 3.0
    r_steer_rate: float = 50.0
    q_progress: float = 4.0
    q_speed: float = 1.0
    r_accel: float = 0.05
    r_jerk: float = 0.3
    max_jerk: float = 10.0
    max_lat_acc: float = 8.0
    feasibility_margin: float = 0.05
    preview: float = 4.0

    def __post_init__(self) -> None:
        _check_types(self, "controller.")
        for f in fields(self):
            v = getattr(self, f.name)
            ok = v >= 0 if f.name.startswith("q_") or f.name == "feasibility_margin" else v > 0
            _check(np.isfinite(v) and ok, f"controller.{f.name} must be a positive number, got {v!r}")


@dataclass(frozen=True)
class TerminationConfig:
    """Which events end an episode early (`terminated=True`); the horizon truncates.

    An episode terminates on the step where any enabled condition holds:

    - ``at_cut`` and the AlpaSim cut happens on this step (the first collision of any side, off-road, or
      the ego >= `alpagym_env.metrics.CUT_DISTANCE` m from its logged path). The scorer ignores
      everything after the cut, so by default nothing is earned or charged after it either, and the
      reward, the termination and the episode metrics all judge the same steps. Being rear-ended ends
      the episode without the at-fault penalty (the collision verdict is decided once per contact,
      see `alpagym_env.metrics`).
    - ``at_fault_collision``, ``any_collision``, ``offroad``: the event on this step. With ``at_cut``
      these are implied (each is a cut), so they matter only with ``at_cut=False``: the older
      drive-on behaviour, where the episode goes on after the cut until one of them (or the horizon)
      ends it, while the episode metrics still stop at the cut.
    - ``route_complete``: the ego reached the end of its route.

    Attributes:
        at_cut: Terminate at the AlpaSim cut.
        at_fault_collision: Terminate on a front or lateral collision verdict of the ego.
        any_collision: Terminate on any collision, at fault or not.
        offroad: Terminate when a corner of the ego box leaves the drivable area.
        route_complete: Terminate when the ego reaches the end of its route.
    """

    at_cut: bool = True
    at_fault_collision: bool = True
    any_collision: bool = False
    offroad: bool = True
    route_complete: bool = True

    def __post_init__(self) -> None:
        _check_types(self, "termination.")


@dataclass(frozen=True)
class EnvConfig:
    """Everything that defines an `AlpaDrive` env; built from the env's keyword arguments.

    Attributes:
        suite: Scenario suite the env samples from: a name (see `alpagym_env.scenarios`) or a path to
            a converted ``.npz`` suite or a directory of scene ``.npz`` files.
        horizon: Steps per episode before truncation (200 = 20 s at 10 Hz); a scene whose log ends
            sooner truncates its episodes there.
        action_type: ``"control"`` (normalised acceleration and steering) or ``"trajectory"`` (future
            ego-frame poses tracked by the controller).
        obs_type: ``"flat"`` (one float32 vector) or ``"dict"``.
        max_agents: Agent slots per scene; scenes with more agents keep the nearest to the ego.
        dynamics: The ego vehicle model.
        agents: Non-controlled vehicles.
        obs: Observation sizes.
        termination: Early-termination switches.
        trajectory: Layout of trajectory actions.
        controller: The controller that tracks them.
    """

    suite: str = "train"
    horizon: int = 200
    action_type: str = "control"
    obs_type: str = "flat"
    max_agents: int = 64
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    obs: ObsConfig = field(default_factory=ObsConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self) -> None:
        _check_types(self, "")
        _check(
            self.action_type in ACTION_TYPES,
            f"action_type must be one of {ACTION_TYPES}, got {self.action_type!r}",
        )
        _check(self.obs_type in OBS_TYPES, f"obs_type must be one of {OBS_TYPES}, got {self.obs_type!r}")
        _check(1 <= self.horizon <= 10_000, f"horizon must be in 1..10000 steps, got {self.horizon}")
        _check(2 <= self.max_agents <= 256, f"max_agents must be in 2..256, got {self.max_agents}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvConfig:
        """Builds the config from env keyword arguments; nested sections accept dicts or configs."""
        sections = {
            "dynamics": DynamicsConfig,
            "agents": AgentsConfig,
            "obs": ObsConfig,
            "termination": TerminationConfig,
            "trajectory": TrajectoryConfig,
            "controller": ControllerConfig,
        }
        known = {f.name for f in fields(cls)}
        unknown = [k for k in kwargs if k not in known]
        if unknown:
            raise ConfigTypeError(
                f"AlpaDrive env got an unexpected keyword argument {unknown[0]!r} "
                f"(unknown: {unknown}; env arguments: {sorted(known)})"
            )
        values = {}
        for key, value in kwargs.items():
            if key in sections and isinstance(value, str) and key == "agents":
                value = AgentsConfig(mode=value)
            elif key in sections and not isinstance(value, sections[key]):
                if not isinstance(value, Mapping):
                    raise ConfigTypeError(
                        f"{key} must be a {sections[key].__name__} or a dict, got {type(value).__name__}"
                    )
                value = _from_dict(sections[key], value, key)
            values[key] = value
        return cls(**values)

    def replace(self, **changes: Any) -> EnvConfig:
        return dataclasses.replace(self, **changes)


ACTION_TYPES = ("control", "trajectory")
OBS_TYPES = ("flat", "dict")
