"""Closed-loop metrics: the per-step channel registry, episode aggregation and the scene score.

The step kernel (`alpagym_env.sim.engine`) writes one value per channel per controlled agent each step
into `metrics (B, C, NUM_CHANNELS)`; channel indices are the module constants below and the registry
maps names to them. Episodes are aggregated in the kernel as sum, max and last value of each channel
over the part of the episode before the cut (AlpaSim: the step after the first collision or off-road,
or once the ego is >= 4 m from its logged path), and turned into named metrics here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Channel:
    """One per-step metric: its index in the metrics array, unit and definition."""

    index: int
    unit: str
    doc: str


_CHANNELS: dict[str, Channel] = {}


def register_channel(name: str, unit: str, doc: str) -> int:
    """Adds a channel to the registry and returns its index; duplicate names raise."""
    if name in _CHANNELS:
        raise ValueError(f"metric channel {name!r} is already registered")
    index = len(_CHANNELS)
    _CHANNELS[name] = Channel(index, unit, doc)
    return index


def channel(name: str) -> Channel:
    """Looks a channel up by name; unknown names raise a `KeyError` listing the known ones."""
    try:
        return _CHANNELS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {sorted(_CHANNELS)}") from None


def channel_names() -> tuple[str, ...]:
    return tuple(_CHANNELS)


PROGRESS = register_channel("progress", "fraction", "route progress since the start / logged path length")
PROGRESS_DELTA = register_channel("progress_delta", "fraction", "this step's increase of `progress`")
COLLISION_ANY = register_channel("collision_any", "0/1", "the ego box overlaps another agent's box")
COLLISION_FRONT = register_channel("collision_front", "0/1", "contact on the ego's front face")
COLLISION_REAR = register_channel("collision_rear", "0/1", "contact on the ego's rear face (not at fault)")
COLLISION_LATERAL = register_channel("collision_lateral", "0/1", "contact on the ego's sides")
COLLISION_AT_FAULT = register_channel("collision_at_fault", "0/1", "front or lateral collision (AlpaSim)")
OFFROAD = register_channel("offroad", "0/1", "a corner of the ego box is outside the drivable area")
OFFROAD_DISTANCE = register_channel(
    "offroad_distance", "m", "largest signed corner distance past a road edge"
)
WRONG_WAY = register_channel("wrong_way", "0/1", "moving inside lanes that all point > 90 deg away")
DIST_TO_GT = register_channel("dist_to_gt", "m", "distance to the ego's logged position at the same time")
SPEED = register_channel("speed", "m/s", "ego speed")
LON_ACC = register_channel("lon_acc", "m/s^2", "longitudinal acceleration")
LAT_ACC = register_channel("lat_acc", "m/s^2", "lateral acceleration")
JERK = register_channel("jerk", "m/s^3", "magnitude of the jerk vector")
LON_JERK = register_channel("lon_jerk", "m/s^3", "longitudinal jerk")
YAW_RATE = register_channel("yaw_rate", "rad/s", "yaw rate")
YAW_ACC = register_channel("yaw_acc", "rad/s^2", "yaw acceleration")
COMFORT_VIOLATION = register_channel(
    "comfort_violation", "0/1", "any of the six AlpaSim comfort checks fails"
)
RAN_RED_LIGHT = register_channel("ran_red_light", "0/1", "crossed a stop line on the route while red")
ROUTE_COMPLETE = register_channel("route_complete", "0/1", "reached the end of the route")
DIST_TRAVELED = register_channel("dist_traveled", "m", "distance driven this step")
LANE_DEVIATION = register_channel("lane_deviation", "m", "absolute lateral offset from the route")
NUM_CHANNELS = len(_CHANNELS)

# AlpaSim comfort bounds.
COMFORT_LON_ACC_MIN, COMFORT_LON_ACC_MAX = -4.05, 2.40
COMFORT_LAT_ACC, COMFORT_JERK, COMFORT_LON_JERK = 4.89, 8.37, 4.13
COMFORT_YAW_ACC, COMFORT_YAW_RATE = 1.93, 0.95
CUT_DISTANCE = 4.0  # m from the logged path after which an episode's aggregate is cut
STATIC_LOG_DISTANCE = 5.0  # m: a log that moves less than this scores 1 for progress

# Episode accumulator layout: `episode (B, C, NUM_CHANNELS, 3)` holds sum, max and last value.
ACC_SUM, ACC_MAX, ACC_LAST = 0, 1, 2


def scene_score(at_fault: bool, offroad: bool, progress: float, log_length: float) -> float:
    """AlpaSim scene score: 0 on an at-fault collision or off-road, else min(clip(progress) / 0.8, 1).

    Args:
        at_fault: Whether the (cut) episode had an at-fault collision.
        offroad: Whether it went off-road.
        progress: Route progress as a fraction of the logged path length.
        log_length: Length of the logged path, m; a log moving < 5 m gives full progress credit.
    """
    if at_fault or offroad:
        return 0.0
    if log_length < STATIC_LOG_DISTANCE:
        return 1.0
    return float(min(np.clip(progress, 0.0, 1.0) / 0.8, 1.0))


def episode_metrics(acc: np.ndarray, steps: int, cut_step: int, log_length: float) -> dict[str, float]:
    """Turns one controlled agent's accumulators into the episode's named closed-loop metrics.

    Args:
        acc: (NUM_CHANNELS, 3) sum, max and last of each channel over the uncut steps.
        steps: Steps the episode ran.
        cut_step: Steps aggregated before the cut (== steps when never cut).
        log_length: Length of the logged path over the horizon, m.

    Returns:
        Metrics by name: event flags (any over the uncut episode), final `progress`, mean and max of
        the continuous channels, `dist_traveled_m`, comfort rate, `scene_score`, and `km_per_incident`
        inputs (`km` driven and `incidents`).
    """
    n = max(cut_step, 1)
    mx, sm, last = acc[:, ACC_MAX], acc[:, ACC_SUM], acc[:, ACC_LAST]
    at_fault = bool(mx[COLLISION_AT_FAULT] > 0)
    offroad = bool(mx[OFFROAD] > 0)
    out = {
        "collision_any": float(mx[COLLISION_ANY] > 0),
        "collision_front": float(mx[COLLISION_FRONT] > 0),
        "collision_rear": float(mx[COLLISION_REAR] > 0),
        "collision_lateral": float(mx[COLLISION_LATERAL] > 0),
        "collision_at_fault": float(at_fault),
        "offroad": float(offroad),
        "wrong_lane": float(mx[WRONG_WAY] > 0),
        "ran_red_light": float(mx[RAN_RED_LIGHT] > 0),
        "route_complete": float(mx[ROUTE_COMPLETE] > 0),
        "progress": float(last[PROGRESS]),
        "dist_to_gt_trajectory": float(sm[DIST_TO_GT] / n),
        "max_dist_to_gt": float(mx[DIST_TO_GT]),
        "dist_traveled_m": float(sm[DIST_TRAVELED]),
        "mean_speed": float(sm[SPEED] / n),
        "max_abs_jerk": float(mx[JERK]),
        "comfort": float(1.0 - sm[COMFORT_VIOLATION] / n),
        "mean_lane_deviation": float(sm[LANE_DEVIATION] / n),
        "steps": float(steps),
        "cut_step": float(cut_step),
        "log_length_m": float(log_length),
    }
    out["scene_score"] = scene_score(at_fault, offroad, out["progress"], log_length)
    out["incidents"] = float(at_fault or offroad)
    out["km"] = out["dist_traveled_m"] / 1000.0
    return out


EPISODE_METRICS = tuple(episode_metrics(np.zeros((NUM_CHANNELS, 3)), 0, 0, 0.0))
