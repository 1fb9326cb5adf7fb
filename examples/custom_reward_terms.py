"""A custom reward from ``{kind, name, scale}`` terms, each term's value in ``info["reward/{kind}/{name}"]``.

A reward is a list of terms (the AlpaGym reward-file format, `alpagym_env.rewards`):

- ``kind="metric"``: every step, ``scale`` x the step's metric channel ``name`` (e.g.
  ``progress_delta``, ``collision_at_fault``, ``jerk``); computed inside the Numba step kernel.
- ``kind="terminal"``: on the step that ends the episode, ``scale`` x the episode metric ``name``
  (e.g. ``scene_score``, ``progress``).

The same list works for `gym.make`, `gym.make_vec` and the SB3 adapter (the PettingZoo env takes
metric terms only). Unknown kinds or names raise `alpagym_env.ConfigError` when the env is built.

Run:
    python examples/custom_reward_terms.py            # one 200-step episode on the train suite
    python examples/custom_reward_terms.py --quick    # a short episode on the smoke suite
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env import ConfigError, metrics
from alpagym_env.envs.infos import reward_terms
from alpagym_env.policies import RulePolicy
from alpagym_env.rewards import presets

# Could equally be loaded from a YAML/JSON file: a plain list of mappings.
REWARD = [
    {"kind": "metric", "name": "progress_delta", "scale": 1.0},  # fraction of the logged path per step
    {"kind": "metric", "name": "collision_at_fault", "scale": -10.0},
    {"kind": "metric", "name": "offroad", "scale": -5.0},
    {"kind": "metric", "name": "jerk", "scale": -0.002},  # |jerk| in m/s^3: a comfort penalty
    {"kind": "metric", "name": "ran_red_light", "scale": -2.0},
    {"kind": "terminal", "name": "scene_score", "scale": 2.0},  # paid once, on the last step
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="train")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke suite, 40 steps)")
    args = p.parse_args()
    if args.quick:
        args.suite, args.horizon = "smoke", 40

    print(f"reward presets: {presets()}")
    print(f"metric channels a 'metric' term may name: {', '.join(metrics.channel_names())}")
    print(f"episode metrics a 'terminal' term may name: {', '.join(metrics.EPISODE_METRICS)}")

    # Names are checked when the env is built, not at the first step.
    try:
        gym.make("AlpaDrive-v0", suite=args.suite, reward=[{"kind": "metric", "name": "speeed", "scale": 1}])
    except ConfigError as e:
        print(f"\na typo raises at construction: ConfigError: {str(e)[:70]}...")

    env = gym.make("AlpaDrive-v0", suite=args.suite, horizon=args.horizon, reward=REWARD)
    policy = RulePolicy(obs=env.unwrapped.config.obs)  # batched reference policy: (B, D) -> (B, 2)
    obs, info = env.reset(seed=args.seed)
    totals = dict.fromkeys(reward_terms(info), 0.0)  # metric terms; terminal ones appear at the end
    ret = 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs[None])[0])
        ret += reward
        for key, value in reward_terms(info).items():
            totals[key] = totals.get(key, 0.0) + value
        # The reward is exactly the sum of the terms reported for this step.
        assert np.isclose(reward, sum(reward_terms(info).values()))
        if terminated or truncated:
            break

    print(f"\nepisode on {env.unwrapped.scenario_id}: {info['t']} steps, return {ret:.3f}")
    print("return by term (sum over the episode):")
    print(json.dumps({k: round(v, 4) for k, v in totals.items()}, indent=2))
    print(f"sum of terms {sum(totals.values()):.3f} == return {info['alpagym']['r']:.3f}")
    env.close()


if __name__ == "__main__":
    main()
