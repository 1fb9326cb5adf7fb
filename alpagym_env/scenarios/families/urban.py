"""`urban`: a two-lane street with parked cars and an unprotected left turn at a T-junction.

The main street runs east-west; a side street leaves northward. Parking strips line the main street inside
its curbs and give way to curb bulb-outs near the junction, so parked cars (agents standing still all log)
never touch the travel lanes. Priorities: main-street straight and right-turning traffic never yields;
eastbound cars turning left into the side street yield to oncoming traffic by gap acceptance; side-street
cars yield to everyone. A slow cyclist sometimes rides in the main street. New cars arrive at the three
street ends during the log.
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.families import car_size, follow_gap, stop_speed
from alpagym_env.scenarios.registry import register_family
from alpagym_env.scenarios.road import RoadNetwork, chain, connector, offset, smoothstep
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.scenarios.validate import Draft, assemble

NUM_STEPS, DT = 201, 0.1
HALF_MAIN, SIDE_LEN, EXT = 300.0, 220.0, 20.0  # metres
DS = 0.5
TURN_BONUS = 20.0  # ego score of an agent whose log turns (`validate.manoeuvres`)...
TURN_SHARE = 0.7  # ...in this share of the scenes (the others keep more straight-driving egos)
SHOULDER = 0.5
MAX_AGENTS = 60


def _line(x0, y0, x1, y1):
    n = int(round(np.hypot(x1 - x0, y1 - y0) / DS)) + 1
    return np.stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)], axis=1)


def place_stream(
    rng,
    traffic,
    options,
    probs,
    entry: float,
    exit_: float,
    length: float,
    limit: float,
    bonus,
    slack: float = 25.0,
) -> None:
    """Places moving cars along paths that share a lane up to a junction at [entry, exit_] (arc lengths).

    Cars before the junction pick a path from `options` with `probs`; cars past it keep `options[0]`
    (the straight one). Nobody starts inside the junction, and cars that may have to yield start slow
    enough to stop at the entry. `slack` is the mean extra gap between cars, metres.
    """
    s = length - float(rng.uniform(60.0, 100.0))
    prev = None
    while s > 4.0 and len(traffic.agents) < MAX_AGENTS - 10:
        ln, wd = car_size(rng)
        params = expert.default_params(rng)
        if entry - 4.0 < s + 0.5 * ln and s - 0.5 * ln < exit_ + 4.0:
            s = entry - 4.0 - 0.5 * ln
            continue
        k = int(rng.choice(len(options), p=probs)) if s < entry else 0
        v = float(rng.uniform(0.75, 0.95)) * limit
        if prev is not None:
            v = min(v, stop_speed(params, prev.s - 0.5 * prev.length - s - 0.5 * ln))
        if s < entry:
            v = min(v, stop_speed(params, entry - s - 0.5 * ln))
        prev = expert.AgentSpec(options[k], s, v, ln, wd, expert.KIND_CAR, params, ego_bonus=bonus[k])
        traffic.agents.append(prev)
        s -= ln + follow_gap(params, v, v, float(rng.exponential(slack))) + 4.0 + (slack - 25.0)


def draw(rng: np.random.Generator) -> Draft:
    w = float(rng.uniform(3.2, 3.6))
    park = float(rng.uniform(2.2, 2.5))
    rc = float(rng.uniform(7.0, 10.0))
    limit = float(rng.choice([11.1, 13.9]))
    theta = float(rng.uniform(-np.pi, np.pi))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    xj = w + SHOULDER + rc  # junction half-width along the main street
    ym = w + SHOULDER + rc  # side-street lanes start here
    X, Y = HALF_MAIN, ym + SIDE_LEN

    def curb(x):  # lateral distance from a main lane centre to its curb
        return 0.5 * w + SHOULDER + (park - SHOULDER) * smoothstep((np.abs(x) - xj - 8.0) / 6.0)

    def r(xy):
        return np.asarray(xy) @ rot.T

    def hd(angle):
        return angle + theta

    net, traffic = RoadNetwork(), expert.Traffic()
    eb_in, eb_out = _line(-X, -w / 2, -xj, -w / 2), _line(xj, -w / 2, X, -w / 2)
    wb_in, wb_out = _line(X, w / 2, xj, w / 2), _line(-xj, w / 2, -X, w / 2)
    eb_mid, wb_mid = _line(-xj, -w / 2, xj, -w / 2), _line(xj, w / 2, -xj, w / 2)
    sb_in, nb_out = _line(-w / 2, Y, -w / 2, ym), _line(w / 2, ym, w / 2, Y)
    eb_left = connector(r(eb_in[-1]), hd(0.0), r(nb_out[0]), hd(np.pi / 2), DS)
    wb_right = connector(r(wb_in[-1]), hd(np.pi), r(nb_out[0]), hd(np.pi / 2), DS)
    sb_left = connector(r(sb_in[-1]), hd(-np.pi / 2), r(eb_out[0]), hd(0.0), DS)
    sb_right = connector(r(sb_in[-1]), hd(-np.pi / 2), r(wb_out[0]), hd(np.pi), DS)
    lanes = {}
    for name, xy in (
        ("eb_in", r(eb_in)),
        ("eb_out", r(eb_out)),
        ("wb_in", r(wb_in)),
        ("wb_out", r(wb_out)),
        ("eb_mid", r(eb_mid)),
        ("wb_mid", r(wb_mid)),
        ("sb_in", r(sb_in)),
        ("nb_out", r(nb_out)),
        ("eb_left", eb_left),
        ("wb_right", wb_right),
        ("sb_left", sb_left),
        ("sb_right", sb_right),
    ):
        lanes[name] = (xy, net.add_lane(xy, w, limit))
    for a, b in (
        ("eb_in", "eb_mid"),
        ("eb_mid", "eb_out"),
        ("eb_in", "eb_left"),
        ("eb_left", "nb_out"),
        ("wb_in", "wb_mid"),
        ("wb_mid", "wb_out"),
        ("wb_in", "wb_right"),
        ("wb_right", "nb_out"),
        ("sb_in", "sb_left"),
        ("sb_left", "eb_out"),
        ("sb_in", "sb_right"),
        ("sb_right", "wb_out"),
    ):
        net.link(lanes[a][1], lanes[b][1])
    paths = {}
    for name, parts, rank, bonus in (
        ("eb_straight", ("eb_in", "eb_mid", "eb_out"), 0, 1.0),
        ("eb_left", ("eb_in", "eb_left", "nb_out"), 1, 8.0),
        ("wb_straight", ("wb_in", "wb_mid", "wb_out"), 0, 1.0),
        ("wb_right", ("wb_in", "wb_right", "nb_out"), 0, 3.0),
        ("sb_left", ("sb_in", "sb_left", "eb_out"), 2, 5.0),
        ("sb_right", ("sb_in", "sb_right", "wb_out"), 2, 4.0),
    ):
        xy = chain(*(lanes[p][0] for p in parts))
        seg = np.hypot(*np.diff(xy, axis=0).T)
        n0, n1 = len(lanes[parts[0]][0]), len(lanes[parts[1]][0])
        jin, jout = float(seg[: n0 - 1].sum()), float(seg[: n0 + n1 - 2].sum())
        spec = expert.PathSpec(
            xy, np.full(len(xy), limit), junction=(jin, jout), rank=rank, half_width=0.5 * w
        )
        paths[name] = (traffic.add_path(spec), jin, jout, float(seg.sum()), bonus)
    # curbs: the south curb runs straight through; the two north corners follow the right-turn connectors
    xs = np.arange(-X - EXT, X + EXT + 1e-9, DS)
    net.add_edge(r(np.stack([xs, -w / 2 - curb(xs)], axis=1)))
    xe = np.arange(X + EXT, xj - 1e-9, -DS)
    north_e = np.stack([xe, w / 2 + curb(xe)], axis=1)
    side_e = _line(w + SHOULDER, ym, w + SHOULDER, Y + EXT)
    net.add_edge(chain(r(north_e), offset(wb_right, -(0.5 * w + SHOULDER)), r(side_e)))
    xw = np.arange(-xj, -X - EXT - 1e-9, -DS)
    north_w = np.stack([xw, w / 2 + curb(xw)], axis=1)
    side_w = _line(-w - SHOULDER, Y + EXT, -w - SHOULDER, ym)
    net.add_edge(chain(r(side_w), offset(sb_right, -(0.5 * w + SHOULDER)), r(north_w)))
    # parked cars in the strips, clear of the junction
    for side in (-1.0, 1.0):
        x = -150.0 + float(rng.uniform(0.0, 8.0))
        cap = len(traffic.agents) + int(rng.integers(4, 13))
        while x < 150.0 and len(traffic.agents) < cap:
            ln, wd = car_size(rng)
            wd = min(wd, park - 0.3)
            if abs(x) - 0.5 * ln > xj + 16.0 and rng.random() < 0.45:
                y = side * (w + 0.5 * park)
                yaw = (0.0 if rng.random() < 0.5 else np.pi) + float(rng.uniform(-0.02, 0.02))
                x0, y0 = r([x, y])
                traffic.agents.append(
                    expert.AgentSpec(
                        -1,
                        0.0,
                        0.0,
                        ln,
                        wd,
                        expert.KIND_PARKED,
                        np.zeros(expert.NUM_PARAMS),
                        pose=(x0, y0, yaw + theta),
                    )
                )
            x += ln + float(rng.uniform(1.0, 3.0))
    # moving traffic
    p_left = float(rng.uniform(0.3, 0.6))
    # oncoming (westbound) traffic is sparser, so left turners find gaps
    for straight, turn, prob, slack in (
        ("eb_straight", "eb_left", p_left, 25.0),
        ("wb_straight", "wb_right", 0.3, 50.0),
    ):
        (pa, jin, jout, length, ba), (pb, _, _, _, bb) = paths[straight], paths[turn]
        place_stream(rng, traffic, [pa, pb], [1.0 - prob, prob], jin, jout, length, limit, [ba, bb], slack)
    (pl, jin, jout, length, bl), (pr, _, _, _, br) = paths["sb_left"], paths["sb_right"]
    place_stream(rng, traffic, [pl, pr], [0.6, 0.4], jin, jout, min(length, jin + 20.0), limit, [bl, br])
    if rng.random() < 0.5:  # a cyclist in the main street
        pc = paths["eb_straight" if rng.random() < 0.5 else "wb_straight"][0]
        params = expert.default_params(rng)
        params[expert.P_SPEED], params[expert.P_AMAX] = float(rng.uniform(4.0, 6.0)) / limit, 1.0
        traffic.agents.append(expert.AgentSpec(pc, 2.0, 4.5, 1.8, 0.7, expert.KIND_CYCLIST, params, spawn=1))
    for name, weights, every in (("eb", (0.5, 0.5), 6.0), ("wb", (0.7, 0.3), 12.0), ("sb", (0.6, 0.4), 6.0)):
        opts = {
            "eb": ("eb_straight", "eb_left"),
            "wb": ("wb_straight", "wb_right"),
            "sb": ("sb_left", "sb_right"),
        }
        t_spawn = float(rng.exponential(every))
        while t_spawn < 17.0 and len(traffic.agents) < MAX_AGENTS:
            ln, wd = car_size(rng)
            k = int(rng.choice(2, p=weights))
            path = paths[opts[name][k]][0]
            traffic.agents.append(
                expert.AgentSpec(
                    path,
                    0.5 * ln + 0.5,
                    0.8 * limit,
                    ln,
                    wd,
                    expert.KIND_CAR,
                    expert.default_params(rng),
                    spawn=int(t_spawn / DT),
                )
            )
            t_spawn += 3.0 + float(rng.exponential(every))
    turn_bonus = TURN_BONUS if rng.random() < TURN_SHARE else 0.0  # drawn last: the traffic is as before
    return Draft(net, traffic, np.zeros((0, NUM_STEPS), dtype=np.int8), turn_bonus=turn_bonus)


@register_family("urban")
def generate_urban(seed: int) -> Scenario:
    """An urban T-junction scene with parked cars and an unprotected left turn (see the module docstring)."""
    return assemble("urban", seed, draw, NUM_STEPS, DT)
