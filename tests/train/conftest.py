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
