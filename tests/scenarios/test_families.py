"""The procedural families: determinism, clean expert logs, ego and route, lights, behaviours."""

from __future__ import annotations

import numpy as np
import pytest

from alpagym_env.scenarios import FAMILIES, check_expert_logs, generate
from alpagym_env.scenarios.schema import (
    ARRAY_FIELDS,
    LIGHT_GREEN,
    LIGHT_RED,
    LIGHT_YELLOW,
    LOG_HEADING,
    LOG_VX,
    LOG_VY,
)
from alpagym_env.scenarios.validate import GO_SPEED, STOP_SPEED, TURN_ANGLE, manoeuvres

SEEDS = range(30)
FAMILY_NAMES = ("highway", "merge", "intersection", "urban", "congestion")
_CACHE: dict[str, list] = {}


def scenes(family: str) -> list:
    if family not in _CACHE:
        _CACHE[family] = [generate(family, seed) for seed in SEEDS]
    return _CACHE[family]


def test_all_families_registered():
    assert set(FAMILY_NAMES) <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_same_seed_same_arrays_different_seed_differs(family):
    a, b, c = generate(family, 7), generate(family, 7), generate(family, 8)
    for name in ARRAY_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.ego_index == b.ego_index and a.scenario_id == b.scenario_id
    assert a.traj.shape != c.traj.shape or not np.array_equal(a.traj, c.traj)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_expert_logs_collision_free_on_road_and_obey_lights(family):
    for s in scenes(family):
        assert check_expert_logs(s) == [], s.scenario_id


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_sizes_counts_and_types(family):
    for s in scenes(family):
        assert 8 <= s.num_agents <= 64, s.scenario_id
        assert s.num_steps == 201 and s.dt == pytest.approx(0.1)
        assert s.valid.any(axis=1).all(), "every agent exists at some step"
        assert np.all((s.length > 1.0) & (s.length < 13.0)) and np.all((s.width > 0.5) & (s.width < 2.7))
        assert np.all((s.lane_width > 3.1) & (s.lane_width < 3.9))
        assert np.all(s.lane_speed_limit > 5.0)
    if family == "highway":
        assert any((s.length > 9.0).any() for s in scenes(family)), "some trucks"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_velocity_follows_heading_and_positions(family):
    for s in scenes(family):
        h, vx, vy = s.traj[..., LOG_HEADING], s.traj[..., LOG_VX], s.traj[..., LOG_VY]
        v = s.valid
        assert np.abs(vx * np.sin(h) - vy * np.cos(h))[v].max() < 1e-9, "velocity along the heading"
        assert (vx * np.cos(h) + vy * np.sin(h))[v].min() >= 0.0, "no reversing"
        both = v[:, 1:] & v[:, :-1]
        step = np.diff(s.traj[..., :2], axis=1)
        mean_v = 0.5 * (s.traj[:, 1:, 3:5] + s.traj[:, :-1, 3:5]) * s.dt
        assert np.abs(step - mean_v)[both].max() < 0.05, "positions integrate the velocities"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_accelerations_and_turn_rates_are_modest(family):
    for s in scenes(family):
        speed = np.hypot(s.traj[..., LOG_VX], s.traj[..., LOG_VY])
        yaw = np.unwrap(s.traj[..., LOG_HEADING], axis=1)
        both = s.valid[:, 1:] & s.valid[:, :-1]
        accel = np.diff(speed, axis=1) / s.dt
        lateral = speed[:, 1:] * np.diff(yaw, axis=1) / s.dt
        assert accel[both].min() >= -4.2 and accel[both].max() <= 2.6, s.scenario_id
        assert np.abs(lateral[both]).max() < 4.89, s.scenario_id


def _route_s(route, xy):
    """Arc length along `route` of the vertex nearest to xy, and that distance."""
    d = np.hypot(*(route - xy).T)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(route, axis=0).T))])
    k = int(np.argmin(d))
    return s[k], d[k], s[-1]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_ego_moves_and_route_extends_beyond_its_log(family):
    travelled = []
    for s in scenes(family):
        e = s.ego_index
        assert s.valid[e].all() and s.agent_type[e] == 0
        path = np.hypot(*np.diff(s.traj[e, :, :2], axis=0).T).sum()
        travelled.append(path)
        s0, d0, total = _route_s(s.route_xy, s.traj[e, 0, :2])
        s1, d1, _ = _route_s(s.route_xy, s.traj[e, -1, :2])
        assert d0 < 1.0 and d1 < 1.0, "the route passes through the ego's first and last positions"
        assert s1 >= s0 and total - s1 >= 50.0, s.scenario_id
        gaps = np.hypot(*np.diff(s.route_xy, axis=0).T)
        assert gaps.max() < 1.5
    assert np.mean(np.array(travelled) >= 30.0) >= 0.9, travelled


@pytest.mark.parametrize("family", ("highway", "merge", "urban", "congestion"))
def test_families_without_lights(family):
    for s in scenes(family)[:5]:
        assert s.light_states.shape == (0, s.num_steps) and s.stop_lines.shape == (0, 4)


def test_intersection_light_schedule_is_protected_and_ordered():
    for s in scenes("intersection"):
        ls = s.light_states
        assert ls.shape == (8, s.num_steps)
        assert set(np.unique(ls)) <= {LIGHT_GREEN, LIGHT_YELLOW, LIGHT_RED}
        # at any step the lights that are not red belong to one protected phase
        phases = [{3, 7}, {2, 6}, {1, 5}, {0, 4}]  # NS left, NS straight+right, EW left, EW straight+right
        for t in range(s.num_steps):
            active = set(np.nonzero(ls[:, t] != LIGHT_RED)[0].tolist())
            assert any(active <= p for p in phases), (s.scenario_id, t, active)
        # each light goes green -> yellow -> red, with 4 s yellows
        for k in range(8):
            change = np.nonzero(np.diff(ls[k]))[0]
            for c in change:
                assert (ls[k, c], ls[k, c + 1]) in {(1, 2), (2, 3), (3, 1)}
            yellows = np.diff(np.concatenate([[0], (ls[k] == LIGHT_YELLOW).astype(int), [0]]))
            starts, ends = np.nonzero(yellows == 1)[0], np.nonzero(yellows == -1)[0]
            for a, b in zip(starts, ends, strict=True):
                if a > 0 and b < s.num_steps:
                    assert b - a == 40
        assert len(s.stop_lines) == len(s.stop_light) >= 8


def test_intersection_vehicles_wait_at_red_and_turn_both_ways():
    waited = lefts = rights = 0
    for s in scenes("intersection"):
        yaw = np.unwrap(s.traj[..., LOG_HEADING], axis=1)
        turn = np.where(s.valid, yaw, np.nan)
        change = np.nanmax(turn, axis=1) - np.nanmin(turn, axis=1)
        signed = yaw[np.arange(s.num_agents), s.valid.shape[1] - 1 - np.argmax(s.valid[:, ::-1], axis=1)]
        signed = signed - yaw[np.arange(s.num_agents), np.argmax(s.valid, axis=1)]
        lefts += int(np.any((change > 1.2) & (signed > 1.2)))
        rights += int(np.any((change > 1.2) & (signed < -1.2)))
        speed = np.hypot(s.traj[..., LOG_VX], s.traj[..., LOG_VY])
        front = s.traj[..., :2] + 0.5 * s.length[:, None, None] * np.stack(
            [np.cos(yaw), np.sin(yaw)], axis=-1
        )
        for k, line in enumerate(s.stop_lines):
            mid = 0.5 * (line[:2] + line[2:])
            near = np.hypot(*(front - mid).transpose(2, 0, 1)) < 8.0
            red = s.light_states[s.stop_light[k]] == LIGHT_RED
            waited += int(np.any(near & (speed < 0.1) & red[None, :] & s.valid))
    n = len(SEEDS)
    assert lefts >= 0.5 * n and rights >= 0.5 * n and waited >= 0.9 * n, (lefts, rights, waited)


def _lane_of(s, xy):
    """(lane index, distance) of the lane centre nearest to a point (distance to segments)."""
    best, best_d = -1, np.inf
    for i in range(s.num_lanes):
        a, b = s.lane(i)[:-1], s.lane(i)[1:]
        ab = b - a
        u = np.clip(np.einsum("ij,ij->i", xy - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
        d = np.hypot(*(a + u[:, None] * ab - xy).T).min()
        if d < best_d:
            best, best_d = i, d
    return best, best_d


def test_highway_lane_changes_happen():
    with_change = 0
    for s in scenes("highway")[:12]:
        for i in range(s.num_agents):
            (a, da), (b, db) = _lane_of(s, s.traj[i, 0, :2]), _lane_of(s, s.traj[i, -1, :2])
            if a != b and da < 0.3 and db < 0.3:
                with_change += 1
                break
    assert with_change >= 6


def test_merge_ramp_cars_join_the_main_road():
    merged = 0
    for s in scenes("merge")[:12]:
        ramp = s.num_lanes - 2  # lanes: main lanes, then the ramp, then the acceleration lane
        main = range(ramp)
        for i in range(s.num_agents):
            if not (s.valid[i, 0] and s.valid[i, -1]):
                continue
            (a, da), (b, db) = _lane_of(s, s.traj[i, 0, :2]), _lane_of(s, s.traj[i, -1, :2])
            if a == ramp and b in main and da < 0.3 and db < 0.3:
                merged += 1
                break
    assert merged >= 10


def test_urban_parked_cars_and_unprotected_left_turns():
    lefts = 0
    for s in scenes("urban"):
        speed = np.hypot(s.traj[..., LOG_VX], s.traj[..., LOG_VY])
        parked = s.valid.all(axis=1) & (speed.max(axis=1) == 0.0)
        parked &= np.all(s.traj[:, :, :3] == s.traj[:, :1, :3], axis=(1, 2))
        assert parked.sum() >= 4 and not parked[s.ego_index], s.scenario_id
        yaw = np.unwrap(s.traj[..., LOG_HEADING], axis=1)
        first = yaw[np.arange(s.num_agents), np.argmax(s.valid, axis=1)]
        last = yaw[np.arange(s.num_agents), s.num_steps - 1 - np.argmax(s.valid[:, ::-1], axis=1)]
        lefts += int(np.any(last - first > 1.2))
    assert lefts >= 0.4 * len(SEEDS)  # oncoming gaps decide: some logs end with turners still waiting


def _ego_turns(s) -> bool:
    yaw = np.unwrap(s.traj[s.ego_index, :, LOG_HEADING])
    return bool(abs(yaw[-1] - yaw[0]) > TURN_ANGLE)


@pytest.mark.parametrize(("family", "share"), [("urban", 0.5), ("intersection", 0.65)])
def test_most_urban_and_intersection_egos_turn(family, share):
    """The ego's own log turns (net heading change over 45 degrees), not merely its path."""
    turning = [_ego_turns(s) for s in scenes(family)]
    assert turning == [bool(manoeuvres(s.traj, s.valid)[0][s.ego_index]) for s in scenes(family)]
    assert np.mean(turning) >= share, np.mean(turning)
    assert not all(turning), "some egos still drive straight on"


def test_congestion_ego_brakes_to_a_stop_and_drives_on():
    for s in scenes("congestion"):
        e = s.ego_index
        speed = np.hypot(s.traj[e, :, LOG_VX], s.traj[e, :, LOG_VY])
        k = int(np.argmax(speed < STOP_SPEED))
        assert speed[k] < STOP_SPEED, s.scenario_id
        assert speed[:k].max() > GO_SPEED and speed[k:].max() > GO_SPEED, s.scenario_id
        assert manoeuvres(s.traj, s.valid)[1][e]
        # a jam on every lane: the ego is not alone in stopping
        others = np.hypot(s.traj[..., LOG_VX], s.traj[..., LOG_VY]).min(axis=1) < STOP_SPEED
        assert others.sum() >= 3, s.scenario_id


def test_highway_egos_do_not_stop():
    for s in scenes("highway"):
        speed = np.hypot(s.traj[s.ego_index, :, LOG_VX], s.traj[s.ego_index, :, LOG_VY])
        assert speed.min() > 5.0, s.scenario_id
