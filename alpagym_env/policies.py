"""Reference policies that act on the flat observation (batched: (B, D) float32 -> (B, 2) actions).

- `RulePolicy` (``idm`` on the leaderboard): pure pursuit on the route with IDM speed control.
- `ExpertPolicy` (``expert``): the ego's own log; the evaluator sets `BatchedSim.expert` for it.
- `ConstantVelocityPolicy` (``constant_velocity``): holds speed with straight wheels.
- `RandomPolicy` (``random``): uniform random actions, seeded per episode.

Optional hooks the evaluator uses: ``action_type`` (the env action type the policy outputs; these four
are ``"control"``), ``follows_log`` (True: drive the log), ``reset(slots, seeds)`` (called
when episodes start in batch rows `slots`), ``last_plans`` (B, K, P, 2) ego-frame plan points of the
last call with ``plan_dt`` seconds between points (for minADE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from alpagym_env.config import DynamicsConfig, ObsConfig
from alpagym_env.sim.idm import idm_accel
from alpagym_env.sim.observation import AGENT_FEATURES, obs_layout


@dataclass(frozen=True)
class RulePolicy:
    """Pure pursuit on the lane-route waypoints with IDM speed control behind the nearest car ahead.

    The car ahead is the leader lane slot, or a nearer other agent (crossing or oncoming traffic) inside
    the ego's corridor. It stops for red and yellow lights it can stop for, and cruises at
    `cruise_speed` otherwise.

    Attributes:
        cruise_speed: Desired speed on a free road, m/s.
        lookahead_point: Which route waypoint (0-based) to steer at.
        obs: The env's observation sizes.
        dynamics: The env's vehicle (for the action scaling).
    """

    action_type: ClassVar[str] = "control"
    cruise_speed: float = 12.0
    lookahead_point: int = 1
    obs: ObsConfig = ObsConfig()
    dynamics: DynamicsConfig = DynamicsConfig()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """(B, D) float32 observations -> (B, 2) float32 normalised actions."""
        obs = np.atleast_2d(obs)
        lay = obs_layout(self.obs.num_agents, self.obs.route_points)
        pos, spd = self.obs.position_scale, self.obs.speed_scale
        ego = obs[:, lay["ego"][0]]
        route = obs[:, lay["route"][0]].reshape(len(obs), *lay["route"][1])
        agents = obs[:, lay["agents"][0]].reshape(len(obs), self.obs.num_agents, AGENT_FEATURES)
        leader = obs[:, lay["lanes"][0]].reshape(len(obs), *lay["lanes"][1])[:, 0]
        light = obs[:, lay["light"][0]]
        v = ego[:, 0] * spd
        # Pure pursuit: curvature 2 y / d^2 to the lookahead waypoint, steer = atan(wheelbase * k).
        tx = route[:, self.lookahead_point, 0] * pos
        ty = route[:, self.lookahead_point, 1] * pos
        wheelbase = self.dynamics.lf + self.dynamics.lr
        steer = np.arctan(wheelbase * 2.0 * ty / np.maximum(tx**2 + ty**2, 1.0))
        actions = np.zeros((len(obs), 2), dtype=np.float32)
        actions[:, 1] = np.clip(steer / self.dynamics.max_steer, -1, 1)
        for b in range(len(obs)):
            gap, v_lead = 1e9, 0.0
            if leader[b, 0] > 0:
                gap, v_lead = leader[b, 1] * pos, v[b] + leader[b, 3] * spd
            for row in agents[b]:
                x, y = row[0] * pos, row[1] * pos
                if row[8] > 0 and x > 0 and abs(y) < 2.5:
                    g = x - 0.5 * (4.5 + row[6] * 5.0)
                    if g < gap:
                        gap, v_lead = g, v[b] + row[2] * spd
            stop_dist = light[b, 3] * pos
            if (light[b, 0] > 0 or light[b, 1] > 0) and stop_dist > v[b] ** 2 / (2 * 4.0) - 2.0:
                if stop_dist - 3.0 < gap:
                    gap, v_lead = max(stop_dist - 3.0, 0.1), 0.0
            a = idm_accel(v[b], self.cruise_speed, gap, v_lead, 2.0, 3.0, 2.5, 1.2)
            cap = self.dynamics.max_acc if a >= 0 else self.dynamics.max_brake
            actions[b, 0] = np.clip(a / cap, -1, 1)
        return actions


class ExpertPolicy:
    """The ego's own log (``follows_log``): the simulator replays it and ignores these zero actions."""

    follows_log = True
    action_type = "control"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros((len(np.atleast_2d(obs)), 2), dtype=np.float32)


class ConstantVelocityPolicy:
    """Zero acceleration and straight wheels: the car keeps its speed and heading.

    Its plan is the constant-velocity extrapolation in the ego frame, `plan_points` points `plan_dt`
    seconds apart, exposed as ``last_plans`` (B, 1, P, 2) for minADE.
    """

    action_type = "control"

    def __init__(self, obs: ObsConfig = ObsConfig(), plan_dt: float = 0.5, plan_points: int = 10) -> None:  # noqa: B008
        self.obs, self.plan_dt, self.plan_points = obs, plan_dt, plan_points
        self.last_plans = np.zeros((0, 1, plan_points, 2))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(obs)
        v = obs[:, :2].astype(np.float64) * self.obs.speed_scale  # body-frame (v_lon, v_lat), m/s
        times = (np.arange(self.plan_points) + 1) * self.plan_dt
        self.last_plans = (v[:, None, :] * times[:, None])[:, None]
        return np.zeros((len(obs), 2), dtype=np.float32)


class RandomPolicy:
    """Uniform random actions in [-1, 1]^2.

    `reset(slots, seeds)` gives each batch row its own generator, so an episode's actions depend on its
    seed only, not on which row or batch it ran in; rows never reset draw from one generator of `seed`.
    """

    action_type = "control"

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._rows: dict[int, np.random.Generator] = {}

    def reset(self, slots, seeds) -> None:
        for row, s in zip(slots, seeds, strict=True):
            self._rows[int(row)] = np.random.default_rng(int(s))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        n = len(np.atleast_2d(obs))
        out = np.empty((n, 2), dtype=np.float32)
        for b in range(n):
            out[b] = self._rows.get(b, self._rng).uniform(-1.0, 1.0, 2)
        return out
