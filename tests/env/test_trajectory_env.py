"""`AlpaDrive-v0` with ``action_type="trajectory"``: API compliance, log replay through the controller,
stopping, infeasible plans."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.dataset import future_log
from alpagym_env.scenarios.schema import make_scenario
from alpagym_env.sim.controller import flag_names
from alpagym_env.sim.dynamics import kinematic_step
from alpagym_env.sim.trajectory import encode_poses
from tests.conftest import straight_road

HALF_ROAD = 3.0  # m from the lane centre to each road edge


def curved_road(steps: int = 261, dt: float = 0.1):
    """A one-lane road built along a kinematic expert log (pull away, S-curve at up to 2.6 m/s^2 of lateral
    acceleration, brake to a stop) and a car driving away ahead of it at 14 m/s; agent 0 is the ego."""
    t = np.arange(steps - 1) * dt
    accel = np.where(t < 6, 1.5, np.where(t < 14, 0.0, np.where(t < 19, -2.4, 0.0)))
    steer = 0.07 * np.sin(2 * np.pi * t / 9) * (t > 2)
    states = [(0.0, 0.0, 0.2, 3.0)]
    for a, s in zip(accel, steer, strict=True):
        states.append(kinematic_step(*states[-1], a, s, 2.88, dt))
    x, y, yaw, v = np.array(states).T
    ego = np.stack([x, y, yaw, v * np.cos(yaw), v * np.sin(yaw)], axis=1)
    far = np.arange(1.0, 400.0)
    lane = np.vstack([ego[v > 0.0, :2], ego[-1, :2] + far[:, None] * [np.cos(yaw[-1]), np.sin(yaw[-1])]])
    heading = np.append(yaw[v > 0.0], np.full(far.size, yaw[-1]))
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(lane, axis=0).T))])
    s = 30.0 + 14.0 * dt * np.arange(steps)
    lead_h = np.interp(s, arc, heading)
    lead = np.stack([np.interp(s, arc, lane[:, 0]), np.interp(s, arc, lane[:, 1]), lead_h,
                     14.0 * np.cos(lead_h), 14.0 * np.sin(lead_h)], axis=1)  # fmt: skip
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    right, left = lane - HALF_ROAD * normal, (lane + HALF_ROAD * normal)[::-1]
    return make_scenario(
        scenario_id="curved-0",
        family="test",
        source="tests/env/test_trajectory_env.py",
        dt=dt,
        lane_xy=lane,
        lane_offsets=np.array([0, len(lane)]),
        lane_width=np.full(1, 3.5),
        lane_successors=np.full((1, 4), -1),
        lane_speed_limit=np.full(1, 20.0),
        edge_xy=np.concatenate([right, left]),
        edge_offsets=np.array([0, len(right), 2 * len(right)]),
        stop_lines=np.zeros((0, 4)),
        stop_light=np.zeros(0, dtype=np.int64),
        light_states=np.zeros((0, steps), dtype=np.int8),
        traj=np.stack([ego, lead]),
        valid=np.ones((2, steps), dtype=bool),
        length=np.full(2, 4.8),
        width=np.full(2, 1.9),
        agent_type=np.zeros(2, dtype=np.int8),
        ego_index=0,
        route_xy=lane,
    )


def make(scenarios, **kwargs):
    return gym.make("AlpaDrive-v0", scenarios=scenarios, action_type="trajectory", **kwargs).unwrapped


def logged_future_action(env, future):
    """The logged poses after the current step in the ego's current frame, as a normalised action."""
    traj = env.config.trajectory
    t, row = int(env.sim.state["t"][0]), env.sim.state["agent"][0, 0]
    poses = future[t + traj.steps() * np.arange(1, traj.num_poses + 1)]
    dx, dy = poses[:, 0] - row[0], poses[:, 1] - row[1]
    c, s = math.cos(row[2]), math.sin(row[2])
    dh = (poses[:, 2] - row[2] + np.pi) % (2 * np.pi) - np.pi
    return encode_poses(np.stack([dx * c + dy * s, -dx * s + dy * c, dh], axis=1), traj)


def run_episode(env, policy):
    env.reset(seed=0)
    dist, infeasible = [], False
    while True:
        obs, _, te, tr, info = env.step(policy(env))
        assert np.all(np.isfinite(obs))
        dist.append(env.step_metrics()["dist_to_gt"])
        infeasible |= info["trajectory_infeasible"]
        if te or tr:
            return np.array(dist), infeasible, info


def expert_score(scenario):
    env = gym.make("AlpaDrive-v0", scenarios=[scenario]).unwrapped
    env.reset(seed=0)
    env.sim.expert[0, 0] = True
    while True:
        _, _, te, tr, info = env.step(np.zeros(2))
        if te or tr:
            return info["alpagym"]["scene_score"]


@pytest.mark.parametrize("trajectory", [{}, {"num_poses": 3, "spacing": 1.0, "heading": "derived"}])
def test_checkers_pass_without_warnings(trajectory):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make([straight_road()], trajectory=trajectory)
    assert env.action_space.shape == (env.config.trajectory.action_dim,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
        sb3_check_env(make([straight_road()], trajectory=trajectory), warn=True)


@pytest.mark.parametrize(
    "scene, trajectory, rmse, worst",
    [
        ("straight", {}, 1e-6, 1e-6),
        ("curved", {}, 0.05, 0.2),
        ("curved", {"num_poses": 50, "spacing": 0.1}, 0.04, 0.1),
    ],
)
def test_feeding_the_logged_future_reproduces_the_log_and_its_score(scene, trajectory, rmse, worst):
    # Measured distance to the logged position over the 20 s episode (RMSE / max): straight road 0 / 0;
    # curved road (3-12 m/s, S-curve at up to 3.5 m/s^2 lateral, stop) 0.040 / 0.141 m with 8 poses at
    # 0.5 s (the max where the log stops dead), 0.025 / 0.062 m with 50 poses at 0.1 s. The expert's
    # kinematic log has no sideslip and no actuator lag; the ego's dynamic bicycle has both.
    scenario = straight_road() if scene == "straight" else curved_road()
    env = make([scenario], trajectory=trajectory)
    traj = env.config.trajectory
    future = future_log(scenario, 0, env.config.horizon + 1 + traj.num_poses * traj.steps())
    dist, infeasible, info = run_episode(env, lambda e: logged_future_action(e, future))
    assert not infeasible and info["t"] == env.config.horizon
    assert np.sqrt(np.mean(dist**2)) < rmse and dist.max() < worst
    ep = info["alpagym"]
    assert ep["scene_score"] == expert_score(scenario) == 1.0
    assert ep["collision_any"] == 0.0 and ep["offroad"] == 0.0 and ep["comfort"] == 1.0
    if scene == "curved":  # the log ends at rest, and so does the ego
        assert env.sim.state["agent"][0, 0, 3] < 0.05


def test_holding_the_current_pose_stops_the_car_within_its_limits():
    env = make([straight_road()])  # ego at 10 m/s
    env.reset(seed=0)
    acc = []
    for _ in range(40):
        _, _, te, _, info = env.step(np.zeros(24, np.float32))
        acc.append(env.sim.state["agent"][0, 0, 6])
        assert not te
    a = np.array(acc)
    assert env.sim.state["agent"][0, 0, 3] == 0.0 and flag_names(info["trajectory_flags"]) == ()
    assert a.min() >= -6.0 - 1e-9 and np.abs(np.diff(a)).max() <= 10.0 * 0.1 + 1e-9
    assert 10.0**2 / 12 < env.sim.state["agent"][0, 0, 0] - 20.0 < 10.0**2 / 12 + 0.6 * 10.0


def test_infeasible_plans_are_flagged_in_info_and_never_produce_nan():
    traj = alpagym_env.TrajectoryConfig()
    tt = traj.spacing * np.arange(1, 9)
    theta = 15.0 * tt / 10.0
    plans = {
        "accel": np.stack([60.0 * tt, 0 * tt, 0 * tt], axis=1),  # 60 m/s
        "lateral_accel": np.stack([10 * np.sin(theta), 10 * (1 - np.cos(theta)), theta], axis=1),  # R = 10 m
    }
    for name, poses in plans.items():
        no_end = {"at_cut": False, "offroad": False, "at_fault_collision": False}
        env = make([straight_road()], termination=no_end)
        env.reset(seed=0)
        for _ in range(20):
            obs, r, _, _, info = env.step(encode_poses(poses, traj))
            assert info["trajectory_infeasible"] and name in flag_names(info["trajectory_flags"])
            assert np.all(np.isfinite(obs)) and math.isfinite(r)
    env = make([straight_road()])
    _, info = env.reset(seed=0)
    assert info["trajectory_infeasible"] is False and flag_names(info["trajectory_flags"]) == ()
    with pytest.raises(ValueError, match="action"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(24, np.nan))


def test_snapshot_restore_is_exact_with_trajectory_actions():
    env = make([curved_road()], agents="idm")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    x = 5.0 * np.arange(1, 9)
    base = encode_poses(np.stack([x, 0 * x, 0 * x], axis=1), env.config.trajectory)
    for _ in range(5):
        env.step(base)
    snap = env.get_state()
    actions = base + rng.uniform(-0.01, 0.01, (20, 24)).astype(np.float32)
    first = [env.step(a)[0] for a in actions]
    env.reset(options={"state": snap})
    second = [env.step(a)[0] for a in actions]
    np.testing.assert_array_equal(np.array(first), np.array(second))
