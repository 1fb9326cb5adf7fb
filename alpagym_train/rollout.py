"""Rolling out GRPO groups: G members from one identical start state, each to its own end.

A group is G sub-envs of the native vector env reset to the same scene (so the same state, bit for
bit) and driven by the same policy with different sampling noise. The vector env runs with
`AutoresetMode.DISABLED`, so a member that finishes is frozen while the others drive on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium.vector import AutoresetMode

from alpagym_env.envs.vector_env import AlpaDriveVectorEnv


@dataclass
class GroupBatch:
    """N groups of G rollouts of at most T steps, padded (numpy, ready for the learner or the wire).

    Attributes:
        obs: (N, G, T, D) float32 observations the actions were taken in.
        u: (N, G, T, A) float32 pre-squash actions (the policy's Gaussian samples).
        logp: (N, G, T) float32 behaviour log-probabilities of the actions.
        rewards: (N, G, T) float32 rewards.
        mask: (N, G, T) float32, 1 on real steps.
        scene_score: (N, G) float32 AlpaSim scene score of each rollout.
        scenario_ids: (N,) int64 scenario index of each group.
        terminated: (N, G) float32, 1 where the rollout ended in a terminal state (the AlpaSim cut,
            route completion), 0 where it was truncated (the horizon, the end of the scene's log): a
            critic bootstraps the value of what follows a truncation, never of a termination.
        policy_version: Version of the weights that acted.
    """

    obs: np.ndarray
    u: np.ndarray
    logp: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    scene_score: np.ndarray
    scenario_ids: np.ndarray
    terminated: np.ndarray
    policy_version: int = 0

    @property
    def returns(self) -> np.ndarray:
        """(N, G) undiscounted episode returns."""
        return (self.rewards * self.mask).sum(-1)

    @property
    def steps(self) -> int:
        return int(self.mask.sum())


def make_group_env(num_groups: int, group_size: int, **env_kwargs) -> AlpaDriveVectorEnv:
    """The vector env that rolls out `num_groups` groups of `group_size` at once."""
    return AlpaDriveVectorEnv(
        num_envs=num_groups * group_size, autoreset_mode=AutoresetMode.DISABLED, **env_kwargs
    )


def collect_groups(env: AlpaDriveVectorEnv, sample, scenario_ids: np.ndarray, group_size: int) -> GroupBatch:
    """Rolls out one group per scenario id, every member to its own end.

    Args:
        env: From `make_group_env`, with num_envs == len(scenario_ids) * group_size.
        sample: Batched sampler ``obs (B', D) -> (actions (B', A), u (B', A), logp (B',))``
            (`alpagym_train.policy.RolloutPolicy`), called each step on the B' members still driving.
        scenario_ids: (N,) scene of each group.
        group_size: G.

    Returns:
        The padded `GroupBatch` (T = the env's horizon).
    """
    n, g = len(scenario_ids), group_size
    b = n * g
    if env.num_envs != b:
        raise ValueError(f"the env has {env.num_envs} sub-envs for {n} groups of {g}")
    horizon = env.config.horizon
    obs, _ = env.reset(options={"scenario_ids": np.repeat(scenario_ids, g)})
    d, a_dim = obs.shape[1], env.single_action_space.shape[0]
    out_obs = np.zeros((b, horizon, d), np.float32)
    out_u = np.zeros((b, horizon, a_dim), np.float32)
    out_logp = np.zeros((b, horizon), np.float32)
    out_r = np.zeros((b, horizon), np.float32)
    mask = np.zeros((b, horizon), np.float32)
    score = np.zeros(b, np.float32)
    ended_terminal = np.zeros(b, np.float32)
    alive = np.ones(b, dtype=bool)
    actions = np.zeros((b, a_dim), np.float32)  # finished members are frozen: their actions are unused
    for t in range(horizon):
        idx = np.flatnonzero(alive)  # the policy runs on the members still driving only
        obs_t = obs[idx]
        actions[idx], out_u[idx, t], out_logp[idx, t] = sample(obs_t)
        out_obs[idx, t] = obs_t
        mask[idx, t] = 1.0
        obs, rewards, terminated, truncated, info = env.step(actions)
        out_r[idx, t] = rewards[idx]
        done = (terminated | truncated) & alive
        if done.any():
            score[done] = info["alpagym"]["scene_score"][done]
            ended_terminal[done] = terminated[done]
            alive &= ~done
        if not alive.any():
            break
    shape = (n, g)
    return GroupBatch(
        obs=out_obs.reshape(*shape, horizon, d),
        u=out_u.reshape(*shape, horizon, a_dim),
        logp=out_logp.reshape(*shape, horizon),
        rewards=out_r.reshape(*shape, horizon),
        mask=mask.reshape(*shape, horizon),
        scene_score=score.reshape(shape),
        scenario_ids=np.asarray(scenario_ids, dtype=np.int64),
        terminated=ended_terminal.reshape(shape),
    )
