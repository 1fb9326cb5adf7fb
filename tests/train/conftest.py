"""Fixtures of the trainer tests: a real, private redis-server for the whole session."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def redis_server():
    """A `RedisServer` on a free loopback port, stopped at the end of the session.

    Skips the test when `redis-server` or the `redis` client is not installed, except under CI
    (`CI=true`), where `.ci/run` installs both and a missing one is a failure, not a skip.
    """
    missing = None
    try:
        import redis  # noqa: F401
    except ImportError:
        missing = "the redis client (pip install redis)"
    if shutil.which("redis-server") is None:
        missing = "redis-server (apt-get install redis-server)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing under CI")
        pytest.skip(f"{missing} is not installed")
    from alpagym_train.redis_server import RedisServer

    with RedisServer() as server:
        yield server
