"""The per-step metric kernel of one controlled agent (channel meanings in `alpagym_env.metrics`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env import metrics as M
from alpagym_env.scenarios.schema import LIGHT_RED
from alpagym_env.sim.dynamics import VX, VY, YAW, X, Y
from alpagym_env.sim.geometry import (
    COLLISION_FRONT,
    COLLISION_LATERAL,
    box_offroad_distance,
    boxes_overlap,
    collision_kind,
    point_segment_distance,
    project_to_polyline,
    wrap_angle,
)
from alpagym_env.sim.scene import BIN_LENGTH, R_S, ROUTE_SPACING

# Columns of the per-controlled-agent tracking memory `track (B, C, NUM_TRACK)`.
TR_S, TR_HINT, TR_PX, TR_PY, TR_WVX, TR_WVY, TR_AX, TR_AY = range(8)
TR_LON_ACC, TR_YAW, TR_YAW_RATE, TR_LAT, TR_HEADING_ERR, TR_CUT, TR_CUT_STEPS, TR_DONE = range(8, 16)
NUM_TRACK = 16
FAR_FROM_ROUTE = 12.0  # m: beyond this the route-binned map is bypassed for the whole map


@njit(cache=True)
def locate(x, y, route, nr, track):
    """Projects (x, y) on the route near the last projection; returns (s, lateral, route heading)."""
    hint = int(track[TR_HINT])
    s, lat, seg = project_to_polyline(x, y, route[:, :2], route[:, R_S], nr, hint - 8, hint + 40)
    if abs(lat) > FAR_FROM_ROUTE:
        s, lat, seg = project_to_polyline(x, y, route[:, :2], route[:, R_S], nr, 0, nr)
    seg = min(max(seg, 0), nr - 2)
    track[TR_HINT] = seg
    h = np.arctan2(route[seg + 1, 1] - route[seg, 1], route[seg + 1, 0] - route[seg, 0])
    return s, lat, h


@njit(cache=True)
def _bin_range(s, nbins):
    b = int(s // BIN_LENGTH)
    return min(max(b - 1, 0), nbins - 1), min(max(b + 1, 0), nbins - 1)


@njit(cache=True)
def _wrong_way(x, y, yaw, lanes, lo, hi):
    inside, aligned = False, False
    for k in range(lo, hi):
        d, _, _ = point_segment_distance(x, y, lanes[k, 0], lanes[k, 1], lanes[k, 2], lanes[k, 3])
        if d <= lanes[k, 4]:
            inside = True
            h = np.arctan2(lanes[k, 3] - lanes[k, 1], lanes[k, 2] - lanes[k, 0])
            if abs(wrap_angle(yaw - h)) < 0.5 * np.pi:
                aligned = True
                break
    return inside and not aligned


@njit(cache=True)
def measure(agent, valid, size, n, c, s, lat, route_h, nr, edges_near, ebins, lanes_near, lbins, nbins,
            edges_all, n_edges, stops, ns, light_now, log_c, log_valid_c, t, dt, s_start, log_length,
            track, out):  # fmt: skip
    """Writes controlled slot `c`'s metric channels for the step that just ended into `out`.

    Args:
        agent, valid, size: (N, 8), (N,), (N, 2) the scene's slots after the step.
        n: Slots in use.
        c: The measured slot.
        s, lat, route_h: Its route arc length (m), lateral offset (m) and route heading (rad) (`locate`).
        nr: Route points in use.
        edges_near, ebins: Road-edge segments near the route and their (NB + 1,) bin offsets.
        lanes_near, lbins: Lane segments near the route and their bin offsets.
        nbins: Route bins.
        edges_all, n_edges: (E, 4) every road-edge segment of the scene and how many are in use.
        stops, ns: (S, 2) stop lines on the route ``[arc length, light]`` and how many.
        light_now: (K,) int8 current light states.
        log_c, log_valid_c: (T, 5), (T,) the slot's log.
        t: Step index reached.
        dt: Step, s.
        s_start, log_length: Route arc length of the log start and logged path length, m.
        track: (NUM_TRACK,) the slot's memory of the previous step, updated.
        out: (NUM_CHANNELS,) written.
    """
    x, y, yaw = agent[c, X], agent[c, Y], agent[c, YAW]
    ln, wd = size[c, 0], size[c, 1]
    norm = max(log_length, 1.0)
    progress = (s - s_start) / norm
    out[M.PROGRESS] = progress
    out[M.PROGRESS_DELTA] = (s - track[TR_S]) / norm
    out[M.LANE_DEVIATION] = abs(lat)
    out[M.DIST_TRAVELED] = np.hypot(x - track[TR_PX], y - track[TR_PY])
    # Collisions against every other valid slot.
    front = rear = lateral = 0.0
    for j in range(n):
        if j == c or not valid[j]:
            continue
        if boxes_overlap(x, y, yaw, ln, wd, agent[j, X], agent[j, Y], agent[j, YAW], size[j, 0], size[j, 1]):
            kind = collision_kind(
                x, y, yaw, ln, wd, agent[j, X], agent[j, Y], agent[j, YAW], size[j, 0], size[j, 1]
            )
            if kind == COLLISION_FRONT:
                front = 1.0
            elif kind == COLLISION_LATERAL:
                lateral = 1.0
            else:
                rear = 1.0
    out[M.COLLISION_FRONT], out[M.COLLISION_REAR], out[M.COLLISION_LATERAL] = front, rear, lateral
    out[M.COLLISION_ANY] = max(front, max(rear, lateral))
    out[M.COLLISION_AT_FAULT] = max(front, lateral)
    # Off-road and wrong-way from the map around the route (the whole map when far from it).
    b0, b1 = _bin_range(s, nbins)
    if abs(lat) > FAR_FROM_ROUTE:
        off = box_offroad_distance(x, y, yaw, ln, wd, edges_all, n_edges)
    else:
        e0, e1 = ebins[b0], ebins[b1 + 1]
        off = box_offroad_distance(x, y, yaw, ln, wd, edges_near[e0:e1], e1 - e0)
    out[M.OFFROAD_DISTANCE] = max(off, -10.0)
    out[M.OFFROAD] = 1.0 if off > 0.0 else 0.0
    speed = np.hypot(agent[c, VX], agent[c, VY])
    out[M.SPEED] = speed
    out[M.WRONG_WAY] = (
        1.0 if speed > 0.5 and _wrong_way(x, y, yaw, lanes_near, lbins[b0], lbins[b1 + 1]) else 0.0
    )
    tl = min(t, log_valid_c.shape[0] - 1)
    out[M.DIST_TO_GT] = np.hypot(x - log_c[tl, 0], y - log_c[tl, 1]) if log_valid_c[tl] else 0.0
    # Kinematics from finite differences of the world-frame velocity and heading.
    ch, sh = np.cos(yaw), np.sin(yaw)
    wvx = agent[c, VX] * ch - agent[c, VY] * sh
    wvy = agent[c, VX] * sh + agent[c, VY] * ch
    ax, ay = (wvx - track[TR_WVX]) / dt, (wvy - track[TR_WVY]) / dt
    lon_acc, lat_acc = ax * ch + ay * sh, -ax * sh + ay * ch
    yaw_rate = wrap_angle(yaw - track[TR_YAW]) / dt
    out[M.LON_ACC], out[M.LAT_ACC] = lon_acc, lat_acc
    out[M.JERK] = np.hypot(ax - track[TR_AX], ay - track[TR_AY]) / dt
    out[M.LON_JERK] = (lon_acc - track[TR_LON_ACC]) / dt
    out[M.YAW_RATE] = yaw_rate
    out[M.YAW_ACC] = (yaw_rate - track[TR_YAW_RATE]) / dt
    bad = (
        lon_acc < M.COMFORT_LON_ACC_MIN
        or lon_acc > M.COMFORT_LON_ACC_MAX
        or abs(lat_acc) > M.COMFORT_LAT_ACC
        or out[M.JERK] > M.COMFORT_JERK
        or abs(out[M.LON_JERK]) > M.COMFORT_LON_JERK
        or abs(out[M.YAW_ACC]) > M.COMFORT_YAW_ACC
        or abs(yaw_rate) > M.COMFORT_YAW_RATE
    )
    out[M.COMFORT_VIOLATION] = 1.0 if bad else 0.0
    red = 0.0
    for q in range(ns):
        if track[TR_S] < stops[q, 0] <= s and light_now[int(stops[q, 1])] == LIGHT_RED:
            red = 1.0
    out[M.RAN_RED_LIGHT] = red
    out[M.ROUTE_COMPLETE] = 1.0 if s >= (nr - 1) * ROUTE_SPACING - 1.0 else 0.0
    track[TR_S], track[TR_PX], track[TR_PY] = s, x, y
    track[TR_WVX], track[TR_WVY], track[TR_AX], track[TR_AY] = wvx, wvy, ax, ay
    track[TR_LON_ACC], track[TR_YAW], track[TR_YAW_RATE] = lon_acc, yaw, yaw_rate
    track[TR_LAT], track[TR_HEADING_ERR] = lat, wrap_angle(yaw - route_h)
