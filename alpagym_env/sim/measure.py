"""The per-step metric kernel of one controlled agent (channel meanings in `alpagym_env.metrics`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env import metrics as M
from alpagym_env.scenarios.schema import LIGHT_RED
from alpagym_env.sim.dynamics import VX, VY, YAW, YAW_RATE, X, Y
from alpagym_env.sim.geometry import (
    box_offroad_distance,
    boxes_overlap,
    norm,
    point_segment_distance,
    project_to_polyline,
    wrap_angle,
)
from alpagym_env.sim.grid import box_offroad_distance_grid
from alpagym_env.sim.scene import BIN_LENGTH, R_S

# Columns of the per-controlled-agent tracking memory `track (B, C, NUM_TRACK)`.
TR_S, TR_HINT, TR_PX, TR_PY, TR_WVX, TR_WVY, TR_AX, TR_AY = range(8)
TR_LON_ACC, TR_YAW, TR_YAW_RATE, TR_LAT, TR_HEADING_ERR, TR_CUT, TR_CUT_STEPS, TR_DONE = range(8, 16)
NUM_TRACK = 16
# Collision verdicts of a controlled slot against each other slot, `contact (B, C, N)` int8: the side
# of first contact (`collision_side`), held while the pair overlaps, NO_CONTACT once they separate.
NO_CONTACT, CONTACT_FRONT, CONTACT_REAR, CONTACT_LATERAL = 0, 1, 2, 3
FAR_FROM_ROUTE = 12.0  # m: beyond this the route-binned map is bypassed for the whole map's grid


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
def _lane_check(x, y, yaw, lanes, lo, hi):
    """Lanes containing (x, y): (wrong way, offset from the nearest aligned lane centre or -1 if none).

    Wrong way: inside some lane but inside no lane pointing within 90 deg of `yaw`. The offset is the
    distance to the centre line of the nearest lane that contains the point and points within 90 deg.
    """
    inside, offset = False, -1.0
    for k in range(lo, hi):
        hw = lanes[k, 4]  # a lane whose segment's bounding box is farther than its half width can't hold it
        if x < min(lanes[k, 0], lanes[k, 2]) - hw or x > max(lanes[k, 0], lanes[k, 2]) + hw:
            continue
        if y < min(lanes[k, 1], lanes[k, 3]) - hw or y > max(lanes[k, 1], lanes[k, 3]) + hw:
            continue
        d, _, _ = point_segment_distance(x, y, lanes[k, 0], lanes[k, 1], lanes[k, 2], lanes[k, 3])
        if d <= lanes[k, 4]:
            inside = True
            h = np.arctan2(lanes[k, 3] - lanes[k, 1], lanes[k, 2] - lanes[k, 0])
            if abs(wrap_angle(yaw - h)) < 0.5 * np.pi and (offset < 0.0 or d < offset):
                offset = d
    return inside and offset < 0.0, offset


@njit(cache=True)
def _clip(p, q, t0, t1):
    """One Liang-Barsky slab: the segment's parameter interval [t0, t1] clipped by p t <= q."""
    if p == 0.0:
        return (t0, t1) if q >= 0.0 else (1.0, 0.0)
    r = q / p
    return (max(t0, r), t1) if p < 0.0 else (t0, min(t1, r))


@njit(cache=True)
def segment_hits_box(ax, ay, bx, by, x, y, yaw, length, width):
    """True when segment a-b touches the oriented box (centre x, y, heading yaw, length, width), metres."""
    c, s = np.cos(yaw), np.sin(yaw)
    u0, v0 = (ax - x) * c + (ay - y) * s, -(ax - x) * s + (ay - y) * c
    du, dv = (bx - ax) * c + (by - ay) * s, -(bx - ax) * s + (by - ay) * c
    hl, hw = 0.5 * length, 0.5 * width
    t0, t1 = _clip(-du, u0 + hl, 0.0, 1.0)
    t0, t1 = _clip(du, hl - u0, t0, t1)
    t0, t1 = _clip(-dv, v0 + hw, t0, t1)
    t0, t1 = _clip(dv, hw - v0, t0, t1)
    return t0 <= t1


@njit(cache=True)
def collision_side(x, y, yaw, ln, wd, ox, oy, oyaw, oln, owd):
    """AlpaSim's classification of an overlap from the ego's side: 1 front, 2 rear, 3 lateral.

    Front when the other box touches the ego's front bumper (its front face), else rear when it touches
    the rear bumper, else lateral. Call only for overlapping boxes.
    """
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = 0.5 * ln, 0.5 * wd
    for side in range(2):
        u = hl if side == 0 else -hl
        ax, ay = x + u * c - hw * s, y + u * s + hw * c
        bx, by = x + u * c + hw * s, y + u * s - hw * c
        if segment_hits_box(ax, ay, bx, by, ox, oy, oyaw, oln, owd):
            return 1 + side
    return 3


@njit(cache=True)
def collision_verdicts(agent, valid, size, n, c, contact):
    """Slot `c`'s collisions this step as (front, rear, lateral) 0/1 flags, from latched verdicts.

    The side of a contact is decided once, on the first step the two boxes overlap (`collision_side`),
    and kept in `contact[j]` while they stay overlapping: a car that rear-ends slot `c` and drives on
    through it stays a rear contact even when it later touches `c`'s front bumper. A pair that
    separates (or whose other slot leaves the scene) is reset, so a later contact is judged afresh.

    Args:
        agent, valid, size: (N, 8), (N,), (N, 2) the scene's slots after the step.
        n: Slots in use.
        c: The measured slot.
        contact: (N,) int8 verdicts of the previous step, updated in place.
    """
    x, y, yaw = agent[c, X], agent[c, Y], agent[c, YAW]
    ln, wd = size[c, 0], size[c, 1]
    front = rear = lateral = 0.0
    for j in range(contact.shape[0]):
        if j == c or j >= n or not valid[j]:
            contact[j] = NO_CONTACT
            continue
        ox, oy, oyaw, oln, owd = agent[j, X], agent[j, Y], agent[j, YAW], size[j, 0], size[j, 1]
        if not boxes_overlap(x, y, yaw, ln, wd, ox, oy, oyaw, oln, owd):
            contact[j] = NO_CONTACT
            continue
        if contact[j] == NO_CONTACT:
            contact[j] = collision_side(x, y, yaw, ln, wd, ox, oy, oyaw, oln, owd)
        if contact[j] == CONTACT_FRONT:
            front = 1.0
        elif contact[j] == CONTACT_REAR:
            rear = 1.0
        else:
            lateral = 1.0
    return front, rear, lateral


@njit(cache=True)
def _ctrv(x, y, yaw, wvx, wvy, w, t):
    """Pose after `t` seconds at constant world velocity magnitude and constant turn rate `w` (rad/s)."""
    a = w * t
    if abs(a) < 1e-6:
        return x + wvx * t, y + wvy * t, yaw
    sa, ca = np.sin(a) / w, (1.0 - np.cos(a)) / w
    return x + wvx * sa - wvy * ca, y + wvy * sa + wvx * ca, yaw + a


@njit(cache=True)
def time_to_collision(agent, valid, size, n, c):
    """Earliest time (s, on a TTC_STEP grid up to TTC_HORIZON) at which slot `c` overlaps another agent.

    Every box moves at its current speed and turn rate (a constant-turn-rate-and-velocity projection,
    so vehicles following a curve or turning stay on their arcs). Agents behind the ego (the bearing
    from its heading > 150 deg) are ignored: closing in from behind is not the ego's fault. Returns 0
    for a current overlap and TTC_HORIZON when no overlap is found.
    """
    x, y, yaw = agent[c, X], agent[c, Y], agent[c, YAW]
    ln, wd = size[c, 0], size[c, 1]
    ch, sh = np.cos(yaw), np.sin(yaw)
    vcx, vcy = agent[c, VX] * ch - agent[c, VY] * sh, agent[c, VX] * sh + agent[c, VY] * ch
    wc = agent[c, YAW_RATE]
    rc = 0.5 * norm(ln, wd)
    best = M.TTC_HORIZON
    steps = int(M.TTC_HORIZON / M.TTC_STEP + 0.5)
    for j in range(n):
        if j == c or not valid[j]:
            continue
        dx, dy = agent[j, X] - x, agent[j, Y] - y
        if dx * ch + dy * sh < M.TTC_BEHIND_COS * norm(dx, dy):
            continue
        cj, sj = np.cos(agent[j, YAW]), np.sin(agent[j, YAW])
        vjx, vjy = agent[j, VX] * cj - agent[j, VY] * sj, agent[j, VX] * sj + agent[j, VY] * cj
        wj = agent[j, YAW_RATE]
        dvx, dvy = vjx - vcx, vjy - vcy
        # Broad phase: closest approach of the straight-line motions within [0, best], widened by how far
        # an arc can bend away from its tangent by then (v w t^2 / 2 for each box).
        v2 = dvx * dvx + dvy * dvy
        tc = 0.0 if v2 == 0.0 else min(max(-(dx * dvx + dy * dvy) / v2, 0.0), best)
        bend = 0.5 * best * best * (norm(vcx, vcy) * abs(wc) + norm(vjx, vjy) * abs(wj))
        if norm(dx + dvx * tc, dy + dvy * tc) > rc + 0.5 * norm(size[j, 0], size[j, 1]) + bend:
            continue
        for k in range(steps + 1):
            tk = k * M.TTC_STEP
            if tk >= best:
                break
            ex, ey, eyaw = _ctrv(x, y, yaw, vcx, vcy, wc, tk)
            ox, oy, oyaw = _ctrv(agent[j, X], agent[j, Y], agent[j, YAW], vjx, vjy, wj, tk)
            if boxes_overlap(ex, ey, eyaw, ln, wd, ox, oy, oyaw, size[j, 0], size[j, 1]):
                best = tk
                break
    return best


@njit(cache=True)
def measure(agent, valid, size, n, c, s, lat, route_h, route_end, edges_near, ebins, lanes_near, lbins, nbins,
            edges_all, grid, cells, items, stops, ns, light_now, log_c, log_valid_c, t, dt, s_start,
            log_length, track, contact, out):  # fmt: skip
    """Writes controlled slot `c`'s metric channels for the step that just ended into `out`.

    Args:
        agent, valid, size: (N, 8), (N,), (N, 2) the scene's slots after the step.
        n: Slots in use.
        c: The measured slot.
        s, lat, route_h: Its route arc length (m), lateral offset (m) and route heading (rad) (`locate`).
        route_end: Arc length of the route's last point, m.
        edges_near, ebins: Road-edge segments near the route and their (NB + 1,) bin offsets.
        lanes_near, lbins: Lane segments near the route and their bin offsets.
        nbins: Route bins.
        edges_all, grid, cells, items: (E, 4) every road-edge segment of the scene and their grid
            (`alpagym_env.sim.grid`: meta (5,), cell offsets, segment indices).
        stops, ns: (S, 2) stop lines on the route ``[arc length, light]`` and how many.
        light_now: (K,) int8 current light states.
        log_c, log_valid_c: (T, 5), (T,) the slot's log.
        t: Step index reached.
        dt: Step, s.
        s_start, log_length: Route arc length of the log start and logged path length, m.
        track: (NUM_TRACK,) the slot's memory of the previous step, updated.
        contact: (N,) int8 the slot's collision verdict against each slot (`collision_verdicts`), updated.
        out: (NUM_CHANNELS,) written.
    """
    x, y, yaw = agent[c, X], agent[c, Y], agent[c, YAW]
    ln, wd = size[c, 0], size[c, 1]
    scale = max(log_length, 1.0)
    progress = (s - s_start) / scale
    out[M.PROGRESS] = progress
    out[M.PROGRESS_DELTA] = (s - track[TR_S]) / scale
    sat = M.PROGRESS_SATURATION
    before = min(max((track[TR_S] - s_start) / scale, 0.0), sat)
    out[M.SCORE_PROGRESS_DELTA] = (min(max(progress, 0.0), sat) - before) / sat
    out[M.LANE_DEVIATION] = abs(lat)
    out[M.DIST_TRAVELED] = norm(x - track[TR_PX], y - track[TR_PY])
    front, rear, lateral = collision_verdicts(agent, valid, size, n, c, contact)
    out[M.COLLISION_FRONT], out[M.COLLISION_REAR], out[M.COLLISION_LATERAL] = front, rear, lateral
    out[M.COLLISION_ANY] = max(front, max(rear, lateral))
    out[M.COLLISION_AT_FAULT] = max(front, lateral)
    # Off-road and wrong-way from the map around the route (the whole map when far from it).
    b0, b1 = _bin_range(s, nbins)
    if abs(lat) > FAR_FROM_ROUTE:
        off = box_offroad_distance_grid(x, y, yaw, ln, wd, edges_all, grid, cells, items)
    else:
        e0, e1 = ebins[b0], ebins[b1 + 1]
        off = box_offroad_distance(x, y, yaw, ln, wd, edges_near[e0:e1], e1 - e0)
    out[M.OFFROAD_DISTANCE] = max(off, -10.0)
    out[M.OFFROAD] = 1.0 if off > 0.0 else 0.0
    speed = norm(agent[c, VX], agent[c, VY])
    out[M.SPEED] = speed
    wrong, offset = _lane_check(x, y, yaw, lanes_near, lbins[b0], lbins[b1 + 1])
    out[M.WRONG_WAY] = 1.0 if speed > 0.5 and wrong else 0.0
    out[M.LANE_OFFSET] = offset
    ttc = time_to_collision(agent, valid, size, n, c)
    out[M.TTC] = ttc
    out[M.TTC_VIOLATION] = 1.0 if ttc <= M.TTC_BOUND + 1e-9 and speed > M.TTC_MIN_SPEED else 0.0
    tl = min(t, log_valid_c.shape[0] - 1)
    out[M.DIST_TO_GT] = norm(x - log_c[tl, 0], y - log_c[tl, 1]) if log_valid_c[tl] else 0.0
    # Kinematics from finite differences of the world-frame velocity and heading.
    ch, sh = np.cos(yaw), np.sin(yaw)
    wvx = agent[c, VX] * ch - agent[c, VY] * sh
    wvy = agent[c, VX] * sh + agent[c, VY] * ch
    ax, ay = (wvx - track[TR_WVX]) / dt, (wvy - track[TR_WVY]) / dt
    lon_acc, lat_acc = ax * ch + ay * sh, -ax * sh + ay * ch
    yaw_rate = wrap_angle(yaw - track[TR_YAW]) / dt
    out[M.LON_ACC], out[M.LAT_ACC] = lon_acc, lat_acc
    out[M.JERK] = norm(ax - track[TR_AX], ay - track[TR_AY]) / dt
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
    # Front bumper on the route: it crossed a red stop line when it passed the line's arc length during
    # this step (a bumper already past the line at the episode start never crosses it).
    half = 0.5 * ln
    bumper_prev = track[TR_S] + half * np.cos(track[TR_HEADING_ERR])
    bumper = s + half * np.cos(wrap_angle(yaw - route_h))
    red = 0.0
    for q in range(ns):
        if bumper_prev < stops[q, 0] <= bumper and light_now[int(stops[q, 1])] == LIGHT_RED:
            red = 1.0
    out[M.RAN_RED_LIGHT] = red
    out[M.ROUTE_COMPLETE] = 1.0 if s >= route_end - 1.0 else 0.0
    track[TR_S], track[TR_PX], track[TR_PY] = s, x, y
    track[TR_WVX], track[TR_WVY], track[TR_AX], track[TR_AY] = wvx, wvy, ax, ay
    track[TR_LON_ACC], track[TR_YAW], track[TR_YAW_RATE] = lon_acc, yaw, yaw_rate
    track[TR_LAT], track[TR_HEADING_ERR] = lat, wrap_angle(yaw - route_h)
