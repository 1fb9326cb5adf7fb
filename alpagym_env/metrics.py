"""Closed-loop metrics: the per-step channel registry, episode aggregation and the scene score.

The step kernel (`alpagym_env.sim.engine`) writes one value per channel per controlled agent each step
into `metrics (B, C, NUM_CHANNELS)`; channel indices are the module constants below and the registry
maps names to them. Episodes are aggregated in the kernel as sum, max and last value of each channel
over the part of the episode before the cut (AlpaSim: the step after the first collision or off-road,
or once the ego is >= 4 m from its logged path), and turned into named metrics here.

Definitions follow AlpaSim's evaluator (``src/eval``):

- collisions: the ego box overlaps another agent's box; ``front`` when the other box touches the ego's
  front bumper (its front face), else ``rear`` when it touches the rear bumper, else ``lateral``;
  ``at_fault`` = front or lateral (a rear collision is the other driver's fault). The side is decided
  once per contact, on the first step a pair overlaps, and held while it overlaps
  (`alpagym_env.sim.measure.collision_verdicts`): a log-replay car that rear-ends the ego and drives
  on through it stays ``rear`` even when it reaches the ego's front bumper. The step's collision
  channels, the reward terms, the termination and the episode aggregate all read this one verdict;
- ``ran_red_light``: the ego's front bumper (centre + half its length along its heading, projected on
  the route) passed, during the step, a stop line of the route's own lane whose light is red. A
  bumper already past the line at the start is never flagged. Not part of AlpaSim's scene score;
  ``scene_score_strict`` also zeroes on it;
- ``offroad``: a corner of the ego box is outside the drivable area (right of a road edge);
- ``progress``: route arc length gained / logged path length over the horizon (AlpaSim's
  ``progress_rel_to_total``, unclipped); ``dist_to_gt_trajectory``: largest distance to the logged path;
- scene score: 0 on an at-fault collision or off-road, else min(clip(progress, 0, 1) / 0.8, 1), and 1
  when the log itself moves < 5 m (AlpaSim parity); ``scene_score_strict``: the same, and 0 after
  running a red light; kilometres per incident: total km / total incidents over a suite
  (`km_per_incident`), with incidents = any collision or off-road (and an at-fault variant);
- comfort: nuPlan's bounds; the per-step channels here are raw finite differences (cheap, for rewards),
  while the leaderboard's ``hc`` applies nuPlan's Savitzky-Golay smoothing to the whole trajectory.

Metrics that need a window, a run length, smoothing or the log's future (EPDMS-style sub-scores,
smoothed comfort, minADE, minimum TTC) are computed from recorded traces in
`alpagym_env.evaluation.subscores`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


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
SCORE_PROGRESS_DELTA = register_channel(
    "score_progress_delta",
    "fraction",
    "this step's increase of the scene score's progress part, min(clip(progress, 0, 1) / 0.8, 1): "
    "progress past 80 % of the logged path earns nothing, as in the score",
)
COLLISION_ANY = register_channel("collision_any", "0/1", "the ego box overlaps another agent's box")
COLLISION_FRONT = register_channel(
    "collision_front", "0/1", "a contact whose first touch was on the ego's front face"
)
COLLISION_REAR = register_channel(
    "collision_rear", "0/1", "a contact whose first touch was on the ego's rear face (not at fault)"
)
COLLISION_LATERAL = register_channel("collision_lateral", "0/1", "a contact that began on the ego's sides")
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
RAN_RED_LIGHT = register_channel(
    "ran_red_light", "0/1", "the front bumper crossed a red stop line of the route's own lane this step"
)
ROUTE_COMPLETE = register_channel("route_complete", "0/1", "reached the end of the route")
DIST_TRAVELED = register_channel("dist_traveled", "m", "distance driven this step")
LANE_DEVIATION = register_channel(
    "lane_deviation", "m", "absolute lateral offset from the route (the ego's logged path, extended)"
)
TTC = register_channel(
    "ttc",
    "s",
    "time to collision: first time on a 0.1 s grid up to 3 s at which the ego box overlaps an agent not "
    "behind it (bearing <= 150 deg), both held at their current speed and turn rate; 3 when none",
)
TTC_VIOLATION = register_channel("ttc_violation", "0/1", "ttc <= 0.9 s while the ego moves (NAVSIM TTC)")
LANE_OFFSET = register_channel(
    "lane_offset",
    "m",
    "distance to the centre line of the nearest lane containing the ego and pointing within 90 deg of "
    "its heading; -1 when there is none (e.g. inside an intersection box)",
)
NUM_CHANNELS = len(_CHANNELS)

# AlpaSim comfort bounds.
COMFORT_LON_ACC_MIN, COMFORT_LON_ACC_MAX = -4.05, 2.40
COMFORT_LAT_ACC, COMFORT_JERK, COMFORT_LON_JERK = 4.89, 8.37, 4.13
COMFORT_YAW_ACC, COMFORT_YAW_RATE = 1.93, 0.95
CUT_DISTANCE = 4.0  # m from the logged path after which an episode's aggregate is cut
STATIC_LOG_DISTANCE = 5.0  # m: a log that moves less than this scores 1 for progress
PROGRESS_SATURATION = 0.8  # progress at which the scene score saturates
# Time to collision (NAVSIM checks projections up to 0.9 s; we report the value up to 3 s).
TTC_HORIZON, TTC_STEP, TTC_BOUND = 3.0, 0.1, 0.9  # s
TTC_BEHIND_COS = -0.8660254037844386  # cos(150 deg): agents at a larger bearing are behind the ego
TTC_MIN_SPEED = 0.005  # m/s: a stopped ego has no TTC violation (NAVSIM)

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
    return _scene_score(bool(at_fault), bool(offroad), float(progress), float(log_length))


def scene_score_strict(
    at_fault: bool, offroad: bool, ran_red: bool, progress: float, log_length: float
) -> float:
    """`scene_score`, and 0 when the ego ran a red light (AlpaSim's score does not check lights)."""
    return 0.0 if ran_red else scene_score(at_fault, offroad, progress, log_length)


@njit(cache=True)
def _scene_score(at_fault, offroad, progress, log_length):
    if at_fault or offroad:
        return 0.0
    if log_length < STATIC_LOG_DISTANCE:
        return 1.0
    return min(min(max(progress, 0.0), 1.0) / PROGRESS_SATURATION, 1.0)


@njit(cache=True)
def _flag(event):
    return 1.0 if event else 0.0


# The named episode metrics, in the row order of `episode_metric_table`'s output.
EPISODE_METRICS = (
    "collision_any", "collision_front", "collision_rear", "collision_lateral", "collision_at_fault",
    "offroad", "wrong_lane", "ran_red_light", "route_complete", "progress", "dist_to_gt_trajectory",
    "dist_to_gt_location", "mean_dist_to_gt", "left_corridor", "ttc_violation", "dist_traveled_m",
    "mean_speed", "max_abs_jerk", "comfort", "mean_lane_deviation", "steps", "cut_step", "log_length_m",
    "scene_score", "scene_score_strict", "incidents", "incidents_at_fault", "km",
)  # fmt: skip


@njit(cache=True)
def episode_metric_table(acc, steps, cut_step, log_length, ids, out):
    """Turns controlled agents' accumulators into their episodes' named closed-loop metrics.

    Args:
        acc: (B, NUM_CHANNELS, 3) sum, max and last of each channel over the uncut steps.
        steps: (B,) int steps each episode ran.
        cut_step: (B,) steps aggregated before the cut (== steps when never cut).
        log_length: (B,) length of the logged path over the horizon, m.
        ids: (k,) int rows of the above to turn into metrics.
        out: (len(EPISODE_METRICS), B) float64; column ``ids[j]`` receives row ``ids[j]``'s metrics, by
            `EPISODE_METRICS` order, all over the uncut part of the episode:

            - event flags (1 if the event happened at any step): ``collision_*``, ``offroad``,
              ``wrong_lane``, ``ran_red_light``, ``route_complete``, ``ttc_violation``, ``left_corridor``
              (>= 4 m from the logged path: the cut, a hard failure in recent AlpaSim, not in the scene
              score here);
            - ``progress``: the last step's route progress (AlpaSim ``progress_rel_to_total``);
            - ``dist_to_gt_trajectory``: largest distance to the logged path, m (AlpaSim, MAX over time);
              ``dist_to_gt_location``: largest and ``mean_dist_to_gt`` mean distance to the logged
              position at the same time, m;
            - ``dist_traveled_m``, ``mean_speed``, ``max_abs_jerk``, ``mean_lane_deviation``;
            - ``comfort``: fraction of steps passing all six raw per-step comfort checks;
            - ``scene_score`` (`scene_score`, AlpaSim parity) and ``scene_score_strict``
              (`scene_score_strict`, also 0 after a red-light violation);
            - km-per-incident inputs: ``km`` driven, ``incidents`` (any collision or off-road, AlpaSim's
              ``offroad_or_collision``) and ``incidents_at_fault`` (at-fault collision or off-road);
              see `km_per_incident`.
    """
    for b in ids:
        a = acc[b]
        n = max(cut_step[b], 1.0)
        hit = a[:, ACC_MAX] > 0
        mx, sm = a[:, ACC_MAX], a[:, ACC_SUM]
        at_fault, offroad, ran_red = hit[COLLISION_AT_FAULT], hit[OFFROAD], hit[RAN_RED_LIGHT]
        progress = a[PROGRESS, ACC_LAST]
        score = _scene_score(at_fault, offroad, progress, log_length[b])
        values = (
            _flag(hit[COLLISION_ANY]), _flag(hit[COLLISION_FRONT]), _flag(hit[COLLISION_REAR]),
            _flag(hit[COLLISION_LATERAL]), _flag(at_fault), _flag(offroad), _flag(hit[WRONG_WAY]),
            _flag(ran_red), _flag(hit[ROUTE_COMPLETE]), progress, mx[LANE_DEVIATION], mx[DIST_TO_GT],
            sm[DIST_TO_GT] / n, _flag(mx[LANE_DEVIATION] >= CUT_DISTANCE), _flag(hit[TTC_VIOLATION]),
            sm[DIST_TRAVELED], sm[SPEED] / n, mx[JERK], 1.0 - sm[COMFORT_VIOLATION] / n,
            sm[LANE_DEVIATION] / n, float(steps[b]), float(cut_step[b]), float(log_length[b]),
            score, 0.0 if ran_red else score, _flag(hit[COLLISION_ANY] or offroad),
            _flag(at_fault or offroad), sm[DIST_TRAVELED] / 1000.0,
        )  # fmt: skip
        for i in range(len(values)):
            out[i, b] = values[i]


def episode_metrics(acc: np.ndarray, steps: int, cut_step: int, log_length: float) -> dict[str, float]:
    """One controlled agent's `episode_metric_table`, by name.

    Args:
        acc: (NUM_CHANNELS, 3) sum, max and last of each channel over the uncut steps.
        steps: Steps the episode ran.
        cut_step: Steps aggregated before the cut (== steps when never cut).
        log_length: Length of the logged path over the horizon, m.
    """
    out = np.zeros((len(EPISODE_METRICS), 1))
    episode_metric_table(
        np.asarray(acc, dtype=np.float64)[None],
        np.array([steps], dtype=np.int64),
        np.array([cut_step], dtype=np.float64),
        np.array([log_length], dtype=np.float64),
        np.zeros(1, dtype=np.int64),
        out,
    )
    return dict(zip(EPISODE_METRICS, out[:, 0].tolist(), strict=True))


def km_per_incident(km: np.ndarray, incidents: np.ndarray) -> float:
    """AlpaSim's kilometres per incident over many episodes: total km driven / total incidents.

    A ratio of sums (not a mean of per-episode ratios), so long clean episodes count for their length.
    Returns inf when there was no incident (and nan when nothing was driven either).
    """
    total_km, total = float(np.sum(km)), float(np.sum(incidents))
    if total == 0.0:
        return float("inf") if total_km > 0.0 else float("nan")
    return total_km / total
