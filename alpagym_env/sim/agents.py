"""Kernels that move the agents the policy does not control: log replay and reactive IDM.

Both work on one scene's slot arrays; the engine calls them inside its `prange` over scenes.
Slots `[0, num_controlled)` belong to the policy and are left alone.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env.sim.dynamics import ACC, STEER, VX, VY, YAW, YAW_RATE, X, Y, log_speed
from alpagym_env.sim.geometry import norm, polyline_pose_at, wrap_angle
from alpagym_env.sim.idm import idm_accel

# Indices into the (7,) agent parameter vector built by `AgentsConfig.to_array()`.
A_MAX, B_COMF, B_MAX, S0, HEADWAY, TRACK_GAIN, LOOKAHEAD = range(7)
ON_LOG_DISTANCE = 1e-3  # m: an agent this close to its logged position is on its log


@njit(cache=True)
def _log_speed(log, i, t):
    return log_speed(log[t, i, 2], log[t, i, 3], log[t, i, 4])


@njit(cache=True)
def set_from_log(agent, log, t, i, dt):
    """Puts slot `i` at its logged state of step `t` (speed along heading, yaw rate and accel from t-1).

    Args:
        agent: (N, 8) the scene's slot states, written in place.
        log: (T, N, 5) the scene's logs, time-major: one step of every slot is contiguous.
        t: Step index into the logs.
        i: Slot.
        dt: Step, s.
    """
    v = _log_speed(log, i, t)
    agent[i, X], agent[i, Y], agent[i, YAW] = log[t, i, 0], log[t, i, 1], log[t, i, 2]
    agent[i, VX], agent[i, VY] = v, 0.0
    if t > 0:
        agent[i, YAW_RATE] = wrap_angle(log[t, i, 2] - log[t - 1, i, 2]) / dt
        agent[i, ACC] = (v - _log_speed(log, i, t - 1)) / dt
    else:
        agent[i, YAW_RATE], agent[i, ACC] = 0.0, 0.0
    agent[i, STEER] = 0.0


@njit(cache=True)
def replay_step(agent, valid, log, log_valid, t1, c0, n, dt):
    """Log replay: every non-controlled slot takes its logged state of step `t1`."""
    for i in range(c0, n):
        valid[i] = log_valid[t1, i]
        if valid[i]:
            set_from_log(agent, log, t1, i, dt)


@njit(cache=True)
def find_leader(agent, size, valid, i, cand, lookahead):
    """The nearest of the agents `cand` ahead of slot `i` whose box overlaps its lane corridor.

    Args:
        agent, size, valid: (N, 8), (N, 2), (N,) the scene's slots.
        i: The follower's slot.
        cand: (M,) int64 slots to consider (slot `i` and invalid ones are passed over).
        lookahead: Search distance, m.

    Returns:
        (gap, leader_speed): bumper-to-bumper gap in metres (1e9 when none within `lookahead`) and the
        leader's speed along slot `i`'s heading, m/s.
    """
    ch, sh = np.cos(agent[i, YAW]), np.sin(agent[i, YAW])
    best, v_lead = 1e9, 0.0
    for q in range(cand.shape[0]):
        j = cand[q]
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
def off_log_slots(agent, valid, log, t, n, out):
    """Writes the valid slots that are not where their log has them at step `t` (farther than
    ON_LOG_DISTANCE) into `out` (N,) int64; returns how many. The logs are collision-free among
    themselves, so only these can be in the way of an agent on its log: its leader search looks at
    them alone, which keeps the reactive agents' cost linear in the slots while few have left their logs.
    """
    k = 0
    for j in range(n):
        if valid[j] and norm(agent[j, X] - log[t, j, 0], agent[j, Y] - log[t, j, 1]) >= ON_LOG_DISTANCE:
            out[k] = j
            k += 1
    return k


# Reactive agents: the Gipps-style stopping check decides whether the log's next step is still safe.
STOP_DECEL = 4.0  # m/s^2: braking the expert never exceeds; a log step that needs more is obstructed
STOP_MARGIN = 1.0  # m: bumper gap kept when stopping behind a leader
SNAP_DISTANCE, SNAP_SPEED = 0.3, 0.5  # m, m/s: this close to its log, an agent rejoins it exactly
CATCH_UP_KP, CATCH_UP_KD = 1.0, 2.0  # 1/s^2, 1/s: critically damped catch-up to the log (omega 1 rad/s)


@njit(cache=True)
def _safe_speed(gap, v_lead, ds, dt):
    """Highest speed after a step of `ds` metres from which the agent can still stop behind its leader.

    The leader (bumper gap `gap`, speed `v_lead`) is assumed to keep its speed over the step and then to
    brake at STOP_DECEL as the agent would (Gipps, 1981), so the stopping distances are compared.
    """
    g = gap - ds + v_lead * dt - STOP_MARGIN
    return np.sqrt(max(v_lead * v_lead + 2.0 * STOP_DECEL * g, 0.0))


@njit(cache=True)
def idm_step(agent, valid, path_s, log, log_s, log_valid, size, t1, c0, n, p, dt, accel, slots):
    """Reactive agents: each keeps to its log's timing while that is safe, and follows IDM when it is not.

    Every agent moves along its logged path (arc length `path_s`). An agent on its log (within
    SNAP_DISTANCE and SNAP_SPEED) takes its logged state of step `t1` exactly, as in log replay, unless
    that step would leave it unable to stop behind an agent ahead of it that has left its own log
    (`find_leader`, `_safe_speed`): then it is obstructed (e.g. by an ego that stopped where the log did
    not) and brakes with IDM (`off_log_slots`: those are the only candidates it searches). An agent behind
    its log (after an obstruction) catches up with a critically damped law at most `a_max` above the
    log's acceleration, again bounded by IDM behind a leader that obstructs it. So with nothing in the
    way a reactive agent is exactly its log, and log replay of the ego scores as with replayed agents.
    Accelerations are computed for all agents from the current state before any agent moves.

    Args:
        agent: (N, 8) slot states, written in place.
        valid: (N,) bool, written in place.
        path_s: (N,) arc length of each agent along its logged path, m, written in place.
        log, log_s, log_valid: (T, N, 5), (T, N), (T, N) the scene's logs (time-major).
        size: (N, 2) box lengths and widths, m.
        t1: The step being computed.
        c0: First non-controlled slot.
        n: Slots in use.
        p: (7,) agent parameters (A_MAX ... LOOKAHEAD).
        dt: Step, s.
        accel: (N,) scratch: the acceleration of each agent, m/s^2, or NaN for one that takes its log.
        slots: (2 N,) int64 scratch: every slot in use, then the slots away from their logs.
    """
    t0 = max(t1 - 1, 0)
    every, off = slots[:n], slots[n : 2 * n]
    for j in range(n):
        every[j] = j
    off = off[: off_log_slots(agent, valid, log, t0, n, off)]
    for i in range(c0, n):
        if not valid[i]:
            continue
        v = agent[i, VX]
        v_log = _log_speed(log, i, t1)
        lag = log_s[t0, i] - path_s[i]
        on_log = abs(lag) < SNAP_DISTANCE and abs(v - _log_speed(log, i, t0)) < SNAP_SPEED
        gap, v_lead = find_leader(agent, size, valid, i, off if on_log else every, p[LOOKAHEAD])
        if on_log:
            ds = log_s[t1, i] - path_s[i]
            if gap >= 1e8 or v_log <= _safe_speed(gap, v_lead, ds, dt):
                accel[i] = np.nan  # unobstructed: the log's own step
                continue
        a_log = (v_log - _log_speed(log, i, t0)) / dt
        a = a_log + CATCH_UP_KP * lag + CATCH_UP_KD * (_log_speed(log, i, t0) - v)
        a = min(a, max(a_log, 0.0) + p[A_MAX])
        v1 = max(v + a * dt, 0.0)
        if gap < 1e8 and v1 > _safe_speed(gap, v_lead, 0.5 * (v + v1) * dt, dt):
            v0 = max(v_log + p[TRACK_GAIN] * lag, 0.0)
            a = min(a, idm_accel(v, v0, gap, v_lead, p[A_MAX], p[B_COMF], p[S0], p[HEADWAY]))
        accel[i] = min(max(a, -p[B_MAX]), max(a_log, 0.0) + p[A_MAX])
    for i in range(c0, n):
        if not log_valid[t1, i]:
            valid[i] = False
            continue
        if not valid[i] or np.isnan(accel[i]):  # appears in the log this step, or keeps to it
            valid[i] = True
            set_from_log(agent, log, t1, i, dt)
            path_s[i] = log_s[t1, i]
            accel[i] = 0.0
            continue
        v = agent[i, VX]
        v1 = max(v + accel[i] * dt, 0.0)
        path_s[i] += 0.5 * (v + v1) * dt
        x, y, h = polyline_pose_at(log[:, i, :2], log_s[:, i], log_s.shape[0], path_s[i])
        yaw0 = agent[i, YAW]
        if v1 + v < 1e-3:
            h = yaw0  # at rest: keep the heading rather than snap to a path tangent
        agent[i, X], agent[i, Y], agent[i, YAW] = x, y, h
        agent[i, YAW_RATE] = wrap_angle(h - yaw0) / dt
        agent[i, ACC] = (v1 - v) / dt
        agent[i, VX], agent[i, VY] = v1, 0.0
