"""Rolling out GRPO groups: G members from one identical start state, each to its own end.

A group is G rollouts (members) of the native vector env from the same scene reset (so the same
state, bit for bit), driven by the same policy with different sampling noise. The vector env runs
with `AutoresetMode.DISABLED`, so a member that finishes is frozen while the others drive on.
`collect_groups` runs N groups side by side until the last member ends; `GroupStream` keeps every
sub-env busy, starting the next member wherever one finishes (the actors' rollouts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gymnasium.vector import AutoresetMode

from alpagym_env.envs.infos import INFO_KEY
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
    """Rolls out one group per scenario id side by side, every member to its own end.

    Args:
        env: From `make_group_env`, with num_envs == len(scenario_ids) * group_size.
        sample: Batched sampler ``obs (B', D) -> (actions (B', A), u (B', A), logp (B',))``
            (`alpagym_train.policy.RolloutPolicy`), called each step on the B' members still driving.
        scenario_ids: (N,) scene of each group.
        group_size: G.

    Returns:
        The padded `GroupBatch` (T = the env's horizon), groups in the order of `scenario_ids`.
    """
    n, g = len(scenario_ids), group_size
    if env.num_envs != n * g:
        raise ValueError(f"the env has {env.num_envs} sub-envs for {n} groups of {g}")
    scenes = iter(np.asarray(scenario_ids, dtype=np.int64).tolist())
    return GroupStream(env, sample, g, lambda: next(scenes, None)).collect(n)


class GroupStream:
    """Rolls out GRPO groups on a vector env without waiting for the slowest member.

    A member is one rollout of a group; every member of a group starts from its scene's reset (the
    same state, bit for bit), in whichever sub-env is free. A sub-env whose member finishes takes the
    next member at once: the next one of a group already started, else the first of a new group
    (scene from `next_scene`). So the env's sub-envs stay busy, groups need not run side by side and
    the number of sub-envs is independent of the group size. Members still driving when `collect`
    returns drive on in the next call, with whatever weights the sampler holds then: each step's
    behaviour log-probability is recorded, and a group's ``policy_version`` is the version that was
    current when it started (the oldest that acted on it).

    When every sub-env starts its first member in the first call and `next_scene` then runs dry, the
    members run in lockstep and sample in the same order as a step-synchronous rollout
    (`collect_groups`).

    Args:
        env: Vector env with `AutoresetMode.DISABLED` (`make_group_env`): a finished sub-env stays
            frozen until this stream resets it.
        sample: Batched sampler ``obs (B', D) -> (actions (B', A), u (B', A), logp (B',))``
            (`alpagym_train.policy.RolloutPolicy`), called each step on the B' members driving.
        group_size: G, members per group.
        next_scene: Returns the scene of the next group, or None when there are no more.
    """

    def __init__(
        self, env: AlpaDriveVectorEnv, sample, group_size: int, next_scene: Callable[[], int | None]
    ):
        if env.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError(
                f"GroupStream needs an env with AutoresetMode.DISABLED, got {env.autoreset_mode}"
            )
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.env, self.sample, self.group_size, self.next_scene = env, sample, group_size, next_scene
        b, self.horizon = env.num_envs, env.config.horizon
        self.obs_dim, self.act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
        self._obs = np.zeros((b, self.obs_dim), np.float32)
        self._actions = np.zeros((b, self.act_dim), np.float32)  # idle sub-envs are frozen: unused
        self._slot = np.full(b, -1, np.int64)  # pool entry of each sub-env's group, -1 idle
        self._member = np.zeros(b, np.int64)
        self._t = np.zeros(b, np.int64)  # steps its member took
        self._pending: deque[tuple[int, int]] = deque()  # (pool entry, member) not started yet
        self._done: deque[int] = deque()  # finished groups' pool entries, in finishing order
        self._free: list[int] = []
        self._scene, self._version, self._left, self._order = [], [], [], []
        self._pool = {}
        self._started, self._started_any = 0, False
        self._grow(b // group_size + 2)

    def _grow(self, size: int) -> None:
        """Makes room for `size` groups in the pool (in flight or finished and not yet returned)."""
        old = len(self._scene)
        g, t, d, a = self.group_size, self.horizon, self.obs_dim, self.act_dim
        shapes = {"obs": (g, t, d), "u": (g, t, a), "logp": (g, t), "rewards": (g, t), "mask": (g, t),
                  "scene_score": (g,), "terminated": (g,)}  # fmt: skip
        for name, shape in shapes.items():
            grown = np.zeros((size, *shape), np.float32)
            if old:
                grown[:old] = self._pool[name]
            self._pool[name] = grown
        self._scene += [0] * (size - old)
        self._version += [0] * (size - old)
        self._left += [0] * (size - old)
        self._order += [0] * (size - old)
        self._free += range(size - 1, old - 1, -1)

    def _new_group(self, version: int) -> bool:
        scene = self.next_scene()
        if scene is None:
            return False
        if not self._free:
            self._grow(2 * len(self._scene))
        k = self._free.pop()
        for arr in self._pool.values():
            arr[k] = 0.0
        self._scene[k], self._version[k], self._left[k] = int(scene), version, self.group_size
        self._order[k], self._started = self._started, self._started + 1
        self._pending.extend((k, m) for m in range(self.group_size))
        return True

    def _start_members(self, version: int) -> None:
        """Resets every idle sub-env that can take a member to that member's scene."""
        idle = np.flatnonzero(self._slot < 0)
        chosen, scenes = [], []
        for b in idle:
            if not self._pending and not self._new_group(version):
                break
            k, m = self._pending.popleft()
            self._slot[b], self._member[b], self._t[b] = k, m, 0
            chosen.append(b)
            scenes.append(self._scene[k])
        if not chosen:
            return
        if not self._started_any and len(chosen) < self.env.num_envs:
            raise ValueError(
                f"the first scenes fill {len(chosen)} of the env's {self.env.num_envs} sub-envs: "
                "every sub-env must start a member in the first call"
            )
        self._started_any = True
        mask = np.zeros(self.env.num_envs, dtype=bool)
        mask[chosen] = True
        obs, _ = self.env.reset(options={"reset_mask": mask, "scenario_ids": np.asarray(scenes)})
        self._obs[chosen] = obs[chosen]

    def collect(self, num_groups: int, version: int = 0) -> GroupBatch:
        """Rolls out until `num_groups` groups have finished; returns them (fewer if the scenes run out).

        Args:
            num_groups: Finished groups to return, in the order they started.
            version: The sampler's weights version (the ``policy_version`` of groups started now).

        Returns:
            The padded `GroupBatch` (T = the env's horizon).
        """
        pool = self._pool
        while len(self._done) < num_groups:
            self._start_members(version)
            idx = np.flatnonzero(self._slot >= 0)
            if not idx.size:
                break
            k, m, t = self._slot[idx], self._member[idx], self._t[idx]
            obs_t = self._obs[idx]
            self._actions[idx], pool["u"][k, m, t], pool["logp"][k, m, t] = self.sample(obs_t)
            pool["obs"][k, m, t] = obs_t
            pool["mask"][k, m, t] = 1.0
            obs, rewards, terminated, truncated, info = self.env.step(self._actions)
            self._obs[idx] = obs[idx]
            pool["rewards"][k, m, t] = rewards[idx]
            self._t[idx] += 1
            done = terminated[idx] | truncated[idx]
            if (~done & (self._t[idx] >= self.horizon)).any():
                raise RuntimeError(f"a member drove {self.horizon} steps without the env ending it")
            for b, kb, mb in zip(idx[done], k[done], m[done], strict=True):
                pool["scene_score"][kb, mb] = info[INFO_KEY]["scene_score"][b]
                pool["terminated"][kb, mb] = terminated[b]
                self._slot[b] = -1
                self._left[kb] -= 1
                if not self._left[kb]:
                    self._done.append(int(kb))
        ks = sorted((self._done.popleft() for _ in range(min(num_groups, len(self._done)))),
                    key=self._order.__getitem__)  # fmt: skip
        batch = GroupBatch(
            **{name: arr[ks] for name, arr in pool.items()},
            scenario_ids=np.asarray([self._scene[k] for k in ks], dtype=np.int64),
            policy_version=min((self._version[k] for k in ks), default=version),
        )
        self._free += ks
        return batch
