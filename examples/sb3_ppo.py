"""Train Stable-Baselines3 PPO on the native batched env, then score it closed-loop on held-out scenes.

- `alpagym_env.envs.sb3.AlpaDriveSB3VecEnv(num_envs, ...)` is an SB3 `VecEnv` over AlpaGym's batched
  engine: every sub-env is stepped by one Numba call, with no subprocesses (SB3's `DummyVecEnv` or
  `SubprocVecEnv` over `gym.make` also work, only slower).
- `alpagym_env.evaluation.evaluate` runs any callable policy, (B, D) float32 observations -> (B, 2)
  actions, closed-loop on a list of scenes with AlpaSim's metrics, beside AlpaGym's reference policies;
  `summarize` + `to_markdown` give the leaderboard (the same as ``python -m alpagym_env.evaluate``).

The default budget is a demonstration, not a converged policy: PPO from scratch needs millions of
steps here (see ``python -m alpagym_train.baselines.sb3`` and the BC + GRPO route in the README).

Run:
    python examples/sb3_ppo.py                    # 50k PPO steps on train, evaluated on 40 test scenes
    python examples/sb3_ppo.py --quick            # seconds: 256 steps on smoke, 4 scenes
    python examples/sb3_ppo.py --save ppo.zip     # keep the model
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import PPO

from alpagym_env.envs.sb3 import AlpaDriveSB3VecEnv
from alpagym_env.evaluation import (
    eval_config,
    evaluate,
    load_policy,
    load_scenarios,
    summarize,
    to_markdown,
)

# Torch's thread pool and Numba's kernels would fight over a small CPU; one torch thread is faster.
torch.set_num_threads(1)


class SB3Policy:
    """Adapts an SB3 model to AlpaGym's batched policy interface: (B, D) float32 -> (B, 2) actions."""

    action_type = "control"  # tells the evaluator which action type the policy outputs

    def __init__(self, model: PPO) -> None:
        self.model = model

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-suite", default="train")
    p.add_argument("--eval-suite", default="test", help="held-out scenes for the closed-loop evaluation")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--timesteps", type=int, default=50_000, help="PPO env steps (all sub-envs together)")
    p.add_argument("--n-steps", type=int, default=256, help="rollout length per sub-env and PPO update")
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--eval-episodes", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, help="write the trained model to this .zip")
    p.add_argument("--quick", action="store_true", help="tiny run (smoke suite, 256 steps, 4 episodes)")
    args = p.parse_args()
    if args.quick:
        args.train_suite = args.eval_suite = "smoke"
        args.num_envs, args.timesteps, args.n_steps, args.horizon, args.eval_episodes = 4, 256, 64, 60, 4

    # ---- train
    env = AlpaDriveSB3VecEnv(args.num_envs, suite=args.train_suite, horizon=args.horizon)
    env.seed(args.seed)
    model = PPO(
        "MlpPolicy",  # the flat observation works with SB3's MLP as is
        env,
        n_steps=args.n_steps,
        batch_size=min(256, args.n_steps * args.num_envs),
        n_epochs=4,
        learning_rate=3e-4,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    seconds = time.perf_counter() - start
    print(f"trained PPO for {model.num_timesteps} env steps in {seconds:.1f} s")
    # The adapter's `infos[i]["episode"]` (return, length and closed-loop metrics, a copy of
    # `infos[i]["alpagym"]`) fills SB3's buffer.
    if model.ep_info_buffer:
        ret = np.mean([e["r"] for e in model.ep_info_buffer])
        score = np.mean([e["scene_score"] for e in model.ep_info_buffer])
        n = len(model.ep_info_buffer)
        print(f"last {n} training episodes: mean return {ret:.3f}, mean scene_score {score:.3f}")
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    env.close()

    # ---- evaluate closed-loop on held-out scenes, beside two reference policies
    scenes = load_scenarios(args.eval_suite)
    config = eval_config(horizon=args.horizon)  # log-replay agents, as the AlpaSim challenge
    # `evaluate` takes SPEC strings or a mapping of names to callables; `load_policy` turns the SPECs of
    # the reference policies (or a checkpoint path, or "module:callable") into callables to mix in.
    policies = {"ppo": SB3Policy(model)}
    for spec in ("idm", "constant_velocity"):
        policies[spec] = load_policy(spec, config, seed=args.seed)
    results = evaluate(policies, scenes, config, seed=args.seed, max_episodes=args.eval_episodes)
    print(f"\nclosed-loop evaluation on {args.eval_suite} ({args.eval_episodes} scenes):\n")
    print(to_markdown(summarize(results)))


if __name__ == "__main__":
    main()
