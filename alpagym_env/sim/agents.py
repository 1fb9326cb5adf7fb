"""Kernels that move the agents the policy does not control: log replay and reactive IDM.

Both work on one scene's slot arrays; the engine calls them inside its `prange` over scenes.
Slots `[0, num_controlled)` belong to the policy and are left alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env.sim.dynamics import ACC, STEER, VX, VY, YAW, YAW_RATE, X, Y, log_speed
from alpagym_env.sim.geometry import polyline_pose_at, wrap_angle
from alpagym_env.sim.idm import idm_accel

# Indices into the (7,) agent parameter vector built by `AgentsConfig.to_array()`.
A_MAX, B_COMF, B_MAX, S0, HEADWAY, TRACK_GAIN, LOOKAHEAD = range(7)


@njit(cache=True)
def _log_speed(row):
    return log_speed(row[2], row[3], row[4])


@njit(cache=True)
def set_from_log(agent, log, t, i, dt):
    """Puts slot `i` at its logged state of step `t` (speed along heading, yaw rate and accel from t-1).

    Args:
        agent: (N, 8) the scene's slot states, written in place.
        log: (N, T, 5) the scene's logs.
        t: Step index into the logs.
        i: Slot.
        dt: Step, s.
    """
    row = log[i, t]
    v = _log_speed(row)
    agent[i, X], agent[i, Y], agent[i, YAW] = row[0], row[1], row[2]
    agent[i, VX], agent[i, VY] = v, 0.0
    if t > 0:
        prev = log[i, t - 1]
        agent[i, YAW_RATE] = wrap_angle(row[2] - prev[2]) / dt
        agent[i, ACC] = (v - _log_speed(prev)) / dt
    else:
        agent[i, YAW_RATE], agent[i, ACC] = 0.0, 0.0
    agent[i, STEER] = 0.0


@njit(cache=True)
def replay_step(agent, valid, log, log_valid, t1, c0, n, dt):
    """Log replay: every non-controlled slot takes its logged state of step `t1`."""
    for i in range(c0, n):
        valid[i] = log_valid[i, t1]
        if valid[i]:
            set_from_log(agent, log, t1, i, dt)


@njit(cache=True)
def find_leader(agent, size, valid, i, n, lookahead):
    """The nearest valid agent ahead of slot `i` whose box overlaps its lane corridor.

    Returns:
        (gap, leader_speed): bumper-to-bumper gap in metres (1e9 when none within `lookahead`) and the
        leader's speed along slot `i`'s heading, m/s.
    """
    ch, sh = np.cos(agent[i, YAW]), np.sin(agent[i, YAW])
    best, v_lead = 1e9, 0.0
    for j in range(n):
        if j == i or not valid[j]:
            continue
        dx, dy = agent[j, X] - agent[i, X], agent[j, Y] - agent[i, Y]
        lon = dx * ch + dy * sh
        if lon <= 0.0 or lon > lookahead:
            continue
        lat = -dx * sh + dy * ch
        # The other box's half extent across our heading, from its orientation relative to ours.
        rel = agent[j, YAW] - agent[i, YAW]
        half_j = 0.5 * (abs(np.sin(rel)) * size[j, 0] + abs(np.cos(rel)) * size[j, 1])
        if abs(lat) > 0.5 * size[i, 1] + half_j + 0.3:
            continue
        gap = lon - 0.5 * size[i, 0] - 0.5 * (abs(np.cos(rel)) * size[j, 0] + abs(np.sin(rel)) * size[j, 1])
        if gap < best:
            best = gap
            v_lead = agent[j, VX] * np.cos(rel)
    return best, v_lead


@njit(cache=True)
def idm_step(agent, valid, path_s, log, log_s, log_valid, size, t1, c0, n, p, dt, accel):
    """Reactive agents: IDM along each agent's logged path, tracking its logged position.

    The desired speed is the logged speed plus `track_gain` times how far the agent lags its log,
    so an unobstructed agent follows its log (stopping where the log stops, e.g. at red lights) and
    one held up by the ego catches up afterwards. Accelerations are computed for all agents from the
    current state before any agent moves.

    Args:
        agent: (N, 8) slot states, written in place.
        valid: (N,) bool, written in place.
        path_s: (N,) arc length of each agent along its logged path, m, written in place.
        log, log_s, log_valid: (N, T, 5), (N, T), (N, T) the scene's logs.
        size: (N, 2) box lengths and widths, m.
        t1: The step being computed.
        c0: First non-controlled slot.
        n: Slots in use.
        p: (7,) agent parameters (A_MAX ... LOOKAHEAD).
        dt: Step, s.
        accel: (N,) scratch.
    """
    for i in range(c0, n):
        if not valid[i]:
            continue
        gap, v_lead = find_leader(agent, size, valid, i, n, p[LOOKAHEAD])
        v = agent[i, VX]
        v0 = max(_log_speed(log[i, t1]) + p[TRACK_GAIN] * (log_s[i, t1] - path_s[i]), 0.0)
        a = idm_accel(v, v0, gap, v_lead, p[A_MAX], p[B_COMF], p[S0], p[HEADWAY])
        accel[i] = min(max(a, -p[B_MAX]), p[A_MAX])
    for i in range(c0, n):
        if not log_valid[i, t1]:
            valid[i] = False
            continue
        if not valid[i]:  # appears in the log this step
            valid[i] = True
            set_from_log(agent, log, t1, i, dt)
            path_s[i] = log_s[i, t1]
            continue
        v = agent[i, VX]
        v1 = max(v + accel[i] * dt, 0.0)
        path_s[i] += 0.5 * (v + v1) * dt
        x, y, h = polyline_pose_at(log[i, :, :2], log_s[i], log_s.shape[1], path_s[i])
        yaw0 = agent[i, YAW]
        if v1 + v < 1e-3:
            h = yaw0  # at rest: keep the heading rather than snap to a path tangent
        agent[i, X], agent[i, Y], agent[i, YAW] = x, y, h
        agent[i, YAW_RATE] = wrap_angle(h - yaw0) / dt
        agent[i, ACC] = (v1 - v) / dt
        agent[i, VX], agent[i, VY] = v1, 0.0
