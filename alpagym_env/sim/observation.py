"""The flat ego-frame observation: its layout and the kernel that writes it.

Layout of one controlled agent's float32 vector (K = `ObsConfig.num_agents`, M = `route_points`):

- ``ego`` (10): speed / speed_scale, lateral velocity / speed_scale, yaw rate (rad/s), actual
  acceleration / 5 (m/s^2), actual steering / max_steer, lateral offset from the route / 5 (m, left
  positive), sin and cos of the heading error to the route, route progress (fraction of the logged
  path), elapsed time / horizon.
- ``route`` (M x 4): waypoints every `route_spacing` m ahead along the route: x, y in the ego frame /
  position_scale, free road width left and right of the route / 10 (m).
- ``agents`` (K x 9): the K nearest valid agents within `agent_range`, nearest first: x, y in the
  ego frame / position_scale, velocity relative to the ego in the ego frame / speed_scale (2), cos
  and sin of the relative heading, length / 5, width / 5, 1 (valid); all zeros for empty rows.
- ``light`` (4): the next stop line on the route within 100 m: red, yellow and green flags and its
  distance / position_scale (2.0 and no flag when there is none).

Every entry is clipped to +-OBS_BOUND.
The ego frame has +x along the ego heading and +y to its left, origin at the box centre.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env.scenarios.schema import LIGHT_GREEN, LIGHT_RED, LIGHT_YELLOW
from alpagym_env.sim.dynamics import ACC, STEER, VX, VY, YAW, YAW_RATE, X, Y
from alpagym_env.sim.scene import R_WIDTH_LEFT, R_WIDTH_RIGHT

EGO_SIZE, AGENT_FEATURES, ROUTE_FEATURES, LIGHT_SIZE = 10, 9, 4, 4
LIGHT_RANGE = 100.0  # m
OBS_BOUND = 1000.0  # every entry is clipped to +-OBS_BOUND (the Box bounds)

# Indices into the obs parameter vector built by `obs_params`.
O_K, O_RANGE, O_M, O_SPACING, O_POS, O_SPEED, O_MAX_STEER, O_HORIZON = range(8)


def obs_layout(num_agents: int, route_points: int) -> dict[str, tuple[slice, tuple[int, ...]]]:
    """Slices of the flat vector and the shape of each part, by name (the dict observation's keys)."""
    parts = {
        "ego": (EGO_SIZE,),
        "route": (route_points, ROUTE_FEATURES),
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
    return EGO_SIZE + route_points * ROUTE_FEATURES + num_agents * AGENT_FEATURES + LIGHT_SIZE


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
def write_obs(
    agent, valid, size, n, c, route, nr, s, lateral, heading_err, progress, stops, ns, light_now, t, p, out
):
    """Writes controlled slot `c`'s observation into `out` (D,) float32.

    Args:
        agent: (N, 8) slot states.
        valid: (N,) bool.
        size: (N, 2) lengths and widths, m.
        n: Slots in use.
        c: The observing slot.
        route: (R, 5) its compiled route (`alpagym_env.sim.scene`).
        nr: Route points in use.
        s: Its route arc length, m.
        lateral: Its signed lateral offset from the route, m.
        heading_err: Its heading minus the route heading, rad.
        progress: Its route progress, fraction.
        stops: (S, 2) ``[route arc length, light]`` of stop lines on the route.
        ns: Stops in use.
        light_now: (K,) int8 current light states.
        t: Elapsed steps.
        p: (8,) obs parameters (`obs_params`).
        out: (D,) float32, written.
    """
    k_max, m = int(p[O_K]), int(p[O_M])
    pos, spd = p[O_POS], p[O_SPEED]
    out[:] = 0.0
    x0, y0, h0 = agent[c, X], agent[c, Y], agent[c, YAW]
    ch, sh = np.cos(h0), np.sin(h0)
    out[0] = agent[c, VX] / spd
    out[1] = agent[c, VY] / spd
    out[2] = agent[c, YAW_RATE]
    out[3] = agent[c, ACC] / 5.0
    out[4] = agent[c, STEER] / p[O_MAX_STEER]
    out[5] = lateral / 5.0
    out[6] = np.sin(heading_err)
    out[7] = np.cos(heading_err)
    out[8] = progress
    out[9] = t / p[O_HORIZON]
    base = EGO_SIZE
    for j in range(m):
        idx = min(max(int(s + (j + 1) * p[O_SPACING] + 0.5), 0), nr - 1)
        dx, dy = route[idx, 0] - x0, route[idx, 1] - y0
        o = base + j * ROUTE_FEATURES
        out[o] = (dx * ch + dy * sh) / pos
        out[o + 1] = (-dx * sh + dy * ch) / pos
        out[o + 2] = route[idx, R_WIDTH_LEFT] / 10.0
        out[o + 3] = route[idx, R_WIDTH_RIGHT] / 10.0
    base += m * ROUTE_FEATURES
    # K nearest by insertion into a small sorted buffer (N <= 256, K <= 63).
    near_d = np.full(k_max, 1e18)
    near_i = np.full(k_max, -1)
    r2 = p[O_RANGE] * p[O_RANGE]
    for j in range(n):
        if j == c or not valid[j]:
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
        rel = agent[j, YAW] - h0
        vjx = agent[j, VX] * np.cos(agent[j, YAW]) - agent[j, VY] * np.sin(agent[j, YAW])
        vjy = agent[j, VX] * np.sin(agent[j, YAW]) + agent[j, VY] * np.cos(agent[j, YAW])
        vcx = agent[c, VX] * ch - agent[c, VY] * sh
        vcy = agent[c, VX] * sh + agent[c, VY] * ch
        dvx, dvy = vjx - vcx, vjy - vcy
        out[o] = (dx * ch + dy * sh) / pos
        out[o + 1] = (-dx * sh + dy * ch) / pos
        out[o + 2] = (dvx * ch + dvy * sh) / spd
        out[o + 3] = (-dvx * sh + dvy * ch) / spd
        out[o + 4] = np.cos(rel)
        out[o + 5] = np.sin(rel)
        out[o + 6] = size[j, 0] / 5.0
        out[o + 7] = size[j, 1] / 5.0
        out[o + 8] = 1.0
    base += k_max * AGENT_FEATURES
    out[base + 3] = LIGHT_RANGE / pos
    for q in range(ns):
        ahead = stops[q, 0] - s
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
