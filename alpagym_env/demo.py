"""`python -m alpagym_env.demo`: drives every scenario family through `gym.make("AlpaDrive-v0")`.

Runs the expert (the ego's own log) and the rule-based planner (`alpagym_env.policies.RulePolicy`)
closed-loop on the `val` suite's first scenes of each family and prints their closed-loop metrics.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401
from alpagym_env.policies import RulePolicy
from alpagym_env.scenarios import load_suite

COLUMNS = ("scene_score", "collision_at_fault", "offroad", "progress", "comfort", "dist_to_gt_trajectory")


def run_episode(env, policy, index: int, expert: bool) -> dict[str, float]:
    obs, _ = env.reset(options={"scenario_index": index})
    env.unwrapped.sim.expert[0, 0] = expert
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs)[0])
        if terminated or truncated:
            return info["alpagym"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="val")
    parser.add_argument("--per-family", type=int, default=5)
    parser.add_argument("--agents", default="idm", choices=("replay", "idm"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    scenes = load_suite(args.suite)
    print(f"suite {args.suite!r}: {len(scenes)} scenes ready in {time.perf_counter() - t0:.1f} s")
    env = gym.make("AlpaDrive-v0", scenarios=scenes, agents=args.agents)
    by_family: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(scenes):
        if len(by_family[s.family]) < args.per_family:
            by_family[s.family].append(i)
    policy = RulePolicy()
    rows, steps, t0 = [], 0, time.perf_counter()
    for name, expert in (("expert (log)", True), ("rule planner", False)):
        for family, ids in sorted(by_family.items()):
            eps = [run_episode(env, policy, i, expert) for i in ids]
            steps += sum(int(e["l"]) for e in eps)
            rows.append((name, family, {k: float(np.mean([e[k] for e in eps])) for k in COLUMNS}))
    dt = time.perf_counter() - t0
    print(f"\n| policy | family | {' | '.join(COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name, family, m in rows:
        print(f"| {name} | {family} | " + " | ".join(f"{m[k]:.3f}" for k in COLUMNS) + " |")
    print(f"\n{steps} closed-loop steps in {dt:.1f} s (policy included), agents={args.agents}")


if __name__ == "__main__":
    main()
