"""Several vehicles of one scene as PettingZoo agents: `alpagym_env.parallel_env(...)`.

The ego (``agent_0``) and the ``num_controlled - 1`` nearest moving vehicles are driven by your
policies; the remaining traffic replays its log (or follows IDM with ``agents="idm"``). Each agent sees
its own ego-frame observation and gets its own reward, metrics and at-fault attribution. The agent
list is fixed (`possible_agents`); an agent that terminates leaves `env.agents` and the scene.

Here every agent runs AlpaGym's rule-based controller (`alpagym_env.policies.RulePolicy`, pure
pursuit on its route with IDM speed control), each with its own cruise speed, and the script prints
per-agent returns and episode metrics.

Run:
    python examples/pettingzoo_multi_agent.py            # 2 episodes, 4 agents, train suite
    python examples/pettingzoo_multi_agent.py --quick    # 1 short episode on the smoke suite
"""

from __future__ import annotations

import argparse

import numpy as np

import alpagym_env
from alpagym_env.policies import RulePolicy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="train")
    p.add_argument("--num-controlled", type=int, default=4, help="agents per scene (ego + nearest)")
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke suite, 1 episode of 60 steps)")
    args = p.parse_args()
    if args.quick:
        args.suite, args.episodes, args.horizon, args.num_controlled = "smoke", 1, 60, 3

    env = alpagym_env.parallel_env(
        num_controlled=args.num_controlled,
        suite=args.suite,
        horizon=args.horizon,
        reward="progress_safety",  # metric terms or a preset; applied to every agent
    )
    print(f"possible agents: {env.possible_agents}")
    print(
        f"per-agent spaces: obs {env.observation_space('agent_0').shape}, act {env.action_space('agent_0')}"
    )

    # One controller per agent; they differ only in cruise speed here.
    obs_cfg = env.config.obs
    controllers = {
        agent: RulePolicy(cruise_speed=8.0 + 2.0 * i, obs=obs_cfg)
        for i, agent in enumerate(env.possible_agents)
    }

    for episode in range(args.episodes):
        observations, infos = env.reset(seed=args.seed + episode)
        returns = dict.fromkeys(env.possible_agents, 0.0)
        final: dict[str, dict] = {}
        while env.agents:  # finished agents drop out; the episode ends when none is left
            # RulePolicy is batched, (B, D) -> (B, 2): give it a batch of one per agent.
            actions = {a: controllers[a](observations[a][None])[0] for a in env.agents}
            observations, rewards, terminations, truncations, infos = env.step(actions)
            for a, r in rewards.items():
                returns[a] += r
            for a, info in infos.items():
                if terminations[a] or truncations[a]:  # the agent finished: its metrics are final
                    final[a] = {
                        k.removeprefix("alpagym/"): v for k, v in info.items() if k.startswith("alpagym/")
                    }
        print(f"\nepisode {episode}:")
        header = ("agent", "return", "steps", "score", "progress", "at-fault", "offroad")
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 8, 6, 6, 9, 9, 8), strict=True)))
        for a in env.possible_agents:
            ep = final[a]
            print(
                f"{a:>8} {returns[a]:8.3f} {ep['steps']:6.0f} {ep['scene_score']:6.2f} {ep['progress']:9.2f} "
                f"{ep['collision_at_fault']:9.0f} {ep['offroad']:8.0f}"
            )
        print(f"mean return over agents: {np.mean(list(returns.values())):.3f}")
    env.close()


if __name__ == "__main__":
    main()
