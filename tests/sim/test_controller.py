"""The trajectory tracking controller on its own: LQ algebra, tracking, stability, limits and flags."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpagym_env.config import ConfigError, ControllerConfig, DynamicsConfig, TrajectoryConfig
from alpagym_env.sim import controller as ctl
from alpagym_env.sim import dynamics as d
from alpagym_env.sim.trajectory import decode_poses, encode_poses

DT = 0.1
WHEELBASE = 2.8
P = DynamicsConfig().to_array()
COARSE = TrajectoryConfig()
FINE = TrajectoryConfig(num_poses=50, spacing=0.1)
CONTROLLER = ControllerConfig()


def kinematic_log(x0, accel, steer):
    """(T, 4) [x, y, yaw, v] of the kinematic bicycle (the expert's model), T = len(accel) + 1."""
    out = [tuple(x0)]
    for a, s in zip(accel, steer, strict=True):
        out.append(d.kinematic_step(*out[-1], a, s, WHEELBASE, DT))
    return np.array(out)


def ego_frame_future(log, t, row, traj):
    """The logged poses at t + spacing ... t + H spacing in the frame of the ego state `row`, (H, 3)."""
    idx = np.minimum(t + traj.steps() * np.arange(1, traj.num_poses + 1), len(log) - 1)
    dx, dy = log[idx, 0] - row[d.X], log[idx, 1] - row[d.Y]
    c, s = math.cos(row[d.YAW]), math.sin(row[d.YAW])
    dh = (log[idx, 2] - row[d.YAW] + np.pi) % (2 * np.pi) - np.pi
    return np.stack([dx * c + dy * s, -dx * s + dy * c, dh], axis=1)


class Tracker:
    """One ego driven by `track` -> `dynamic_step`."""

    def __init__(self, traj=COARSE, ctrl=CONTROLLER, speed=0.0, yaw=0.0):
        self.traj, self.cp = traj, ctl.controller_params(traj, ctrl)
        self.work = np.zeros(ctl.work_shape(traj.num_poses, traj.steps(), int(self.cp[ctl.C_PREVIEW])))
        self.row = np.zeros(d.NUM_STATE)
        self.row[d.VX], self.row[d.YAW] = speed, yaw

    def step(self, poses):
        action = encode_poses(poses, self.traj).astype(np.float64)
        acc, steer, flags = ctl.track(self.row, action, P, self.cp, DT, self.work)
        d.dynamic_step(self.row, acc, steer, P, DT)
        return acc, steer, flags


def track_log(log, traj=COARSE, offset=(0.0, 0.0)):
    """Closed loop on a log, re-planned every step from the logged future; (T,) position errors, m."""
    ego = Tracker(traj, speed=log[0, 3], yaw=log[0, 2])
    ego.row[d.X], ego.row[d.Y] = log[0, 0] + offset[0], log[0, 1] + offset[1]
    err, flags = [], 0
    for t in range(len(log) - 1 - traj.num_poses * traj.steps()):
        flags |= ego.step(ego_frame_future(log, t, ego.row, traj))[2]
        err.append(math.hypot(ego.row[d.X] - log[t + 1, 0], ego.row[d.Y] - log[t + 1, 1]))
    return np.array(err), flags, ego.row


def test_riccati_step_matches_the_dense_formulas():
    rng = np.random.default_rng(0)
    n = 4
    a, b, c = np.eye(n) + 0.1 * rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n)
    pm, qd = rng.normal(size=(n, n)), rng.uniform(0, 2, n)
    pm, pv, q, s = pm @ pm.T, rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    r_u, r_lin = 1.5, 0.3
    mats = np.zeros((ctl.MAT_ROWS, ctl.WORK_COLS))
    mats[0:4, :4], mats[4:8, :4], mats[12, :4], mats[13, :4] = pm, a, b, c
    mats[14, :4], mats[15, :4], mats[16, :4], mats[17, :4] = pv, q, qd, s
    gains = ctl._riccati_step(mats, n, r_u, r_lin)
    huu, hux, hu = r_u + b @ pm @ b, s + b @ pm @ a, r_lin + b @ (pm @ c + pv)
    np.testing.assert_allclose(gains, [*(-hux / huu), -hu / huu], rtol=1e-12)
    riccati = np.diag(qd) + a.T @ pm @ a - np.outer(hux, hux) / huu
    np.testing.assert_allclose(mats[0:4, :4], riccati, rtol=1e-12)
    np.testing.assert_allclose(mats[14, :4], q + a.T @ (pm @ c + pv) - hux * hu / huu, rtol=1e-12)


def test_encode_decode_round_trip_and_config_checks():
    poses = np.array([[5.0, 0.2, 0.05], [10.0, 0.8, 0.1]])
    traj = TrajectoryConfig(num_poses=2)
    np.testing.assert_allclose(decode_poses(encode_poses(poses, traj), traj), poses, atol=1e-5)
    derived = TrajectoryConfig(num_poses=2, heading="derived")
    assert encode_poses(poses, derived).shape == (4,) and derived.action_dim == 4
    assert TrajectoryConfig().action_dim == 24 and FINE.action_dim == 150
    with pytest.raises(ConfigError, match="spacing"):
        TrajectoryConfig(spacing=0.25)
    with pytest.raises(ConfigError, match="heading"):
        TrajectoryConfig(heading="yes")
    with pytest.raises(ConfigError, match="controller.max_jerk"):
        ControllerConfig(max_jerk=0.0)


@pytest.mark.parametrize("traj", [TrajectoryConfig(), FINE], ids=["8x0.5s", "50x0.1s"])
def test_tracks_kinematic_expert_logs_from_4_to_30_m_s(traj):
    # Logs from the expert's kinematic model (no sideslip, no lag): the dynamic ego tracks them with
    # errors measured (8 poses x 0.5 s / 50 x 0.1 s) at RMSE 0.018 / 0.016 m and max 0.032 / 0.031 m in
    # town (8-11 m/s), 0.133 / 0.128 m and 0.333 / 0.298 m accelerating, curving and braking at 2.5 m/s^2
    # (10-17 m/s, up to 6.6 m/s^2 = 0.74 mu g lateral while the driven front axle accelerates: near its
    # grip, where the LQ's linear tyre model overrates the steering's effect; 0.055 / 0.087 m with linear
    # tyres), 0.020 / 0.021 m and 0.031 / 0.036 m on a 30 m/s highway.
    t = np.arange(240) * DT
    cases = [
        ((0.0, 0.0, 0.3, 8.0), np.sin(2 * np.pi * t / 10), 0.05 * np.sin(2 * np.pi * t / 7), 0.03, 0.06),
        ((0.0, 0.0, 0.3, 10.0), np.where(t < 5, 1.5, np.where(t < 10, 0.0, np.where(t < 14, -2.5, 1.0))),
         0.06 * np.sin(2 * np.pi * t / 6), 0.15, 0.4),
        ((0.0, 0.0, 0.0, 30.0), 0.3 * np.sin(2 * np.pi * t / 10), 0.004 * np.sin(2 * np.pi * t / 8),
         0.03, 0.06),
    ]  # fmt: skip
    for x0, accel, steer, rmse, worst in cases:
        err, flags, _ = track_log(kinematic_log(x0, accel, steer), traj)
        assert np.sqrt(np.mean(err**2)) < rmse and err.max() < worst and flags & ctl.INFEASIBLE == 0


@pytest.mark.parametrize("speed", [2.0, 10.0, 20.0, 30.0, 40.0])
def test_recovers_from_an_offset_at_every_speed(speed):
    # A straight plan with the ego 0.5 m to its left: back within 5 cm after 10 s, no oscillation growth
    # up to the 40 m/s speed cap (the lateral model carries the dynamic bicycle's course-rate lag).
    n = 300
    x = speed * DT * np.arange(n + 60)
    log = np.stack([x, np.zeros_like(x), np.zeros_like(x), np.full_like(x, speed)], axis=1)
    err, _, _ = track_log(log, offset=(0.0, 0.5))
    assert err[100:].max() < 0.1 and err[-50:].max() < 0.02 and err.max() < 0.6


def test_a_stop_plan_brings_the_car_to_rest_within_its_limits():
    # The plan holds the ego where it is now, every step (all poses at the origin), from 15 m/s.
    ego = Tracker(speed=15.0)
    acc, jerk, flags = [], [], []
    for _ in range(60):
        before = ego.row[d.ACC]
        _, steer, f = ego.step(np.zeros((8, 3)))
        assert steer == 0.0
        acc.append(ego.row[d.ACC])
        jerk.append((ego.row[d.ACC] - before) / DT)
        flags.append(f)
    assert flags[0] & ctl.FLAG_BRAKE and flags[-1] & ctl.INFEASIBLE == 0  # flagged until at rest
    assert ego.row[d.VX] == 0.0 and ego.row[d.Y] == 0.0
    assert min(acc) >= -P[d.P_MAX_BRAKE] - 1e-9 and max(np.abs(jerk)) <= 10.0 + 1e-9
    # v^2 / (2 max_brake) = 18.75 m plus the jerk-limited onset (0.6 s at 15 m/s)
    assert 18.75 < ego.row[d.X] < 18.75 + 0.6 * 15.0


def test_a_feasible_stop_plan_stops_at_its_end_point():
    # Decelerate at 2 m/s^2 from 10 m/s to a stop 25 m ahead, re-planned every step from the same world plan.
    t = np.arange(200) * DT
    log = kinematic_log((0.0, 0.0, 0.0, 10.0), np.where(t < 5.0, -2.0, 0.0), np.zeros_like(t))
    err, flags, row = track_log(log)
    assert log[-1, 3] < 1e-9 and row[d.VX] < 1e-3 and err[-20:].max() < 0.05 and flags & ctl.INFEASIBLE == 0


def test_infeasible_plans_are_flagged_and_tracked_within_the_limits():
    traj = TrajectoryConfig()
    tt = traj.spacing * np.arange(1, 9)
    too_fast = np.stack([60.0 * tt, 0 * tt, 0 * tt], axis=1)  # 60 m/s from 10 m/s
    theta = 15.0 * tt / 10.0  # a 10 m radius circle at 15 m/s: 22.5 m/s^2 of lateral acceleration
    too_sharp = np.stack([10.0 * np.sin(theta), 10.0 * (1 - np.cos(theta)), theta], axis=1)
    for poses, speed, expected in ((too_fast, 10.0, ctl.FLAG_ACCEL), (too_sharp, 15.0, ctl.FLAG_LAT_ACC)):
        ego = Tracker(speed=speed)
        for _ in range(30):
            before = ego.row.copy()
            acc, steer, flags = ego.step(poses)
            assert flags & expected and flags & ctl.FLAG_SATURATED
            assert -P[d.P_MAX_BRAKE] <= acc <= P[d.P_MAX_ACC] and abs(steer) <= P[d.P_MAX_STEER]
            assert abs(ego.row[d.ACC] - before[d.ACC]) <= 10.0 * DT + 1e-9  # max_jerk
            assert abs(ego.row[d.STEER] - before[d.STEER]) <= P[d.P_MAX_STEER_RATE] * DT + 1e-9
            v = ego.row[d.VX]
            assert abs(v * ego.row[d.YAW_RATE]) < 8.0 * 1.15 + 1.0  # the grip limit, plus the lag's overshoot
        assert np.all(np.isfinite(ego.row))
    assert ctl.trajectory_info(ctl.FLAG_ACCEL | ctl.FLAG_SATURATED) == {
        "trajectory_infeasible": True,
        "trajectory_flags": ctl.FLAG_ACCEL | ctl.FLAG_SATURATED,
    }
    assert ctl.flag_names(ctl.FLAG_ACCEL | ctl.FLAG_SATURATED) == ("accel", "saturated")


@pytest.mark.parametrize(
    "traj", [COARSE, TrajectoryConfig(num_poses=3, heading="derived"), TrajectoryConfig(num_poses=1)]
)
def test_random_actions_never_produce_nan(traj):
    rng = np.random.default_rng(0)
    cp = ctl.controller_params(traj, ControllerConfig())
    work = np.zeros(ctl.work_shape(traj.num_poses, traj.steps(), int(cp[ctl.C_PREVIEW])))
    actions = rng.uniform(-1, 1, (300, traj.action_dim))
    actions[:50] = 0.0
    actions[50:100] = rng.choice([-1.0, 0.0, 1.0], (50, traj.action_dim))
    row = np.zeros(d.NUM_STATE)
    for i, a in enumerate(actions):
        if i % 50 == 0:
            row[:] = 0.0
            row[d.VX] = rng.uniform(0, 40)
        acc, steer, _ = ctl.track(row, a, P, cp, DT, work)
        assert math.isfinite(acc) and math.isfinite(steer)
        d.dynamic_step(row, acc, steer, P, DT)
        assert np.all(np.isfinite(row))


def test_batched_controller_matches_the_single_one():
    rng = np.random.default_rng(1)
    traj = TrajectoryConfig()
    cp = ctl.controller_params(traj, ControllerConfig())
    shape = ctl.work_shape(traj.num_poses, traj.steps(), int(cp[ctl.C_PREVIEW]))
    actions = rng.uniform(-0.2, 0.2, (3, 2, traj.action_dim))
    agent = np.zeros((3, 2, d.NUM_STATE))
    agent[..., d.VX] = rng.uniform(0, 20, (3, 2))
    cmds, flags = np.zeros((3, 2, 2)), np.zeros((3, 2), dtype=np.int64)
    ctl.track_batch(actions, agent, P, cp, DT, np.zeros((3, 2, *shape)), cmds, flags)
    for b in range(3):
        for c in range(2):
            one = ctl.track(agent[b, c], actions[b, c], P, cp, DT, np.zeros(shape))
            assert tuple(cmds[b, c]) + (flags[b, c],) == one
