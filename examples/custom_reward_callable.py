"""A custom reward as a Python callable of the step's metrics.

Pass any callable as ``reward=``: after each step the env calls it with the step's metric channels by
name (`alpagym_env.metrics.channel_names()`: ``progress_delta``, ``speed``, ``collision_at_fault``,
``lane_deviation``, ...) and uses what it returns as the reward:

- `gym.make`: ``reward(metrics: dict[str, float]) -> float``;
- `gym.make_vec` / the SB3 adapter: the same call with (num_envs,) arrays -> (num_envs,) rewards.

Written with numpy operations, one function serves both (as below). It runs in Python after the
Numba step, so it costs more than ``{kind, name, scale}`` terms (see custom_reward_terms.py); use it
when the reward is not a weighted sum of channels. A callable replaces the terms: ``reward/...`` infos
is then empty, and the PettingZoo env does not accept callables.

Run:
    python examples/custom_reward_callable.py           # one episode + 8 batched envs, train suite
    python examples/custom_reward_callable.py --quick   # short, on the smoke suite
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.envs.infos import reward_terms
from alpagym_env.policies import RulePolicy


@dataclass(frozen=True)
class SpeedKeepingReward:
    """Progress, a penalty for leaving a speed band, for drifting from the route, and for crashing.

    Works on floats (single env) and on (num_envs,) arrays (vector env) alike.
    """

    target_speed: float = 10.0  # m/s
    band: float = 2.0  # m/s of tolerance around the target

    def __call__(self, m):
        over = np.maximum(np.abs(m["speed"] - self.target_speed) - self.band, 0.0)  # m/s outside the band
        return (
            100.0 * m["progress_delta"]  # progress is a fraction of the logged path; 100 = per cent
            - 0.05 * over
            - 0.1 * np.minimum(m["lane_deviation"], 5.0)  # m from the route, capped
            - 10.0 * (m["collision_at_fault"] + m["offroad"])
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="train")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--target-speed", type=float, default=10.0, help="m/s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke suite, 40 steps)")
    args = p.parse_args()
    if args.quick:
        args.suite, args.horizon, args.num_envs = "smoke", 40, 4
    reward = SpeedKeepingReward(target_speed=args.target_speed)

    # Single env: the callable gets floats and returns a float.
    env = gym.make("AlpaDrive-v0", suite=args.suite, horizon=args.horizon, reward=reward)
    policy = RulePolicy(obs=env.unwrapped.config.obs)
    obs, info = env.reset(seed=args.seed)
    ret, speeds = 0.0, []
    while True:
        obs, r, terminated, truncated, info = env.step(policy(obs[None])[0])
        ret += r
        # `step_metrics()` returns the same dict the reward callable was given.
        speeds.append(env.unwrapped.step_metrics()["speed"])
        if terminated or truncated:
            break
    print(f"single env [{env.unwrapped.scenario_id}]: {info['t']} steps, return {ret:.3f}")
    print(f"  mean speed {np.mean(speeds):.1f} m/s (target {args.target_speed} m/s)")
    print(f"  reward terms in info with a callable: {reward_terms(info)}")
    env.close()

    # Vector env: the same callable gets (num_envs,) arrays and returns (num_envs,) rewards.
    envs = gym.make_vec(
        "AlpaDrive-v0", num_envs=args.num_envs, suite=args.suite, horizon=args.horizon, reward=reward
    )
    obs, _ = envs.reset(seed=args.seed)
    returns = np.zeros(args.num_envs)
    for _ in range(args.horizon):
        obs, rewards, terminated, truncated, _ = envs.step(policy(obs))
        returns += rewards
    print(f"vector env: {args.num_envs} envs x {args.horizon} steps, returns {np.round(returns, 2)}")
    envs.close()


if __name__ == "__main__":
    main()
