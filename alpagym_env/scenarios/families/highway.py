"""`highway`: a 2-4 lane one-way highway with clothoid-eased curves and dense traffic including trucks.

The reference line is the left road edge; lane i (0 = leftmost, fastest) is offset (i + 0.5) lane widths to
its right. Trucks keep to the two rightmost lanes and drive slower, so cars behind them overtake with
MOBIL lane changes (keep-right bias). Every agent is valid for the whole log (the road is long enough).
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.families import car_size, follow_gap, truck_size
from alpagym_env.scenarios.registry import register_family
from alpagym_env.scenarios.road import Piece, RoadNetwork, curve_pieces, integrate, offset
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.scenarios.validate import Draft, assemble

ROAD_LENGTH = 1300.0  # metres of lanes; edges extend `MARGIN` beyond both ends
MARGIN = 30.0
FILL = 480.0  # vehicles start on the first FILL metres
NUM_STEPS = 201


def place_lane(
    rng,
    traffic: expert.Traffic,
    path: int,
    lane: int,
    n_lanes: int,
    limit: float,
    fill: float,
    truck_share: float = 0.3,
    extra: float = 18.0,
    max_agents: int = 56,
) -> None:
    """Fills one lane from back to front with cars (and trucks in the two right lanes).

    Args:
        rng: Random source.
        traffic: Receives the agents.
        path: The lane's path index.
        lane: Lane number from the left (0 = fastest).
        n_lanes: Lanes of the road.
        limit: Speed limit, m/s.
        fill: Cars start within the first `fill` metres.
        truck_share: Chance that a vehicle in one of the two right lanes is a truck.
        extra: Mean slack added to each gap, metres (smaller = denser).
        max_agents: Stop once `traffic` holds this many agents.
    """
    s = float(rng.uniform(5.0, 30.0))
    flow = limit * (0.95 - 0.05 * lane)
    share = truck_share if lane >= n_lanes - 2 and lane > 0 else 0.0
    prev = None
    while len(traffic.agents) < max_agents:
        truck = bool(rng.random() < share)
        length, width = truck_size(rng) if truck else car_size(rng)
        params = expert.default_params(rng, truck)
        v = min(params[expert.P_SPEED] * limit, flow + float(rng.normal(0.0, 1.0)))
        if prev is not None:
            s += 0.5 * (prev.length + length) + follow_gap(
                prev.params, prev.v, v, float(rng.exponential(extra))
            )
        if s > fill:
            return
        kind = expert.KIND_TRUCK if truck else expert.KIND_CAR
        prev = expert.AgentSpec(path, s, v, length, width, kind, params, ego_bonus=0.0 if truck else 1.0)
        traffic.agents.append(prev)


def road(rng: np.random.Generator) -> tuple[RoadNetwork, expert.Traffic, int, float]:
    """A random curved road of 2-4 lanes and its expert paths (path i = lane i): (network, traffic with
    no agents yet, lanes, speed limit m/s)."""
    n_lanes = int(rng.integers(2, 5))
    width = float(rng.uniform(3.4, 3.8))
    limit = float(rng.choice([27.8, 30.6, 33.3]))
    pieces = [Piece(MARGIN)] + curve_pieces(rng, ROAD_LENGTH, 350.0, 900.0, 0.5) + [Piece(MARGIN)]
    ref, h, s = integrate(0.0, 0.0, float(rng.uniform(-np.pi, np.pi)), pieces, ds=0.5)
    lanes_part = (s >= MARGIN - 1e-9) & (s <= MARGIN + ROAD_LENGTH + 1e-9)
    net, traffic = RoadNetwork(), expert.Traffic()
    for i in range(n_lanes):
        xy = offset(ref, -(i + 0.5) * width, h)[lanes_part]
        net.add_lane(xy, width, limit)
        traffic.add_path(
            expert.PathSpec(
                xy,
                np.full(len(xy), limit),
                left=i - 1,
                right=i + 1 if i + 1 < n_lanes else -1,
                lc_range=(0.0, ROAD_LENGTH - 80.0),
                half_width=0.5 * width,
            )
        )
    net.add_edge(offset(ref, float(rng.uniform(0.5, 1.0)), h)[::-1])
    net.add_edge(offset(ref, -(n_lanes * width + float(rng.uniform(1.0, 2.5))), h))
    return net, traffic, n_lanes, limit


def draw(rng: np.random.Generator) -> Draft:
    net, traffic, n_lanes, limit = road(rng)
    for i in range(n_lanes):
        place_lane(rng, traffic, i, i, n_lanes, limit, FILL, extra=9.0)
    return Draft(net, traffic, np.zeros((0, NUM_STEPS), dtype=np.int8))


@register_family("highway")
def generate_highway(seed: int) -> Scenario:
    """A multi-lane curved highway scene with dense traffic (see the module docstring)."""
    return assemble("highway", seed, draw, NUM_STEPS)
