"""Vehicle dynamics kernels: a kinematic bicycle and a dynamic bicycle, each with an inverse.

World frame: x/y in metres, heading (yaw) in radians counter-clockwise from +x, dt = 0.1 s. The reference
point of every vehicle is its box centre (taken as the centre of gravity for the dynamic model).

- Kinematic bicycle (background agents, the expert): no sideslip, curvature tan(steer) / wheelbase, no
  reversing. `kinematic_inverse` recovers its actions exactly from consecutive states.
- Dynamic bicycle (the ego, as AlpaSim's planar vehicle): body-frame velocities, first-order actuator lags
  with a steering-rate limit, RK2 sub-steps, and tyres with a grip limit (`_derivatives`):

  * each axle's tyres carry at most mu times the axle's static load (mu g m lr / L front, lf / L rear;
    no load transfer), the front axle FRONT_GRIP (0.9) of it, so the car understeers at the limit;
  * the commanded acceleration is a longitudinal tyre force: drive on the front axle (front-wheel drive),
    braking split by the static loads, each within SLIP_CONTROL (0.9) of the axle's grip (ABS and
    traction control: the wheels never lock or spin, some lateral grip always remains); the front
    axle's forces act in the wheel's frame;
  * each axle's lateral force is the Fiala (brush) curve of its slip angle: cornering stiffness x tan(slip)
    at small slip, saturating smoothly at what the friction circle leaves beside the longitudinal force,
    and held there beyond (a sliding tyre keeps its friction force; no fall-off);
  * stability control: a yaw rate beyond mu g / speed is braked back in ESC_TIME, so a car pushed past
    the limit slides wide instead of spinning;
  * below the blend speeds (over ground) the derivatives blend linearly into the kinematic bicycle's, whose
    acceleration and path curvature are capped to the same grip and which removes sideslip no faster than
    mu g: well-behaved at standstill and in agreement with the kinematic agents at low speed.

  So the car's combined acceleration stays within mu g (measured <= 0.95 mu g at mu 0.5-0.9 under random
  commands, 1.03 mu g at mu 0.2 in the low-speed blend): full steering at 30 m/s gives 0.77 g and slows
  the car to 25.4 m/s in 2 s, where linear tyres gave 5.3 g and 8.5 m/s. `steady_state_steer` is the
  steering that holds a curvature with these tyres (the linear bicycle's understeer at small lateral
  acceleration, growing towards the limit).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alpagym_env.sim.geometry import wrap_angle

# Columns of an agent state row `agent[b, i]`, (8,) float64. VX/VY are body-frame (longitudinal, lateral)
# velocities in m/s; ACC (m/s^2) and STEER (front-wheel angle, rad) are the actual, lagged actuator values.
X, Y, YAW, VX, VY, YAW_RATE, ACC, STEER = range(8)
NUM_STATE = 8

# Indices into the dynamics parameter array `p`, (NUM_PARAMS,) float64; units in `default_params`.
(
    P_MASS,
    P_IZ,
    P_LF,
    P_LR,
    P_CF,
    P_CR,
    P_TAU_ACC,
    P_TAU_STEER,
    P_BLEND_LO,
    P_BLEND_HI,
    P_SUBSTEPS,
    P_MAX_ACC,
    P_MAX_BRAKE,
    P_MAX_STEER,
    P_MAX_STEER_RATE,
    P_MAX_SPEED,
    P_MU,
) = range(17)
NUM_PARAMS = 17

GRAVITY = 9.81  # m/s^2
# Share of mu times its static load the front axle can carry (the rear carries all of it): the front
# saturates first, so the car understeers at the limit (as road cars are set up, e.g. by roll stiffness).
FRONT_GRIP = 0.9
# Largest share of an axle's grip its longitudinal force takes (ABS and traction control).
SLIP_CONTROL = 0.9
# Time (s) in which stability control brakes a yaw rate beyond the grip's (mu g / speed) back.
ESC_TIME = 0.1

# Below this mean speed (m/s) a yaw change says nothing reliable about steering: `kinematic_inverse`
# returns 0 and `dynamic_inverse` holds the current steering.
MIN_INVERSE_SPEED = 0.05
# Time constant (s) with which the kinematic part pulls VY to 0 and YAW_RATE to the kinematic yaw rate;
# never shorter than one sub-step, which keeps RK2 stable.
KIN_RELAX_TIME = 0.02
# `dynamic_inverse` gains: time (s) in which a lateral / along-track offset from the log is steered back,
# fraction of the heading change to the next logged pose asked for in one step, and the speed (m/s)
# above which that fraction falls as 1 / speed (the lateral dynamics slow down as speed grows).
LATERAL_TIME = 0.5
LONGITUDINAL_TIME = 1.0
YAW_GAIN = 0.6
YAW_GAIN_SPEED = 20.0
# Largest heading correction (rad) `dynamic_inverse` makes towards the logged path.
MAX_POSITION_CORRECTION = 0.1
# Fraction of the steady-state grip limit `dynamic_inverse` asks for at most.
INVERSE_GRIP = 0.8
# Smallest wheelbase (m) given to tiny agents (pedestrians), so curvatures stay finite.
MIN_WHEELBASE = 0.5


def default_params():
    """Ford-Fusion-like dynamic bicycle parameters, (NUM_PARAMS,) float64.

    Mass 1750 kg with driver, yaw inertia 2900 kg m^2, CoG 1.2 m behind the front and 1.6 m ahead of the
    rear axle (2.8 m wheelbase), 80 kN/rad cornering stiffness per axle (understeering, gradient
    about 0.0031 rad/(m/s^2)), 0.1 s acceleration and steering lags, kinematic blend between 3 and 5 m/s,
    10 RK2 sub-steps per step (10 ms, as AlpaSim), accelerations in [-6, 3] m/s^2 (firm but comfortable
    braking, not an emergency stop), front-wheel steering within +-0.5 rad at up to 0.7 rad/s, 40 m/s top
    speed, friction coefficient 0.9 (dry asphalt).
    """
    p = np.zeros(NUM_PARAMS)
    p[P_MASS], p[P_IZ], p[P_LF], p[P_LR] = 1750.0, 2900.0, 1.2, 1.6
    p[P_CF], p[P_CR] = 80000.0, 80000.0
    p[P_TAU_ACC], p[P_TAU_STEER] = 0.1, 0.1
    p[P_BLEND_LO], p[P_BLEND_HI] = 3.0, 5.0
    p[P_SUBSTEPS] = 10.0
    p[P_MAX_ACC], p[P_MAX_BRAKE] = 3.0, 6.0
    p[P_MAX_STEER], p[P_MAX_STEER_RATE] = 0.5, 0.7
    p[P_MAX_SPEED] = 40.0
    p[P_MU] = 0.9
    return p


def wheelbase_from_length(length):
    """Wheelbase of a background agent from its box length: 0.6 * length, at least 0.5 m.

    A 4.8 m car gets 2.88 m (a Ford Fusion has 2.85 m); a 12 m bus 7.2 m.

    Args:
        length: Box length(s), metres, scalar or array.

    Returns:
        float64 array of the same shape, metres.
    """
    return np.maximum(0.6 * np.asarray(length, dtype=np.float64), MIN_WHEELBASE)


@njit(cache=True)
def kinematic_step(x, y, yaw, v, accel, steer, wheelbase, dt):
    """One step of the kinematic bicycle about the box centre.

    Speed never goes below 0: braking to rest mid-step acts as the effective acceleration (v1 - v) / dt,
    which keeps the step exactly invertible by `kinematic_inverse`. Position moves at the mean speed along
    the mean heading, so constant speed and steering trace a circle exactly.

    Args:
        x, y: Position, m. yaw: Heading, rad. v: Speed, m/s (>= 0).
        accel: Acceleration, m/s^2. steer: Steering angle, rad (curvature tan(steer) / wheelbase).
        wheelbase: m (> 0). dt: Step, s.

    Returns:
        (x1, y1, yaw1, v1), yaw1 wrapped to (-pi, pi].
    """
    v1 = max(v + accel * dt, 0.0)
    vm = 0.5 * (v + v1)
    dyaw = vm * math.tan(steer) / wheelbase * dt
    mid = yaw + 0.5 * dyaw
    return x + vm * math.cos(mid) * dt, y + vm * math.sin(mid) * dt, wrap_angle(yaw + dyaw), v1


@njit(cache=True)
def kinematic_inverse(x0, y0, yaw0, v0, x1, y1, yaw1, v1, wheelbase, dt):
    """Action between two consecutive states of the kinematic bicycle (inverse of `kinematic_step`).

    Positions are not used (the arguments mirror the forward step): acceleration comes from the speeds,
    steering from the wrapped heading change over the mean speed. Steering is 0 when the mean speed is
    below `MIN_INVERSE_SPEED`.

    Returns:
        (accel, steer) in m/s^2 and rad.
    """
    accel = (v1 - v0) / dt
    vm = 0.5 * (v0 + v1)
    if vm < MIN_INVERSE_SPEED:
        return accel, 0.0
    return accel, math.atan(wheelbase * wrap_angle(yaw1 - yaw0) / (vm * dt))


@njit(cache=True)
def log_speed(heading, vx, vy):
    """Forward speed of a logged agent, m/s: its world velocity projected on its heading, at least 0."""
    return max(vx * math.cos(heading) + vy * math.sin(heading), 0.0)


@njit(cache=True)
def kinematic_inverse_log(traj, valid, wheelbase, dt, out):
    """Kinematic actions of logged agents.

    Args:
        traj: (N, T, 5) logs [x, y, heading, vx_world, vy_world] in m, rad, m/s.
        valid: (N, T) bool.
        wheelbase: (N,) m.
        dt: Log step, s.
        out: (N, T - 1, 2) output [accel, steer] (m/s^2, rad); zeros where either step is invalid.
    """
    for i in range(traj.shape[0]):
        for t in range(traj.shape[1] - 1):
            if not (valid[i, t] and valid[i, t + 1]):
                out[i, t, 0] = 0.0
                out[i, t, 1] = 0.0
                continue
            a, b = traj[i, t], traj[i, t + 1]
            out[i, t, 0], out[i, t, 1] = kinematic_inverse(
                a[0], a[1], a[2], log_speed(a[2], a[3], a[4]),
                b[0], b[1], b[2], log_speed(b[2], b[3], b[4]),
                wheelbase[i], dt,
            )  # fmt: skip


@njit(cache=True)
def kinematic_rollout(x0, actions, wheelbase, dt, out):
    """Rolls the kinematic bicycle out from initial states.

    Args:
        x0: (N, 4) initial [x, y, yaw, v] in m, rad, m/s.
        actions: (N, T - 1, 2) [accel, steer] in m/s^2, rad.
        wheelbase: (N,) m.
        dt: Step, s.
        out: (N, T, 4) output states [x, y, yaw, v]; out[:, 0] = x0.
    """
    for i in range(x0.shape[0]):
        x, y, yaw, v = x0[i, 0], x0[i, 1], x0[i, 2], x0[i, 3]
        out[i, 0, 0], out[i, 0, 1], out[i, 0, 2], out[i, 0, 3] = x, y, yaw, v
        for t in range(actions.shape[1]):
            x, y, yaw, v = kinematic_step(x, y, yaw, v, actions[i, t, 0], actions[i, t, 1], wheelbase[i], dt)
            out[i, t + 1, 0], out[i, t + 1, 1], out[i, t + 1, 2], out[i, t + 1, 3] = x, y, yaw, v


@njit(cache=True)
def _blend_weight(vx, lo, hi):
    """Weight of the dynamic model: 0 below lo, 1 above hi, linear between (m/s)."""
    if vx <= lo:
        return 0.0
    if vx >= hi:
        return 1.0
    return (vx - lo) / (hi - lo)


@njit(cache=True)
def _fiala(num, den, stiffness, fmax):
    """Brush (Fiala) lateral force of one axle, N, for the slip angle whose tangent is num / den.

    stiffness * tan(slip) at small slip, bending smoothly (C1) to fmax, which it reaches at
    tan|slip| = 3 fmax / stiffness and holds beyond (a sliding tyre keeps its friction force). With
    x = min(stiffness |tan slip| / (3 fmax), 1) the force is fmax (1 - (1 - x)^3) in the slip's direction.
    den <= 0 is a slip beyond 90 degrees (sliding, in the direction of num). Tangents, not angles: no
    trigonometric call in the tyre model.
    """
    if fmax <= 0.0:
        return 0.0
    a = stiffness * abs(num)
    f = fmax
    if den > 0.0 and a < 3.0 * fmax * den:
        f = fmax * (1.0 - (1.0 - a / (3.0 * fmax * den)) ** 3)
    return math.copysign(f, num)


@njit(cache=True)
def _fiala_slip(force, stiffness, fmax):
    """Slip angle (rad) at which `_fiala` gives `force` (N); the sliding limit's where |force| >= fmax."""
    u = min(abs(force) / fmax, 1.0)
    a = math.atan(3.0 * fmax * (1.0 - (1.0 - u) ** (1.0 / 3.0)) / stiffness)
    return a if force >= 0.0 else -a


@njit(cache=True)
def steady_state_steer(kappa, v, p):
    """Front-wheel angle (rad) that holds curvature kappa (1/m) at speed v (m/s) in a steady turn.

    The kinematic angle atan(L kappa) plus, weighted by the blend, the slip-angle difference of the two
    axles' Fiala tyres carrying the turn's lateral force (m v^2 kappa split by the static loads, no
    longitudinal force): the linear bicycle's understeer m / L (lr / Cf - lf / Cr) v^2 kappa at small
    lateral acceleration, growing towards the grip limit (curvatures beyond it get the front's sliding
    slip: the car cannot hold them).
    """
    lf, lr, m = p[P_LF], p[P_LR], p[P_MASS]
    wheelbase = lf + lr
    steer = math.atan(wheelbase * kappa)
    w = _blend_weight(v, p[P_BLEND_LO], p[P_BLEND_HI])
    if w > 0.0:
        fy = m * v * v * kappa / wheelbase  # times lr on the front axle, lf on the rear
        mu_g = p[P_MU] * GRAVITY
        front = _fiala_slip(fy * lr, p[P_CF], FRONT_GRIP * mu_g * m * lr / wheelbase)
        steer += w * (front - _fiala_slip(fy * lf, p[P_CR], mu_g * m * lf / wheelbase))
    return steer


@njit(cache=True)
def _derivatives(yaw, vx, vy, r, acc, steer, p, relax):
    """Time derivatives of (x, y, yaw, vx, vy, yaw_rate) of the blended bicycle.

    The kinematic part moves along the heading with yaw rate vx tan(steer) / L and relaxes vy to 0 and
    the yaw-rate state to the kinematic one (time constant `relax`); its acceleration and curvature are
    capped to the grip (`mu g` combined). The dynamic part is the bicycle with brush tyres: the
    acceleration `acc` becomes longitudinal tyre forces (drive on the front axle, braking split by the
    static axle loads, each within mu times the axle's load), each axle's lateral force is the Fiala
    curve of its slip angle (bounded at any slip, sliding beyond 90 degrees) saturating at what the
    friction circle leaves beside its longitudinal force, and the front axle's forces act in the wheel's
    frame.
    """
    vx = max(vx, 0.0)  # the RK2 midpoint of a braking step may dip below 0
    m, lf, lr = p[P_MASS], p[P_LF], p[P_LR]
    wheelbase = lf + lr
    mu_g = p[P_MU] * GRAVITY
    # Kinematic part: no slip, so the tyres must supply the path's acceleration; cap it at the grip.
    # Front-wheel drive; ABS and traction control keep each tyre's longitudinal force within SLIP_CONTROL
    # of its grip (a locked or spinning wheel would lose all lateral grip).
    acc_kin = min(max(acc, -SLIP_CONTROL * mu_g), SLIP_CONTROL * FRONT_GRIP * mu_g * lr / wheelbase)
    cos_s, sin_s = math.cos(steer), math.sin(steer)
    tan_s = sin_s / cos_s
    r_kin = vx * tan_s / wheelbase
    lat2 = mu_g * mu_g - acc_kin * acc_kin
    if (vx * r_kin) ** 2 > lat2:
        r_kin = math.copysign(math.sqrt(max(lat2, 0.0)) / vx, r_kin)
    # The blend follows the speed over ground, so a car sliding sideways stays dynamic; the kinematic part
    # removes sideslip no faster than the grip allows.
    speed = math.sqrt(vx * vx + vy * vy)
    w = _blend_weight(speed, p[P_BLEND_LO], p[P_BLEND_HI])
    dvx, dvy, dr = acc_kin, min(max(-vy / relax, -mu_g), mu_g), (r_kin - r) / relax
    yaw_rate = r_kin
    if w > 0.0:
        cap_f = FRONT_GRIP * mu_g * m * lr / wheelbase  # mu times the static axle loads, N
        cap_r = mu_g * m * lf / wheelbase
        if acc >= 0.0:
            fx_f, fx_r = min(m * acc, SLIP_CONTROL * cap_f), 0.0
        else:
            fx_f = max(m * acc * lr / wheelbase, -SLIP_CONTROL * cap_f)
            fx_r = max(m * acc * lf / wheelbase, -SLIP_CONTROL * cap_r)
        # Slip angles steer - atan((vy + lf r) / vx) and -atan((vy - lr r) / vx), as tangent fractions.
        vf = vy + lf * r
        fy_f = _fiala(
            tan_s * vx - vf, vx + tan_s * vf, p[P_CF], math.sqrt(max(cap_f * cap_f - fx_f * fx_f, 0.0))
        )
        fy_r = _fiala(lr * r - vy, vx, p[P_CR], math.sqrt(max(cap_r * cap_r - fx_r * fx_r, 0.0)))
        lat_f = fx_f * sin_s + fy_f * cos_s  # front axle force across the body, N
        dvx = w * ((fx_f * cos_s - fy_f * sin_s + fx_r) / m + vy * r) + (1.0 - w) * dvx
        dvy = w * ((lat_f + fy_r) / m - vx * r) + (1.0 - w) * dvy
        yaw_acc = (lf * lat_f - lr * fy_r) / p[P_IZ]
        # Stability control: a yaw rate beyond what the grip can turn the path at, mu g / speed, is braked
        # back in ESC_TIME (as braking single wheels does), so the car slides wide instead of spinning.
        excess = abs(r) - mu_g / max(speed, p[P_BLEND_HI])
        if excess > 0.0:
            yaw_acc -= math.copysign(excess / ESC_TIME, r)
        dr = w * yaw_acc + (1.0 - w) * dr
        yaw_rate = w * r + (1.0 - w) * r_kin
    c, s = math.cos(yaw), math.sin(yaw)
    return vx * c - vy * s, vx * s + vy * c, yaw_rate, dvx, dvy, dr


@njit(cache=True)
def _lag_factor(tau, h):
    """Fraction of the gap to the command a first-order lag closes in h seconds (1 when tau <= 0)."""
    if tau <= 0.0:
        return 1.0
    return 1.0 - math.exp(-h / tau)


@njit(cache=True)
def _integrate(x, y, yaw, vx, vy, r, acc, steer, acc_cmd, steer_cmd, p, dt):
    """Advances the dynamic bicycle by dt; returns the 8 new state values (column order of the row).

    Actuators follow their commands with an exact first-order lag per sub-step (the steering change
    capped by the rate limit); the body uses the RK2 midpoint rule with the actuators' mean over the
    sub-step.
    """
    n = max(int(p[P_SUBSTEPS]), 1)
    h = dt / n
    relax = max(KIN_RELAX_TIME, h)
    f_acc, f_steer = _lag_factor(p[P_TAU_ACC], h), _lag_factor(p[P_TAU_STEER], h)
    max_dsteer = p[P_MAX_STEER_RATE] * h
    for _ in range(n):
        acc1 = acc + (acc_cmd - acc) * f_acc
        steer1 = steer + min(max((steer_cmd - steer) * f_steer, -max_dsteer), max_dsteer)
        k = _derivatives(yaw, vx, vy, r, acc, steer, p, relax)
        hh = 0.5 * h
        k = _derivatives(
            yaw + hh * k[2], vx + hh * k[3], vy + hh * k[4], r + hh * k[5],
            0.5 * (acc + acc1), 0.5 * (steer + steer1), p, relax,
        )  # fmt: skip
        x, y, yaw = x + h * k[0], y + h * k[1], yaw + h * k[2]
        vx = min(max(vx + h * k[3], 0.0), p[P_MAX_SPEED])
        vy, r = vy + h * k[4], r + h * k[5]
        acc, steer = acc1, steer1
    return x, y, wrap_angle(yaw), vx, vy, r, acc, steer


@njit(cache=True)
def dynamic_step(state, accel_cmd, steer_cmd, p, dt):
    """Advances one agent row with the dynamic bicycle, in place.

    Commands are clipped to [-max_brake, max_acc] and [-max_steer, max_steer]; VX stays in
    [0, max_speed] (no reversing: braking at rest moves nothing). Finite inputs give finite states.

    Args:
        state: (NUM_STATE,) float64 row [X, Y, YAW, VX, VY, YAW_RATE, ACC, STEER], updated in place.
        accel_cmd: Commanded acceleration, m/s^2.
        steer_cmd: Commanded front-wheel angle, rad.
        p: (NUM_PARAMS,) dynamics parameters.
        dt: Step, s.
    """
    a = min(max(accel_cmd, -p[P_MAX_BRAKE]), p[P_MAX_ACC])
    d = min(max(steer_cmd, -p[P_MAX_STEER]), p[P_MAX_STEER])
    (
        state[X], state[Y], state[YAW], state[VX],
        state[VY], state[YAW_RATE], state[ACC], state[STEER],
    ) = _integrate(
        state[X], state[Y], state[YAW], state[VX],
        state[VY], state[YAW_RATE], state[ACC], state[STEER], a, d, p, dt,
    )  # fmt: skip


@njit(cache=True)
def _lag_command(actual, target, tau, dt, mean):
    """Constant command for a first-order lag starting at `actual`.

    With `mean` False the response ends the step at `target`; with `mean` True its mean over the step
    equals `target`.
    """
    f = _lag_factor(tau, dt)
    if mean and tau > 0.0:
        f = 1.0 - tau / dt * f  # 1 - mean of exp(-t / tau) over the step
    return actual + (target - actual) / f


@njit(cache=True)
def dynamic_inverse(state, next_x, next_y, next_yaw, next_speed, p, dt):
    """Approximate commands that drive the dynamic bicycle from `state` towards the next logged pose.

    1. Speed target: next_speed, corrected for the along-track offset from the logged position in
       LONGITUDINAL_TIME. The acceleration that reaches it, (target - vx) / dt, is compensated for the
       model's cornering drag (vx' - acc at the current state).
    2. Heading target: next_yaw, turned towards the logged path by atan(-lateral / (v LATERAL_TIME)) (at
       most MAX_POSITION_CORRECTION), lateral being the offset from the line through the next pose; this
       also absorbs the sideslip that a slip-free log does not have.
    3. Yaw rate: a fraction of (heading change) / dt, YAW_GAIN up to YAW_GAIN_SPEED and YAW_GAIN *
       YAW_GAIN_SPEED / v above, its curvature capped at INVERSE_GRIP of the front tyres' grip, turned
       into a steering angle by `steady_state_steer` (the kinematic bicycle plus the tyres' understeer,
       weighted by the blend). A one-step (deadbeat)
       heading inverse is unstable at highway speed: the steering lag and the lateral dynamics raise the
       relative degree, so its sampling zeros leave the unit circle.
    4. Inverse of the first-order lags: the steering command whose lagged response has that mean over the
       step, the acceleration command whose response ends the step at the target. Clipped to the limits.

    With the default parameters the closed loop with `dynamic_step` is stable from 0 to 40 m/s (spectral
    radius <= 0.93 on a straight log) and recovers from a 1 m / 0.05 rad offset. Much slower steering
    (rate, lag) or large offsets can drive the rate-limited steering into a limit cycle, and so can a log
    that turns faster than the steering rate allows (tight intersection turns near the blend speeds): it
    looks one step ahead only. The behaviour-cloning labels (`alpagym_env.dataset`) therefore come from
    the tracking controller over the logged future; closed-loop tracking of arbitrary plans belongs to a
    controller, this is a one-step inverse for logs.

    Args:
        state: (NUM_STATE,) current row. next_x, next_y: m. next_yaw: rad. next_speed: m/s.
        p: (NUM_PARAMS,) parameters. dt: Step, s.

    Returns:
        (accel_cmd, steer_cmd) in m/s^2 and rad.
    """
    v0, yaw0, steer = state[VX], state[YAW], state[STEER]
    c, s = math.cos(next_yaw), math.sin(next_yaw)
    ex, ey = state[X] - next_x, state[Y] - next_y
    v1 = max(next_speed, 0.0)
    vm = 0.5 * (v0 + v1)
    if vm >= MIN_INVERSE_SPEED:
        ahead = ex * c + ey * s + vm * dt  # along-track offset from where the log is now
        v1 = max(v1 - ahead / LONGITUDINAL_TIME, 0.0)
        lateral = -ex * s + ey * c
        fix = min(
            max(-math.atan(lateral / (vm * LATERAL_TIME)), -MAX_POSITION_CORRECTION), MAX_POSITION_CORRECTION
        )
        gain = YAW_GAIN * min(1.0, YAW_GAIN_SPEED / vm)
        kappa = gain * wrap_angle(next_yaw + fix - yaw0) / (vm * dt)
        lat = INVERSE_GRIP * FRONT_GRIP * p[P_MU] * GRAVITY / (vm * vm)  # the grip's curvature, 1/m
        steer = steady_state_steer(min(max(kappa, -lat), lat), vm, p)
    k = _derivatives(yaw0, v0, state[VY], state[YAW_RATE], state[ACC], state[STEER], p, KIN_RELAX_TIME)
    accel = (v1 - v0) / dt - (k[3] - state[ACC])
    accel_cmd = _lag_command(state[ACC], accel, p[P_TAU_ACC], dt, False)
    steer_cmd = _lag_command(state[STEER], steer, p[P_TAU_STEER], dt, True)
    accel_cmd = min(max(accel_cmd, -p[P_MAX_BRAKE]), p[P_MAX_ACC])
    return accel_cmd, min(max(steer_cmd, -p[P_MAX_STEER]), p[P_MAX_STEER])
