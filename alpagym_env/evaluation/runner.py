"""Closed-loop rollouts of a batched policy over many scenes through one `BatchedSim`.

The runner keeps B scene slots busy: when an episode ends (terminated, truncated, or cut by the AlpaSim
aggregation rule, after which its metrics cannot change) the slot takes the next episode of the queue.
Every episode records its per-step metric channels, ego poses and actions, so trace-based metrics
(`subscores`) can be computed and any episode can be replayed exactly for a video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.drive_env import check_actions
from alpagym_env.evaluation import subscores
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.sim.measure import TR_CUT, TR_CUT_STEPS

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: scene `scene` of the scenario list, repetition `repeat`, policy seed `seed`."""

    scene: int
    repeat: int
    seed: int


@dataclass
class EpisodeResult:
    """One finished episode.

    Attributes:
        spec: What was run.
        scenario_id, family: The scene's id and family.
        metrics: Accumulator metrics (`alpagym_env.metrics.episode_metrics`), trace metrics
            (`subscores.trace_metrics`) and ``min_ade_<h>s`` (nan where not meaningful), by name.
        actions: (S, 2) float64 the actions applied at each step (for exact replay).
    """

    spec: EpisodeSpec
    scenario_id: str
    family: str
    metrics: dict[str, float]
    actions: np.ndarray = field(repr=False)


def episode_plan(
    scenarios: Sequence[Scenario], seed: int, repeats: int = 1, max_episodes: int | None = None
) -> list[EpisodeSpec]:
    """The episodes of an evaluation: each scene `repeats` times, optionally capped at `max_episodes`.

    With a cap, scenes are taken round-robin over families (in order of first appearance) so every
    family is represented. Policy seeds derive from (seed, scene, repeat) only.
    """
    by_family: dict[str, list[int]] = {}
    for i, s in enumerate(scenarios):
        by_family.setdefault(s.family, []).append(i)
    order: list[int] = []
    queues = [deque(v) for v in by_family.values()]
    while any(queues):
        for q in queues:
            if q:
                order.append(q.popleft())
    if max_episodes is not None:
        order = order[: max(int(max_episodes), 0)]
    specs = []
    for r in range(repeats):
        for i in sorted(order):
            ss = np.random.SeedSequence([int(seed), int(i), int(r)])
            specs.append(EpisodeSpec(i, r, int(ss.generate_state(1)[0])))
    return specs


def run_episodes(
    policy: Policy,
    scenarios: Sequence[Scenario],
    episodes: Sequence[EpisodeSpec],
    config: EnvConfig,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[EpisodeResult]:
    """Runs `episodes` closed-loop with `policy` and returns their results in the order of `episodes`.

    Args:
        policy: Maps (B, D) float32 observations to (B, 2) actions (see `alpagym_env.policies` for the
            optional ``follows_log``, ``reset`` and ``last_plans`` hooks).
        scenarios: The scenes `EpisodeSpec.scene` indexes.
        episodes: What to run.
        config: The env configuration (agents mode, horizon, termination, ...).
        batch_size: B, scenes stepped together.
        progress: Called with the number of episodes that just finished.
    """
    scenarios = list(scenarios)
    b_max = max(1, min(batch_size, len(episodes)))
    sim = BatchedSim(config, b_max, scenarios, len(scenarios))
    t_len = config.horizon + 1
    trace = np.zeros((b_max, t_len, M.NUM_CHANNELS))
    pose = np.zeros((b_max, t_len, 5))
    acts = np.zeros((b_max, t_len, sim.action_dim))
    ade = np.full((b_max, t_len, len(subscores.ADE_HORIZONS)), np.nan)
    follows_log = bool(getattr(policy, "follows_log", False))
    queue = deque(enumerate(episodes))
    slot: list[tuple[int, EpisodeSpec] | None] = [None] * b_max
    results: list[EpisodeResult | None] = [None] * len(episodes)
    actions = np.zeros((b_max, 1, sim.action_dim))
    plan_of_actions = _plan_decoder(config)

    def start(rows: list[int]) -> None:
        rows = rows[: len(queue)]
        if not rows:
            return
        items = [queue.popleft() for _ in rows]
        sim.reset(rows, [spec.scene for _, spec in items])
        for b, item in zip(rows, items, strict=True):
            slot[b] = item
            sim.expert[b, 0] = follows_log
            ade[b] = np.nan
            pose[b, 0] = sim.state["agent"][b, 0, :5]
        if hasattr(policy, "reset"):
            policy.reset(np.array(rows), np.array([spec.seed for _, spec in items]))

    def finish(b: int) -> None:
        k, spec = slot[b]
        ep = sim.episode_metrics(b)
        cut = int(sim.state["track"][b, 0, TR_CUT_STEPS])
        steps = int(sim.state["t"][b])
        ep.update(subscores.trace_metrics(trace[b, :cut], pose[b, : cut + 1], ep, sim.dt))
        seen = np.isfinite(ade[b, :cut])
        count = seen.sum(axis=0)
        total = np.where(seen, ade[b, :cut], 0.0).sum(axis=0)
        for h, c, v in zip(subscores.ADE_HORIZONS, count, total, strict=True):
            ep[f"min_ade_{h:g}s"] = float(v / c) if c else float("nan")
        s = sim.compiled[b].scenario
        results[k] = EpisodeResult(spec, s.scenario_id, s.family, ep, acts[b, :steps].copy())
        slot[b] = None
        sim.active[b] = False

    sim.active[:] = False
    start(list(range(b_max)))
    for b in range(b_max):
        sim.active[b] = slot[b] is not None
    while sim.active.any():
        rows = np.flatnonzero(sim.active)
        obs = sim.obs[:, 0]
        raw = policy(obs)
        actions[:, 0] = 0.0 if follows_log else check_actions(raw, (b_max, sim.action_dim))
        t_now = sim.state["t"].copy()
        plans, plan_dt = getattr(policy, "last_plans", None), getattr(policy, "plan_dt", None)
        if plan_of_actions is not None and not follows_log:
            plans, plan_dt = plan_of_actions(actions[:, 0])
        if plans is not None and len(plans) == b_max:
            for b in rows:
                cs = sim.compiled[b]
                ade[b, t_now[b]] = subscores.min_ade(
                    np.asarray(plans[b], dtype=np.float64), float(plan_dt), pose[b, t_now[b], :3],
                    cs.log[:, 0], cs.log_valid[:, 0], int(t_now[b]), sim.dt,
                )  # fmt: skip
        sim.step(actions)
        t_new = sim.state["t"]
        trace[rows, t_now[rows]] = sim.metrics[rows, 0]
        pose[rows, t_new[rows]] = sim.state["agent"][rows, 0, :5]
        acts[rows, t_now[rows]] = actions[rows, 0]
        done = sim.terminated[rows, 0] | sim.truncated[rows] | (sim.state["track"][rows, 0, TR_CUT] > 0)
        finished = [int(b) for b in rows[done]]
        for b in finished:
            finish(b)
        if finished:
            if progress is not None:
                progress(len(finished))
            start(finished)
            for b in finished:
                sim.active[b] = slot[b] is not None
    return [r for r in results if r is not None]


def _plan_decoder(config: EnvConfig):
    """For trajectory actions: a function (B, A) actions -> ((B, 1, H, 2) ego-frame poses, spacing)."""
    if config.action_type != "trajectory":
        return None
    tc = config.trajectory
    per = tc.action_dim // tc.num_poses
    scale = np.array([tc.x_scale, tc.y_scale])

    def decode(a: np.ndarray):
        return a.reshape(len(a), 1, tc.num_poses, per)[..., :2] * scale, tc.spacing

    return decode


def replay_states(
    config: EnvConfig, scenario: Scenario, actions: np.ndarray, follows_log: bool
) -> tuple[BatchedSim, list[dict[str, np.ndarray]]]:
    """Re-runs one recorded episode (B = 1) and returns the sim and each step's agent snapshot.

    Snapshots are ``agent`` (N, 8), ``valid`` (N,), ``t`` and the step's ``metrics`` (NUM_CHANNELS,);
    the first is the start state.
    """
    sim = BatchedSim(config, 1, [scenario], 1)
    sim.reset([0], [0])
    sim.expert[0, 0] = follows_log

    def snap() -> dict[str, np.ndarray]:
        return {
            "agent": sim.state["agent"][0].copy(),
            "valid": sim.state["valid"][0].copy(),
            "t": int(sim.state["t"][0]),
            "metrics": sim.metrics[0, 0].copy(),
        }

    states = [snap()]
    for a in actions:
        sim.step(np.asarray(a, dtype=np.float64).reshape(1, 1, -1))
        states.append(snap())
    return sim, states
