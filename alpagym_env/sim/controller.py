"""The batched tracking controller: trajectory actions -> (accel, steer) commands for `dynamic_step`.

Every 0.1 s step the controller re-plans from the current state (as AlpaSim's MPC does) over the plan's
reference (`alpagym_env.sim.trajectory`: a Hermite path and a monotone progress profile in time):

1. Longitudinal time-varying LQ tracking on [s, v, acc] (acc lags its command as in the vehicle), cost
   q_s (s - s_r)^2 + q_v (v - v_r)^2 + r_a (u - a_r)^2 + r_j (u - acc)^2 per 0.1 s; its closed loop is
   rolled forward within the acceleration limits to predict where the car will be at each preview step.
2. Lateral time-varying LQ on the path-frame state [e_y, e_psi (course), course rate, steer] linearised
   about that predicted speed: the course rate follows v / (L + w K v^2) x steering (the kinematic
   bicycle plus the dynamic bicycle's steady-state understeer, w its blend weight) through the dynamic
   bicycle's yaw/sideslip lag, the steering its actuator lag; cost q_y e_y^2 + q_psi e_psi^2 +
   r_d (u - steer_r)^2 + r_r (u - steer)^2.
3. Limits on the step-0 commands: acceleration in [-max_brake, max_acc], its actual value moving at most
   max_jerk dt per step; steering within max_steer and the grip limit (v^2 kappa <= `lateral_limit`:
   max_lat_acc, at most GRIP_USE of the tyres' friction circle beside the acceleration command) and
   moving at most max_steer_rate dt per step.

Both LQs are scalar-input Riccati recursions over the preview (`_riccati_step`, <= 4 states), solved in a
preallocated work buffer: nothing is allocated per step. The controller keeps no state between steps
(the actuator values live in the agent row), so engine snapshots stay exact. `FLAG_*` bits report what
the plan asks beyond the vehicle's limits, judged per segment between poses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from alpagym_env.sim.builds import serial_and_parallel
from alpagym_env.sim.dynamics import (
    ACC,
    FRONT_GRIP,
    GRAVITY,
    KIN_RELAX_TIME,
    P_BLEND_HI,
    P_BLEND_LO,
    P_CF,
    P_CR,
    P_IZ,
    P_LF,
    P_LR,
    P_MASS,
    P_MAX_ACC,
    P_MAX_BRAKE,
    P_MAX_SPEED,
    P_MAX_STEER,
    P_MAX_STEER_RATE,
    P_MU,
    P_TAU_ACC,
    P_TAU_STEER,
    STEER,
    VX,
    VY,
    YAW_RATE,
    _blend_weight,
    _derivatives,
    _lag_factor,
    steady_state_steer,
)
from alpagym_env.sim.geometry import wrap_angle
from alpagym_env.sim.trajectory import (
    K_PSI,
    K_S,
    K_X,
    K_Y,
    chords,
    curvature,
    decode,
    pchip_slopes,
    progress,
    start_pose,
)

# Indices into the controller parameter vector, (NUM_CTRL_PARAMS,) float64 (`controller_params`).
(C_POSES, C_STEPS, C_PREVIEW, C_X_SCALE, C_Y_SCALE, C_DERIVED, C_Q_LAT, C_Q_HEAD, C_R_STEER, C_R_STEER_RATE,
 C_Q_S, C_Q_V, C_R_ACC, C_R_JERK, C_MAX_JERK, C_MAX_LAT_ACC, C_MARGIN) = range(17)  # fmt: skip
NUM_CTRL_PARAMS = 17
# Share of the tyres' grip the controller plans to use at most (the rest absorbs tracking transients).
GRIP_USE = 0.9

# Bits of the per-step flags: what the plan asks beyond the vehicle's limits (FLAG_SATURATED: the
# command itself hit a limit this step, e.g. while recovering from an offset).
FLAG_ACCEL, FLAG_BRAKE, FLAG_STEER, FLAG_STEER_RATE, FLAG_SPEED, FLAG_LAT_ACC, FLAG_SATURATED = (
    1, 2, 4, 8, 16, 32, 64,
)  # fmt: skip
FLAG_NAMES = ("accel", "brake", "steer", "steer_rate", "speed", "lateral_accel", "saturated")
INFEASIBLE = FLAG_ACCEL | FLAG_BRAKE | FLAG_STEER | FLAG_STEER_RATE | FLAG_SPEED | FLAG_LAT_ACC

# Layout of one slot's work buffer: rows [0, N] the reference every 0.1 s (columns R_*: plan arc length,
# speed and acceleration, predicted arc length, speed and path curvature, longitudinal gains), rows
# [N + 1, N + H + 1] the poses (columns `trajectory.K_*`), then MAT_ROWS rows of LQ matrices.
R_S, R_V, R_A, R_SP, R_VP, R_KAPPA, R_G0 = 0, 1, 2, 3, 4, 5, 6  # R_G0..R_G0+3: longitudinal gains
WORK_COLS = 10
MAT_ROWS = 20  # `_riccati_step`'s rows


def work_shape(num_poses: int, steps: int, preview_steps: int) -> tuple[int, int]:
    """(rows, WORK_COLS) of one controlled slot's scratch buffer."""
    return min(num_poses * steps, preview_steps) + num_poses + 2 + MAT_ROWS, WORK_COLS


@njit(cache=True)
def _lateral_model(kappa, v, p):
    """The linear bicycle's steady state and lag at speed v (m/s), blended as the vehicle is.

    Returns:
        (steer, gain, tau): the front-wheel angle (rad) that holds curvature kappa (1/m) with the grip-
        limited tyres (`steady_state_steer`), the steady-state course rate per steering angle of the linear
        bicycle (1/s: v / (L + w K v^2), K the understeer gradient) and the time
        constant (s) with which the course rate follows the steering (the first-order fit
        a1 - b1 of the lateral-acceleration transfer function; 0 for the kinematic model). An
        oversteering vehicle past its critical speed has no steady state: its values are bounded.
    """
    lf, lr, cf, cr, m = p[P_LF], p[P_LR], p[P_CF], p[P_CR], p[P_MASS]
    wheelbase = lf + lr
    w = _blend_weight(v, p[P_BLEND_LO], p[P_BLEND_HI])
    wk = max(w * m / wheelbase * (lr / cf - lf / cr) * v * v, -0.5 * wheelbase)
    tau = 0.0
    if w > 0.0:  # v >= blend_lo > 0
        # [vy, r]' = [[al, be - v^2], [ga, de]] / v [vy, r] + [e, f] steer, with the terms below.
        iz = p[P_IZ]
        al, de = -(cf + cr) / m, -(lf * lf * cf + lr * lr * cr) / iz
        be, ga, e, f = (lr * cr - lf * cf) / m, (lr * cr - lf * cf) / iz, cf / m, lf * cf / iz
        det = al * de - be * ga + ga * v * v  # v^2 det(A); <= 0 past an oversteerer's critical speed
        if det > 1e-9:
            a1, b1 = -(al + de) * v / det, (be * f - de * e) / ((ga * e - al * f) * v)
            tau = w * min(max(a1 - b1, 0.0), 1.0)
    return steady_state_steer(kappa, v, p), v / (wheelbase + wk), tau


@njit(cache=True)
def lateral_limit(accel, dyn_p, cp):
    """Lateral acceleration (m/s^2) the controller allows beside a longitudinal one (m/s^2): max_lat_acc,
    and never more than GRIP_USE of what the front tyres' friction circle leaves (`dynamics._derivatives`:
    FRONT_GRIP mu g in all), so a tracked plan stays below the grip limit with a margin."""
    grip = GRIP_USE * FRONT_GRIP * dyn_p[P_MU] * GRAVITY
    return min(cp[C_MAX_LAT_ACC], math.sqrt(max(grip * grip - accel * accel, 0.0)))


@njit(cache=True)
def _lags(tau, dt):
    """(end, mean): fractions of a command step a first-order lag reaches at the end of dt / on average."""
    f = _lag_factor(tau, dt)
    return f, (1.0 - tau / dt * f) if tau > 0.0 else 1.0


@njit(cache=True)
def _riccati_step(mats, n, R, r):
    """One backward step of the scalar-input LQ recursion with affine dynamics x+ = A x + B u + c.

    Stage cost x'diag(Qd)x + 2 q'x + R u^2 + 2 u S'x + 2 r u over n <= 4 states; the value x'Px + 2 p'x
    of the next step is updated in place to this step's. Layout of `mats` (rows x 4 columns): P 0-3,
    A 4-7, PA 8-11, then one row each for B, c, p, q, Qd, S and scratch.

    Returns:
        (K0, K1, K2, K3, kff): the optimal input u = K x + kff at this step.
    """
    # Rows of `mats` (indexed directly: views in this hot loop would cost reference counting).
    P, A, PA, B, C, PV, Q, QD, S, W, HUX = 0, 4, 8, 12, 13, 14, 15, 16, 17, 18, 19
    huu, hu = R, r
    for i in range(n):
        pb, wi = 0.0, mats[PV, i]
        for j in range(n):
            pb += mats[P + i, j] * mats[B, j]
            wi += mats[P + i, j] * mats[C, j]
            acc = 0.0
            for l in range(n):
                acc += mats[P + i, l] * mats[A + l, j]
            mats[PA + i, j] = acc
        mats[W, i] = wi
        huu += mats[B, i] * pb
        hu += mats[B, i] * wi
    for j in range(n):
        acc = mats[S, j]
        for i in range(n):
            acc += mats[B, i] * mats[PA + i, j]
        mats[HUX, j] = acc
    inv = 1.0 / huu
    for i in range(n):
        acc = mats[Q, i] - mats[HUX, i] * hu * inv
        for l in range(n):
            acc += mats[A + l, i] * mats[W, l]
        mats[PV, i] = acc
        for j in range(n):
            acc = -mats[HUX, i] * mats[HUX, j] * inv
            for l in range(n):
                acc += mats[A + l, i] * mats[PA + l, j]
            mats[P + i, j] = acc + (mats[QD, i] if i == j else 0.0)
    return -mats[HUX, 0] * inv, -mats[HUX, 1] * inv, -mats[HUX, 2] * inv, -mats[HUX, 3] * inv, -hu * inv


@njit(cache=True)
def _init_value(mats, qd0, qd1, lin0, lin1):
    """Clears the LQ rows; terminal value P = diag(qd0, qd1, 0, 0), p = (lin0, lin1, 0, 0)."""
    mats[:, :4] = 0.0
    mats[0, 0], mats[1, 1], mats[14, 0], mats[14, 1] = qd0, qd1, lin0, lin1


@njit(cache=True)
def _reference(ref, knots, h, m, n, dt):
    """Samples the plan's progress every dt into `ref` rows 0..n: arc length, speed and acceleration."""
    for k in range(n + 1):
        ref[k, R_S], ref[k, R_V], ref[k, R_A] = progress(knots, h, m, m * dt, k)


@njit(cache=True)
def _plan_flags(knots, h, spacing, v0, dyn_p, cp):
    """FLAG_* bits of what the plan asks for, from each segment between given poses (the ego and pose 1
    when there is one pose): its mean speed and curvature (heading change over chord), the speed changes
    between segments (from the ego's speed v0 to the first segment's over the time to its middle) and the
    steering changes."""
    flags, margin = 0, 1.0 + cp[C_MARGIN]
    j0 = 1 if h > 1 else 0
    v_prev, steer_prev, lag = v0, 0.0, (j0 + 0.5) * spacing
    for j in range(j0, h):
        c = knots[j + 1, K_S] - knots[j, K_S]
        v = c / spacing
        kappa = wrap_angle(knots[j + 1, K_PSI] - knots[j, K_PSI]) / c if c > 1e-3 else 0.0
        steer, _, _ = _lateral_model(kappa, v, dyn_p)
        a = (v - v_prev) / lag
        if a > dyn_p[P_MAX_ACC] * margin:
            flags |= FLAG_ACCEL
        if a < -dyn_p[P_MAX_BRAKE] * margin:
            flags |= FLAG_BRAKE
        if v > dyn_p[P_MAX_SPEED] * margin:
            flags |= FLAG_SPEED
        if abs(steer) > dyn_p[P_MAX_STEER] * margin:
            flags |= FLAG_STEER
        if v * v * abs(kappa) > lateral_limit(0.0, dyn_p, cp) * margin:
            flags |= FLAG_LAT_ACC
        if j > j0 and abs(steer - steer_prev) > dyn_p[P_MAX_STEER_RATE] * spacing * margin:
            flags |= FLAG_STEER_RATE
        v_prev, steer_prev, lag = v, steer, spacing
    return flags


@njit(cache=True)
def _longitudinal(ref, knots, mats, h, n, s0, v0, acc0, dyn_p, cp, dt):
    """LQ on [s, v, acc]: stores the gains in `ref`, then predicts s, v and the path curvature there
    under the limited closed loop.

    Returns:
        The acceleration command of step 0 before limits, m/s^2.
    """
    f, g = _lags(dyn_p[P_TAU_ACC], dt)
    q_s, q_v, r_a, r_j = cp[C_Q_S], cp[C_Q_V], cp[C_R_ACC], cp[C_R_JERK]
    _init_value(mats, q_s, q_v, -q_s * ref[n, R_S], -q_v * ref[n, R_V])
    A, B = mats[4:8], mats[12]
    A[0, 0], A[0, 1], A[0, 2] = 1.0, dt, 0.5 * dt * dt * (1 - g)
    A[1, 1], A[1, 2], A[2, 2] = 1.0, dt * (1 - g), 1 - f
    B[0], B[1], B[2] = 0.5 * dt * dt * g, dt * g, f
    mats[16, 0], mats[16, 1], mats[16, 2], mats[17, 2] = q_s, q_v, r_j, -r_j
    for k in range(n - 1, -1, -1):
        mats[15, 0], mats[15, 1] = -q_s * ref[k, R_S], -q_v * ref[k, R_V]
        gains = _riccati_step(mats, 3, r_a + r_j, -r_a * ref[k, R_A])
        ref[k, R_G0], ref[k, R_G0 + 1] = gains[0], gains[1]
        ref[k, R_G0 + 2], ref[k, R_G0 + 3] = gains[2], gains[4]
    s, v, acc, seg = s0, v0, acc0, 0
    window = cp[C_MAX_JERK] * dt / f
    for k in range(n + 1):
        ref[k, R_SP], ref[k, R_VP] = s, v
        ref[k, R_KAPPA], seg = curvature(knots, seg, h, s)  # s never decreases
        if k == n:
            break
        u = ref[k, R_G0] * s + ref[k, R_G0 + 1] * v + ref[k, R_G0 + 2] * acc + ref[k, R_G0 + 3]
        u = min(max(u, acc - window, -dyn_p[P_MAX_BRAKE]), acc + window, dyn_p[P_MAX_ACC])
        v1 = min(max(v + dt * (acc + g * (u - acc)), 0.0), dyn_p[P_MAX_SPEED])
        s += 0.5 * (v + v1) * dt
        v, acc = v1, acc + f * (u - acc)
    return ref[0, R_G0] * s0 + ref[0, R_G0 + 1] * v0 + ref[0, R_G0 + 2] * acc0 + ref[0, R_G0 + 3]


@njit(cache=True)
def _lateral(ref, knots, mats, h, n, e_y, e_psi, rate, steer0, dyn_p, cp, dt):
    """LQ on the path-frame state [e_y, e_psi, course rate, steer] about the predicted speed and arc length.

    The course rate follows gain * mean steering with the lag `_lateral_model` gives at that speed (the
    dynamic bicycle's yaw and sideslip response, which a kinematic model misses and which destabilises
    a kinematic design above about 15 m/s); the steering follows its command with the actuator lag.

    Args:
        e_y, e_psi, rate, steer0: The ego's state now (m, rad, rad/s, rad).

    Returns:
        The steering command of step 0 before limits, rad.
    """
    f_s, g_s = _lags(dyn_p[P_TAU_STEER], dt)
    q_y, q_h, r_d, r_r = cp[C_Q_LAT], cp[C_Q_HEAD], cp[C_R_STEER], cp[C_R_STEER_RATE]
    _init_value(mats, q_y, q_h, 0.0, 0.0)
    A, B, c = mats[4:8], mats[12], mats[13]
    mats[16, 0], mats[16, 1], mats[16, 3], mats[17, 3] = q_y, q_h, r_r, -r_r
    gains = (0.0, 0.0, 0.0, 0.0, 0.0)
    for k in range(n - 1, -1, -1):
        v, kappa = ref[k, R_VP], ref[k, R_KAPPA]
        steer_r, gain, tau = _lateral_model(kappa, v, dyn_p)
        f_w, g_w = _lags(tau, dt)
        e, gb = 0.5 * dt * dt * v, g_w * gain  # mean course rate = (1 - g_w) w + gb * mean steer
        A[0, 0], A[0, 1], A[0, 2], A[0, 3] = 1.0, dt * v, e * (1 - g_w), e * gb * (1 - g_s)
        A[1, 1], A[1, 2], A[1, 3] = 1.0, dt * (1 - g_w), dt * gb * (1 - g_s)
        A[2, 2], A[2, 3], A[3, 3] = 1 - f_w, f_w * gain * (1 - g_s), 1 - f_s
        B[0], B[1], B[2], B[3] = e * gb * g_s, dt * gb * g_s, f_w * gain * g_s, f_s
        c[0], c[1] = -e * v * kappa, -dt * v * kappa
        gains = _riccati_step(mats, 4, r_d + r_r, -r_d * steer_r)
    return gains[0] * e_y + gains[1] * e_psi + gains[2] * rate + gains[3] * steer0 + gains[4]


@njit(cache=True)
def track(row, action, dyn_p, cp, dt, work):
    """Commands that make the ego follow one trajectory action over the next step.

    Args:
        row: (NUM_STATE,) the ego's current state row (read only).
        action: (H * 3,) or (H * 2,) normalised trajectory action (`TrajectoryConfig`).
        dyn_p: (NUM_PARAMS,) vehicle parameters (the controller uses the model it drives).
        cp: (NUM_CTRL_PARAMS,) controller parameters (`controller_params`).
        dt: Step, s.
        work: (rows, WORK_COLS) scratch of `work_shape`, overwritten.

    Returns:
        (accel_cmd m/s^2, steer_cmd rad, flags): commands for `dynamic_step` and the FLAG_* bits.
    """
    h, m = int(cp[C_POSES]), int(cp[C_STEPS])
    n = min(h * m, int(cp[C_PREVIEW]))
    ref, knots, mats = work[: n + 1], work[n + 1 : n + h + 2], work[n + h + 2 : n + h + 2 + MAT_ROWS]
    decode(action, h, cp[C_DERIVED] == 0.0, cp[C_X_SCALE], cp[C_Y_SCALE], knots)
    start_pose(knots, h, m * dt)
    chords(knots, 0, h)
    pchip_slopes(knots, 0, h, m * dt)
    _reference(ref, knots, h, m, n, dt)
    flags = _plan_flags(knots, h, m * dt, row[VX], dyn_p, cp)
    # The ego (the origin) in the frame of the plan's pose 0: along-track, lateral and course errors.
    c0, s0 = math.cos(knots[0, K_PSI]), math.sin(knots[0, K_PSI])
    vx, acc0, steer0 = row[VX], row[ACC], row[STEER]
    e_psi = wrap_angle((math.atan2(row[VY], vx) if vx > 0.1 else 0.0) - knots[0, K_PSI])
    e_s = -knots[0, K_X] * c0 - knots[0, K_Y] * s0
    # The LQ's acceleration is along the path; the tyres' cornering drag (vx' - acc now) is compensated.
    drag = _derivatives(0.0, vx, row[VY], row[YAW_RATE], acc0, steer0, dyn_p, KIN_RELAX_TIME)[3] - acc0
    accel = _longitudinal(ref, knots, mats, h, n, e_s, vx, acc0, dyn_p, cp, dt) - drag
    e_y = knots[0, K_X] * s0 - knots[0, K_Y] * c0
    steer = _lateral(ref, knots, mats, h, n, e_y, e_psi, row[YAW_RATE], steer0, dyn_p, cp, dt)
    # Limits: acceleration and its change over the step, steering, its rate and the lateral acceleration.
    f_a, _ = _lags(dyn_p[P_TAU_ACC], dt)
    f_s, _ = _lags(dyn_p[P_TAU_STEER], dt)
    window = cp[C_MAX_JERK] * dt / f_a
    a_cmd = min(max(accel, acc0 - window, -dyn_p[P_MAX_BRAKE]), acc0 + window, dyn_p[P_MAX_ACC])
    grip, _, _ = _lateral_model(lateral_limit(a_cmd, dyn_p, cp) / max(vx * vx, 1e-6), vx, dyn_p)
    limit = min(dyn_p[P_MAX_STEER], grip)
    rate = dyn_p[P_MAX_STEER_RATE] * dt / f_s
    s_cmd = min(max(min(max(steer, steer0 - rate), steer0 + rate), -limit), limit)
    if abs(a_cmd - accel) > 1e-9 or abs(s_cmd - steer) > 1e-9:
        flags |= FLAG_SATURATED
    return a_cmd, s_cmd, flags


def track_batch(actions, agent, dyn_p, cp, dt, work, cmds, flags):
    """`track` for every (scene, slot): actions (B, C, A), agent rows (B, C, NUM_STATE), work
    (B, C, rows, WORK_COLS); writes cmds (B, C, 2) [accel m/s^2, steer rad] and flags (B, C) int64.
    `track_batch` runs scenes in parallel, `track_batch_serial` in one thread (small B)."""
    for b in prange(actions.shape[0]):
        for c in range(actions.shape[1]):
            a, steer, f = track(agent[b, c], actions[b, c], dyn_p, cp, dt, work[b, c])
            cmds[b, c, 0], cmds[b, c, 1], flags[b, c] = a, steer, f


track_batch_serial, track_batch = serial_and_parallel(track_batch)


def controller_params(trajectory, controller, dt: float = 0.1) -> np.ndarray:
    """(NUM_CTRL_PARAMS,) float64 vector of a `TrajectoryConfig` and a `ControllerConfig`."""
    p = np.zeros(NUM_CTRL_PARAMS)
    p[C_POSES], p[C_STEPS] = trajectory.num_poses, trajectory.steps(dt)
    p[C_PREVIEW] = max(int(round(controller.preview / dt)), 1)
    p[C_X_SCALE], p[C_Y_SCALE] = trajectory.x_scale, trajectory.y_scale
    p[C_DERIVED] = 1.0 if trajectory.heading == "derived" else 0.0
    p[C_Q_LAT], p[C_Q_HEAD] = controller.q_lateral, controller.q_heading
    p[C_R_STEER], p[C_R_STEER_RATE] = controller.r_steer, controller.r_steer_rate
    p[C_Q_S], p[C_Q_V] = controller.q_progress, controller.q_speed
    p[C_R_ACC], p[C_R_JERK] = controller.r_accel, controller.r_jerk
    p[C_MAX_JERK], p[C_MAX_LAT_ACC] = controller.max_jerk, controller.max_lat_acc
    p[C_MARGIN] = controller.feasibility_margin
    return p


def flag_names(flags: int) -> tuple[str, ...]:
    """The names of the limits set in a step's controller flags (`FLAG_NAMES`)."""
    return tuple(name for bit, name in enumerate(FLAG_NAMES) if int(flags) & (1 << bit))


def trajectory_info(flags: int) -> dict:
    """The `info` entries of one step's controller flags, numbers only: ``trajectory_infeasible`` (the
    plan asks more than the vehicle's limits) and ``trajectory_flags`` (the bit mask; `flag_names`
    decodes it)."""
    flags = int(flags)
    return {"trajectory_infeasible": bool(flags & INFEASIBLE), "trajectory_flags": flags}
