"""`alpagym_env.parallel_env(...)`: a PettingZoo `ParallelEnv` where several vehicles are agents.

The same `BatchedSim` with C controlled slots per scene: the ego and the C - 1 nearest moving
vehicles are driven by the policies (each with its own dynamic bicycle, route, metrics, at-fault
attribution and reward), the rest are simulated. Each agent judges its contacts from its own side at
first touch, so when one controlled vehicle rear-ends another only the follower is at fault; each
ends at its own AlpaSim cut. `possible_agents` is fixed (``agent_0`` is the ego);
an agent that terminates leaves `agents` and the scene for the rest of the episode.
`BatchedMultiAgent` steps B such scenes at once with plain arrays, for speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.drive_env import (
    action_space,
    check_actions,
    check_render_mode,
    observation_space,
    scenario_source,
    split_obs,
)
from alpagym_env.envs.infos import INFO_KEY, episode_info, step_info
from alpagym_env.envs.view import SceneView
from alpagym_env.metrics import EPISODE_METRICS
from alpagym_env.rewards import Reward, resolve
from alpagym_env.scenarios.schema import AGENT_VEHICLE, Scenario

logger = logging.getLogger(__name__)

EPISODE_KEYS = (*EPISODE_METRICS, "r", "l")
MIN_MOVE = 5.0  # m: vehicles whose log moves less are only controlled when no moving one is left


def controlled_agents(s: Scenario, count: int) -> tuple[int, ...] | None:
    """The ego and the `count - 1` vehicles nearest to it (moving ones first), or None if too few.

    Candidates are vehicles valid at the first two log steps (so they have a starting speed and
    acceleration).
    """
    ego = s.ego_index
    cand = [
        i
        for i in range(s.num_agents)
        if i != ego and s.valid[i, 0] and s.valid[i, 1] and s.agent_type[i] == AGENT_VEHICLE
    ]
    if len(cand) < count - 1:
        return None
    start = s.traj[:, 0, :2]
    dist = np.hypot(*(start[cand] - start[ego]).T)
    moved = np.array([np.hypot(*np.ptp(s.traj[i, s.valid[i], :2], axis=0)) for i in cand])
    order = np.lexsort((dist, moved < MIN_MOVE))
    return (ego, *(cand[k] for k in order[: count - 1]))


class _MultiAgentSource:
    """Scenes that have enough vehicles, each with its controlled agents."""

    def __init__(self, scenarios: Sequence[Scenario], count: int) -> None:
        self.scenarios = scenarios
        picks = [(i, controlled_agents(s, count)) for i, s in enumerate(scenarios)]
        self.eligible = [(i, c) for i, c in picks if c is not None]
        if not self.eligible:
            raise ValueError(f"no scenario has {count} vehicles to control; lower num_controlled")


class BatchedMultiAgent:
    """B scenes x C controlled vehicles with array in, array out (no dicts per agent).

    Args:
        num_scenes: B.
        num_controlled: C, vehicles driven per scene (the ego and C - 1 nearest).
        reward, scenarios, **kwargs: As `AlpaDriveEnv`.
    """

    def __init__(
        self, num_scenes: int, num_controlled: int, reward=None, scenarios=None, **kwargs: Any
    ) -> None:
        if not 1 <= int(num_controlled) <= 64:
            raise ValueError(f"num_controlled must be in 1..64, got {num_controlled}")
        self.config = EnvConfig.from_kwargs(**kwargs)
        if num_controlled > self.config.max_agents:
            raise ValueError(f"num_controlled={num_controlled} exceeds max_agents={self.config.max_agents}")
        self.reward_spec = resolve(reward)
        if self.reward_spec.fn is not None or self.reward_spec.terminal_terms:
            raise ValueError(
                "the multi-agent envs take metric reward terms only (no callable, no terminal terms)"
            )
        self.source = _MultiAgentSource(scenario_source(self.config, scenarios), int(num_controlled))
        index, scale = self.reward_spec.kernel_arrays()
        scenes = self.source.scenarios
        self.sim = BatchedSim(self.config, num_scenes, scenes, len(scenes), int(num_controlled), index, scale)
        self.num_scenes, self.num_controlled = num_scenes, int(num_controlled)
        self._actions = np.zeros((num_scenes, self.num_controlled, self.sim.action_dim))

    def reset(self, indices: Sequence[int], picks: Sequence[int]) -> np.ndarray:
        """Resets scenes `indices` to eligible scenes `picks` (indices into `source.eligible`)."""
        chosen = [self.source.eligible[int(p)] for p in picks]
        self.sim.reset(indices, [i for i, _ in chosen], [c for _, c in chosen])
        return self.sim.obs.copy()

    def step(self, actions: np.ndarray):
        """(B, C, A) actions -> obs (B, C, D), rewards (B, C), terminated (B, C), truncated (B,)."""
        self._actions[:] = check_actions(actions, self._actions.shape)
        self.sim.step(self._actions)
        return (
            self.sim.obs.copy(),
            self.sim.reward.copy(),
            self.sim.terminated.copy(),
            self.sim.truncated.copy(),
        )


class AlpaDriveParallelEnv(ParallelEnv):
    """Several vehicles of one scene driven by policies, as a PettingZoo `ParallelEnv`.

    Args:
        num_controlled: Vehicles driven by policies (the ego is ``agent_0``); scenes with fewer
            vehicles are skipped.
        render_mode: ``"rgb_array"`` or None.
        reward: Metric reward terms or a preset, applied to every agent.
        scenarios: Scenes to draw from (default: the configured suite).
        render_config: A `RenderConfig`.
        **kwargs: `EnvConfig` fields, as for `AlpaDriveEnv`.

    Each agent's info is flat numbers with the same keys at every step (what TorchRL's
    `PettingZooWrapper` and SuperSuit batch): ``t``, ``scenario_index``, ``reward/{kind}/{name}``,
    and ``alpagym/{metric}``, ``alpagym/r``, ``alpagym/l``, 0 until the agent's episode ends. Reset
    options other than ``eligible_index`` are ignored (PettingZoo's API test passes an arbitrary one).
    """

    metadata = {
        "name": "alpadrive_v0",
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        num_controlled: int = 4,
        render_mode: str | None = None,
        reward: str | Sequence | Callable | Reward | None = None,
        scenarios: Sequence[Scenario] | None = None,
        render_config: Any = None,
        **kwargs: Any,
    ) -> None:
        check_render_mode(render_mode)
        self.batch = BatchedMultiAgent(1, num_controlled, reward, scenarios, **kwargs)
        self.sim = self.batch.sim
        self.config = self.batch.config
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{c}" for c in range(self.batch.num_controlled)]
        self.agents: list[str] = []
        self._slot = {a: c for c, a in enumerate(self.possible_agents)}
        self._obs_spaces = {a: observation_space(self.config, self.sim.obs_dim) for a in self.possible_agents}
        self._act_spaces = {a: action_space(self.config) for a in self.possible_agents}
        self._term_keys = tuple(t.key for t in self.batch.reward_spec.metric_terms)
        self._rng: np.random.Generator | None = None
        self._returns = np.zeros(self.batch.num_controlled)
        self._render_config = render_config
        self._view: SceneView | None = None

    def observation_space(self, agent: str):
        return self._obs_spaces[agent]

    def action_space(self, agent: str):
        return self._act_spaces[agent]

    def _obs(self, agents: Sequence[str]) -> dict[str, Any]:
        flat = self.sim.obs[0]
        out = {a: flat[self._slot[a]].copy() for a in agents}
        if self.config.obs_type == "dict":
            out = {a: split_obs(self.config, o) for a, o in out.items()}
        return out

    def _info(self, agent: str, done: bool) -> dict[str, Any]:
        """Flat numbers with the same keys at every step (TorchRL's wrapper builds its spec from the
        reset's): `step_info`'s, then ``alpagym/{metric}``, ``alpagym/r`` and ``alpagym/l``, 0 until
        the agent's episode ends and its closed-loop metrics, return and length from then on."""
        c = self._slot[agent]
        info = step_info(self.sim, 0, c, self._term_keys)
        ep = dict.fromkeys(EPISODE_KEYS, 0.0)
        if done:
            ep.update(episode_info(self.sim, 0, c), r=float(self._returns[c]))
        info.update({f"{INFO_KEY}/{k}": v for k, v in ep.items()})
        return info

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        if set(options) - {"eligible_index"}:
            # PettingZoo's API test passes an arbitrary option and expects neither an error nor a warning.
            ignored = sorted(set(options) - {"eligible_index"})
            logger.info("AlpaDriveParallelEnv ignores reset options %s", ignored)
        if seed is not None or self._rng is None:
            self._rng, _ = seeding.np_random(seed)
        pick = options.get("eligible_index")
        if pick is None:
            pick = int(self._rng.integers(len(self.batch.source.eligible)))
        self.batch.reset([0], [pick])
        self._returns[:] = 0.0
        self.agents = list(self.possible_agents)
        return self._obs(self.agents), {a: self._info(a, False) for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if self.sim.scenario_index[0] < 0:
            raise RuntimeError("call reset() before step()")
        live = set(self.agents)
        missing, extra = live - set(actions), set(actions) - live
        if missing or extra:
            raise ValueError(
                f"actions must cover exactly the live agents; missing {sorted(missing)}, "
                f"dead or unknown {sorted(extra)}"
            )
        batch = np.zeros((1, self.batch.num_controlled, self.sim.action_dim))
        for a, act in actions.items():
            try:
                batch[0, self._slot[a]] = check_actions(act, (self.sim.action_dim,))
            except ValueError as e:
                raise ValueError(f"{a}: {e}") from None
        self.batch.step(batch)
        sim = self.sim
        trunc = bool(sim.truncated[0])
        obs = self._obs(self.agents)
        rewards = {a: float(sim.reward[0, self._slot[a]]) for a in self.agents}
        for a, r in rewards.items():
            self._returns[self._slot[a]] += r
        terminations = {a: bool(sim.terminated[0, self._slot[a]]) for a in self.agents}
        truncations = {a: trunc and not terminations[a] for a in self.agents}
        infos = {a: self._info(a, terminations[a] or truncations[a]) for a in self.agents}
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Global state: every controlled agent's observation, concatenated (C * D,)."""
        return self.sim.obs[0].ravel().copy()

    def render(self):
        if self.render_mode is None:
            return None
        if self._view is None:
            self._view = SceneView(self._render_config)
        return self._view.frame(self.sim, 0)

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> AlpaDriveParallelEnv:
    """Builds the PettingZoo env; arguments as `AlpaDriveParallelEnv`."""
    return AlpaDriveParallelEnv(**kwargs)
