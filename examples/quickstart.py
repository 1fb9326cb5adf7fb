"""Quick start: drive `AlpaDrive-v0` with a hand-written policy, then batch it with `gym.make_vec`.

Shows:
- `gym.make("AlpaDrive-v0")`, `reset(seed=...)` and the step loop of a Gymnasium env (here with
  reactive IDM traffic, ``agents="idm"``; the default replays the logs, as the AlpaSim challenge);
- a tiny lane-following policy written against the observation (``obs_type="dict"``, so its parts
  have names);
- the closed-loop metrics the env puts in ``info["alpagym"]`` when an episode ends;
- `gym.make_vec("AlpaDrive-v0", num_envs=N)`, the native batched vector env (one Numba call steps
  every sub-env), driven by AlpaGym's rule-based reference policy on the flat observation.

Run:
    python examples/quickstart.py                 # 3 episodes on the train suite, 8 batched envs
    python examples/quickstart.py --quick         # a few seconds on the small smoke suite
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401  (importing registers AlpaDrive-v0)
from alpagym_env.envs.infos import reward_terms
from alpagym_env.policies import RulePolicy


def lane_follower(obs: dict[str, np.ndarray], config) -> np.ndarray:
    """Steer at the second route waypoint (pure pursuit); drive at 10 m/s or slower behind a car.

    `obs` is one ``obs_type="dict"`` observation; positions are divided by ``obs.position_scale`` and
    speeds by ``obs.speed_scale`` (layout in `alpagym_env.sim.observation`). It ignores traffic lights.
    """
    pos_scale = config.obs.position_scale
    speed = obs["ego"][0] * config.obs.speed_scale  # m/s
    x, y = obs["route"][1, :2] * pos_scale  # waypoint in the ego frame, m
    wheelbase = config.dynamics.lf + config.dynamics.lr
    steer = np.arctan(wheelbase * 2.0 * y / max(x * x + y * y, 1.0))  # rad
    # Lane slots: row 0 is the leader in the ego's lane, [present, gap along the lane, ...].
    leader = obs["lanes"][0]
    gap = leader[1] * pos_scale if leader[0] > 0 else np.inf  # m, bumper to bumper
    target = min(10.0, max(gap - 3.0, 0.0) / 1.5)  # m/s: keep 3 m plus 1.5 s of headway
    accel = np.clip(0.8 * (target - speed), -6.0, 2.0)  # m/s^2, a P-controller on speed
    # Actions are normalised: [accel / max_acc (or max_brake when braking), steer / max_steer].
    cap = config.dynamics.max_acc if accel >= 0 else config.dynamics.max_brake
    return np.array([accel / cap, steer / config.dynamics.max_steer], dtype=np.float32).clip(-1, 1)


def end_reason(step_metrics: dict[str, float]) -> str:
    """Which default termination fired on the last step (`TerminationConfig`): the AlpaSim cut (a
    collision, at fault or not, off-road, or 4 m from the log) or the end of the route."""
    names = ("collision_at_fault", "collision_rear", "offroad", "route_complete")
    reasons = [k for k in names if step_metrics[k] > 0]
    if step_metrics["lane_deviation"] >= 4.0:
        reasons.append("4 m from the log")
    return ", ".join(reasons) or "unknown"


def single_env(suite: str, episodes: int, horizon: int, seed: int) -> None:
    env = gym.make("AlpaDrive-v0", suite=suite, horizon=horizon, obs_type="dict", agents="idm")
    config = env.unwrapped.config  # the resolved `EnvConfig` (scales for the observation and actions)
    print(f"observation parts: { {k: v.shape for k, v in env.observation_space.items()} }")
    print(f"action space: {env.action_space}")
    obs, info = env.reset(seed=seed)
    for episode in range(episodes):
        steps, ret = 0, 0.0
        while True:
            obs, reward, terminated, truncated, info = env.step(lane_follower(obs, config))
            steps, ret = steps + 1, ret + reward
            if terminated or truncated:
                break
        # The episode's closed-loop metrics (alpagym_env.metrics), aggregated AlpaSim-style: up to the
        # first collision or off-road, or until the ego is 4 m from its logged path (`cut_step`); by
        # default the episode ends on that step too, so they judge the same steps as the reward.
        ep = info["alpagym"]
        end = f"terminated ({end_reason(env.unwrapped.step_metrics())})" if terminated else "truncated"
        print(
            f"episode {episode} [{env.unwrapped.scenario_id}] {end} after {steps} steps, metrics cut at "
            f"step {ep['cut_step']:.0f}: return {ret:.2f}, "
            f"scene_score {ep['scene_score']:.2f}, progress {ep['progress']:.2f}, "
            f"collision_at_fault {ep['collision_at_fault']:.0f}, offroad {ep['offroad']:.0f}, "
            f"distance {ep['dist_traveled_m']:.1f} m"
        )
        print(f"  last step's reward terms: {reward_terms(info)}")
        obs, info = env.reset()  # the env's RNG, seeded above, picks the next scene
    env.close()


def vector_env(suite: str, num_envs: int, steps: int, horizon: int, seed: int) -> None:
    envs = gym.make_vec("AlpaDrive-v0", num_envs=num_envs, suite=suite, horizon=horizon)
    print(f"\nvector env: {type(envs).__name__}, autoreset {envs.metadata['autoreset_mode']}")
    policy = RulePolicy(obs=envs.unwrapped.config.obs)  # batched: (B, D) observations -> (B, 2) actions
    obs, infos = envs.reset(seed=seed)  # sub-env i is seeded seed + i
    scores, start = [], time.perf_counter()
    for _ in range(steps):
        obs, rewards, terminated, truncated, infos = envs.step(policy(obs))
        # With the default NEXT_STEP autoreset, a finished sub-env reports its metrics now and resets
        # on the next step; "_alpagym" marks which sub-envs have one.
        if "alpagym" in infos:
            done = infos["_alpagym"]
            scores += list(infos["alpagym"]["scene_score"][done])
    rate = num_envs * steps / (time.perf_counter() - start)
    print(f"{num_envs} envs x {steps} steps ({rate:,.0f} env-steps/s incl. the Python policy)")
    if scores:
        print(f"{len(scores)} finished episodes, mean scene_score {np.mean(scores):.3f}")
    envs.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="train", help="scenario suite (train, val, test, smoke)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--horizon", type=int, default=200, help="steps per episode (0.1 s each)")
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--vec-steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (smoke suite, short episodes)")
    args = p.parse_args()
    if args.quick:
        args.suite, args.episodes, args.horizon, args.num_envs, args.vec_steps = "smoke", 2, 60, 4, 120
    single_env(args.suite, args.episodes, args.horizon, args.seed)
    vector_env(args.suite, args.num_envs, args.vec_steps, args.horizon, args.seed)


if __name__ == "__main__":
    main()
