"""`congestion`: stop-and-go on a highway: traffic runs into a jam, stops, and moves on as the jam clears.

The road is the `highway` family's (2-4 lanes, clothoid-eased curves, trucks in the two right lanes). A
jam stands across all lanes: its head, `HEAD` metres down the lanes, holds still until a release time of
3-8 s, as if a blockage beyond it had just cleared, and cars queue behind it bumper to bumper over
`QUEUE` metres. Upstream traffic arrives at up to highway speed, each car no faster than lets it stop
comfortably behind the standing queue, and brakes to a standstill at its tail; once the head moves, the
start wave runs back through the queue and the cars drive on. The head is held by a schedule private to
the expert (a light at the head that only the expert sees, `Draft.hidden_lights`): the scene has no lights
or stop lines, and the policy sees only the queue ahead. The ego is always a car whose log drives, stops
and drives on again (`validate.manoeuvres`; a draw without one is redrawn).
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert
from alpagym_env.scenarios.families import car_size, follow_gap, stop_speed, truck_size
from alpagym_env.scenarios.families.highway import road
from alpagym_env.scenarios.registry import register_family
from alpagym_env.scenarios.schema import LIGHT_GREEN, LIGHT_RED, Scenario
from alpagym_env.scenarios.validate import Draft, assemble

NUM_STEPS, DT = 201, 0.1
HEAD = (300.0, 420.0)  # arc length of the jam head on the lanes, metres
QUEUE = (15.0, 60.0)  # length of the standing queue, metres
RELEASE = (3.0, 8.0)  # when the head starts to move, seconds
MAX_AGENTS = 56
ROOM = 1.5  # arriving cars may be as fast as lets the IDM stop in ROOM times the room it has


def place_jam(
    rng,
    traffic: expert.Traffic,
    path: int,
    lane: int,
    n_lanes: int,
    limit: float,
    head: float,
    queue: float,
    budget: int,
    extra: float = 8.0,
) -> None:
    """Fills one lane from the jam head backwards: a standing queue, then traffic arriving at speed.

    Args:
        rng: Random source.
        traffic: Receives the agents.
        path: The lane's path index.
        lane: Lane number from the left (0 = fastest).
        n_lanes: Lanes of the road.
        limit: Speed limit, m/s.
        head: Arc length of the jam head (the front car's bumper stops short of it), metres.
        queue: Length of the standing queue, metres.
        budget: Most agents placed in this lane.
        extra: Mean slack added to each gap of the arriving traffic, metres.
    """
    share = 0.3 if lane >= n_lanes - 2 and lane > 0 else 0.0
    flow = limit * (0.95 - 0.05 * lane)
    prev = None
    stop_rear = head - 0.5  # where the rear of the car ahead will stand once everyone has stopped
    for _ in range(budget):
        truck = bool(rng.random() < share)
        length, width = truck_size(rng) if truck else car_size(rng)
        params = expert.default_params(rng, truck)
        if prev is None:
            s, v = head - 0.5 - float(rng.uniform(0.5, 2.0)) - 0.5 * length, 0.0
        elif prev.v == 0.0 and head - (prev.s - 0.5 * prev.length) < queue:
            gap = follow_gap(params, 0.0, 0.0, float(rng.uniform(0.0, 1.5)))
            s, v = prev.s - 0.5 * (prev.length + length) - gap, 0.0
        else:
            v_free = min(params[expert.P_SPEED] * limit, flow + float(rng.normal(0.0, 1.0)))
            gap = follow_gap(params, v_free, v_free, float(rng.exponential(extra)))  # v is capped below
            s = prev.s - 0.5 * (prev.length + length) - gap
            # the IDM far from a standing queue brakes at about its comfortable deceleration from here
            v = min(v_free, stop_speed(params, ROOM * (stop_rear - (s + 0.5 * length))))
            v = v if v >= 1.0 else 0.0
        if s < 0.5 * length + 5.0:
            return
        stop_rear = min(stop_rear - params[expert.P_S0], s + 0.5 * length) - length
        kind = expert.KIND_TRUCK if truck else expert.KIND_CAR
        prev = expert.AgentSpec(path, s, v, length, width, kind, params, ego_bonus=0.0 if truck else 1.0)
        traffic.agents.append(prev)


def draw(rng: np.random.Generator) -> Draft:
    net, traffic, n_lanes, limit = road(rng)
    head = float(rng.uniform(*HEAD))
    queue = float(rng.uniform(*QUEUE))
    release = float(rng.uniform(*RELEASE))
    for spec in traffic.paths:  # every lane stops at the head while the hidden light is red
        spec.junction, spec.light = (head, head + 1.0), 0
    lights = np.full((1, NUM_STEPS), LIGHT_GREEN, dtype=np.int8)
    lights[0, : int(round(release / DT))] = LIGHT_RED
    for i in range(n_lanes):
        lane_queue = queue + float(rng.uniform(-5.0, 5.0))
        place_jam(rng, traffic, i, i, n_lanes, limit, head, lane_queue, MAX_AGENTS // n_lanes)
    return Draft(net, traffic, lights, hidden_lights=True, require_stop_go=True)


@register_family("congestion")
def generate_congestion(seed: int) -> Scenario:
    """A highway scene with a jam that the traffic stops in and drives out of (see the module docstring)."""
    return assemble("congestion", seed, draw, NUM_STEPS, DT)
