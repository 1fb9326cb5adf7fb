"""Numba kernels of the rule-based expert (see `scenarios.expert` for the model and its inputs).

Array layout (built by `expert.prepare`): paths are stacked samples at `PATH_DS` spacing, `off` (M + 1,)
CSR offsets into `pts` (P, 6) columns [x, y, heading (unwrapped), curvature, speed-limit envelope,
curvature envelope]; `pint` (M, 6) [wall, light, left, right, mandatory, has_junction]; `pflt` (M, 8)
[length, lc_lo, lc_hi, junction_in, junction_out, shift_left, shift_right, half lane width]; conflict rows
`conf` (C, 7) [other path, a_lo, a_hi, b_lo, b_hi, mode, merge] with offsets `c_off` (M + 1,); agents
`a_int` (N, 3) [path, kind, spawn step], `a_flt` (N, 7) [s, v, length, width, x, y, heading] and `a_par`
(N, NUM_PARAMS) driver parameters.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alpagym_env.scenarios.schema import LIGHT_RED, LIGHT_YELLOW
from alpagym_env.sim.idm import idm_accel

PATH_DS = 0.5  # spacing of the expert's internal path samples, metres
A_LAT_MAX = 1.6  # lateral acceleration the curvature envelope allows, m/s^2
B_ENVELOPE = 1.5  # deceleration used to anticipate curves and lower limits, m/s^2
B_MAX = 4.0  # hardest braking, m/s^2
JERK_UP, JERK_DOWN = 5.0, 15.0  # jerk limits on raising / lowering the acceleration, m/s^3
B_YELLOW = 2.5  # an agent stops for a yellow if it needs at most this deceleration, m/s^2
LAT_MARGIN = 0.35  # extra half-width of an agent's corridor when looking for leaders, metres

# columns of the per-agent parameter matrix
P_SPEED, P_AMAX, P_BCOMF, P_S0, P_HEADWAY, P_POLITE, P_LCTIME, P_COURTESY = range(8)
NUM_PARAMS = 8

MODE_SYMMETRIC, MODE_YIELD, MODE_OCCUPIED = 0, 1, 2  # conflict modes (see `PathSpec.rank`)
KIND_CAR, KIND_TRUCK, KIND_CYCLIST, KIND_PARKED = 0, 1, 2, 3  # `AgentSpec.kind`


@njit(cache=True)
def speed_envelope(cap, ds, b):
    """Backward pass: the speed from which each point can still slow to every later cap at `b`."""
    out = cap.copy()
    for k in range(len(out) - 2, -1, -1):
        out[k] = min(out[k], math.sqrt(out[k + 1] ** 2 + 2.0 * b * ds))
    return out


@njit(cache=True)
def _at(off, pts, p, s, col):
    """Linear interpolation of column `col` of path `p`'s samples at arc length s (clamped)."""
    n = off[p + 1] - off[p]
    u = s / PATH_DS
    if u <= 0.0:
        return pts[off[p], col]
    i = int(u)
    if i >= n - 1:
        return pts[off[p + 1] - 1, col]
    f = u - i
    return pts[off[p] + i, col] * (1.0 - f) + pts[off[p] + i + 1, col] * f


@njit(cache=True)
def _point(off, pts, p, s):
    """(x, y, heading) on path p at s; positions extrapolate linearly past the ends."""
    n = off[p + 1] - off[p]
    u = s / PATH_DS
    i = min(max(int(math.floor(u)), 0), n - 2)
    f = u - i
    b = off[p] + i
    x = pts[b, 0] + f * (pts[b + 1, 0] - pts[b, 0])
    y = pts[b, 1] + f * (pts[b + 1, 1] - pts[b, 1])
    fh = min(max(f, 0.0), 1.0)
    return x, y, pts[b, 2] + fh * (pts[b + 1, 2] - pts[b, 2])


@njit(cache=True)
def _project(off, pts, plen, p, x, y, s_guess):
    """Projects (x, y) on path p near s_guess: (s, lateral left > 0, converged)."""
    s = min(max(s_guess, 0.0), plen)
    for _ in range(8):
        px, py, ph = _point(off, pts, p, s)
        step = (x - px) * math.cos(ph) + (y - py) * math.sin(ph)
        step = min(max(step, -15.0), 15.0)
        s_new = min(max(s + step, 0.0), plen)
        if abs(s_new - s) < 0.02:
            s = s_new
            px, py, ph = _point(off, pts, p, s)
            lat = -(x - px) * math.sin(ph) + (y - py) * math.cos(ph)
            inside = 0.0 < s < plen or abs(step) < 0.5
            return s, lat, inside
        s = s_new
    # Newton failed: points far from the path (the usual case) are of no interest; for a near one (a bad
    # guess on a sharp curve) scan coarsely around the guess, then refine
    px, py, _ = _point(off, pts, p, s)
    if (x - px) ** 2 + (y - py) ** 2 > 64.0:
        return s, 1e9, False
    best, best_s = 1e18, s_guess
    lo = max(s_guess - 40.0, 0.0)
    k = 0
    while lo + k <= min(s_guess + 40.0, plen):
        px, py, _ = _point(off, pts, p, lo + k)
        d2 = (x - px) ** 2 + (y - py) ** 2
        if d2 < best:
            best, best_s = d2, lo + k
        k += 1
    s = best_s
    for _ in range(3):
        px, py, ph = _point(off, pts, p, s)
        s = min(max(s + (x - px) * math.cos(ph) + (y - py) * math.sin(ph), 0.0), plen)
    px, py, ph = _point(off, pts, p, s)
    lat = -(x - px) * math.sin(ph) + (y - py) * math.cos(ph)
    along = (x - px) * math.cos(ph) + (y - py) * math.sin(ph)
    return s, lat, abs(along) < 0.5


@njit(cache=True)
def _lc_offset(s, d0, s0, length):
    """Lateral offset d and its slope dd/ds of a lane change (quintic profile) at arc length s."""
    if length <= 0.0:
        return 0.0, 0.0
    u = min(max((s - s0) / length, 0.0), 1.0)
    q = u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)
    dq = 30.0 * u * u * (1.0 - u) * (1.0 - u) / length
    return d0 * (1.0 - q), -d0 * dq


@njit(cache=True)
def _time_to_cover(v, a, vmax, d):
    """Seconds to travel d metres from speed v accelerating at a up to vmax."""
    if d <= 0.0:
        return 0.0
    vmax = max(vmax, 0.5)
    if v >= vmax:
        return d / vmax
    a = max(a, 0.1)
    t1 = (vmax - v) / a
    d1 = v * t1 + 0.5 * a * t1 * t1
    if d1 >= d:
        return (-v + math.sqrt(v * v + 2.0 * a * d)) / a
    return t1 + (d - d1) / vmax


@njit(cache=True)
def _stop_accel(v, v0, gap, amax, b, s0, hw):
    """Acceleration to stop `gap` metres ahead (a stop line, a wall), m/s^2.

    The IDM with a standing leader brakes much harder than needed far from the line (its desired gap
    grows with v^2); this never brakes harder than 1.2 times the constant deceleration that stops the
    car 1 m before the gap, and lets the IDM take over for the last metre.
    """
    a = idm_accel(v, v0, gap, 0.0, amax, b, s0, hw)
    if gap <= 1.0:
        return a
    return max(a, -1.2 * v * v / (2.0 * (gap - 1.0)) - 0.05)


@njit(cache=True)
def _blocked(i, t, path, S, V, L, alive, off, pts, pflt, c_off, conf, a_par):
    """True when agent i must wait before its junction entry: a conflicting path is not clear.

    Per conflict zone (arc lengths [a_lo, a_hi] on i's path, [b_lo, b_hi] on the other path q) and agent j
    on q that has not left the zone: a crossing blocks while j is in the zone, or will reach it before
    i's front is through it plus 1 s, unless j clears it 1 s before i arrives. A merge (both paths leave
    on one lane) blocks while j is in the zone or j's stay in it (from its earliest arrival, at its
    current speed) overlaps i's arrival until 1.5 s after i is fully inside. Against equal or higher
    ranks (signalised junctions, priority roads) only agents already past their own entry count.
    """
    p = path[i]
    s, v, half = S[i], V[i], 0.5 * L[i]
    for c in range(c_off[p], c_off[p + 1]):
        q = int(conf[c, 0])
        a_lo, a_hi, b_lo, b_hi = conf[c, 1], conf[c, 2], conf[c, 3], conf[c, 4]
        mode, merge = conf[c, 5], conf[c, 6] > 0.0
        vmax = min(a_par[i, P_SPEED] * _at(off, pts, p, a_lo, 4), _at(off, pts, p, 0.5 * (a_lo + a_hi), 5))
        t_arrive_i = _time_to_cover(v, a_par[i, P_AMAX], vmax, a_lo - half - s)
        if merge:
            t_done = _time_to_cover(v, a_par[i, P_AMAX], vmax, a_lo + half - s)
        else:
            t_done = _time_to_cover(v, a_par[i, P_AMAX], vmax, a_hi - half - s)
        for j in range(path.shape[0]):
            if not alive[j] or path[j] != q:
                continue
            fj, rj = S[j] + 0.5 * L[j], S[j] - 0.5 * L[j]
            if rj >= b_hi:
                continue
            if fj > b_lo:
                return True
            if mode != MODE_YIELD and fj < pflt[q, 3]:
                continue  # only agents already inside the junction count (lights or priority rules)
            # j's speed at the zone: its desired speed, capped by the curve it may be slowing for
            vj = min(a_par[j, P_SPEED] * _at(off, pts, q, S[j], 4), _at(off, pts, q, b_lo, 5))
            if V[j] > vj:
                t_j = (b_lo - fj) / (0.5 * (V[j] + vj))
            else:
                t_j = _time_to_cover(V[j], a_par[j, P_AMAX], vj, b_lo - fj)
            if merge:  # j's stay in the zone (at its current speed) must not overlap i's
                t_pass = (b_hi - b_lo + L[j]) / max(min(V[j], vj), 0.5)
                if t_j + t_pass > t_arrive_i - 1.0 and t_j < t_done + 1.5:
                    return True
            elif t_j < t_done + 1.0:
                if (b_hi + 0.5 * L[j] - S[j]) / max(min(V[j], vj), 0.5) + 1.0 < t_arrive_i:
                    continue  # j will be through before i gets there
                return True
    return False


@njit(cache=True)
def _accel(
    i,
    t,
    path,
    S,
    V,
    L,
    W,
    X,
    Y,
    H,
    VW,
    alive,
    flag,
    jgo,
    d0,
    lc_s0,
    lc_len,
    cmd,
    lights,
    off,
    pts,
    pint,
    pflt,
    c_off,
    conf,
    a_par,
    dt,
):
    """Commanded acceleration of agent i at step t, m/s^2 (before clipping and jerk limits)."""
    p = path[i]
    s, v, l, w = S[i], V[i], L[i], W[i]
    plen = pflt[p, 0]
    front = s + 0.5 * l
    amax, b, s0, hw = a_par[i, P_AMAX], a_par[i, P_BCOMF], a_par[i, P_S0], a_par[i, P_HEADWAY]
    ahead = s + v  # one second of preview: the IDM reacts late to a falling desired speed
    v0 = min(a_par[i, P_SPEED] * _at(off, pts, p, ahead, 4), _at(off, pts, p, ahead, 5))
    a = max(idm_accel(v, v0, 1e4, 0.0, amax, b, s0, hw), -b)  # above v0: slow down comfortably
    # the interaction terms below must not count the free-road term again (it is capped above)
    v0 = max(v0, v)
    # leaders: agents overlapping the corridor ahead, projected on the own path
    look = 40.0 + 4.0 * v
    di, _ = _lc_offset(s, d0[i], lc_s0[i], lc_len[i])
    c_lo = min(di, 0.0) - 0.5 * w - LAT_MARGIN
    c_hi = max(di, 0.0) + 0.5 * w + LAT_MARGIN
    ch, sh = math.cos(H[i]), math.sin(H[i])
    courteous = a_par[i, P_COURTESY] > 0.0
    mand = pint[p, 4]
    target = -1 if mand == 0 else pint[p, 2 if mand > 0 else 3]
    for j in range(path.shape[0]):
        if j == i or not alive[j]:
            continue
        dx, dy = X[j] - X[i], Y[j] - Y[i]
        if dx * dx + dy * dy > look * look:
            continue
        along = dx * ch + dy * sh
        if along < -1.0:
            continue
        q = path[j]
        same = q == p
        if same:
            sj = S[j]
            dj, _ = _lc_offset(S[j], d0[j], lc_s0[j], lc_len[j])
        else:
            sj, dj, ok = _project(off, pts, plen, p, X[j], Y[j], s + along)
            if not ok:
                continue
        if sj <= s:
            continue
        dh = H[j] - _at(off, pts, p, sj, 2)
        cd, sd = abs(math.cos(dh)), abs(math.sin(dh))
        half_w = 0.5 * (W[j] * cd + L[j] * sd)
        gap = sj - 0.5 * (L[j] * cd + W[j] * sd) - front
        v_lead = max(VW[j] * math.cos(dh), 0.0)
        if same or (dj + half_w >= c_lo and dj - half_w <= c_hi):
            a = min(a, idm_accel(v, v0, gap, v_lead, amax, b, s0, hw))
        elif courteous and q >= 0 and gap > 2.0:
            mand_j = pint[q, 4]
            if mand_j != 0 and pint[q, 2 if mand_j > 0 else 3] == p:
                a_c = idm_accel(v, v0, gap, v_lead, amax, b, s0, hw)
                if a_c > -2.0:  # slow down to open a gap for a merging car, but never brake hard
                    a = min(a, a_c)
        elif q == target and q >= 0 and sj - s < 25.0:
            # a merging car falls in behind the target-lane car beside it to reach a gap
            a = min(a, max(idm_accel(v, v0, max(gap, 0.5), v_lead, amax, b, s0, hw), -2.5))
    # end of a path that must be left by a lane change
    if pint[p, 0]:
        a = min(a, _stop_accel(v, v0, plen - front - 1.0, amax, b, s0, hw))
    j_in = pflt[p, 3]
    light = pint[p, 1]
    if light >= 0 and front <= j_in:
        st = lights[light, t]
        g = j_in - front - 0.5
        stop = st == LIGHT_RED
        if st == LIGHT_YELLOW:
            if flag[i] == 0:
                rem = 0
                while t + rem < lights.shape[1] and lights[light, t + rem] == LIGHT_YELLOW:
                    rem += 1
                need = v * v / (2.0 * max(g - 1.0, 0.1))
                flag[i] = 1 if (need <= B_YELLOW or g > v * (rem * dt - 0.3)) else 2
            stop = flag[i] == 1
        else:
            flag[i] = 0
        if stop:
            a = min(a, _stop_accel(v, v0, g, amax, b, s0, hw))
    if pint[p, 5] and front <= j_in and not jgo[i]:
        dist = j_in - front
        if dist < 80.0:
            if _blocked(i, t, path, S, V, L, alive, off, pts, pflt, c_off, conf, a_par):
                a = min(a, _stop_accel(v, v0, dist - 0.5, amax, b, s0, hw))
            elif dist < 1.0 or v * v / (2.0 * max(dist, 0.1)) > 2.5:
                jgo[i] = True
    return a


@njit(cache=True)
def _neighbours(i, q, sq, path, S, V, L, W, X, Y, H, alive, d0, lc_s0, lc_len, off, pts, pflt):
    """Leader and follower of agent i if it were on path q at sq: (lead, gap, follow, gap)."""
    plen, half_lane = pflt[q, 0], pflt[q, 7]
    lead, follow = -1, -1
    g_lead, g_follow = 1e4, 1e4
    for j in range(path.shape[0]):
        if j == i or not alive[j]:
            continue
        dx, dy = X[j] - X[i], Y[j] - Y[i]
        if dx * dx + dy * dy > 150.0 * 150.0:
            continue
        if path[j] == q:
            sj = S[j]
        else:
            along = dx * math.cos(H[i]) + dy * math.sin(H[i])
            sj, lat, ok = _project(off, pts, plen, q, X[j], Y[j], sq + along)
            dh = H[j] - _at(off, pts, q, sj, 2)
            half_w = 0.5 * (W[j] * abs(math.cos(dh)) + L[j] * abs(math.sin(dh)))
            if not ok or abs(lat) - half_w > half_lane - 0.1:
                continue
        g = sj - sq - 0.5 * (L[i] + L[j])
        if sj >= sq and g < g_lead:
            lead, g_lead = j, g
        elif sj < sq and -sj + sq - 0.5 * (L[i] + L[j]) < g_follow:
            follow, g_follow = j, sq - sj - 0.5 * (L[i] + L[j])
    return lead, g_lead, follow, g_follow


@njit(cache=True)
def _lane_change(
    i,
    t,
    path,
    S,
    V,
    L,
    W,
    X,
    Y,
    H,
    VW,
    alive,
    d0,
    lc_s0,
    lc_len,
    lc_end,
    cmd,
    off,
    pts,
    pint,
    pflt,
    a_par,
    kind,
):
    """MOBIL (discretionary) or mandatory lane change of agent i; switches its path when it starts."""
    p = path[i]
    mand = pint[p, 4]
    if mand == 0:
        if (t + i) % 10 != 0 or t - lc_end[i] < 30 or V[i] < 8.0:
            return
    lo, hi = pflt[p, 1], pflt[p, 2]
    if S[i] < lo:
        return
    amax, b, s0, hw = a_par[i, P_AMAX], a_par[i, P_BCOMF], a_par[i, P_S0], a_par[i, P_HEADWAY]
    for side in range(2):
        if mand != 0 and side != (0 if mand > 0 else 1):
            continue
        q = pint[p, 2 + side]
        if q < 0:
            continue
        length = min(max(V[i] * a_par[i, P_LCTIME], 15.0 if mand != 0 else 25.0), 140.0)
        if S[i] + length > hi:
            if mand == 0 or hi - S[i] < 12.0:
                continue
            length = hi - S[i]
        sq, lat, ok = _project(off, pts, pflt[q, 0], q, X[i], Y[i], S[i] + pflt[p, 5 + side])
        if not ok or abs(lat) > 2.5 * pflt[q, 7] or sq + length > pflt[q, 0] - 20.0:
            continue
        lead, g_lead, follow, g_follow = _neighbours(
            i, q, sq, path, S, V, L, W, X, Y, H, alive, d0, lc_s0, lc_len, off, pts, pflt
        )
        v0 = min(a_par[i, P_SPEED] * _at(off, pts, q, sq, 4), _at(off, pts, q, sq, 5))
        v_lead = VW[lead] if lead >= 0 else 0.0
        a_new = idm_accel(V[i], v0, g_lead, v_lead, amax, b, s0, hw)
        b_safe = 3.0 if mand != 0 else 2.0
        if g_lead < 2.0 + 0.2 * V[i] or g_follow < 3.0 or a_new < -b_safe:
            continue
        gain_follow = 0.0
        if follow >= 0:
            pf = a_par[follow]
            vf0 = pf[P_SPEED] * _at(off, pts, q, sq, 4)
            a_f = idm_accel(V[follow], vf0, g_follow, VW[i], pf[P_AMAX], pf[P_BCOMF], pf[P_S0], pf[P_HEADWAY])
            if a_f < -b_safe:
                continue
            gain_follow = a_f - cmd[follow]
        if mand == 0:
            bias = 0.35 if side == 0 else -0.3
            if side == 0 and kind[i] == KIND_TRUCK:
                bias += 0.4  # trucks rarely overtake
            if a_new - cmd[i] + a_par[i, P_POLITE] * gain_follow < 0.15 + bias:
                continue
        k = _at(off, pts, q, sq, 3)
        V[i] = VW[i] / max(1.0 - k * lat, 0.5)  # keep the world speed continuous
        path[i], S[i] = q, sq
        d0[i], lc_s0[i], lc_len[i] = lat, sq, length
        return


@njit(cache=True)
def _spawn_clear(i, path, S, V, L, X, Y, VW, alive, off, pts, pflt, a_par):
    """True when agent i (not yet alive) can appear at its start without crowding anyone.

    Everyone near its path must be at least the IDM desired gap away (closing speed included).
    """
    p = path[i]
    x, y, _ = _point(off, pts, p, S[i])
    v, s0, hw = V[i], a_par[i, P_S0], a_par[i, P_HEADWAY]
    brake = 2.0 * math.sqrt(a_par[i, P_AMAX] * a_par[i, P_BCOMF])
    for j in range(path.shape[0]):
        if not alive[j]:
            continue
        dx, dy = X[j] - x, Y[j] - y
        if dx * dx + dy * dy > 120.0 * 120.0:
            continue
        sj, lat, ok = _project(off, pts, pflt[p, 0], p, X[j], Y[j], S[i])
        need = s0 + v * hw + v * max(v - VW[j], 0.0) / brake + 2.0
        if ok and abs(lat) < 2.6 and abs(sj - S[i]) < 0.5 * (L[i] + L[j]) + need:
            return False
    return True


@njit(cache=True)
def simulate(off, pts, pint, pflt, c_off, conf, a_int, a_flt, a_par, lights, dt, traj, valid, plog, slog):
    """Runs the expert for traj.shape[1] steps, writing traj (N, T, 5), valid, path and s logs."""
    n, num_steps = traj.shape[0], traj.shape[1]
    path = a_int[:, 0].copy()
    kind = a_int[:, 1]
    spawn = a_int[:, 2].copy()
    S, V = a_flt[:, 0].copy(), a_flt[:, 1].copy()
    L, W = a_flt[:, 2], a_flt[:, 3]
    alive = np.zeros(n, dtype=np.bool_)
    dead = np.zeros(n, dtype=np.bool_)
    jgo = np.zeros(n, dtype=np.bool_)
    flag = np.zeros(n, dtype=np.int64)
    lc_end = np.full(n, -1000, dtype=np.int64)
    acc, cmd = np.zeros(n), np.zeros(n)
    d0, lc_s0, lc_len = np.zeros(n), np.zeros(n), np.zeros(n)
    X, Y, H, VW = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        if path[i] >= 0:  # never start faster than the curve ahead allows
            V[i] = min(V[i], _at(off, pts, path[i], S[i], 5))
    for t in range(num_steps):
        for i in range(n):
            if alive[i] or dead[i] or spawn[i] > t:
                continue
            if (
                path[i] < 0
                or t == 0
                or _spawn_clear(i, path, S, V, L, X, Y, VW, alive, off, pts, pflt, a_par)
            ):
                alive[i] = True
                if path[i] >= 0:  # place it now, so a second arrival at the same spot sees it
                    X[i], Y[i], H[i] = _point(off, pts, path[i], S[i])
            else:
                spawn[i] = t + 1
        for i in range(n):
            if not alive[i]:
                continue
            p = path[i]
            if p < 0:
                X[i], Y[i], H[i], VW[i] = a_flt[i, 4], a_flt[i, 5], a_flt[i, 6], 0.0
            else:
                d, dd = _lc_offset(S[i], d0[i], lc_s0[i], lc_len[i])
                x, y, h = _point(off, pts, p, S[i])
                k = _at(off, pts, p, S[i], 3)
                X[i], Y[i] = x - d * math.sin(h), y + d * math.cos(h)
                H[i] = h + math.atan2(dd, 1.0 - k * d)
                VW[i] = V[i] * math.hypot(1.0 - k * d, dd)
            traj[i, t, 0], traj[i, t, 1], traj[i, t, 2] = X[i], Y[i], H[i]
            traj[i, t, 3], traj[i, t, 4] = VW[i] * math.cos(H[i]), VW[i] * math.sin(H[i])
            valid[i, t] = True
            plog[i, t], slog[i, t] = p, S[i]
        for i in range(n):
            if alive[i] and path[i] >= 0:
                cmd[i] = _accel(
                    i,
                    t,
                    path,
                    S,
                    V,
                    L,
                    W,
                    X,
                    Y,
                    H,
                    VW,
                    alive,
                    flag,
                    jgo,
                    d0,
                    lc_s0,
                    lc_len,
                    cmd,
                    lights,
                    off,
                    pts,
                    pint,
                    pflt,
                    c_off,
                    conf,
                    a_par,
                    dt,
                )
        for i in range(n):
            if alive[i] and path[i] >= 0 and lc_len[i] <= 0.0:
                _lane_change(
                    i,
                    t,
                    path,
                    S,
                    V,
                    L,
                    W,
                    X,
                    Y,
                    H,
                    VW,
                    alive,
                    d0,
                    lc_s0,
                    lc_len,
                    lc_end,
                    cmd,
                    off,
                    pts,
                    pint,
                    pflt,
                    a_par,
                    kind,
                )
        for i in range(n):
            if not alive[i] or path[i] < 0:
                continue
            a = min(max(cmd[i], -B_MAX), a_par[i, P_AMAX])
            a = min(max(a, acc[i] - JERK_DOWN * dt), acc[i] + JERK_UP * dt)
            v = V[i]
            if v + a * dt <= 0.0:
                S[i] += v * v / (2.0 * max(-a, 1e-6)) if a < 0.0 else 0.0
                V[i], acc[i] = 0.0, 0.0
            else:
                S[i] += v * dt + 0.5 * a * dt * dt
                V[i], acc[i] = v + a * dt, a
            if lc_len[i] > 0.0 and S[i] - lc_s0[i] >= lc_len[i]:
                lc_len[i], lc_end[i] = 0.0, t
            p = path[i]
            if not pint[p, 0] and S[i] + 0.5 * L[i] >= pflt[p, 0]:
                alive[i], dead[i] = False, True
