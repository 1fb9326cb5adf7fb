"""`intersection`: a signalised four-way intersection with left, straight and right turns.

Each arm has `n` approach lanes (lane 0 a left-turn pocket, the others straight, the outermost also
turning right) and `n - 1` exit lanes aligned with the straight lanes across the box, behind a painted
median opposite the pocket. Eight lights (per arm: straight+right, left) run protected phases, so movements
that are green together never cross: NS straight+right, NS left, EW straight+right, EW left, each followed
by yellow and all-red clearance. Corner curbs are offsets of the right-turn connectors. Vehicles stop at
red, decide at yellow by stopping distance, and wait at the stop line while a vehicle still clearing the
box blocks their way. New vehicles enter at the arm ends during the log.
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.families import car_size, follow_gap, stop_speed
from alpagym_env.scenarios.registry import register_family
from alpagym_env.scenarios.road import RoadNetwork, chain, connector, offset
from alpagym_env.scenarios.schema import LIGHT_GREEN, LIGHT_RED, LIGHT_YELLOW, Scenario
from alpagym_env.scenarios.validate import Draft, assemble

NUM_STEPS, DT = 201, 0.1
YELLOW, ALL_RED = 4.0, 2.0  # seconds
DS = 0.5
TURN_BONUS = 20.0  # ego score of an agent whose log turns (`validate.manoeuvres`)...
TURN_SHARE = 0.9  # ...in this share of the scenes (the others keep more straight-driving egos)


def light_schedule(rng: np.random.Generator, num_steps: int) -> np.ndarray:
    """(8, T) int8 light states: light 2a is arm a's straight+right, 2a + 1 its left turn.

    Phases in order NS straight+right, NS left, EW straight+right, EW left (arms 1, 3 are NS and 0, 2
    EW), each green, then yellow, then all red; the log starts at a random point of the cycle.
    """
    phases = [((1, 3), 0), ((1, 3), 1), ((0, 2), 0), ((0, 2), 1)]
    greens = [rng.uniform(9.0, 15.0) if kind == 0 else rng.uniform(5.0, 8.0) for _, kind in phases]
    cycle = []  # (seconds, lights in this phase, state)
    for (arms, kind), g in zip(phases, greens, strict=True):
        lights = [2 * a + kind for a in arms]
        cycle += [(g, lights, LIGHT_GREEN), (YELLOW, lights, LIGHT_YELLOW), (ALL_RED, lights, LIGHT_RED)]
    period = sum(c[0] for c in cycle)
    start = rng.uniform(0.0, period)
    states = np.full((8, num_steps), LIGHT_RED, dtype=np.int8)
    bounds = np.cumsum([0.0] + [c[0] for c in cycle])
    for t in range(num_steps):
        u = (start + t * DT) % period
        k = int(np.searchsorted(bounds, u, side="right") - 1)
        _, lights, state = cycle[min(k, len(cycle) - 1)]
        states[lights, t] = state
    return states


def place_queue(rng, traffic, path_of, s_stop: float, light_state: int, limit: float, max_n: int) -> None:
    """Places up to `max_n` cars on one approach lane, front to back, able to stop behind what is ahead.

    Args:
        rng: Random source.
        traffic: Receives the agents.
        path_of: `path_of(rng)` picks each car's path (its movement).
        s_stop: Arc length of the stop line on the paths, metres.
        light_state: The lane's light at step 0; not green starts with a queue at the stop line.
        limit: Speed limit, m/s.
        max_n: Most cars placed.
    """
    queue = light_state != LIGHT_GREEN
    prev = None
    for _ in range(max_n):
        length, width = car_size(rng)
        params = expert.default_params(rng)
        if prev is None:
            ahead = float(rng.uniform(0.0, 40.0)) if (not queue or rng.random() < 0.3) else 0.0
            s = s_stop - 2.5 - 0.5 * length - ahead
            room = s_stop - 3.0 - (s + 0.5 * length)
        else:
            if prev.v == 0.0 and rng.random() < 0.6:
                gap = follow_gap(params, 0.0, 0.0, float(rng.uniform(0.0, 1.5)))
            else:
                gap = follow_gap(params, 0.8 * limit, prev.v, float(rng.exponential(12.0)))
            s = prev.s - 0.5 * (prev.length + length) - gap
            room = gap - 2.5
        if s < 0.5 * length + 1.0:
            return
        v = float(rng.uniform(0.7, 0.95)) * limit
        if queue or prev is not None:
            v = min(v, stop_speed(params, room))
        prev = expert.AgentSpec(
            path_of(rng), s, v if v >= 1.0 else 0.0, length, width, expert.KIND_CAR, params, ego_bonus=3.0
        )
        traffic.agents.append(prev)


def draw(rng: np.random.Generator) -> Draft:
    n_ns, n_ew = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    n = [n_ew, n_ns, n_ew, n_ns]  # approach lanes per arm (0 east, 1 north, 2 west, 3 south)
    w = float(rng.uniform(3.3, 3.7))
    limit = float(rng.choice([11.1, 13.9]))
    rc = float(rng.uniform(5.0, 8.0))
    shoulder = float(rng.uniform(0.3, 0.8))
    approach_len, exit_len = float(rng.uniform(110.0, 150.0)), 190.0
    theta = float(rng.uniform(-np.pi, np.pi))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    hbox = [n[(a + 1) % 4] * w + rc for a in range(4)]  # stop-line distance of arm a from the centre
    u = [np.array(v, dtype=float) for v in ((1, 0), (0, 1), (-1, 0), (0, -1))]
    vv = [np.array([-x[1], x[0]]) for x in u]

    def line(a, r0, r1, lat):
        r = np.linspace(r0, r1, int(abs(r1 - r0) / DS) + 1)
        return (r[:, None] * u[a] + lat * vv[a]) @ rot.T

    def heading(vec):
        d = rot @ vec
        return float(np.arctan2(d[1], d[0]))

    net, traffic = RoadNetwork(), expert.Traffic()
    lights = light_schedule(rng, NUM_STEPS)
    approach, exits = {}, {}
    for a in range(4):
        for i in range(n[a]):
            xy = line(a, hbox[a] + approach_len, hbox[a], (i + 0.5) * w)
            approach[a, i] = (xy, net.add_lane(xy, w, limit))
        for j in range(n[a] - 1):
            xy = line(a, hbox[a], hbox[a] + exit_len, -(j + 1.5) * w)
            exits[a, j] = (xy, net.add_lane(xy, w, limit))
    paths_by_lane: dict[tuple[int, int], list[int]] = {}
    for a in range(4):
        moves = [(0, (a + 3) % 4, 0)] + [(i, (a + 2) % 4, i - 1) for i in range(1, n[a])]
        moves.append((n[a] - 1, (a + 1) % 4, n[(a + 1) % 4] - 2))
        for i, b, j in moves:
            (axy, alane), (exy, elane) = approach[a, i], exits[b, j]
            cxy = connector(axy[-1], heading(-u[a]), exy[0], heading(u[b]), DS)
            clane = net.add_lane(cxy, w, limit)
            net.link(alane, clane)
            net.link(clane, elane)
            light = 2 * a + (1 if i == 0 else 0)
            path_xy = chain(axy, cxy, exy)
            c_len = float(np.hypot(*np.diff(cxy, axis=0).T).sum())
            spec = expert.PathSpec(
                path_xy,
                np.full(len(path_xy), limit),
                junction=(approach_len, approach_len + c_len),
                light=light,
                half_width=0.5 * w,
            )
            paths_by_lane.setdefault((a, i), []).append(traffic.add_path(spec))
            if b == (a + 1) % 4:  # right turn: the corner curb is its right-hand offset
                outer = offset(axy, -(0.5 * w + shoulder))
                far_in = line(a, hbox[a] + approach_len + 20.0, hbox[a] + approach_len, n[a] * w + shoulder)
                far_out = line(b, hbox[b] + exit_len, hbox[b] + exit_len + 20.0, -(n[b] * w + shoulder))
                net.add_edge(
                    chain(
                        far_in,
                        outer,
                        offset(cxy, -(0.5 * w + shoulder)),
                        offset(exy, -(0.5 * w + shoulder)),
                        far_out,
                    )
                )
    for a in range(4):
        for i in range(n[a]):
            net.add_stop_line(approach[a, i][1], 2 * a + (1 if i == 0 else 0))
    # traffic: queues or platoons on every approach lane, a few cars leaving, and arrivals over time
    for a in range(4):
        for i in range(n[a]):
            options = paths_by_lane[a, i]

            def pick(r, options=options):
                if len(options) == 1:
                    return options[0]
                return options[1] if r.random() < 0.35 else options[0]

            state = int(lights[2 * a + (1 if i == 0 else 0), 0])
            place_queue(rng, traffic, pick, approach_len, state, limit, int(rng.integers(2, 6)))
            t_spawn = float(rng.exponential(6.0))
            while t_spawn < 18.0 and len(traffic.agents) < 56:
                length, width = car_size(rng)
                params = expert.default_params(rng)
                traffic.agents.append(
                    expert.AgentSpec(
                        pick(rng),
                        0.5 * length + 0.5,
                        0.8 * limit,
                        length,
                        width,
                        expert.KIND_CAR,
                        params,
                        spawn=int(t_spawn / DT),
                    )
                )
                t_spawn += 3.0 + float(rng.exponential(7.0))
    turn_bonus = TURN_BONUS if rng.random() < TURN_SHARE else 0.0  # drawn last: the traffic is as before
    return Draft(net, traffic, lights, turn_bonus=turn_bonus)


@register_family("intersection")
def generate_intersection(seed: int) -> Scenario:
    """A signalised four-way intersection scene (see the module docstring)."""
    return assemble("intersection", seed, draw, NUM_STEPS, DT)
