"""The rule-based expert on small hand-built scenes, and `check_expert_logs` on known problems."""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.schema import LIGHT_GREEN, LIGHT_RED, LIGHT_YELLOW, make_scenario, replace
from alpagym_env.scenarios.validate import check_expert_logs, manoeuvres

T, DT = 201, 0.1


def _straight(length=600.0):
    xs = np.arange(0.0, length + 0.25, 0.5)
    return np.stack([xs, np.zeros_like(xs)], axis=1)


def _car(path, s, v, rng, **kw):
    return expert.AgentSpec(path, s, v, 4.5, 1.9, expert.KIND_CAR, expert.default_params(rng), **kw)


def test_follower_closes_in_on_a_slow_leader_without_touching_it():
    rng = np.random.default_rng(0)
    traffic = expert.Traffic()
    xy = _straight()
    traffic.add_path(expert.PathSpec(xy, np.full(len(xy), 25.0)))
    traffic.agents = [_car(0, 20.0, 22.0, rng), _car(0, 80.0, 8.0, rng)]
    traffic.agents[1].params[expert.P_SPEED] = 8.0 / 25.0
    logs = expert.run(expert.prepare(traffic), np.zeros((0, T), np.int8), T, DT)
    gap = logs.s[1] - logs.s[0] - 4.5
    assert gap.min() > 2.0
    assert abs(np.hypot(*logs.traj[0, -1, 3:]) - 8.0) < 1.0  # settled behind the leader
    accel = np.diff(np.hypot(logs.traj[0, :, 3], logs.traj[0, :, 4])) / DT
    assert accel.min() >= -4.0 - 1e-9


def test_vehicle_stops_for_red_and_goes_on_green():
    rng = np.random.default_rng(1)
    traffic = expert.Traffic()
    xy = _straight(300.0)
    traffic.add_path(expert.PathSpec(xy, np.full(len(xy), 14.0), junction=(150.0, 170.0), light=0))
    traffic.agents = [_car(0, 60.0, 13.0, rng)]
    lights = np.full((1, T), LIGHT_RED, np.int8)
    lights[0, 150:] = LIGHT_GREEN
    logs = expert.run(expert.prepare(traffic), lights, T, DT)
    front = logs.s[0] + 2.25
    assert front[:150].max() < 150.0 and front[:150].max() > 140.0  # waits close to the line
    assert np.hypot(*logs.traj[0, 149, 3:]) < 0.05
    assert front[-1] > 150.0


def test_yellow_decision_by_stopping_distance():
    rng = np.random.default_rng(2)
    traffic = expert.Traffic()
    xy = _straight(300.0)
    traffic.add_path(expert.PathSpec(xy, np.full(len(xy), 14.0), junction=(150.0, 170.0), light=0))
    traffic.agents = [_car(0, 150.0 - 2.25 - 8.0, 13.0, rng), _car(0, 150.0 - 2.25 - 60.0, 13.0, rng)]
    lights = np.full((1, T), LIGHT_RED, np.int8)
    lights[0, :1] = LIGHT_GREEN
    lights[0, 1:41] = LIGHT_YELLOW
    logs = expert.run(expert.prepare(traffic), lights, T, DT)
    front = logs.s + 2.25
    assert front[0, 41] > 150.0  # too close to stop: clears the line during the yellow
    assert front[1].max() < 150.0  # far enough: stops


def test_lane_change_around_a_slow_truck():
    rng = np.random.default_rng(3)
    traffic = expert.Traffic()
    lanes = [_straight(1200.0) + [0.0, -1.75 - 3.5 * i] for i in range(2)]
    for i, xy in enumerate(lanes):
        traffic.add_path(
            expert.PathSpec(
                xy, np.full(len(xy), 30.0), left=i - 1, right=1 - i if i == 0 else -1, lc_range=(0.0, 1100.0)
            )
        )
    truck = expert.AgentSpec(1, 120.0, 18.0, 11.0, 2.5, expert.KIND_TRUCK, expert.default_params(rng, True))
    truck.params[expert.P_SPEED] = 0.6
    traffic.agents = [_car(1, 40.0, 28.0, rng), truck]
    traffic.agents[0].params[expert.P_SPEED] = 1.0
    logs = expert.run(expert.prepare(traffic), np.zeros((0, T), np.int8), T, DT)
    assert (logs.path[0] == 0).any(), "the car overtakes on the left lane"
    heading = logs.traj[0, :, 2]
    assert np.abs(np.diff(heading)).max() < 0.02  # smooth
    assert logs.s[0, -1] > logs.s[1, -1]


def test_check_expert_logs_finds_collisions_offroad_and_red_crossings(straight_scenario):
    s = straight_scenario
    assert check_expert_logs(s) == []
    traj = s.traj.copy()
    traj[2, 50, :2] = traj[0, 50, :2] + [1.0, 0.5]  # agent 2 on top of agent 0
    traj[1, 60, 1] = -3.0  # agent 1 leaves the road on the right
    bad = replace(s, traj=traj)
    problems = check_expert_logs(bad)
    assert any("step 50: agents 0 and 2 collide" in p for p in problems)
    assert any("step 60: agent 1 is off-road" in p for p in problems)
    # a red light at x = 100 m across lane 0: agents 1 (from x = 45) and 0 (from x = 20) cross it at 10 m/s
    lights = np.full((1, s.num_steps), LIGHT_RED, np.int8)
    red = make_scenario(
        **{
            f: getattr(s, f)
            for f in (
                "scenario_id",
                "family",
                "source",
                "dt",
                "lane_xy",
                "lane_offsets",
                "lane_width",
                "lane_successors",
                "lane_speed_limit",
                "edge_xy",
                "edge_offsets",
                "traj",
                "valid",
                "length",
                "width",
                "agent_type",
                "ego_index",
                "route_xy",
            )
        },
        stop_lines=np.array([[100.0, 1.75, 100.0, -1.75]]),
        stop_light=np.array([0]),
        light_states=lights,
    )
    problems = check_expert_logs(red)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "step 53: agent 1 crosses stop line 0 on red",
        "step 78: agent 0 crosses stop line 0 on red",
    ]
    assert check_expert_logs(red, lights=False) == []


def test_manoeuvres_judge_turns_and_stop_and_go_on_the_log():
    t = np.arange(T) * DT
    traj = np.zeros((4, T, 5))
    valid = np.ones((4, T), dtype=bool)
    traj[0, :, 2] = np.linspace(0.0, 0.5 * np.pi, T)  # a left turn
    traj[1, :, 2] = np.linspace(3.0, 3.0 + 0.5, T) % (2 * np.pi) - np.pi  # 29 degrees, across +-pi
    traj[2, :, 3] = np.where(t < 8.0, 12.0 - 1.5 * t, np.clip(2.0 * (t - 12.0), 0.0, 8.0))  # stop, go
    traj[3, :, 3] = np.clip(2.0 * (t - 5.0), 0.0, 8.0)  # starts standing: only goes
    valid[0, :50] = False
    traj[0, :50, 2] = 9.0  # invalid steps do not count
    turns, stop_go = manoeuvres(traj, valid)
    assert turns.tolist() == [True, False, False, False]
    assert stop_go.tolist() == [False, False, True, False]
