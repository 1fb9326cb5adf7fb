"""`GroupStream`: the actors' rollouts, where a sub-env whose member ends starts the next at once."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gymnasium.vector import AutoresetMode  # noqa: E402

from alpagym_env.envs.vector_env import AlpaDriveVectorEnv  # noqa: E402
from alpagym_env.scenarios import load_suite  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy  # noqa: E402
from alpagym_train.rollout import GroupStream, collect_groups, make_group_env  # noqa: E402

HORIZON = 25
G = 4


@pytest.fixture(scope="module")
def scenes():
    return load_suite("smoke")


class Recorder:
    """A sampler that records its batch sizes; `fixed` gives the same action to every sub-env."""

    def __init__(self, obs_dim: int, fixed: bool):
        torch.manual_seed(0)
        self.fixed = fixed
        self.policy = RolloutPolicy(
            GaussianPolicy(PolicyConfig(obs_dim, 2, (16,), init_log_std=-0.5)),
            np.random.default_rng(0),
        )
        self.sizes: list[int] = []

    def __call__(self, obs):
        self.sizes.append(len(obs))
        if not self.fixed:
            return self.policy(obs)
        u = np.tile(np.float32([0.3, 0.05]), (len(obs), 1))
        return np.tanh(u), u, np.zeros(len(obs), np.float32)


def test_members_of_a_group_replay_the_same_rollout_in_any_sub_env(scenes):
    """With one action for every state, all members of a group drive the same rollout wherever and
    whenever they run, and it is the rollout of that scene alone."""
    env = make_group_env(5, 1, scenarios=scenes, horizon=HORIZON, reward="metrics")  # 5: not a multiple of G
    draws = itertools.cycle([0, 3, 5, 6])
    stream = GroupStream(
        env, Recorder(env.single_observation_space.shape[0], fixed=True), G, lambda: next(draws)
    )
    batches = [stream.collect(3) for _ in range(2)]
    solo = make_group_env(1, 1, scenarios=scenes, horizon=HORIZON, reward="metrics")
    sampler = Recorder(env.single_observation_space.shape[0], fixed=True)
    for b in batches:
        assert b.obs.shape == (3, G, HORIZON, env.single_observation_space.shape[0])
        for k, scene in enumerate(b.scenario_ids):
            alone = collect_groups(solo, sampler, np.array([scene]), 1)
            for name in ("obs", "u", "rewards", "mask", "scene_score", "terminated"):
                got, want = getattr(b, name)[k], getattr(alone, name)[0, 0]
                assert all(np.array_equal(m, want) for m in got), (name, scene)


def test_sub_envs_never_wait_and_no_group_is_lost(scenes):
    env = make_group_env(6, 1, scenarios=scenes, horizon=HORIZON, reward="metrics")
    sampler = Recorder(env.single_observation_space.shape[0], fixed=False)
    rng = np.random.default_rng(0)
    drawn: list[int] = []

    def draw() -> int:
        drawn.append(int(rng.integers(len(scenes))))
        return drawn[-1]

    stream = GroupStream(env, sampler, G, draw)
    got = [stream.collect(2, version=v) for v in range(4)]
    assert set(sampler.sizes) == {6}  # every step drives all 6 sub-envs: no sub-env waits for a group
    for b in got:
        assert b.mask.shape[:2] == (2, G) and (b.mask[:, :, 0] == 1).all()  # complete groups
        assert (np.diff(b.mask, axis=-1) <= 0).all()  # each member's steps are one run from t = 0
        assert np.array_equal(b.obs[:, :, 0], np.repeat(b.obs[:, :1, 0], G, axis=1))  # one start state
    assert len(drawn) > 8  # groups still driving after a push are kept for the next one
    # a group keeps the version current when it started (the oldest that acted on it)
    assert got[0].policy_version == 0
    assert all(b.policy_version <= v for v, b in enumerate(got))
    assert any(b.policy_version < v for v, b in enumerate(got))


def test_lockstep_groups_are_collect_groups(scenes):
    """Groups that fill the env at once and no further scenes: `collect_groups`, bit for bit."""
    env = make_group_env(2, G, scenarios=scenes, horizon=HORIZON, reward="metrics")
    obs_dim = env.single_observation_space.shape[0]
    a = collect_groups(env, Recorder(obs_dim, fixed=False), np.array([5, 0]), G)
    ids = iter([5, 0])
    b = GroupStream(env, Recorder(obs_dim, fixed=False), G, lambda: next(ids, None)).collect(2)
    for name in ("obs", "u", "logp", "rewards", "mask", "scene_score", "terminated", "scenario_ids"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_bad_settings_are_refused(scenes):
    env = make_group_env(3, 1, scenarios=scenes, horizon=HORIZON, reward="metrics")
    obs_dim = env.single_observation_space.shape[0]
    ids = iter([0])
    stream = GroupStream(env, Recorder(obs_dim, fixed=True), 2, lambda: next(ids, None))
    with pytest.raises(ValueError, match="fill 2 of the env's 3 sub-envs"):
        stream.collect(1)
    auto = AlpaDriveVectorEnv(num_envs=2, scenarios=scenes, horizon=HORIZON)
    with pytest.raises(ValueError, match="AutoresetMode.DISABLED"):
        GroupStream(auto, Recorder(obs_dim, fixed=True), 2, lambda: 0)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        GroupStream(env, Recorder(obs_dim, fixed=True), 0, lambda: 0)
    assert AutoresetMode.DISABLED == env.autoreset_mode


def test_actor_sub_env_count_is_checked():
    from alpagym_train.grpo.config import from_plain

    with pytest.raises(ValueError, match="actors.num_envs must be >= 0, got -1"):
        from_plain({"actors": {"num_envs": -1}})
    assert from_plain({"actors": {"num_envs": 0}}).actors.num_envs == 0  # 0: groups_per_push x group_size
