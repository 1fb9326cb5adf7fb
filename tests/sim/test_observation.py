"""The observation: lane slots, the lane route, and nothing computable from the log's future."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios.registry import generate
from alpagym_env.scenarios.validate import manoeuvres
from alpagym_env.sim.lane_route import lane_route, match_lanes
from alpagym_env.sim.observation import LANE_FEATURES, LANE_SLOTS, obs_layout, obs_size
from tests.conftest import LANE_WIDTH, straight_road

CFG = EnvConfig()
POS, SPD = CFG.obs.position_scale, CFG.obs.speed_scale
LAYOUT = obs_layout(CFG.obs.num_agents, CFG.obs.route_points)


def parts(obs: np.ndarray) -> dict[str, np.ndarray]:
    return {k: obs[sl].reshape(shape) for k, (sl, shape) in LAYOUT.items()}


def first_obs(scenes, steps=0, actions=None) -> list[np.ndarray]:
    sim = BatchedSim(CFG, 1, scenes, len(scenes))
    out = []
    for i in range(len(scenes)):
        sim.reset([0], [i])
        seq = [sim.obs[0, 0].copy()]
        for _ in range(steps):
            sim.step(np.zeros((1, 1, 2)) if actions is None else actions)
            seq.append(sim.obs[0, 0].copy())
        out.append(np.stack(seq))
    return out


def test_layout_sizes_add_up():
    assert LAYOUT["lanes"][1] == (LANE_SLOTS, LANE_FEATURES)
    assert LAYOUT["light"][0].stop == obs_size(CFG.obs.num_agents, CFG.obs.route_points) == 177


def test_lane_slots_hold_leader_and_neighbours_however_many_cars_are_nearer():
    # Ego at x = 20 in lane 0; its leader 45 m ahead; many cars behind it and one ahead-left.
    starts = [(20.0, 0.0), (65.0, 0.0), (30.0, LANE_WIDTH)] + [(x, 0.0) for x in (-40.0, -30.0, -20.0, -10.0)]
    starts += [(x, LANE_WIDTH) for x in (-40.0, -30.0, -20.0, -10.0, 0.0, 10.0)]
    speeds = (10.0, 8.0, 12.0) + (10.0,) * 10
    (obs,) = first_obs([straight_road(speeds=speeds, starts=tuple(starts))])
    p = parts(obs[0])
    lead, follow, left_lead, left_follow, right_lead, right_follow = p["lanes"]
    assert lead[0] == 1.0 and lead[1] * POS == pytest.approx(45.0 - 4.5, abs=1e-4)
    assert lead[3] * SPD == pytest.approx(-2.0, abs=1e-4)  # 8 m/s vs the ego's 10
    assert follow[0] == 1.0 and follow[1] * POS == pytest.approx(30.0 - 4.5, abs=1e-4)
    assert left_lead[0] == 1.0 and left_lead[1] * POS == pytest.approx(10.0 - 4.5, abs=1e-4)
    assert left_lead[2] * 5.0 == pytest.approx(LANE_WIDTH, abs=1e-4)
    assert left_follow[0] == 1.0 and left_follow[1] * POS == pytest.approx(10.0 - 4.5, abs=1e-4)
    assert right_lead[0] == 0.0 and right_follow[0] == 0.0
    assert right_lead[1] * POS == pytest.approx(CFG.obs.agent_range)
    # The others fill the nearest rows: 12 agents, 4 in lane slots, one (-40, 3.5) beyond 60 m.
    assert p["agents"][:, 8].sum() == 7
    assert p["limit"][0] * SPD == pytest.approx(30.0)


def _lane_change(t_change: int):
    """The straight road with the ego moving to the left lane over 3 s from step `t_change`."""
    s = straight_road()
    traj = s.traj.copy()
    u = np.clip((np.arange(traj.shape[1]) - t_change) / 30.0, 0.0, 1.0)
    traj[0, :, 1] = LANE_WIDTH * (3 * u**2 - 2 * u**3)
    return dataclasses.replace(s, traj=traj, route_xy=traj[0, :, :2].copy())


def _stop_early(s, t_stop: int):
    """`s` with the ego braking to a halt from step `t_stop` (same past, another future)."""
    e = s.ego_index
    traj = s.traj.copy()
    v = np.hypot(traj[e, t_stop, 3], traj[e, t_stop, 4])
    h = traj[e, t_stop, 2]
    for t in range(t_stop + 1, traj.shape[1]):
        v = max(v - 0.4, 0.0)
        traj[e, t, :2] = traj[e, t - 1, :2] + 0.1 * v * np.array([np.cos(h), np.sin(h)])
        traj[e, t, 2], traj[e, t, 3], traj[e, t, 4] = h, v, 0.0
    end = traj[e, -1, :2] + 60.0 * np.array([np.cos(h), np.sin(h)])
    return dataclasses.replace(s, traj=traj, route_xy=np.vstack([traj[e, :, :2], end]))


def _straight_ego(family: str):
    """The first test-suite scene of `family` whose ego does not turn: stopping it early keeps its lanes
    (a log that stops before a turn never drives the turn's lanes, so its route would rightly differ)."""
    for seed in range(2_000_000, 2_000_040):
        s = generate(family, seed)
        turns, _ = manoeuvres(s.traj[s.ego_index][None], s.valid[s.ego_index][None])
        if not turns[0]:
            return s
    raise AssertionError(f"no {family} test scene with a straight ego")


def test_observation_cannot_tell_when_the_log_changes_lane():
    early, late = first_obs([_lane_change(50), _lane_change(120)], steps=49)
    np.testing.assert_array_equal(early, late)


@pytest.mark.parametrize("family", ["straight", "intersection", "urban"])
def test_observation_cannot_tell_the_logged_path_length(family):
    # Futures that end in the lane the log ends in: the route (navigation) is the same, the path length
    # (whether and where the expert stops) is not.
    s = straight_road() if family == "straight" else _straight_ego(family)
    stopped = _stop_early(s, 40)
    a, b = first_obs([s, stopped], steps=40)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("family", ["highway", "merge", "intersection", "urban"])
def test_lane_route_runs_on_lane_centres(family):
    s = generate(family, 2_000_001)
    e = s.ego_index
    xy, attr = lane_route(s, s.traj[e], s.valid[e])
    d = np.hypot(xy[:, None, 0] - s.lane_xy[None, :, 0], xy[:, None, 1] - s.lane_xy[None, :, 1]).min(1)
    assert np.mean(d < 0.05) > 0.95  # all but tapers between unlinked lanes and the straight tail
    assert set(np.unique(attr[:, 1])) <= set(s.lane_speed_limit)
    assert np.all(attr[:, 0] > 0)


def _leader_missing(scenes) -> tuple[int, int]:
    """(missed, total) steps where an agent is in the ego's lane ahead within range (map lanes along the
    ego's logged lanes) and the leader slot is empty, over the expert driving each scene."""
    sim = BatchedSim(CFG, 1, scenes, len(scenes))
    missed = total = 0
    for i, s in enumerate(scenes):
        e = s.ego_index
        route_lanes = set(match_lanes(s, s.traj[e, :, :2], s.traj[e, :, 2]).tolist())
        sim.reset([0], [i])
        sim.expert[:] = True
        for t in range(CFG.horizon):
            if t % 4 == 0:
                n = sim.compiled[0].num_agents
                ag, ok = sim.state["agent"][0, :n], sim.state["valid"][0, :n]
                lanes = match_lanes(s, ag[:, :2], ag[:, 2])
                ahead = {int(lanes[0])} | {int(q) for q in s.lane_successors[lanes[0]] if q in route_lanes}
                dx, dy = ag[:, 0] - ag[0, 0], ag[:, 1] - ag[0, 1]
                lon = dx * np.cos(ag[0, 2]) + dy * np.sin(ag[0, 2])
                near = np.hypot(dx, dy) <= CFG.obs.agent_range
                inside = ok & np.isin(lanes, list(ahead)) & (lon > 0) & near
                inside[0] = False
                if lanes[0] >= 0 and inside.any():
                    total += 1
                    missed += parts(sim.obs[0, 0])["lanes"][0, 0] == 0.0
            sim.step(np.zeros((1, 1, 2)))
            if sim.truncated[0] or sim.terminated[0, 0]:
                break
    return missed, total


def test_leader_is_never_missing_in_the_expert_rollouts():
    families = ("highway", "merge", "intersection", "urban")
    scenes = [generate(f, seed) for f in families for seed in (2_000_000, 2_000_002)]
    missed, total = _leader_missing(scenes)
    assert total > 100 and missed == 0


def test_scenes_without_lanes_fall_back_to_the_log_path():
    s = straight_road()
    bare = dataclasses.replace(
        s,
        lane_xy=np.zeros((0, 2)),
        lane_offsets=np.zeros(1, dtype=np.int64),
        lane_width=np.zeros(0),
        lane_successors=np.zeros((0, 4), dtype=np.int64),
        lane_speed_limit=np.zeros(0),
    )
    assert lane_route(bare, bare.traj[0], bare.valid[0]) is None
    (obs,) = first_obs([bare])
    p = parts(obs[0])
    np.testing.assert_allclose(p["route"][:, 1], 0.0, atol=1e-6)  # along the logged path, y = 0
    assert p["limit"][0] == 0.0  # unknown
    assert p["lanes"][0, 0] == 1.0  # the leader 25 m ahead, in a 3.7 m lane around the path
