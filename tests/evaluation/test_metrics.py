"""Per-step metric kernels and episode aggregation on hand-built cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import alpagym_env  # noqa: F401
from alpagym_env import metrics as M
from alpagym_env.sim.measure import _lane_check, collision_side, segment_hits_box, time_to_collision
from tests.conftest import straight_road

EGO = (0.0, 0.0, 0.0, 4.0, 2.0)  # x, y, yaw, length, width: front bumper at x = 2, rear at x = -2


def agents(*rows):
    """(N, 8) states from (x, y, yaw, v, yaw_rate) rows, with (N, 2) sizes of 4 x 2 m."""
    a = np.zeros((len(rows), 8))
    for i, (x, y, yaw, v, w) in enumerate(rows):
        a[i, [0, 1, 2, 3, 5]] = x, y, yaw, v, w
    return a, np.ones(len(rows), dtype=bool), np.tile([4.0, 2.0], (len(rows), 1))


@pytest.mark.parametrize(
    "seg, hit",
    [
        ((-5, 0, 5, 0), True),  # crosses the box
        ((-0.5, 0.2, 0.5, 0.2), True),  # inside
        ((3, -3, 3, 3), False),  # beside it
        ((2, -3, 2, 3), True),  # touches the front face
        ((1.5, 1.5, 3, 0.5), False),  # passes the corner outside
    ],
)
def test_segment_hits_box(seg, hit):
    assert segment_hits_box(*seg, *EGO) == hit


@pytest.mark.parametrize(
    "other, side",
    [
        ((3.5, 0.0, 0.0), 1),  # car ahead overlapping the front bumper: front
        ((-3.5, 0.3, 0.0), 2),  # car behind overlapping the rear bumper: rear
        ((0.0, 2.2, math.pi / 2), 3),  # a crossing car touching the side only: lateral
        ((-3.5, 1.2, 0.3), 2),  # rear-ended at an angle, touching the rear bumper and the side: rear
        ((2.9, 1.9, 1.2), 1),  # corner into the front-left: the front bumper is touched: front
    ],
)
def test_collision_side_follows_alpasim_bumper_rule(other, side):
    assert collision_side(*EGO[:3], 4.0, 2.0, *other, 4.0, 2.0) == side


def test_ttc_head_on_is_the_first_overlap_on_the_grid():
    # 21 m apart, closing at 20 m/s, 4 m boxes: contact after (21 - 4) / 20 = 0.85 s -> 0.9 s on the grid.
    a, v, s = agents((0, 0, 0, 10, 0), (21, 0, math.pi, 10, 0))
    assert time_to_collision(a, v, s, 2, 0) == pytest.approx(0.9)


def test_ttc_stopped_leader_and_current_overlap():
    a, v, s = agents((0, 0, 0, 10, 0), (30, 0, 0, 0, 0))
    assert time_to_collision(a, v, s, 2, 0) == pytest.approx(
        2.7
    )  # (30 - 4) / 10 = 2.6 s touches, 2.7 overlaps
    a, v, s = agents((0, 0, 0, 10, 0), (3, 0.5, 0, 0, 0))
    assert time_to_collision(a, v, s, 2, 0) == 0.0


def test_ttc_ignores_agents_behind_parallel_traffic_and_far_agents():
    a, v, s = agents((0, 0, 0, 10, 0), (-10, 0, 0, 30, 0), (0, 3.5, 0, 10, 0), (200, 0, math.pi, 10, 0))
    assert time_to_collision(a, v, s, 4, 0) == M.TTC_HORIZON


def test_ttc_follows_the_turn_rate():
    # Ego on a 20 m radius left turn; a stopped car sits on that arc 1 rad (20 m) ahead. A straight-line
    # projection passes 9 m beside it; the constant-turn-rate projection hits it before 2 s.
    px, py = 20 * math.sin(1.0), 20 * (1 - math.cos(1.0))
    a, v, s = agents((0, 0, 0, 10, 0.5), (px, py, 1.0, 0, 0))
    assert 1.5 <= time_to_collision(a, v, s, 2, 0) < 2.0
    a[0, 5] = 0.0
    assert time_to_collision(a, v, s, 2, 0) == M.TTC_HORIZON


def test_lane_check_offsets_and_wrong_way():
    lanes = np.array([[0, 0, 100, 0, 1.75], [100, 3.5, 0, 3.5, 1.75]])
    assert _lane_check(50, 0.3, 0.0, lanes, 0, 2) == (False, pytest.approx(0.3))
    assert _lane_check(50, 1.5, 0.0, lanes, 0, 2) == (False, pytest.approx(1.5))  # still in lane 0
    assert _lane_check(50, 3.6, 0.0, lanes, 0, 2) == (True, -1.0)  # only inside the opposite lane
    assert _lane_check(50, 3.6, math.pi, lanes, 0, 2) == (False, pytest.approx(0.1))
    assert _lane_check(50, 10.0, 0.0, lanes, 0, 2) == (False, -1.0)


def acc_with(**channels):
    """Episode accumulators (NUM_CHANNELS, 3) with given (sum, max, last) per channel name."""
    acc = np.zeros((M.NUM_CHANNELS, 3))
    for name, values in channels.items():
        acc[M.channel(name).index] = values
    return acc


def test_episode_metrics_rear_collision_is_an_incident_but_not_at_fault():
    ep = M.episode_metrics(
        acc_with(
            collision_rear=(1, 1, 1), collision_any=(1, 1, 1), progress=(0, 0, 0.4), dist_traveled=(50, 1, 1)
        ),
        100,
        60,
        100.0,
    )
    assert ep["collision_at_fault"] == 0 and ep["collision_rear"] == 1
    assert ep["scene_score"] == pytest.approx(0.5)  # 0.4 / 0.8
    assert (ep["incidents"], ep["incidents_at_fault"], ep["km"]) == (1.0, 0.0, 0.05)


def test_episode_metrics_corridor_and_gt_distances():
    ep = M.episode_metrics(
        acc_with(lane_deviation=(10, 4.2, 4.2), dist_to_gt=(20, 6.0, 6.0), progress=(0, 0, 1.2)), 50, 40, 80.0
    )
    assert ep["left_corridor"] == 1 and ep["dist_to_gt_trajectory"] == 4.2
    assert ep["dist_to_gt_location"] == 6.0 and ep["mean_dist_to_gt"] == pytest.approx(0.5)
    assert ep["scene_score"] == 1.0  # progress clipped to 1, saturates at 0.8


@pytest.mark.parametrize(
    "at_fault, offroad, progress, length, score",
    [(True, False, 1.0, 100, 0.0), (False, True, 1.0, 100, 0.0), (False, False, 0.4, 100, 0.5),
     (False, False, -0.2, 100, 0.0), (False, False, 0.0, 3.0, 1.0)],
)  # fmt: skip
def test_scene_score(at_fault, offroad, progress, length, score):
    assert M.scene_score(at_fault, offroad, progress, length) == pytest.approx(score)


def test_km_per_incident_is_a_ratio_of_sums():
    assert M.km_per_incident(np.array([0.5, 1.5, 1.0]), np.array([1, 0, 1])) == pytest.approx(1.5)
    assert M.km_per_incident(np.array([0.5]), np.array([0])) == math.inf
    assert math.isnan(M.km_per_incident(np.array([0.0]), np.array([0])))


def test_aggregation_is_cut_after_a_rear_collision():
    import gymnasium as gym

    s = straight_road(speeds=(10.0, 15.0), starts=((40.0, 0.0), (25.0, 0.0)))
    # Driving on after the cut (the default ends the episode there).
    env = gym.make("AlpaDrive-v0", scenarios=[s], horizon=60, termination={"at_cut": False}).unwrapped
    env.reset(seed=0)
    for _ in range(60):
        _, _, te, tr, info = env.step(np.array([-1.0, 0.0]))
        if te or tr:
            break
    ep = info["alpagym"]
    assert tr and not te
    assert ep["collision_rear"] == 1 and ep["collision_at_fault"] == 0
    assert ep["cut_step"] < ep["steps"]  # the episode went on, the aggregate stopped at the collision
    assert ep["ttc_violation"] == 0  # the follower is behind: not the ego's time to collision
