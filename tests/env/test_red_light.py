"""Red lights: the front bumper crossing a red stop line of the route's own lane, penalised and scored."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.scenarios.schema import LIGHT_RED
from alpagym_env.sim.scene import _route_stops
from tests.conftest import LANE_WIDTH, straight_road

HALF = LANE_WIDTH / 2


def test_only_stop_lines_of_the_routes_own_lane_are_matched():
    xs = np.arange(0.0, 101.0)
    route = np.stack([xs, np.zeros_like(xs)], axis=1)
    lines = np.array(
        [
            [60.3, -HALF, 60.3, HALF],  # own lane: kept, at the exact crossing
            [50.0, -0.2, 50.0, 2 * HALF - 0.2],  # the next lane's line, reaching 0.2 m over the route
            [40.0, 0.0, 40.0, 2 * HALF],  # the next lane's line, touching the route with its end
            [30.0, 5.0, 30.0, 8.0],  # not on the route at all
        ]
    )
    out = np.zeros((4, 2))
    m = _route_stops(route, xs.copy(), lines, np.array([3, 2, 1, 0]), out)
    assert m == 1
    np.testing.assert_allclose(out[0], [60.3, 3.0])


def red_light_scene():
    """The straight road with a red light over two stop lines of the ego's lane: at x = 21 m (already
    behind the ego's front bumper at t = 0: centre 20 m, half length 2.25 m) and at x = 60 m."""
    s = straight_road()
    lines = np.array([[21.0, -HALF, 21.0, HALF], [60.0, -HALF, 60.0, HALF]])
    red = np.full((1, s.num_steps), LIGHT_RED, dtype=np.int8)
    return dataclasses.replace(s, stop_lines=lines, stop_light=np.zeros(2, dtype=np.int64), light_states=red)


def test_running_the_red_is_flagged_once_at_the_front_bumper_and_penalised():
    env = gym.make("AlpaDrive-v0", scenarios=[red_light_scene()]).unwrapped
    env.reset(seed=0)
    env.sim.expert[0, 0] = True  # drive the log: 10 m/s along y = 0
    flagged, penalties = [], []
    while True:
        _, _, te, tr, info = env.step(np.zeros(2))
        if env.step_metrics()["ran_red_light"]:
            flagged.append(info["t"])
            penalties.append(info["reward/metric/ran_red_light"])
        if te or tr:
            break
    # The bumper (22.25 m + 1 m a step) passes 60 m on step 38; the centre would only on step 40, and
    # the line at 21 m, already behind the bumper at the start, is never run.
    assert flagged == [38] and penalties == [-5.0]
    ep = env.sim.episode_metrics(0)
    assert ep["ran_red_light"] == 1.0
    assert ep["scene_score"] == pytest.approx(1.0) and ep["scene_score_strict"] == 0.0
