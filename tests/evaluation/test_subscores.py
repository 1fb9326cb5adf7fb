"""Trace-based metrics: Savitzky-Golay, nuPlan comfort, DDC, LK, minADE and the EPDMS composition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpagym_env import metrics as M
from alpagym_env.evaluation import subscores as S

DT = 0.1


def test_savgol_is_exact_on_polynomials_including_the_edges():
    t = np.arange(30) * DT
    y = 1.0 + 2.0 * t - 3.0 * t**2
    np.testing.assert_allclose(S.savgol(y, 8, 2), y, atol=1e-9)
    np.testing.assert_allclose(S.savgol(y, 15, 2, 1, DT), 2.0 - 6.0 * t, atol=1e-9)
    np.testing.assert_allclose(S.savgol(y**1, 5, 3, 2, DT), np.full(30, -6.0), atol=1e-7)
    assert S.savgol(y[:3], 15, 2, 1, DT).shape == (3,)  # window shrinks to the signal


def pose_from(x, y, yaw, v):
    return np.stack([x, y, yaw, v, np.zeros_like(x)], axis=1)


def straight(v0, acc, steps=60):
    t = np.arange(steps) * DT
    v = v0 + acc * t
    return pose_from(v0 * t + 0.5 * acc * t**2, 0 * t, 0 * t, v)


def test_comfort_checks_pass_cruising_and_fail_hard_braking_and_yawing():
    assert all(S.comfort_checks(straight(10.0, 0.0), DT).values())
    assert all(S.comfort_checks(straight(10.0, 2.0), DT).values())  # 2 m/s^2 < 2.4
    checks = S.comfort_checks(straight(20.0, -5.0, 30), DT)
    assert not checks["lon_acc"] and checks["lat_acc"] and checks["yaw_rate"]
    # A circle at 10 m/s with 1.2 rad/s yaw rate: 12 m/s^2 lateral, yaw rate above 0.95.
    t = np.arange(60) * DT
    r, w = 10.0 / 1.2, 1.2
    circle = pose_from(r * np.sin(w * t), r * (1 - np.cos(w * t)), w * t, np.full(60, 10.0))
    checks = S.comfort_checks(circle, DT)
    assert not checks["yaw_rate"] and not checks["lat_acc"] and checks["lon_acc"]
    assert S.comfort_signals(circle, DT)["lat_acc"][30] == pytest.approx(12.0, rel=1e-2)


def test_comfort_signals_unwrap_the_heading():
    t = np.arange(40) * DT
    yaw = np.angle(np.exp(1j * (3.0 + 0.5 * t)))  # crosses +-pi
    sig = S.comfort_signals(pose_from(t, t, yaw, np.ones(40)), DT)
    np.testing.assert_allclose(sig["yaw_rate"], 0.5, atol=1e-6)


@pytest.mark.parametrize("metres, score", [(1.5, 1.0), (3.0, 0.5), (7.0, 0.0)])
def test_driving_direction_thresholds_on_a_one_second_window(metres, score):
    wrong = np.zeros(50)
    wrong[20:30] = 1.0  # 10 steps = 1 s the wrong way
    dist = np.full(50, metres / 10)
    s, worst = S.driving_direction(wrong, dist, DT)
    assert s == score and worst == pytest.approx(metres)
    # The same distance spread over 3 s stays under the bound for the 2 m case only per window.
    assert S.driving_direction(np.zeros(50), dist, DT) == (1.0, 0.0)


def test_lane_keeping_runs_queues_and_lane_changes():
    off = np.zeros(60)
    off[10:30] = 0.8  # 2 s off-centre
    assert S.lane_keeping(off, np.full(60, 10.0), DT) == (0.0, pytest.approx(2.0))
    assert S.lane_keeping(off[:29], np.full(29, 10.0), DT)[0] == 1.0  # 1.9 s
    assert S.lane_keeping(off, np.full(60, 0.5), DT)[0] == 1.0  # queueing
    none = np.full(60, -1.0)
    assert S.lane_keeping(none, np.full(60, 10.0), DT) == (1.0, 0.0)  # no lane (intersection)
    # A 3 s lane change: the offset rises to the lane boundary (1.75 m) and falls in the new lane.
    up = np.linspace(0.0, 1.75, 16)
    change = np.concatenate([np.zeros(10), up, up[::-1][1:], np.zeros(10)])
    score, longest = S.lane_keeping(change, np.full(len(change), 10.0), DT)
    assert score == 1.0 and longest < 2.0
    # A slow drift to 1.6 m and back without reaching the next lane fails.
    drift = np.concatenate([np.zeros(5), np.linspace(0, 1.6, 20), np.linspace(1.6, 0, 20), np.zeros(5)])
    assert S.lane_keeping(drift, np.full(len(drift), 10.0), DT)[0] == 0.0


def test_min_ade_against_the_logged_future():
    log = np.stack([np.arange(100) * 1.0, np.zeros(100)], axis=1)  # 10 m/s along +x
    valid = np.ones(100, dtype=bool)
    exact = np.stack([(np.arange(10) + 1) * 5.0, np.zeros(10)], axis=1)[None]  # 0.5 s apart
    off = exact + [0.0, 2.0]
    ade = S.min_ade(np.concatenate([off, exact]), 0.5, np.array([20.0, 0.0, 0.0]), log, valid, 20, DT)
    np.testing.assert_allclose(ade, 0.0, atol=1e-12)  # the min picks the exact plan
    ade = S.min_ade(off, 0.5, np.array([20.0, 0.0, 0.0]), log, valid, 20, DT)
    np.testing.assert_allclose(ade, 2.0)
    # Rotated ego frame: heading pi/2 with the log along +y.
    log_y = log[:, ::-1].copy()
    ade = S.min_ade(exact, 0.5, np.array([0.0, 20.0, math.pi / 2]), log_y, valid, 20, DT)
    np.testing.assert_allclose(ade, 0.0, atol=1e-9)
    # Past the log's end or the plan's horizon: nan.
    short = S.min_ade(exact[:, :4], 0.5, np.array([90.0, 0.0, 0.0]), log, valid, 90, DT)
    assert short[0] == 0.0 and np.isnan(short[1:]).all()  # the log ends 1 s after step 90
    assert np.isnan(S.min_ade(exact[:, :4], 0.5, np.array([0.0, 0, 0]), log, valid, 0, DT)[-1])  # 2 s plan


def test_epdms_composition():
    sub = {"nc": 1.0, "dac": 1.0, "ddc": 0.5, "tlc": 1.0, "ep": 0.6, "ttc": 1.0, "lk": 0.0, "hc": 1.0}
    assert S.epdms(sub) == pytest.approx(0.5 * (5 * 0.6 + 5 + 0 + 2) / 14)
    assert S.epdms({**sub, "nc": 0.0}) == 0.0


def test_trace_metrics_of_a_clean_cruise():
    trace = np.zeros((50, M.NUM_CHANNELS))
    trace[:, M.TTC] = M.TTC_HORIZON
    trace[:, M.SPEED] = 10.0
    trace[:, M.DIST_TRAVELED] = 1.0
    ep = M.episode_metrics(np.zeros((M.NUM_CHANNELS, 3)), 50, 50, 50.0)
    ep["progress"] = 1.0
    out = S.trace_metrics(trace, straight(10.0, 0.0, 51), ep, DT)
    assert out["epdms"] == 1.0 and out["min_ttc"] == M.TTC_HORIZON
    assert all(out[k] == 1.0 for k in ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "hc"))
