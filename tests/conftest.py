"""Shared fixtures: a hand-built straight-road scenario whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from alpagym_env.scenarios.schema import Scenario, make_scenario

LANE_WIDTH = 3.5


def straight_road(
    speeds=(10.0, 10.0, 12.0),
    starts=((20.0, 0.0), (45.0, 0.0), (30.0, LANE_WIDTH)),
    length: float = 400.0,
    steps: int = 201,
    dt: float = 0.1,
) -> Scenario:
    """Two lanes along +x (centres y = 0 and 3.5 m), agents at constant speed; agent 0 is the ego."""
    xs = np.arange(0.0, length + 0.5, 1.0)
    lanes = [np.stack([xs, np.full_like(xs, y)], axis=1) for y in (0.0, LANE_WIDTH)]
    right = np.stack([xs, np.full_like(xs, -LANE_WIDTH / 2)], axis=1)
    left = np.stack([xs[::-1], np.full_like(xs, 1.5 * LANE_WIDTH)], axis=1)
    n = len(speeds)
    t = np.arange(steps) * dt
    traj = np.zeros((n, steps, 5))
    for i, (v, (x0, y0)) in enumerate(zip(speeds, starts, strict=True)):
        traj[i, :, 0] = x0 + v * t
        traj[i, :, 1] = y0
        traj[i, :, 3] = v
    return make_scenario(
        scenario_id="straight-0",
        family="test",
        source="tests/conftest.py",
        dt=dt,
        lane_xy=np.concatenate(lanes),
        lane_offsets=np.array([0, len(xs), 2 * len(xs)]),
        lane_width=np.full(2, LANE_WIDTH),
        lane_successors=np.full((2, 4), -1),
        lane_speed_limit=np.full(2, 30.0),
        edge_xy=np.concatenate([right, left]),
        edge_offsets=np.array([0, len(xs), 2 * len(xs)]),
        stop_lines=np.zeros((0, 4)),
        stop_light=np.zeros(0, dtype=np.int64),
        light_states=np.zeros((0, steps), dtype=np.int8),
        traj=traj,
        valid=np.ones((n, steps), dtype=bool),
        length=np.full(n, 4.5),
        width=np.full(n, 1.9),
        agent_type=np.zeros(n, dtype=np.int8),
        ego_index=0,
        route_xy=lanes[0],
    )


@pytest.fixture
def straight_scenario() -> Scenario:
    return straight_road()
