"""Procedural scenario families; importing this package registers them (see `scenarios.registry`).

Each family module draws a random road and traffic (`validate.Draft`) from a seeded generator and hands it
to `validate.assemble`, which runs the expert and guarantees clean logs. Shared placement helpers live here.

| family         | scene                                               | the ego                             |
|----------------|-----------------------------------------------------|-------------------------------------|
| `highway`      | 2-4 lane curved highway, dense traffic, trucks      | a car in the thick of traffic       |
| `merge`        | on-ramp with an acceleration lane                   | a ramp car preferred                |
| `intersection` | signalised four-way, protected turn phases          | in 90% of scenes a car that turns   |
| `urban`        | T-junction, parked cars, unprotected left, cyclists | in 70% of scenes a car that turns   |
| `congestion`   | the highway with a jam that stands, then clears     | always a car that stops and goes on |

"Turns" and "stops and goes" are judged on the ego's log (`validate.manoeuvres`): a net heading change
over 45 degrees; braking below 0.5 m/s after driving and driving above 3 m/s again.
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios import expert


def car_size(rng: np.random.Generator) -> tuple[float, float]:
    """(length, width) of a passenger car, metres."""
    return float(rng.uniform(4.2, 5.0)), float(rng.uniform(1.8, 2.0))


def truck_size(rng: np.random.Generator) -> tuple[float, float]:
    """(length, width) of a truck, metres."""
    return float(rng.uniform(10.0, 12.5)), float(rng.uniform(2.4, 2.6))


def follow_gap(params: np.ndarray, v: float, v_lead: float, extra: float) -> float:
    """A comfortable bumper gap behind a leader at start, metres: the IDM desired gap with 10-20% to spare
    (so nobody starts by braking hard), plus `extra` slack."""
    closing = max(v - v_lead, 0.0)
    brake = 2.0 * np.sqrt(params[expert.P_AMAX] * params[expert.P_BCOMF])
    return 1.1 * params[expert.P_S0] + 1.1 * v * params[expert.P_HEADWAY] + 1.2 * v * closing / brake + extra


def stop_speed(params: np.ndarray, gap: float) -> float:
    """The highest speed, m/s, at which the IDM is content to stop in `gap` metres behind a standstill."""
    c = 0.5 / np.sqrt(params[expert.P_AMAX] * params[expert.P_BCOMF])
    room = max(gap - params[expert.P_S0], 0.0)
    hw = params[expert.P_HEADWAY]
    return float((-hw + np.sqrt(hw * hw + 4.0 * c * room)) / (2.0 * c))


from alpagym_env.scenarios.families import congestion, highway, intersection, merge, urban  # noqa: E402, F401
