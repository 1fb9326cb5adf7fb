"""Episode metrics computed from recorded per-step traces: EPDMS-style sub-scores, nuPlan comfort, minADE.

The step kernel aggregates each channel as sum, max and last value (`alpagym_env.metrics`); metrics that
need a rolling window, a run length, a smoothed derivative or a look into the log's future are computed
here from the traces the evaluator records (one row per step, only the steps before the AlpaSim cut).

EPDMS-style sub-scores (NAVSIM v2's Extended PDM Score, adapted to a closed-loop episode):

| name | role | definition here |
|---|---|---|
| ``nc`` no at-fault collision | multiplier | 0 after a front or lateral collision (AlpaSim's rule) |
| ``dac`` drivable area | multiplier | 0 if a corner of the ego box left the drivable area |
| ``ddc`` driving direction | multiplier | wrong-way metres in any 1 s: < 2 -> 1, < 6 -> 0.5, else 0 |
| ``tlc`` traffic light | multiplier | 0 if its front bumper crossed a red stop line of its own lane |
| ``ep`` ego progress | weight 5 | clip(progress, 0, 1) against the log (1 if the log moves < 5 m) |
| ``ttc`` time to collision | weight 5 | 0 if ever `ttc` <= 0.9 s while moving |
| ``lk`` lane keeping | weight 2 | 0 if > 0.5 m from the lane centre for >= 2 s in a row |
| ``hc`` history comfort | weight 2 | 1 if all six nuPlan comfort checks pass on the smoothed path |

``epdms = nc * dac * ddc * tlc * (5 ep + 5 ttc + 2 lk + 2 hc) / 14``. NAVSIM's extended comfort (EC, the
consistency of consecutive plans, weight 2) is left out: most policies here output controls, not plans.
Differences from NAVSIM: progress is normalised by the log instead of the PDM-Closed planner; TTC
projects every agent at constant velocity instead of reading their recorded future; LK splits its
runs at lane-boundary crossings (see `lane_keeping`) in place of turn-indicator exemptions; no static
objects exist, so NC is never 0.5; the human-expert false-positive filter is not applied.
"""

from __future__ import annotations

import math

import numpy as np

from alpagym_env import metrics as M

# nuPlan comfort bounds (as in `alpagym_env.metrics`) and its Savitzky-Golay settings.
ACC_WINDOW, ACC_POLY = 8, 2
JERK_WINDOW, JERK_POLY = 15, 2
YAW_WINDOW = 5
DDC_WINDOW_S, DDC_HALF_M, DDC_ZERO_M = 1.0, 2.0, 6.0
LK_MAX_OFFSET_M, LK_MAX_DURATION_S, LK_MIN_SPEED = 0.5, 2.0, 1.0
LK_CROSS_STEP = 0.02  # m per step: the sharp offset peak of a lane-boundary crossing
EPDMS_WEIGHTS = {"ep": 5.0, "ttc": 5.0, "lk": 2.0, "hc": 2.0}
EPDMS_MULTIPLIERS = ("nc", "dac", "ddc", "tlc")
ADE_HORIZONS = (0.5, 1.0, 2.5, 5.0)  # s
COMFORT_CHECKS = ("lon_acc", "lat_acc", "jerk", "lon_jerk", "yaw_rate", "yaw_acc")


def savgol(y: np.ndarray, window: int, poly: int, deriv: int = 0, delta: float = 1.0) -> np.ndarray:
    """Savitzky-Golay smoothing or derivative of a 1-D signal, fitting the edges like scipy's ``interp``.

    Each output sample is the `deriv`-th derivative, at that sample, of the least-squares polynomial of
    degree `poly` through a window of `window` samples (centred, shifted inwards at the edges).
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    window = min(window, n)
    poly = min(poly, window - 1)
    if n == 0 or deriv > poly:
        return np.zeros(n)
    half = window // 2
    out = np.empty(n)
    pinv_cache: dict[int, np.ndarray] = {}
    for i in range(n):
        start = min(max(i - half, 0), n - window)
        off = i - start
        if off not in pinv_cache:
            vander = (np.arange(window, dtype=np.float64) - off)[:, None] ** np.arange(poly + 1)
            pinv_cache[off] = np.linalg.pinv(vander)[deriv] * math.factorial(deriv) / delta**deriv
        out[i] = pinv_cache[off] @ y[start : start + window]
    return out


def comfort_signals(pose: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """nuPlan's smoothed comfort signals of an ego trajectory.

    Args:
        pose: (T, 5) ``[x, y, heading, v_lon, v_lat]`` (body-frame velocity, m/s) every `dt` seconds.
        dt: Sample time, s.

    Returns:
        (T,) arrays: ``lon_acc``, ``lat_acc`` (finite-difference acceleration in the body frame, smoothed
        with a window of 8 and degree 2), ``jerk`` (derivative of the smoothed acceleration magnitude) and
        ``lon_jerk`` (window 15, degree 2), ``yaw_rate`` (window 5, degree 2) and ``yaw_acc`` (window 5,
        degree 3) of the unwrapped heading.
    """
    yaw = np.unwrap(pose[:, 2])
    c, s = np.cos(yaw), np.sin(yaw)
    wvx = pose[:, 3] * c - pose[:, 4] * s
    wvy = pose[:, 3] * s + pose[:, 4] * c
    edge = 2 if len(pose) > 2 else 1
    ax = np.gradient(wvx, dt, edge_order=edge) if len(pose) > 1 else np.zeros(len(pose))
    ay = np.gradient(wvy, dt, edge_order=edge) if len(pose) > 1 else np.zeros(len(pose))
    lon = savgol(ax * c + ay * s, ACC_WINDOW, ACC_POLY)
    lat = savgol(-ax * s + ay * c, ACC_WINDOW, ACC_POLY)
    mag = savgol(np.hypot(ax, ay), ACC_WINDOW, ACC_POLY)
    return {
        "lon_acc": lon,
        "lat_acc": lat,
        "jerk": savgol(mag, JERK_WINDOW, JERK_POLY, 1, dt),
        "lon_jerk": savgol(lon, JERK_WINDOW, JERK_POLY, 1, dt),
        "yaw_rate": savgol(yaw, YAW_WINDOW, 2, 1, dt),
        "yaw_acc": savgol(yaw, YAW_WINDOW, 3, 2, dt),
    }


def comfort_checks(pose: np.ndarray, dt: float) -> dict[str, bool]:
    """The six nuPlan/NAVSIM comfort checks (strict bounds, every sample) on `comfort_signals`."""
    if len(pose) < 3:
        return dict.fromkeys(COMFORT_CHECKS, True)
    sig = comfort_signals(pose, dt)
    return {
        "lon_acc": bool(
            np.all((sig["lon_acc"] > M.COMFORT_LON_ACC_MIN) & (sig["lon_acc"] < M.COMFORT_LON_ACC_MAX))
        ),
        "lat_acc": bool(np.all(np.abs(sig["lat_acc"]) < M.COMFORT_LAT_ACC)),
        "jerk": bool(np.all(np.abs(sig["jerk"]) < M.COMFORT_JERK)),
        "lon_jerk": bool(np.all(np.abs(sig["lon_jerk"]) < M.COMFORT_LON_JERK)),
        "yaw_rate": bool(np.all(np.abs(sig["yaw_rate"]) < M.COMFORT_YAW_RATE)),
        "yaw_acc": bool(np.all(np.abs(sig["yaw_acc"]) < M.COMFORT_YAW_ACC)),
    }


def driving_direction(wrong_way: np.ndarray, dist: np.ndarray, dt: float) -> tuple[float, float]:
    """NAVSIM DDC: (score, largest distance driven the wrong way within any 1 s window in metres)."""
    c = np.where(np.asarray(wrong_way) > 0, np.maximum(dist, 0.0), 0.0)
    k = max(int(round(DDC_WINDOW_S / dt)), 1)
    csum = np.concatenate([[0.0], np.cumsum(c)])
    worst = float(np.max(csum[k:] - csum[:-k])) if len(c) >= k else float(csum[-1])
    score = 1.0 if worst < DDC_HALF_M else 0.5 if worst < DDC_ZERO_M else 0.0
    return score, worst


def lane_keeping(offset: np.ndarray, speed: np.ndarray, dt: float) -> tuple[float, float]:
    """NAVSIM LK: (score, longest time in seconds spent > 0.5 m from the lane centre).

    Steps without a containing lane (offset < 0) or below 1 m/s (queues) do not count. A lane change
    crosses a lane boundary, where the nearest aligned centre switches lanes and the offset peaks sharply
    (it rises, then falls, by > 2 cm a step); such a crossing ends a run, so a lane change passes when
    each half takes < 2 s, while a slow drift that never reaches the next lane's centre fails.
    """
    offset = np.asarray(offset, dtype=np.float64)
    bad = (offset > LK_MAX_OFFSET_M) & (np.asarray(speed) > LK_MIN_SPEED)
    step = np.diff(offset)
    cross = np.zeros(offset.size, dtype=bool)
    cross[1:-1] = (step[:-1] > LK_CROSS_STEP) & (step[1:] < -LK_CROSS_STEP)
    best = run = 0
    for b, c in zip(bad, cross, strict=True):
        run = 0 if c or not b else run + 1
        best = max(best, run)
    longest = best * dt
    return (0.0 if longest >= LK_MAX_DURATION_S - 1e-9 else 1.0), longest


def min_ade(
    plans: np.ndarray, plan_dt: float, pose: np.ndarray, log: np.ndarray, log_valid, t: int, dt: float
):
    """minADE of one step's plans against the logged future, at each horizon of `ADE_HORIZONS`.

    Args:
        plans: (K, P, 2) ego-frame plan points, metres; point p is at time (p + 1) * plan_dt.
        plan_dt: Time between plan points, s.
        pose: (3,) ``[x, y, heading]`` of the ego when it planned.
        log: (T, >=2) the ego's logged positions; log_valid: (T,) bool.
        t: Log step of `pose`.
        dt: Log time step, s.

    Returns:
        (len(ADE_HORIZONS),) float64: the smallest over the K plans of the mean distance between plan
        points at times <= horizon and the logged positions then; nan where the plans or the log do not
        reach that far.
    """
    c, s = math.cos(pose[2]), math.sin(pose[2])
    wx = pose[0] + plans[..., 0] * c - plans[..., 1] * s
    wy = pose[1] + plans[..., 0] * s + plans[..., 1] * c
    times = (np.arange(plans.shape[1]) + 1) * plan_dt
    idx = t + np.rint(times / dt).astype(np.int64)
    out = np.full(len(ADE_HORIZONS), np.nan)
    for h, horizon in enumerate(ADE_HORIZONS):
        sel = np.flatnonzero(times <= horizon + 1e-9)
        if sel.size == 0 or times[sel[-1]] < horizon - 1e-9 or idx[sel[-1]] >= len(log):
            continue
        if not np.all(np.asarray(log_valid)[idx[sel]]):
            continue
        err = np.hypot(wx[:, sel] - log[idx[sel], 0], wy[:, sel] - log[idx[sel], 1])
        out[h] = float(np.min(err.mean(axis=1)))
    return out


def epdms(sub: dict[str, float]) -> float:
    """EPDMS-style score from the sub-scores: product of the multipliers times the weighted average."""
    gate = math.prod(sub[k] for k in EPDMS_MULTIPLIERS)
    total = sum(EPDMS_WEIGHTS.values())
    return gate * sum(w * sub[k] for k, w in EPDMS_WEIGHTS.items()) / total


def trace_metrics(
    trace: np.ndarray, pose: np.ndarray, episode: dict[str, float], dt: float
) -> dict[str, float]:
    """The trace-based metrics of one episode.

    Args:
        trace: (S, NUM_CHANNELS) the per-step channels of the uncut steps.
        pose: (S + 1, 5) ego ``[x, y, heading, v_lon, v_lat]`` from the start through the last uncut step.
        episode: The accumulator metrics of the episode (`alpagym_env.metrics.episode_metrics`).
        dt: Step, s.

    Returns:
        ``nc``, ``dac``, ``ddc``, ``tlc``, ``ep``, ``ttc``, ``lk``, ``hc``, ``epdms``, ``min_ttc`` (s),
        ``wrong_way_m`` (DDC's worst 1 s), ``lane_offset_s`` (LK's longest run) and ``comfort_<check>``
        for each nuPlan check.
    """
    ddc, worst = driving_direction(trace[:, M.WRONG_WAY], trace[:, M.DIST_TRAVELED], dt)
    lk, longest = lane_keeping(trace[:, M.LANE_OFFSET], trace[:, M.SPEED], dt)
    checks = comfort_checks(pose, dt)
    static = episode["log_length_m"] < M.STATIC_LOG_DISTANCE
    sub = {
        "nc": 1.0 - episode["collision_at_fault"],
        "dac": 1.0 - episode["offroad"],
        "ddc": ddc,
        "tlc": 1.0 - episode["ran_red_light"],
        "ep": 1.0 if static else float(np.clip(episode["progress"], 0.0, 1.0)),
        "ttc": 1.0 - episode["ttc_violation"],
        "lk": lk,
        "hc": float(all(checks.values())),
    }
    sub["epdms"] = epdms(sub)
    sub["min_ttc"] = float(trace[:, M.TTC].min()) if len(trace) else M.TTC_HORIZON
    sub["wrong_way_m"] = worst
    sub["lane_offset_s"] = longest
    sub.update({f"comfort_{k}": float(v) for k, v in checks.items()})
    return sub
