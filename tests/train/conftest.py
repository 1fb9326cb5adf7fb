"""Fixtures of the trainer tests: real, private redis-servers."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def redis_required() -> None:
    """Skips the test when `redis-server` or the `redis` client is not installed, except under CI
    (`CI=true`), where `.ci/run` installs both and a missing one is a failure, not a skip."""
    missing = None
    try:
        import redis  # noqa: F401
    except ImportError:
        missing = "the redis client (pip install redis)"
    from alpagym_train.redis_server import find_redis_server

    if find_redis_server() is None:
        missing = "redis-server (apt-get install redis-server)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing under CI")
        pytest.skip(f"{missing} is not installed")


@pytest.fixture(scope="session")
def redis_server(redis_required):
    """A `RedisServer` on a free loopback port, shared by the session's tests."""
    from alpagym_train.redis_server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis_server(redis_required):
    """A `RedisServer` of one test's own (it may stop it, or count on an otherwise empty server)."""
    from alpagym_train.redis_server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def raw(redis_server):
    """A plain redis client of the session server, to tamper with what the transport wrote."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


SMOKE_REWARD = [
    {"kind": "metric", "name": "progress_delta", "scale": 1.0},
    {"kind": "terminal", "name": "scene_score", "scale": 1.0},
]


@pytest.fixture(scope="session")
def smoke_groups():
    """Two pushes of two groups of 4 rollouts (smoke suite, horizon 25), and the policy that rolled them
    out: ``(policy, [batch of scenes 0 and 3, batch of scenes 5 and 6])``."""
    import numpy as np
    import torch

    from alpagym_env.scenarios import load_suite
    from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy
    from alpagym_train.rollout import collect_groups, make_group_env

    env = make_group_env(2, 4, scenarios=load_suite("smoke"), reward=SMOKE_REWARD, horizon=25)
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(env.single_observation_space.shape[0], 2, (32,), init_log_std=-1.0))
    sample = RolloutPolicy(policy, np.random.default_rng(0))
    batches = [collect_groups(env, sample, np.array(ids), 4) for ids in ([0, 3], [5, 6])]
    return policy, batches
