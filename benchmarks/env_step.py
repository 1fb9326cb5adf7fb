"""Steps per second of AlpaDrive's APIs against its raw engine and highway-env, measured side by side.

One process, one table. For num_envs in {1, 16, 64, 256}: the native vector env through the
Gymnasium API (`gym.make_vec`), the raw engine (`BatchedSim.step`), and Gymnasium's `SyncVectorEnv`
of single envs; then the single env's `env.step` and highway-env's `highway-fast-v0`. Every scene
has 32 agents. Ratios: the vector API against the raw engine and against `SyncVectorEnv` of the same
size, and each row against `highway-fast-v0`. `--profile` adds where the time of one vector step goes.

Usage: python benchmarks/env_step.py [--seconds 2] [--agents replay|idm] [--sizes 1 16 64 256] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios import FAMILIES, generate

AGENTS = 32


def scenes_with_agents(count: int, min_agents: int) -> list:
    """`count` procedural scenes (all families in turn) with at least `min_agents` agents."""
    out, seed = [], 10_000
    families = sorted(FAMILIES)
    while len(out) < count:
        s = generate(families[seed % len(families)], seed)
        if s.num_agents >= min_agents:
            out.append(s)
        seed += 1
    return out


def rate(step, seconds: float, batch: int = 1) -> float:
    """Env-steps per second of `step()` (which advances `batch` envs) after a warm-up."""
    for _ in range(20):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            step()
        n += 10
    return n * batch / (time.perf_counter() - t0)


def actions_for(space, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(0.2, 0.3, space.shape), -1, 1).astype(np.float32) for _ in range(256)]


def vector_api(scenes, n: int, kind: str, agents: str, seconds: float) -> float:
    mode = None if kind == "native" else "sync"
    env = gym.make_vec(
        "AlpaDrive-v0",
        num_envs=n,
        vectorization_mode=mode,
        scenarios=scenes,
        agents=agents,
        max_agents=AGENTS,
    )
    env.reset(seed=0)
    sims = [env.sim] if kind == "native" else [e.unwrapped.sim for e in env.envs]
    for sim in sims:  # compile every scene once, as a long run would have
        for i in range(len(scenes)):
            sim.compile(i)
    acts, k = actions_for(env.action_space), [0]

    def step():
        k[0] += 1
        env.step(acts[k[0] % 256])

    out = rate(step, seconds, n)
    env.close()
    return out


def raw_engine(scenes, n: int, agents: str, seconds: float) -> float:
    sim = BatchedSim(EnvConfig.from_kwargs(agents=agents, max_agents=AGENTS), n, scenes, len(scenes))
    ids = np.arange(n) % len(scenes)
    sim.reset(range(n), ids)
    acts, k = np.zeros((n, 1, 2)), [0]
    acts[..., 0] = 0.2

    def step():
        k[0] += 1
        if k[0] % 200 == 0:
            sim.reset(range(n), ids)
        sim.step(acts)

    return rate(step, seconds, n)


def single_env(scenes, agents: str, seconds: float) -> float:
    env = gym.make("AlpaDrive-v0", scenarios=scenes, agents=agents, max_agents=AGENTS)
    env.reset(seed=0)
    for i in range(len(scenes)):
        env.unwrapped.sim.compile(i)
    acts, k = actions_for(env.action_space), [0]

    def step():
        k[0] += 1
        _, _, te, tr, _ = env.step(acts[k[0] % 256])
        if te or tr:
            env.reset()

    return rate(step, seconds)


def highway(seconds: float) -> float | None:
    try:
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make("highway-fast-v0")
    env.reset(seed=0)

    def step():
        _, _, te, tr, _ = env.step(env.action_space.sample())
        if te or tr:
            env.reset()

    return rate(step, seconds)


def profile_vector_step(scenes, n: int, agents: str) -> None:
    """Prints where one native vector step of `n` envs spends its time."""
    env = gym.make_vec("AlpaDrive-v0", num_envs=n, scenarios=scenes, agents=agents, max_agents=AGENTS)
    env.reset(seed=0)
    for i in range(len(scenes)):
        env.sim.compile(i)
    acts = actions_for(env.action_space)
    for a in acts[:20]:
        env.step(a)
    sim, reps = env.sim, 300
    t0 = time.perf_counter()
    for i in range(reps):
        env.step(acts[i % 256])
    total = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        sim.step(env._actions)
    kernel = (time.perf_counter() - t0) / reps
    python = (total - kernel) * 1e6
    print(f"\nOne vector step, num_envs={n}: {total * 1e6:,.0f} us; engine kernel {kernel * 1e6:,.0f} us")
    print(f"({kernel / total:.0%}); Python around it (validation, infos, autoreset) {python:,.0f} us")
    prof = cProfile.Profile()
    prof.enable()
    for i in range(reps):
        env.step(acts[i % 256])
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:3000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--agents", default="replay", choices=("replay", "idm"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    scenes = scenes_with_agents(64, AGENTS)
    hw = highway(args.seconds)
    rows = []
    for n in args.sizes:
        native = vector_api(scenes, n, "native", args.agents, args.seconds)
        raw = raw_engine(scenes, n, args.agents, args.seconds)
        sync = vector_api(scenes, n, "sync", args.agents, min(args.seconds, 1.0))
        rows.append(
            (
                f"gym.make_vec native, num_envs={n}",
                native,
                f"{native / raw:.0%} of raw, {native / sync:.1f}x sync",
            )
        )
        rows.append((f"raw engine BatchedSim.step, B={n}", raw, ""))
        rows.append((f"SyncVectorEnv of single envs, num_envs={n}", sync, ""))
    rows.append(("gym.make single env.step", single_env(scenes, args.agents, args.seconds), ""))
    if hw is not None:
        rows.append(("highway-env highway-fast-v0 (5 vehicles observed)", hw, ""))
    print(f"\nagents={args.agents}, {AGENTS} agents per scene, {args.seconds:.0f} s per row, one process\n")
    head = f"| {'what':<48} | {'env-steps/s':>12} | {'agent-steps/s':>14} | {'x highway-fast':>14} | notes"
    print(head)
    print("|" + "-" * 50 + "|" + "-" * 14 + "|" + "-" * 16 + "|" + "-" * 16 + "|------")
    for name, r, note in rows:
        ratio = f"{r / hw:,.0f}x" if hw else "n/a"
        agent_rate = f"{r * AGENTS:,.0f}" if "highway" not in name else "-"
        print(f"| {name:<48} | {r:>12,.0f} | {agent_rate:>14} | {ratio:>14} | {note}")
    if hw is None:
        print("\nhighway-env is not installed (pip install highway-env): no highway ratio")
    if args.profile:
        profile_vector_step(scenes, 64, args.agents)


if __name__ == "__main__":
    main()
