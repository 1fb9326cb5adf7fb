"""`merge`: an on-ramp joining a 2-3 lane main road through an acceleration lane.

Built in the main road's Frenet frame (arc length along the left road edge, lateral offset to the left):
main lane i sits at -(i + 0.5) lane widths; the ramp swings in from the right along a smoothstep and
becomes the acceleration lane beside the rightmost main lane, which ends in a taper. Ramp cars must change
left before the acceleration lane ends (they stop at its end when no gap comes), seek gaps by falling in
behind the car beside them, and courteous mainline drivers ease off to let them in. New ramp cars arrive
during the log. The gore between ramp and main road has a blunt nose so road edges never fold back on
themselves.
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.families import car_size, follow_gap
from alpagym_env.scenarios.families.highway import place_lane
from alpagym_env.scenarios.registry import register_family
from alpagym_env.scenarios.road import Piece, RoadNetwork, chain, curve_pieces, frenet, integrate, smoothstep
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.scenarios.validate import Draft, assemble

NUM_STEPS, DT = 201, 0.1
MAIN_LENGTH, MARGIN, TAPER = 1100.0, 30.0, 60.0
DS = 0.5


def draw(rng: np.random.Generator) -> Draft:
    n = int(rng.integers(2, 4))
    w = float(rng.uniform(3.4, 3.75))
    limit = float(rng.choice([25.0, 27.8, 30.6]))
    ramp_limit = float(rng.uniform(18.0, 22.0))
    sh_l, sh_r = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.8, 1.5))
    pieces = [Piece(MARGIN)] + curve_pieces(rng, MAIN_LENGTH, 900.0, 2500.0, 0.25) + [Piece(MARGIN)]
    ref, ref_h, ref_s = integrate(0.0, 0.0, float(rng.uniform(-np.pi, np.pi)), pieces, ds=DS)
    s_lo, s_hi = MARGIN, MARGIN + MAIN_LENGTH  # lanes; edges span the whole reference
    x_a0 = s_lo + float(rng.uniform(260.0, 330.0))  # ramp centre reaches the acceleration lane
    x_a1 = x_a0 + float(rng.uniform(170.0, 240.0))  # acceleration lane ends, taper begins
    ramp_len, ramp_dl = float(rng.uniform(140.0, 180.0)), float(rng.uniform(25.0, 40.0))
    l_acc = -(n + 0.5) * w

    def along(a, b):
        return np.linspace(a, b, int(round((b - a) / DS)) + 1)

    net, traffic = RoadNetwork(), expert.Traffic()
    main = along(s_lo, s_hi)
    for i in range(n):
        xy = frenet(ref, ref_h, ref_s, main, -(i + 0.5) * w)
        net.add_lane(xy, w, limit)
        traffic.add_path(
            expert.PathSpec(
                xy,
                np.full(len(xy), limit),
                left=i - 1,
                right=-1,
                lc_range=(0.0, MAIN_LENGTH - 80.0),
                half_width=0.5 * w,
            )
        )
    # ramp: smoothstep swing from ramp_dl to the right of the acceleration lane into it
    rs = along(x_a0 - ramp_len, x_a0)
    ramp_lat = l_acc - ramp_dl * (1.0 - smoothstep((rs - rs[0]) / ramp_len))
    ramp_xy = frenet(ref, ref_h, ref_s, rs, ramp_lat)
    acc_s = along(x_a0, x_a1)
    acc_xy = frenet(ref, ref_h, ref_s, acc_s, l_acc)
    ramp_lane = net.add_lane(ramp_xy, w, ramp_limit)
    acc_lane = net.add_lane(acc_xy, w, limit)
    net.link(ramp_lane, acc_lane)
    path_xy = chain(ramp_xy, acc_xy)
    lim = np.concatenate([np.full(len(ramp_xy), ramp_limit), np.full(len(acc_xy) - 1, limit)])
    seg = np.hypot(*np.diff(path_xy, axis=0).T)
    s_acc0, s_end = float(seg[: len(ramp_xy) - 1].sum()), float(seg.sum())
    ramp_path = traffic.add_path(
        expert.PathSpec(
            path_xy,
            lim,
            wall=True,
            left=n - 1,
            mandatory=1,
            lc_range=(s_acc0 + 5.0, s_end + 12.0),
            half_width=0.5 * w,
        )
    )
    # edges: left edge (reversed), main right edge + blunt gore nose + ramp left edge (reversed), ramp right
    # edge + acceleration lane + taper + main right edge
    net.add_edge(frenet(ref, ref_h, ref_s, ref_s, sh_l)[::-1])
    gap = (ramp_lat + 0.5 * w) - (-n * w)  # ramp left edge minus main right edge (< 0 before the nose)
    k_nose = int(np.nonzero(gap < -1.0)[0].max())
    nose = rs[k_nose]
    ramp_dir = ramp_xy[1] - ramp_xy[0]
    ramp_dir = ramp_dir / np.hypot(*ramp_dir)
    ramp_left = frenet(ref, ref_h, ref_s, rs[: k_nose + 1], ramp_lat[: k_nose + 1] + 0.5 * w)
    ramp_left_ext = ramp_left[0] - ramp_dir[None, :] * np.linspace(20.0, 0.0, 41)[:-1, None]
    main_right = frenet(ref, ref_h, ref_s, ref_s[ref_s <= nose], -n * w)
    net.add_edge(chain(main_right, ramp_left[::-1], ramp_left_ext[::-1]))
    ramp_right = frenet(ref, ref_h, ref_s, rs, ramp_lat - 0.5 * w - sh_r)
    ramp_right_ext = ramp_right[0] - ramp_dir[None, :] * np.linspace(20.0, 0.0, 41)[:-1, None]
    tail = ref_s[ref_s > x_a0]
    lat = np.where(
        tail <= x_a1, -(n + 1) * w - sh_r, -(n + 1) * w - sh_r + w * smoothstep((tail - x_a1) / TAPER)
    )
    net.add_edge(chain(ramp_right_ext, ramp_right, frenet(ref, ref_h, ref_s, tail, lat)))
    # traffic: mainline from the start, ramp cars on the ramp and arriving later
    for i in range(n):
        place_lane(rng, traffic, i, i, n, limit, 520.0, truck_share=0.1, extra=12.0)
    s = s_acc0 - float(rng.uniform(0.0, 60.0))
    prev = None
    while s > 10.0 and len(traffic.agents) < 56:
        length, width = car_size(rng)
        params = expert.default_params(rng)
        v = float(rng.uniform(0.8, 1.0)) * ramp_limit
        prev = expert.AgentSpec(ramp_path, s, v, length, width, expert.KIND_CAR, params, ego_bonus=6.0)
        traffic.agents.append(prev)
        s -= length + follow_gap(params, v, v, float(rng.exponential(20.0))) + 5.0
    t_spawn = float(rng.exponential(4.0))
    while t_spawn < 15.0 and len(traffic.agents) < 60:
        length, width = car_size(rng)
        traffic.agents.append(
            expert.AgentSpec(
                ramp_path,
                0.5 * length + 0.5,
                0.9 * ramp_limit,
                length,
                width,
                expert.KIND_CAR,
                expert.default_params(rng),
                spawn=int(t_spawn / DT),
            )
        )
        t_spawn += 2.0 + float(rng.exponential(4.0))
    return Draft(net, traffic, np.zeros((0, NUM_STEPS), dtype=np.int8))


@register_family("merge")
def generate_merge(seed: int) -> Scenario:
    """An on-ramp merge scene (see the module docstring)."""
    return assemble("merge", seed, draw, NUM_STEPS, DT)
