"""Checks of expert logs (collisions, off-road, red lights) and the validate-and-repair scene assembly.

`check_expert_logs(scenario)` lists every problem of a scene's logs, using the simulator's own geometry
kernels (`sim.geometry.boxes_overlap`, `sim.grid.box_offroad_distance_grid`) so the expert is held to
exactly the rules the env applies to the policy. `assemble(family, seed, draw)` turns a family's random
draft into a clean `Scenario`: it simulates the expert, drops the non-ego agents involved in any problem
and simulates again, and redraws from a derived sub-seed when that does not converge, so every call
returns a clean scene and
the same seed always gives the same arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.road import RoadNetwork, chain, resample
from alpagym_env.scenarios.schema import AGENT_CYCLIST, AGENT_VEHICLE, LIGHT_RED, Scenario, make_scenario
from alpagym_env.sim.geometry import boxes_overlap, segments_intersect
from alpagym_env.sim.grid import box_offroad_distance_grid, edge_grid

EV_COLLISION, EV_OFFROAD, EV_RED_LIGHT = 0, 1, 2
MAX_EVENTS = 4096
_CELL = 5.0  # grid cell of the road-edge index, metres


@njit(cache=True)
def _put(events, count, kind, t, i, j, value):
    """Writes one event row if there is room; returns the new count."""
    if count < events.shape[0]:
        events[count, 0], events[count, 1], events[count, 2] = kind, t, i
        events[count, 3], events[count, 4] = j, value
    return count + 1


@njit(cache=True)
def _check(traj, valid, length, width, seg, stops, stop_light, lights, events, skip_inside):
    """Writes (kind, t, i, j, value) rows of every problem into `events`; returns how many were found.

    With `skip_inside`, a box is re-measured only once its corners may have moved (since it was last
    measured) as far as it then was inside the road: the signed distance to the edges changes by at most
    the distance moved wherever no open edge end is near (true of the procedural scenes, whose edges
    run 20 m past every lane end), so this gives the same answers for much less work.
    """
    n, num_steps = valid.shape
    count = 0
    meta, start, items = edge_grid(seg, _CELL)
    # a box that has not moved since the previous step gives the same answers as then: skip the work
    still = np.zeros(n, dtype=np.bool_)
    last_off = np.zeros(n)
    moved = np.full(n, np.inf)  # corner travel bound since the last measurement, metres
    for t in range(num_steps):
        for i in range(n):
            still[i] = (
                t > 0
                and valid[i, t]
                and valid[i, t - 1]
                and traj[i, t, 0] == traj[i, t - 1, 0]
                and traj[i, t, 1] == traj[i, t - 1, 1]
                and traj[i, t, 2] == traj[i, t - 1, 2]
            )
        for i in range(n):
            if not valid[i, t]:
                continue
            xi, yi, hi = traj[i, t, 0], traj[i, t, 1], traj[i, t, 2]
            for j in range(i + 1, n):
                if (still[i] and still[j]) or not valid[j, t]:
                    continue
                if boxes_overlap(
                    xi,
                    yi,
                    hi,
                    length[i],
                    width[i],
                    traj[j, t, 0],
                    traj[j, t, 1],
                    traj[j, t, 2],
                    length[j],
                    width[j],
                ):
                    count = _put(events, count, EV_COLLISION, t, i, j, 0.0)
            if seg.shape[0]:
                if t > 0 and valid[i, t - 1]:
                    dh = abs((hi - traj[i, t - 1, 2] + math.pi) % (2.0 * math.pi) - math.pi)
                    r = 0.5 * math.hypot(length[i], width[i])
                    moved[i] += math.hypot(xi - traj[i, t - 1, 0], yi - traj[i, t - 1, 1]) + r * dh
                else:
                    moved[i] = np.inf
                if not still[i] and not (skip_inside and last_off[i] + moved[i] < -1e-6):
                    last_off[i] = box_offroad_distance_grid(
                        xi, yi, hi, length[i], width[i], seg, meta, start, items
                    )
                    moved[i] = 0.0
                if last_off[i] > 0.0:
                    count = _put(events, count, EV_OFFROAD, t, i, -1, last_off[i])
            if t == 0 or not valid[i, t - 1]:
                continue
            h0, h1 = traj[i, t - 1, 2], hi
            fx0 = traj[i, t - 1, 0] + 0.5 * length[i] * math.cos(h0)
            fy0 = traj[i, t - 1, 1] + 0.5 * length[i] * math.sin(h0)
            fx1, fy1 = xi + 0.5 * length[i] * math.cos(h1), yi + 0.5 * length[i] * math.sin(h1)
            for k in range(stops.shape[0]):
                if lights[stop_light[k], t] != LIGHT_RED:
                    continue
                ax, ay, bx, by = stops[k, 0], stops[k, 1], stops[k, 2], stops[k, 3]
                side0 = (bx - ax) * (fy0 - ay) - (by - ay) * (fx0 - ax)
                side1 = (bx - ax) * (fy1 - ay) - (by - ay) * (fx1 - ax)
                if (
                    side0 != 0.0
                    and side0 * side1 <= 0.0
                    and segments_intersect(fx0, fy0, fx1, fy1, ax, ay, bx, by)
                ):
                    count = _put(events, count, EV_RED_LIGHT, t, i, k, 0.0)
    return count


def find_problems(
    traj,
    valid,
    length,
    width,
    edge_segments,
    stop_lines,
    stop_light,
    light_states,
    lights=True,
    skip_inside=False,
):
    """(P, 5) float64 rows (kind, step, agent, other agent or stop line, off-road metres) of every problem.

    `skip_inside` skips re-measuring boxes that cannot have reached an edge (see `_check`); only for
    scenes whose edges extend well past where agents drive.
    """
    events = np.zeros((MAX_EVENTS, 5))
    stops = np.asarray(stop_lines, dtype=np.float64).reshape(-1, 4)
    if not lights or light_states.shape[0] == 0:
        stops = np.zeros((0, 4))
    ls = light_states if light_states.shape[0] else np.zeros((1, valid.shape[1]), dtype=np.int8)
    seg = np.ascontiguousarray(edge_segments, dtype=np.float64).reshape(-1, 4)
    count = _check(
        traj, valid, length, width, seg, stops, np.asarray(stop_light, np.int64), ls, events, skip_inside
    )
    return events[: min(count, MAX_EVENTS)]


def check_expert_logs(scenario: Scenario, lights: bool = True) -> list[str]:
    """Every collision, off-road box and red-light crossing in a scenario's logs; empty when clean.

    Collisions: two valid agents' boxes overlap (`boxes_overlap`, strict). Off-road: some corner of a valid
    agent's box lies outside the road edges (`box_offroad_distance` > 0). Red light: a valid agent's front
    bumper centre crosses a stop line between steps t - 1 and t while the line's light is red at t.

    Args:
        scenario: The scene to check.
        lights: Also check red lights.

    Returns:
        One human-readable line per problem (at most `MAX_EVENTS`).
    """
    s = scenario
    ev = find_problems(
        s.traj,
        s.valid,
        s.length,
        s.width,
        s.edge_segments(),
        s.stop_lines,
        s.stop_light,
        s.light_states,
        lights,
    )
    out = []
    for kind, t, i, j, value in ev:
        t, i, j = int(t), int(i), int(j)
        if kind == EV_COLLISION:
            out.append(f"{s.scenario_id}: step {t}: agents {i} and {j} collide")
        elif kind == EV_OFFROAD:
            out.append(f"{s.scenario_id}: step {t}: agent {i} is off-road by {value:.3f} m")
        else:
            out.append(f"{s.scenario_id}: step {t}: agent {i} crosses stop line {j} on red")
    return out


# ------------------------------------------------------------------------------------------ assembly


@dataclass
class Draft:
    """A family's random draw: the road, the traffic and lights, and how to pick the ego.

    Attributes:
        network: Lanes, edges and stop lines.
        traffic: Paths and agents for the expert.
        light_states: (K, T) int8 light schedule (K = 0 without lights).
        hidden_lights: The schedule only paces the expert (e.g. holds the head of a traffic jam) and is
            not part of the scene: the scenario gets no lights, and the network must have no stop lines.
        turn_bonus: Ego score added to an agent whose log turns (see `manoeuvres`).
        stop_go_bonus: Ego score added to an agent whose log stops and moves on again (see `manoeuvres`).
        require_stop_go: Only an agent whose log stops and moves on again may be the ego; a draw without
            one is redrawn.
    """

    network: RoadNetwork
    traffic: expert.Traffic
    light_states: np.ndarray
    hidden_lights: bool = False
    turn_bonus: float = 0.0
    stop_go_bonus: float = 0.0
    require_stop_go: bool = False


MAX_ATTEMPTS, MAX_REPAIRS = 8, 6
MIN_AGENTS, MAX_AGENTS = 8, 64
EGO_MIN_TRAVEL, ROUTE_BEYOND = 30.0, 60.0


def _edge_segments(network: RoadNetwork) -> np.ndarray:
    return np.concatenate([np.concatenate([e[:-1], e[1:]], axis=1) for e in network.edges])


TURN_ANGLE = math.pi / 4  # a log turns when its heading changes by more than this, start to end, rad
STOP_SPEED, GO_SPEED = 0.5, 3.0  # a log stops below STOP_SPEED and moves on above GO_SPEED, m/s


def manoeuvres(traj: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which logs turn and which stop and go, judged on their valid steps.

    Args:
        traj: (N, T, 5) logs [x, y, heading, vx, vy].
        valid: (N, T) valid mask.

    Returns:
        (turns, stop_and_go), (N,) bool each: the net heading change from the first to the last valid
        step exceeds `TURN_ANGLE`; the log drives above `GO_SPEED`, brakes below `STOP_SPEED`, then
        drives above `GO_SPEED` again (a car that starts at a standstill does not count until it has
        moved and stopped once more).
    """
    n, num_steps = valid.shape
    rows = np.arange(n)
    first = np.argmax(valid, axis=1)
    last = num_steps - 1 - np.argmax(valid[:, ::-1], axis=1)
    yaw = np.unwrap(np.where(valid, traj[..., 2], traj[rows, first, 2][:, None]), axis=1)
    turns = valid.any(axis=1) & (np.abs(yaw[rows, last] - yaw[rows, first]) > TURN_ANGLE)
    speed = np.where(valid, np.hypot(traj[..., 3], traj[..., 4]), 0.0)
    fast = speed > GO_SPEED
    slow = valid & (speed < STOP_SPEED)
    moved = np.logical_or.accumulate(fast, axis=1)
    stopped = np.logical_or.accumulate(slow & moved, axis=1)  # stopped after having moved
    return turns, np.any(stopped & fast, axis=1)


def _choose_ego(
    logs: expert.Logs,
    bonus: np.ndarray,
    prepared: expert.Prepared,
    rng: np.random.Generator,
    turn_bonus: float = 0.0,
    stop_go_bonus: float = 0.0,
    require_stop_go: bool = False,
) -> int:
    """The agent to be the ego, or -1 when none qualifies.

    Candidates move along a path, are valid throughout, end on their lane centre (not mid lane change)
    with at least `ROUTE_BEYOND` + 5 m of path ahead. The score is the mean number of agents within 40 m,
    plus 10 for travelling `EGO_MIN_TRAVEL` or more, plus the agent's own bonus (a turning or merging
    path), plus `turn_bonus` when its log turns and `stop_go_bonus` when its log stops and moves on
    again (`manoeuvres`): a path that would turn says nothing of whether the log gets there in time.
    With `require_stop_go` only agents whose log stops and moves on again qualify.
    """
    valid_all = logs.valid.all(axis=1) & (logs.path[:, 0] >= 0)
    last = np.maximum(logs.path[:, -1], 0)
    paths_len = prepared.arrays[3][:, 0]
    remaining = np.where(valid_all, paths_len[last] - logs.s[:, -1], 0.0)
    centred = np.zeros(len(last), dtype=bool)
    for i in np.nonzero(valid_all)[0]:
        xy = prepared.path_xy[last[i]]
        u = logs.s[i, -1] / expert.PATH_DS
        k = min(int(u), len(xy) - 2)
        centre = xy[k] + (u - k) * (xy[k + 1] - xy[k])
        centred[i] = np.hypot(*(logs.traj[i, -1, :2] - centre)) < 0.05
    travel = np.hypot(*(logs.traj[:, -1, :2] - logs.traj[:, 0, :2]).T)
    ok = valid_all & centred & (remaining >= ROUTE_BEYOND + 5.0)
    turns, stop_go = manoeuvres(logs.traj, logs.valid)
    if require_stop_go:
        ok &= stop_go
    if not ok.any():
        return -1
    xy = logs.traj[:, ::10, :2]
    d = np.hypot(xy[:, None, :, 0] - xy[None, :, :, 0], xy[:, None, :, 1] - xy[None, :, :, 1])
    v = logs.valid[:, ::10]
    near = ((d < 40.0) & v[:, None, :] & v[None, :, :]).sum(axis=(1, 2)) / xy.shape[1] - 1.0
    score = near + bonus + 10.0 * (travel >= EGO_MIN_TRAVEL) + 0.01 * rng.random(len(ok))
    score += turn_bonus * turns + stop_go_bonus * stop_go
    score[~ok] = -np.inf
    return int(np.argmax(score))


def _route(logs: expert.Logs, ego: int, prepared: expert.Prepared) -> np.ndarray:
    """Ego route: its path just behind its start, its logged positions, then its final path ahead."""
    p0, s0 = logs.path[ego, 0], logs.s[ego, 0]
    p1, s1 = logs.path[ego, -1], logs.s[ego, -1]
    xy0, xy1 = prepared.path_xy[p0], prepared.path_xy[p1]
    k0 = int(max(s0 - 20.0, 0.0) / expert.PATH_DS)
    k1 = int(math.ceil(s1 / expert.PATH_DS)) + 1
    k2 = min(int((s1 + ROUTE_BEYOND + 40.0) / expert.PATH_DS), len(xy1) - 1)
    k0_end = int(s0 / expert.PATH_DS)
    pre = xy0[k0 : max(k0_end, k0)]
    if len(pre) and np.hypot(*(pre[-1] - logs.traj[ego, 0, :2])) < 0.05:
        pre = pre[:-1]
    parts = [p for p in (pre, logs.traj[ego, :, :2], xy1[k1 : k2 + 1]) if len(p)]
    return resample(chain(*parts), 1.0)


def assemble(
    family: str,
    seed: int,
    draw: Callable[[np.random.Generator], Draft],
    num_steps: int = 201,
    dt: float = 0.1,
) -> Scenario:
    """Draws, simulates, validates and repairs a scene; deterministic in (family, seed).

    Raises:
        RuntimeError: When no clean scene was found in `MAX_ATTEMPTS` draws (never seen in practice).
    """
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, attempt])
        draft = draw(rng)
        seg = _edge_segments(draft.network)
        road = draft.network.fields()
        agents = draft.traffic.agents
        keep = np.ones(len(agents), dtype=bool)
        logs = prepared = None
        paths = expert.prepare_paths(draft.traffic)
        for _ in range(MAX_REPAIRS):
            sub = replace(draft.traffic, agents=[a for a, k in zip(agents, keep, strict=True) if k])
            prepared = expert.prepare(sub, paths)
            logs = expert.run(prepared, draft.light_states, num_steps, dt)
            length = np.array([a.length for a in sub.agents])
            width = np.array([a.width for a in sub.agents])
            ev = find_problems(
                logs.traj,
                logs.valid,
                length,
                width,
                seg,
                road["stop_lines"],
                road["stop_light"],
                draft.light_states,
                skip_inside=True,
            )
            if len(ev) == 0:
                break
            idx = np.nonzero(keep)[0]
            for kind, _, i, j, _ in ev:
                for a in (int(i), int(j)) if kind == EV_COLLISION else (int(i),):
                    if sub.agents[a].path >= 0 or kind != EV_COLLISION:
                        keep[idx[a]] = False
        else:
            continue
        ever = logs.valid.any(axis=1)
        kept = [a for a, k in zip(agents, keep, strict=True) if k]
        if not MIN_AGENTS <= int(ever.sum()) <= MAX_AGENTS:
            continue
        bonus = np.array([a.ego_bonus for a in kept])
        ego = _choose_ego(
            logs, bonus, prepared, rng, draft.turn_bonus, draft.stop_go_bonus, draft.require_stop_go
        )
        if ego < 0:
            continue
        route = _route(logs, ego, prepared)
        rows = np.nonzero(ever)[0]
        return make_scenario(
            scenario_id=f"{family}-{seed:06d}",
            family=family,
            source=f"procedural:{family}:seed={seed}",
            dt=dt,
            **road,
            light_states=np.zeros((0, num_steps), np.int8) if draft.hidden_lights else draft.light_states,
            traj=logs.traj[rows],
            valid=logs.valid[rows],
            length=np.array([kept[r].length for r in rows]),
            width=np.array([kept[r].width for r in rows]),
            agent_type=np.array(
                [AGENT_CYCLIST if kept[r].kind == expert.KIND_CYCLIST else AGENT_VEHICLE for r in rows]
            ),
            ego_index=int(np.searchsorted(rows, ego)),
            route_xy=route,
        )
    raise RuntimeError(f"{family}: no clean scene for seed {seed} after {MAX_ATTEMPTS} draws")
