"""Known-answer tests of the kinematic and dynamic bicycle kernels and their inverses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpagym_env.sim import dynamics as d

DT = 0.1
WHEELBASE = 2.8  # lf + lr of the defaults


def _state(vx=0.0, yaw=0.0, acc=0.0, steer=0.0):
    s = np.zeros(d.NUM_STATE)
    s[d.YAW], s[d.VX], s[d.ACC], s[d.STEER] = yaw, vx, acc, steer
    return s


def _kinematic_log(x0, accel, steer):
    """(T, 4) states [x, y, yaw, v] from kinematic_step, T = len(accel) + 1."""
    out = [tuple(x0)]
    for a, s in zip(accel, steer, strict=True):
        out.append(d.kinematic_step(*out[-1], a, s, WHEELBASE, DT))
    return np.array(out)


def _to_traj(states):
    """(T, 4) [x, y, yaw, v] -> (T, 5) log rows [x, y, heading, vx_world, vy_world]."""
    x, y, yaw, v = states.T
    return np.stack([x, y, yaw, v * np.cos(yaw), v * np.sin(yaw)], axis=1)


def test_default_params():
    p = d.default_params()
    assert p.shape == (d.NUM_PARAMS,) and p.dtype == np.float64
    assert p[d.P_LF] + p[d.P_LR] == pytest.approx(WHEELBASE)
    assert (p[d.P_SUBSTEPS], p[d.P_TAU_ACC], p[d.P_MAX_BRAKE], p[d.P_MAX_SPEED]) == (10, 0.1, 6.0, 40.0)


def test_wheelbase_from_length():
    np.testing.assert_allclose(d.wheelbase_from_length([4.8, 12.0, 0.5]), [2.88, 7.2, 0.5])


def test_kinematic_constant_steer_traces_the_discrete_circle():
    # Each step is a chord of length v dt turning the heading by theta = v dt tan(steer) / L, so the points
    # lie on a circle of radius R = v dt / (2 sin(theta / 2)) centred at (0, R); R -> L / tan(steer).
    v, steer = 10.0, 0.1
    log = _kinematic_log((0.0, 0.0, 0.0, v), np.zeros(300), np.full(300, steer))
    theta = v * DT * math.tan(steer) / WHEELBASE
    radius = v * DT / (2.0 * math.sin(0.5 * theta))
    np.testing.assert_allclose(np.hypot(log[:, 0], log[:, 1] - radius), radius, rtol=1e-12)
    assert radius == pytest.approx(WHEELBASE / math.tan(steer), rel=theta**2 / 20)
    np.testing.assert_allclose(log[:, 3], v)


@pytest.mark.parametrize("decel", [6.0, 7.0])
def test_kinematic_braking_stops_after_v2_over_2a_and_never_reverses(decel):
    v0 = 20.0
    log = _kinematic_log((0.0, 0.0, 0.0, v0), np.full(80, -decel), np.zeros(80))
    stop = v0**2 / (2.0 * decel)
    # only the step that reaches rest differs from exact constant deceleration: at most decel dt^2 / 8
    assert abs(log[-1, 0] - stop) <= decel * DT**2 / 8.0 + 1e-9
    assert abs(log[-1, 0] - stop) / stop < 0.005
    assert np.all(np.diff(log[:, 0]) >= 0.0) and np.all(log[:, 3] >= 0.0)
    assert log[-1, 3] == 0.0 and log[-30, 0] == log[-1, 0]
    np.testing.assert_array_equal(log[:, 1:3], 0.0)


def test_kinematic_inverse_recovers_the_step_across_the_heading_wrap():
    for yaw in (3.1, -3.1, 0.3):
        for accel, steer in ((1.5, 0.3), (-2.0, -0.45), (0.0, 0.0)):
            state = (1.0, -2.0, yaw, 8.0)
            nxt = d.kinematic_step(*state, accel, steer, WHEELBASE, DT)
            got = d.kinematic_inverse(*state, *nxt, WHEELBASE, DT)
            assert got == pytest.approx((accel, steer), abs=1e-9)
    # braking to rest inside the step: the effective deceleration, which reproduces the step
    assert d.kinematic_inverse(0, 0, 0, 0.3, 0.015, 0, 0, 0.0, WHEELBASE, DT) == pytest.approx((-3.0, 0.0))


def _expert_actions(t):
    """Accelerate, S-curve, brake to rest going straight (from up to 18 m/s), wait, pull away into a turn."""
    accel = np.select([t < 4, t < 10, t < 16, t < 17], [1.5, 0.0, -3.0, 0.0], 2.0)
    steer = np.select([t < 4, t < 10, t < 17], [0.0, 0.03 * np.sin(2 * np.pi * (t - 4) / 6), 0.0], 0.2)
    return accel, steer


def test_inverse_log_then_rollout_reproduces_a_kinematic_log_to_1e_6_m():
    n, steps = 3, 200
    t = np.arange(steps) * DT
    accel, steer = _expert_actions(t)
    starts = [(0.0, 0.0, 0.0, 8.0), (50.0, -20.0, 3.0, 12.0), (-10.0, 5.0, -2.0, 4.0)]
    scales = (1.0, -1.0, 0.5)  # mirrored and gentler S-curves
    traj = np.stack(
        [_to_traj(_kinematic_log(x0, accel, k * steer)) for k, x0 in zip(scales, starts, strict=True)]
    )
    valid = np.ones((n, steps + 1), dtype=bool)
    actions = np.full((n, steps, 2), np.nan)
    d.kinematic_inverse_log(traj, valid, np.full(n, WHEELBASE), DT, actions)
    x0 = np.array(starts)
    out = np.zeros((n, steps + 1, 4))
    d.kinematic_rollout(x0, actions, np.full(n, WHEELBASE), DT, out)
    assert np.abs(out[:, :, :2] - traj[:, :, :2]).max() < 1e-6
    assert traj[0, 150, 3] == 0.0  # the log does stop and restart

    valid[1, 50] = False  # steps 49 and 50 touch an invalid row
    d.kinematic_inverse_log(traj, valid, np.full(n, WHEELBASE), DT, actions)
    np.testing.assert_array_equal(actions[1, 49:51], 0.0)
    assert np.all(actions[1, 51:53, 1] != 0.0)


def test_inverse_log_then_rollout_tracks_a_dense_analytic_log_within_1_cm_over_20_s():
    # speed 10 + 3 sin(0.3 t) m/s, heading 0.4 sin(0.25 t) + 0.02 t rad, positions integrated on a 0.5 ms
    # grid and sampled at 10 Hz. Measured 2.7 mm; 1 cm leaves room.
    steps, fine = 200, 200
    tt = np.linspace(0.0, steps * DT, steps * fine + 1)
    v, heading = 10.0 + 3.0 * np.sin(0.3 * tt), 0.4 * np.sin(0.25 * tt) + 0.02 * tt
    vx, vy = v * np.cos(heading), v * np.sin(heading)
    h = tt[1] - tt[0]
    x = np.concatenate([[0.0], np.cumsum(0.5 * (vx[1:] + vx[:-1]) * h)])
    y = np.concatenate([[0.0], np.cumsum(0.5 * (vy[1:] + vy[:-1]) * h)])
    traj = np.stack([x, y, heading, vx, vy], axis=1)[::fine][None]
    actions = np.zeros((1, steps, 2))
    d.kinematic_inverse_log(traj, np.ones((1, steps + 1), bool), np.array([WHEELBASE]), DT, actions)
    out = np.zeros((1, steps + 1, 4))
    d.kinematic_rollout(np.array([[0.0, 0.0, 0.0, 10.0]]), actions, np.array([WHEELBASE]), DT, out)
    assert np.hypot(*(out[0, :, :2] - traj[0, :, :2]).T).max() < 0.01


def test_log_speed_is_the_forward_projection_without_reversing():
    assert d.log_speed(0.5 * math.pi, 0.0, 3.0) == pytest.approx(3.0)
    assert d.log_speed(0.0, 3.0, 4.0) == pytest.approx(3.0)
    assert d.log_speed(0.0, -2.0, 0.0) == 0.0


def test_dynamic_steady_state_yaw_rate_matches_the_understeer_formula():
    # Linear range (0.07 g): the linear bicycle's understeer; 0.3 g: the Fiala tyres' `steady_state_steer`.
    p = d.default_params()
    k_us = p[d.P_MASS] / WHEELBASE * (p[d.P_LR] / p[d.P_CF] - p[d.P_LF] / p[d.P_CR])
    for steer, rel in ((0.005, 0.02), (0.02, 0.01)):
        s = _state(vx=25.0, steer=steer)
        for _ in range(50):
            d.dynamic_step(s, 0.0, steer, p, DT)
        if steer < 0.01:
            expected = s[d.VX] * steer / (WHEELBASE + k_us * s[d.VX] ** 2)  # about half the kinematic rate
            assert s[d.YAW_RATE] == pytest.approx(expected, rel=rel)
        kappa = s[d.YAW_RATE] / s[d.VX]
        assert d.steady_state_steer(kappa, s[d.VX], p) == pytest.approx(steer, rel=rel)
        assert s[d.VY] < 0.0  # the CoG slips outwards at speed


def _accelerations(p, v0, commands, dt=0.01):
    """Drives the dynamic bicycle (one sub-step per dt) through `commands` ((accel, steer) per dt); returns
    the final state and the ground accelerations (K, 2) [along, across the velocity], m/s^2."""
    p = p.copy()
    p[d.P_SUBSTEPS] = 1.0
    s, vel = _state(vx=v0), []
    for a, st in commands:
        d.dynamic_step(s, a, st, p, dt)
        c, sn = math.cos(s[d.YAW]), math.sin(s[d.YAW])
        vel.append((s[d.VX] * c - s[d.VY] * sn, s[d.VX] * sn + s[d.VY] * c))
    vel = np.array(vel)
    acc, v = np.diff(vel, axis=0) / dt, vel[1:]
    speed = np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)
    along = (acc * v).sum(axis=1) / speed
    return s, np.stack([along, (v[:, 0] * acc[:, 1] - v[:, 1] * acc[:, 0]) / speed], axis=1)


def test_low_speed_turning_radius_is_wheelbase_over_tan_steer():
    p = d.default_params()
    for v, steer in ((1.0, 0.5), (2.5, 0.3), (2.5, -0.1)):
        s = _state(vx=v, steer=steer)
        for _ in range(20):
            d.dynamic_step(s, 0.0, steer, p, DT)
        assert s[d.VX] / s[d.YAW_RATE] == pytest.approx(WHEELBASE / math.tan(steer), rel=1e-9)


def test_cornering_saturates_near_mu_g_and_more_steering_gives_no_more():
    # Steering held 3 s, no throttle. Measured lateral acceleration at the end (in mu g), 25 m/s: 0.58,
    # 0.81, 0.86, 0.87, 0.85, 0.77 for 0.05 ... 0.5 rad: it saturates near the front axle's grip
    # (FRONT_GRIP mu g) and beyond it the front slides (understeer), scrubbing speed instead.
    p = d.default_params()
    mu_g = p[d.P_MU] * d.GRAVITY
    lat = {}
    for steer in (0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
        s, a = _accelerations(p, 25.0, [(0.0, steer)] * 300)
        lat[steer] = a[-1, 1]
        assert np.all(np.hypot(a[:, 0], a[:, 1]) < mu_g)
        assert abs(math.atan2(s[d.VY], s[d.VX])) < 0.15  # no spin: sideslip stays small
    assert 0.85 * mu_g < max(lat.values()) < mu_g
    assert lat[0.5] < lat[0.3] < lat[0.2] * 1.01


def test_full_steer_at_30_m_s_neither_exceeds_the_grip_nor_brakes_harder_than_the_brakes():
    # Before the tyres had a grip limit: 5.3 g and 30 -> 8.5 m/s in 2 s. Measured: 0.77 g, 25.4 m/s.
    p = d.default_params()
    mu_g = p[d.P_MU] * d.GRAVITY
    s, a = _accelerations(p, 30.0, [(0.0, p[d.P_MAX_STEER])] * 200)
    assert np.hypot(a[:, 0], a[:, 1]).max() < mu_g
    assert s[d.VX] > 30.0 - p[d.P_MAX_BRAKE] * 2.0 + 4.0 and -a[:, 0].max() < p[d.P_MAX_BRAKE]


def test_braking_while_turning_stays_inside_the_friction_circle():
    p = d.default_params()
    mu_g = p[d.P_MU] * d.GRAVITY
    for steer in (0.1, 0.3, 0.5):
        s, a = _accelerations(p, 20.0, [(-p[d.P_MAX_BRAKE], steer)] * 400)
        assert np.hypot(a[:, 0], a[:, 1]).max() < mu_g and s[d.VX] == 0.0
        assert a[:150, 0].min() < -0.5 * mu_g  # it does brake, and turns: both share the circle


@pytest.mark.parametrize("mu, tol", [(0.9, 1.0), (0.5, 1.0), (0.2, 1.05)])
def test_combined_acceleration_never_exceeds_mu_g_under_random_commands(mu, tol):
    # Commands held 0.3 s, drawn at random, full steering reversals included, 0-40 m/s. Measured largest
    # |acceleration| / mu g over 8 x 30 s: 0.91 dry, 0.95 at mu 0.5, 1.03 at mu 0.2 (where the kinematic
    # blend below 5 m/s takes the sideslip out at mu g on top of the path's own acceleration).
    p = d.default_params()
    p[d.P_MU] = mu
    rng = np.random.default_rng(0)
    for _ in range(8):
        commands = []
        for _ in range(100):
            steer = rng.choice([-0.5, 0.5, rng.uniform(-0.5, 0.5)])
            commands += [(rng.uniform(-7.0, 4.0), steer)] * 30
        _, a = _accelerations(p, rng.uniform(0.0, 40.0), commands)
        assert np.hypot(a[:, 0], a[:, 1]).max() < tol * mu * d.GRAVITY


def test_the_expert_logs_stay_well_inside_the_grip():
    from alpagym_env.scenarios.expert_kernel import A_LAT_MAX

    p = d.default_params()
    assert A_LAT_MAX < 0.25 * d.FRONT_GRIP * p[d.P_MU] * d.GRAVITY


def test_dynamic_braking_at_standstill_moves_nothing():
    p = d.default_params()
    s = _state(yaw=1.0, steer=0.3)
    for _ in range(30):
        d.dynamic_step(s, -100.0, 0.5, p, DT)
    assert np.all(np.isfinite(s))
    assert (s[d.X], s[d.Y], s[d.YAW], s[d.VX], s[d.VY], s[d.YAW_RATE]) == (0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    assert s[d.ACC] == pytest.approx(-p[d.P_MAX_BRAKE]) and s[d.STEER] == pytest.approx(0.5)


def test_dynamic_stays_finite_under_extreme_steering_at_35_m_s():
    p = d.default_params()
    wild = p.copy()
    wild[d.P_MAX_STEER], wild[d.P_MAX_STEER_RATE] = 1.5, 100.0
    for params in (p, wild):
        s = _state(vx=35.0)
        for i in range(100):
            d.dynamic_step(s, 3.0, 10.0 if (i // 7) % 2 else -10.0, params, DT)
            assert np.all(np.isfinite(s))
            assert 0.0 <= s[d.VX] <= params[d.P_MAX_SPEED]


def test_actuator_lag_reaches_63_percent_after_tau_and_steering_is_rate_limited():
    p = d.default_params()
    s = _state(vx=10.0)
    d.dynamic_step(s, 2.0, 0.05, p, DT)  # dt == tau; 0.05 rad asks for at most 0.5 rad/s < 0.7
    assert s[d.ACC] == pytest.approx(2.0 * (1.0 - math.exp(-1.0)), rel=1e-12)
    assert s[d.STEER] == pytest.approx(0.05 * (1.0 - math.exp(-1.0)), rel=1e-12)
    s = _state(vx=10.0)
    d.dynamic_step(s, 0.0, 0.5, p, DT)
    assert s[d.STEER] == pytest.approx(p[d.P_MAX_STEER_RATE] * DT, rel=1e-12)


def test_dynamic_top_speed_and_command_clipping():
    p = d.default_params()
    s = _state(vx=39.0)
    for _ in range(30):
        d.dynamic_step(s, 50.0, 0.0, p, DT)
    assert s[d.VX] == p[d.P_MAX_SPEED] and s[d.ACC] == pytest.approx(p[d.P_MAX_ACC])


def test_dynamic_below_3_m_s_matches_the_kinematic_bicycle():
    p = d.default_params()
    s, k = _state(vx=2.0, acc=0.5, steer=0.3), (0.0, 0.0, 0.0, 2.0)
    for _ in range(10):  # 2 -> 2.5 m/s on a 9 m radius
        d.dynamic_step(s, 0.5, 0.3, p, DT)
        k = d.kinematic_step(*k, 0.5, 0.3, WHEELBASE, DT)
        assert math.hypot(s[d.X] - k[0], s[d.Y] - k[1]) < 1e-3  # measured 6e-5 m
        assert s[d.YAW] == pytest.approx(k[2], abs=1e-9) and s[d.VX] == pytest.approx(k[3], abs=1e-9)
    s, k = _state(vx=2.0, acc=-2.0, steer=0.2), (0.0, 0.0, 0.0, 2.0)
    for _ in range(20):  # braking to rest in 1 s, then holding
        d.dynamic_step(s, -2.0, 0.2, p, DT)
        k = d.kinematic_step(*k, -2.0, 0.2, WHEELBASE, DT)
    assert math.hypot(s[d.X] - k[0], s[d.Y] - k[1]) < 1e-4 and s[d.VX] == 0.0 == k[3]


def _track(log, state, p):
    """Closes the loop dynamic_inverse -> dynamic_step on a log of rows [x, y, yaw, speed, ...]."""
    err = []
    for row in log[1:]:
        d.dynamic_step(state, *d.dynamic_inverse(state, row[0], row[1], row[2], row[3], p, DT), p, DT)
        err.append(math.hypot(state[d.X] - row[0], state[d.Y] - row[1]))
    return np.array(err)


def test_dynamic_inverse_one_step_under_5_mm_and_closed_loop_under_0_4_m_on_a_dynamic_log():
    # The log comes from dynamic_step with smooth commands (lateral acceleration up to 2.4 m/s^2), so every
    # logged state is consistent. Measured: one step <= 2.6 mm; closed loop over 20 s 0.01 m at 4 m/s,
    # 0.07 m at 10 m/s, 0.29 m at 30 m/s.
    p = d.default_params()
    t = np.arange(200) * DT
    for v0 in (4.0, 10.0, 30.0):
        s, log = _state(vx=v0), []
        for i in range(200):
            log.append(s.copy())
            d.dynamic_step(
                s, np.sin(2 * np.pi * t[i] / 8), 0.04 * np.sin(2 * np.pi * t[i] / 6) * min(1, 10 / v0), p, DT
            )
        log = np.array(log)
        for i in range(len(log) - 1):
            s = log[i].copy()
            nxt = log[i + 1]
            d.dynamic_step(s, *d.dynamic_inverse(s, nxt[d.X], nxt[d.Y], nxt[d.YAW], nxt[d.VX], p, DT), p, DT)
            assert math.hypot(s[d.X] - nxt[d.X], s[d.Y] - nxt[d.Y]) < 0.005
        assert _track(log, log[0].copy(), p).max() < 0.4


def test_dynamic_inverse_tracks_a_kinematic_expert_log():
    # The slip-free expert log differs from the ego's physics by the sideslip in curves. Measured over 20 s:
    # 0.04 m in town (8-11 m/s, 2.2 m/s^2 lateral), 0.17 m accelerate / S-curve / stop / pull away
    # (0-16 m/s, 2.7 m/s^2), 0.28 m on a 15-18 m/s S-curve (3.5 m/s^2).
    p = d.default_params()
    t = np.arange(199) * DT
    accel, steer = _expert_actions(t)
    cases = [
        ((0.0, 0.0, 0.3, 8.0), np.sin(2 * np.pi * t / 10), 0.05 * np.sin(2 * np.pi * t / 7), 0.08),
        ((0.0, 0.0, 0.3, 10.0), accel, steer, 0.25),
        ((0.0, 0.0, 0.3, 15.0), np.sin(2 * np.pi * t / 10), 0.03 * np.sin(2 * np.pi * t / 7), 0.35),
    ]
    for x0, a, st, tol in cases:
        log = _kinematic_log(x0, a, st)
        assert _track(log, _state(vx=x0[3], yaw=x0[2]), p).max() < tol


@pytest.mark.parametrize("speed", [2.0, 15.0, 35.0, 39.0])
def test_dynamic_inverse_closed_loop_recovers_from_an_offset(speed):
    # straight log along +x; start 1 m to the left, 0.05 rad off and 1 m/s slow: back on it within 15 s
    p = d.default_params()
    n = 150
    x = speed * DT * np.arange(n + 1)
    log = np.stack([x, np.zeros(n + 1), np.zeros(n + 1), np.full(n + 1, speed)], axis=1)
    state = _state(vx=speed - 1.0, yaw=0.05)
    state[d.Y] = 1.0
    err = _track(log, state, p)
    assert err[-1] < 1e-3 and err.max() < 2.0
