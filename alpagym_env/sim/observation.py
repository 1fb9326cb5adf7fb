"""The flat ego-frame observation: its layout and the kernel that writes it.

Everything here is what a driver could know at that moment: the car, the map's lane-level route (the
lane centre lines the log traverses, `alpagym_env.sim.lane_route`, never the logged path itself), the
speed limits, the traffic around and the lights. Nothing is normalised by the logged path length or end
time, so nothing in it is computable from the log's future.

Layout of one controlled agent's float32 vector (K = `ObsConfig.num_agents`, M = `route_points`):

- ``ego`` (10): speed / speed_scale, lateral velocity / speed_scale, yaw rate (rad/s), actual
  acceleration / 5 (m/s^2), actual steering / max_steer, lateral offset from the lane route / 5 (m,
  left positive), sin and cos of the heading error to the lane route, offset from the centre of the
  lane the ego is in / 5 (m, left positive), elapsed time / horizon (the configured episode length, a
  config value, not the log's).
- ``route`` (M x 4): lane-route waypoints every `route_spacing` m ahead: x, y in the ego frame /
  position_scale, free road width left and right of the route / 10 (m).
- ``limit`` (3): speed limit of the route lane at the ego / speed_scale, distance to the next change of
  the limit along the route / position_scale (LIMIT_RANGE when none within it) and the new limit /
  speed_scale (the current one when none); 0 where the map gives no lanes (unknown).
- ``lanes`` (6 x 8): lane slots, in order the leader and the follower in the ego's lane, in the lane to
  its left, and in the lane to its right: present (1, else 0 and the rest empty), bumper-to-bumper gap
  along the route / position_scale (agent_range / position_scale when empty), lateral offset from the
  ego across the route / 5 (m), speed along the route relative to the ego's / speed_scale, the agent's
  speed across the route / speed_scale (left positive), sin of its heading relative to the route,
  length / 5, width / 5.
- ``agents`` (K x 9): the K nearest other valid agents within `agent_range` (not in a lane slot),
  nearest first: x, y in the ego frame / position_scale, velocity relative to the ego in the ego frame
  / speed_scale (2), cos and sin of the relative heading, length / 5, width / 5, 1 (valid); all zeros
  for empty rows.
- ``light`` (4): the next stop line on the route within 100 m: red, yellow and green flags and its
  distance / position_scale (2.0 and no flag when there is none).

Lane slots: every valid agent within `agent_range` (straight line) is projected on the lane route near
the ego (arc length s, signed lateral offset l, plus the route's shift where it moves between unlinked
side-by-side lanes, so l is measured from one lane throughout). With w the route's lane width at the ego,
an agent is in lane band round(l / w); band equal to the ego's is its lane, one more the lane to
the left, one less the lane to the right. Only agents heading within 60 deg of the route's direction
there fill lane slots (oncoming and crossing traffic go to the nearest others); the leader is the nearest
ahead (s >= the ego's), the follower the nearest behind. So the leader is never missing while an agent
is in the ego's lane ahead within range, whatever the number of parked or following cars around.

Every entry is clipped to +-OBS_BOUND.
The ego frame has +x along the ego heading and +y to its left, origin at the box centre.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env.scenarios.schema import LIGHT_GREEN, LIGHT_RED, LIGHT_YELLOW
from alpagym_env.sim.dynamics import ACC, STEER, VX, VY, YAW, YAW_RATE, X, Y
from alpagym_env.sim.geometry import norm, project_to_polyline, wrap_angle
from alpagym_env.sim.scene import R_LANE_SHIFT, R_LANE_WIDTH, R_S, R_SPEED_LIMIT, R_WIDTH_LEFT, R_WIDTH_RIGHT

EGO_SIZE, ROUTE_FEATURES, LIMIT_SIZE, LANE_SLOTS, LANE_FEATURES, AGENT_FEATURES, LIGHT_SIZE = (
    10, 4, 3, 6, 8, 9, 4,
)  # fmt: skip
LIGHT_RANGE = 100.0  # m
LIMIT_RANGE = 100.0  # m: speed-limit changes farther along the route are not shown
LANE_HEADING = np.pi / 3  # rad: agents within this of the route's direction may fill lane slots
EGO_WINDOW = 15  # route points searched either side of the ego's guessed position
COARSE = 4  # route-point stride of the coarse search for other agents
ARC_FACTOR = 1.6  # route arc length between the ego and an agent, at most, per metre of straight line
OBS_BOUND = 1000.0  # every entry is clipped to +-OBS_BOUND (the Box bounds)

# Indices into the obs parameter vector built by `obs_params`.
O_K, O_RANGE, O_M, O_SPACING, O_POS, O_SPEED, O_MAX_STEER, O_HORIZON = range(8)


def obs_layout(num_agents: int, route_points: int) -> dict[str, tuple[slice, tuple[int, ...]]]:
    """Slices of the flat vector and the shape of each part, by name (the dict observation's keys)."""
    parts = {
        "ego": (EGO_SIZE,),
        "route": (route_points, ROUTE_FEATURES),
        "limit": (LIMIT_SIZE,),
        "lanes": (LANE_SLOTS, LANE_FEATURES),
        "agents": (num_agents, AGENT_FEATURES),
        "light": (LIGHT_SIZE,),
    }
    out, start = {}, 0
    for name, shape in parts.items():
        size = int(np.prod(shape))
        out[name] = (slice(start, start + size), shape)
        start += size
    return out


def obs_size(num_agents: int, route_points: int) -> int:
    return (
        EGO_SIZE
        + route_points * ROUTE_FEATURES
        + LIMIT_SIZE
        + LANE_SLOTS * LANE_FEATURES
        + num_agents * AGENT_FEATURES
        + LIGHT_SIZE
    )


def obs_params(obs_cfg, max_steer: float, horizon: int) -> np.ndarray:
    """(8,) float64 parameter vector of the observation kernel."""
    return np.array(
        [
            obs_cfg.num_agents,
            obs_cfg.agent_range,
            obs_cfg.route_points,
            obs_cfg.route_spacing,
            obs_cfg.position_scale,
            obs_cfg.speed_scale,
            max_steer,
            horizon,
        ],
        dtype=np.float64,
    )


@njit(cache=True)
def _project(x, y, lane, lane_xy, lane_s, nl, lo, hi, stride):
    """Projects (x, y) on the lane route: nearest of every `stride`-th point in [lo, hi), then refined.

    `lane_xy` and `lane_s` are the views ``lane[:, :2]`` and ``lane[:, R_S]``, made once per observation.
    Returns (s, lateral, segment) as `project_to_polyline`.
    """
    lo, hi = max(lo, 0), min(hi, nl)
    best, k = 1e300, lo
    for j in range(lo, hi, stride):
        d = (x - lane[j, 0]) ** 2 + (y - lane[j, 1]) ** 2
        if d < best:
            best, k = d, j
    s, lat, seg = project_to_polyline(x, y, lane_xy, lane_s, nl, k - stride - 1, k + stride + 1)
    return s, lat, min(max(seg, 0), nl - 2)


@njit(cache=True)
def _tangent(lane, seg):
    dx, dy = lane[seg + 1, 0] - lane[seg, 0], lane[seg + 1, 1] - lane[seg, 1]
    length = max(norm(dx, dy), 1e-9)
    return dx / length, dy / length


@njit(cache=True)
def _world_velocity(agent, j):
    return _rotated_velocity(agent, j, np.cos(agent[j, YAW]), np.sin(agent[j, YAW]))


@njit(cache=True)
def _rotated_velocity(agent, j, c, s):
    """Slot `j`'s body-frame velocity in the world frame, given the cos and sin of its heading."""
    return agent[j, VX] * c - agent[j, VY] * s, agent[j, VX] * s + agent[j, VY] * c


def obs_work_sizes(num_agents: int) -> tuple[int, int]:
    """Lengths of `write_obs`'s float64 and int64 scratch rows for `num_agents` (K) nearest agents."""
    return 3 * LANE_SLOTS + num_agents, 2 * LANE_SLOTS + num_agents


@njit(cache=True)
def write_obs(
    agent, valid, size, n, c, lane, nl, route_map, nr, s, stops, ns, light_now, t, p, out, work, iwork
):
    """Writes controlled slot `c`'s observation into `out` (D,) float32.

    Args:
        agent: (N, 8) slot states.
        valid: (N,) bool.
        size: (N, 2) lengths and widths, m.
        n: Slots in use.
        c: The observing slot.
        lane: (R2, 8) its compiled lane route (`alpagym_env.sim.scene.RouteData.lane_route`).
        nl: Lane-route points in use.
        route_map: (R,) lane-route arc length of each point of its log route, m.
        nr: Log-route points in use.
        s: Its arc length on the log route, m (where to look for it on the lane route).
        stops: (S, 2) ``[lane-route arc length, light]`` of stop lines on the lane route.
        ns: Stops in use.
        light_now: (K,) int8 current light states.
        t: Elapsed steps.
        p: (8,) obs parameters (`obs_params`).
        out: (D,) float32, written.
        work, iwork: float64 and int64 scratch rows of `obs_work_sizes` (no allocation per call).
    """
    k_max, m = int(p[O_K]), int(p[O_M])
    pos, spd, rng = p[O_POS], p[O_SPEED], p[O_RANGE]
    out[:] = 0.0
    x0, y0, h0 = agent[c, X], agent[c, Y], agent[c, YAW]
    ch, sh = np.cos(h0), np.sin(h0)
    guess = int(route_map[min(max(int(s + 0.5), 0), nr - 1)] + 0.5)
    lane_xy, lane_s = lane[:, :2], lane[:, R_S]  # views made once, not per agent
    se, le, seg = _project(x0, y0, lane, lane_xy, lane_s, nl, guess - EGO_WINDOW, guess + EGO_WINDOW + 1, 1)
    tx, ty = _tangent(lane, seg)
    w = max(lane[seg, R_LANE_WIDTH], 1.0)
    # Lateral offsets in the frame of the lane the route ends in: bands stay lanes across a shift.
    la = le + lane[seg, R_LANE_SHIFT]
    band = np.floor(la / w + 0.5)
    out[0] = agent[c, VX] / spd
    out[1] = agent[c, VY] / spd
    out[2] = agent[c, YAW_RATE]
    out[3] = agent[c, ACC] / 5.0
    out[4] = agent[c, STEER] / p[O_MAX_STEER]
    out[5] = le / 5.0
    herr = wrap_angle(h0 - np.arctan2(ty, tx))
    out[6] = np.sin(herr)
    out[7] = np.cos(herr)
    out[8] = (la - band * w) / 5.0
    out[9] = t / p[O_HORIZON]
    base = EGO_SIZE
    i0 = min(max(int(se + 0.5), 0), nl - 1)
    for j in range(m):
        idx = min(max(int(se + (j + 1) * p[O_SPACING] + 0.5), 0), nl - 1)
        dx, dy = lane[idx, 0] - x0, lane[idx, 1] - y0
        o = base + j * ROUTE_FEATURES
        out[o] = (dx * ch + dy * sh) / pos
        out[o + 1] = (-dx * sh + dy * ch) / pos
        out[o + 2] = lane[idx, R_WIDTH_LEFT] / 10.0
        out[o + 3] = lane[idx, R_WIDTH_RIGHT] / 10.0
    base += m * ROUTE_FEATURES
    limit = lane[i0, R_SPEED_LIMIT]
    out[base], out[base + 1], out[base + 2] = limit / spd, LIMIT_RANGE / pos, limit / spd
    for idx in range(i0 + 1, nl):
        ahead = lane[idx, R_S] - se
        if ahead > LIMIT_RANGE:
            break
        if abs(lane[idx, R_SPEED_LIMIT] - limit) > 1e-6:
            out[base + 1], out[base + 2] = max(ahead, 0.0) / pos, lane[idx, R_SPEED_LIMIT] / spd
            break
    base += LIMIT_SIZE
    # Lane slots: (ego's, left, right) x (leader, follower), each the nearest along the route.
    slot_d, slot_s, slot_l = (
        work[:LANE_SLOTS],
        work[LANE_SLOTS : 2 * LANE_SLOTS],
        work[2 * LANE_SLOTS : 3 * LANE_SLOTS],
    )
    slot_i, slot_seg = iwork[:LANE_SLOTS], iwork[LANE_SLOTS : 2 * LANE_SLOTS]
    slot_i[:], slot_d[:], slot_s[:], slot_l[:], slot_seg[:] = -1, 1e18, 0.0, 0.0, 0
    r2 = rng * rng
    for j in range(n):
        if j == c or not valid[j]:
            continue
        dx, dy = agent[j, X] - x0, agent[j, Y] - y0
        if dx * dx + dy * dy > r2:
            continue
        # Along the route it lies between its offset along the ego's tangent and ARC_FACTOR x its
        # straight-line distance (an arc is longer than its chord, up to pi / 2 for a quarter turn).
        lon, far = dx * tx + dy * ty, ARC_FACTOR * np.sqrt(dx * dx + dy * dy)
        lo = i0 + int(lon) - 8 if lon >= 0.0 else i0 - int(far) - 9
        hi = i0 + int(far) + 9 if lon >= 0.0 else i0 + int(lon) + 9
        sj, lj, gj = _project(agent[j, X], agent[j, Y], lane, lane_xy, lane_s, nl, lo, hi, COARSE)
        lj += lane[gj, R_LANE_SHIFT]
        rel = np.floor(lj / w + 0.5) - band
        if rel < -1.0 or rel > 1.0:
            continue
        ax, ay = _tangent(lane, gj)
        if abs(wrap_angle(agent[j, YAW] - np.arctan2(ay, ax))) > LANE_HEADING:
            continue
        q = 2 * (0 if rel == 0.0 else (1 if rel > 0.0 else 2)) + (0 if sj >= se else 1)
        d = abs(sj - se)
        if d < slot_d[q]:
            slot_i[q], slot_d[q], slot_s[q], slot_l[q], slot_seg[q] = j, d, sj, lj, gj
    vcx, vcy = _world_velocity(agent, c)
    v_along = vcx * tx + vcy * ty
    for q in range(LANE_SLOTS):
        o = base + q * LANE_FEATURES
        j = slot_i[q]
        if j < 0:
            out[o + 1] = rng / pos
            continue
        ax, ay = _tangent(lane, slot_seg[q])
        vjx, vjy = _world_velocity(agent, j)
        out[o] = 1.0
        out[o + 1] = (slot_d[q] - 0.5 * (size[c, 0] + size[j, 0])) / pos
        out[o + 2] = (slot_l[q] - la) / 5.0
        out[o + 3] = (vjx * ax + vjy * ay - v_along) / spd
        out[o + 4] = (-vjx * ay + vjy * ax) / spd
        out[o + 5] = np.sin(wrap_angle(agent[j, YAW] - np.arctan2(ay, ax)))
        out[o + 6] = size[j, 0] / 5.0
        out[o + 7] = size[j, 1] / 5.0
    base += LANE_SLOTS * LANE_FEATURES
    # K nearest others by insertion into a small sorted buffer (N <= 256, K <= 63).
    near_d, near_i = (
        work[3 * LANE_SLOTS : 3 * LANE_SLOTS + k_max],
        iwork[2 * LANE_SLOTS : 2 * LANE_SLOTS + k_max],
    )
    near_d[:], near_i[:] = 1e18, -1
    for j in range(n):
        if j == c or not valid[j]:
            continue
        taken = False
        for q in range(LANE_SLOTS):
            taken = taken or slot_i[q] == j
        if taken:
            continue
        d2 = (agent[j, X] - x0) ** 2 + (agent[j, Y] - y0) ** 2
        if d2 > r2 or d2 >= near_d[k_max - 1]:
            continue
        q = k_max - 1
        while q > 0 and near_d[q - 1] > d2:
            near_d[q], near_i[q] = near_d[q - 1], near_i[q - 1]
            q -= 1
        near_d[q], near_i[q] = d2, j
    for q in range(k_max):
        j = near_i[q]
        if j < 0:
            break
        o = base + q * AGENT_FEATURES
        dx, dy = agent[j, X] - x0, agent[j, Y] - y0
        cj, sj = np.cos(agent[j, YAW]), np.sin(agent[j, YAW])
        vjx, vjy = _rotated_velocity(agent, j, cj, sj)
        dvx, dvy = vjx - vcx, vjy - vcy
        out[o] = (dx * ch + dy * sh) / pos
        out[o + 1] = (-dx * sh + dy * ch) / pos
        out[o + 2] = (dvx * ch + dvy * sh) / spd
        out[o + 3] = (-dvx * sh + dvy * ch) / spd
        out[o + 4] = cj * ch + sj * sh  # cos and sin of the heading relative to the ego's
        out[o + 5] = sj * ch - cj * sh
        out[o + 6] = size[j, 0] / 5.0
        out[o + 7] = size[j, 1] / 5.0
        out[o + 8] = 1.0
    base += k_max * AGENT_FEATURES
    out[base + 3] = LIGHT_RANGE / pos
    for q in range(ns):
        ahead = stops[q, 0] - se
        if ahead >= 0.0:
            if ahead < LIGHT_RANGE:
                state = light_now[int(stops[q, 1])]
                out[base] = 1.0 if state == LIGHT_RED else 0.0
                out[base + 1] = 1.0 if state == LIGHT_YELLOW else 0.0
                out[base + 2] = 1.0 if state == LIGHT_GREEN else 0.0
                out[base + 3] = ahead / pos
            break
    for q in range(out.shape[0]):
        out[q] = min(max(out[q], -OBS_BOUND), OBS_BOUND)
