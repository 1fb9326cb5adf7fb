"""The Redis transport against a real redis-server: weights, rollout groups, heartbeats, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

redis = pytest.importorskip("redis")
torch = pytest.importorskip("torch")

from alpagym_train.redis_server import RedisServer, RedisServerError, free_port  # noqa: E402
from alpagym_train.rollout import GroupBatch  # noqa: E402
from alpagym_train.transport import Transport, TransportError  # noqa: E402
from alpagym_train.wire import RolloutSpec  # noqa: E402

SPEC = RolloutSpec(obs_dim=5, act_dim=2, group_size=4, max_steps=7, num_scenarios=1000)


@pytest.fixture
def transport(redis_server):
    """A `Transport` on the session server, in a fresh run namespace."""
    t = Transport(redis_server.url, run_id=f"test-{uuid.uuid4().hex[:8]}", keep_versions=3)
    yield t
    t.close()


def make_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "net.0.weight": torch.randn(64, 32, generator=g),
        "net.0.bias": torch.randn(64, generator=g),
        "log_std": torch.randn(2, generator=g).to(torch.float64),
    }


def make_batch(n: int = 2, g: int = 4, t: int = 7, d: int = 5, a: int = 2, seed: int = 0) -> GroupBatch:
    rng = np.random.default_rng(seed)
    return GroupBatch(
        obs=rng.standard_normal((n, g, t, d), dtype=np.float32),
        u=rng.standard_normal((n, g, t, a), dtype=np.float32),
        logp=rng.standard_normal((n, g, t), dtype=np.float32),
        rewards=rng.standard_normal((n, g, t), dtype=np.float32),
        mask=(rng.random((n, g, t)) > 0.3).astype(np.float32),
        scene_score=rng.random((n, g), dtype=np.float32),
        scenario_ids=rng.integers(0, 1000, n).astype(np.int64),
        terminated=(rng.random((n, g)) > 0.5).astype(np.float32),
    )


# ---- weights ------------------------------------------------------------------------------------------


def test_weights_round_trip_bit_exact(transport):
    assert transport.latest_version() is None
    assert transport.fetch_weights() is None
    state = make_state()
    meta = transport.publish_weights(state, version=1)
    assert meta["tensors"]["net.0.weight"] == {"dtype": "F32", "shape": [64, 32]}
    assert transport.latest_version() == 1
    version, got = transport.fetch_weights(if_newer_than=0, expected=state)
    assert version == 1 and got.keys() == state.keys()
    for k in state:
        assert got[k].dtype == state[k].dtype and torch.equal(got[k], state[k])
    assert transport.fetch_weights(if_newer_than=1) is None  # not advanced: nothing fetched

    _, as_numpy = transport.fetch_weights(framework="numpy")
    np.testing.assert_array_equal(as_numpy["log_std"], state["log_std"].numpy())


def test_publish_accepts_safetensors_bytes_and_rejects_going_back(transport):
    from safetensors.torch import save

    transport.publish_weights(save(make_state(1)), version=5)
    assert transport.fetch_weights(if_newer_than=4)[0] == 5
    with pytest.raises(ValueError, match="version 4"):
        transport.publish_weights(make_state(), version=4)
    with pytest.raises(ValueError, match="safetensors"):
        transport.publish_weights(b"junk", version=6)


def test_only_last_versions_kept_and_hint_published(transport, raw):
    sub = raw.pubsub()
    sub.subscribe(transport.hint_channel)
    assert sub.get_message(timeout=1.0)["type"] == "subscribe"  # subscribed before the first publish
    for v in range(1, 7):
        transport.publish_weights(make_state(v), version=v)
    blobs = sorted(k.decode() for k in raw.keys(transport.key("weights", "blob", "*")))
    assert blobs == [transport.key("weights", "blob", v) for v in (4, 5, 6)]
    assert not raw.exists(transport.key("weights", "meta", 3))
    assert [int(v) for v in raw.zrange(transport.key("weights", "versions"), 0, -1)] == [4, 5, 6]
    hints = []
    while (msg := sub.get_message(timeout=0.5)) is not None:
        hints.append(int(msg["data"]))
        if len(hints) == 6:
            break
    assert hints == [1, 2, 3, 4, 5, 6]
    sub.close()


def test_corrupt_blob_rejected_naming_the_version(transport, raw):
    transport.publish_weights(make_state(), version=3)
    key = transport.key("weights", "blob", 3)
    blob = bytearray(raw.get(key))
    blob[-10] ^= 0xFF
    raw.set(key, bytes(blob))
    with pytest.raises(TransportError, match=r"version 3: MAC mismatch"):
        transport.fetch_weights(if_newer_than=2)


def test_shape_mismatch_rejected(transport):
    state = make_state()
    transport.publish_weights(state, version=2)
    expected = {**state, "net.0.weight": torch.zeros(64, 33)}
    with pytest.raises(TransportError, match=r"version 2: shape mismatch \(net.0.weight: \(64, 32\)"):
        transport.fetch_weights(expected=expected)
    with pytest.raises(TransportError, match=r"extra: missing vs expected \(1,\)"):
        transport.fetch_weights(expected={**{k: tuple(v.shape) for k, v in state.items()}, "extra": (1,)})


# ---- rollouts -----------------------------------------------------------------------------------------


def test_group_batch_round_trips_exactly(transport):
    batch = make_batch()
    entry_id = transport.push_group(batch, policy_version=7, actor_id="actor-0")
    assert transport.queue_length() == 1
    (got,), _ = transport.read_groups("learner-0", SPEC, 10, count=10)
    assert got.entry_id == entry_id and got.actor_id == "actor-0"
    assert got.batch.policy_version == 7 and abs(got.sent_at - time.time()) < 5
    for name in ("obs", "u", "logp", "rewards", "mask", "scene_score", "scenario_ids", "terminated"):
        a, b = getattr(batch, name), getattr(got.batch, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b)
        assert b.flags.writeable
    assert got.batch.returns.shape == (2, 4)


def test_acked_entries_not_redelivered_unacked_stay_pending(transport):
    ids = [transport.push_group(make_batch(n=1, seed=s), policy_version=s, actor_id="a") for s in range(3)]
    first, _ = transport.read_groups("learner-0", SPEC, 10, count=2)
    assert [r.entry_id for r in first] == ids[:2]
    assert transport.pending_count() == 2
    assert transport.ack([r.entry_id for r in first]) == 2
    assert transport.pending_count() == 0 and transport.queue_length() == 1

    # learner-0 reads the last entry, then "dies" before acking it: nothing is lost.
    (dying,), _ = transport.read_groups("learner-0", SPEC, 10, count=10)
    assert transport.read_groups("learner-0", SPEC, 10, count=10) == (
        [],
        [],
    )  # acked or in flight: never re-delivered
    assert transport.pending_count() == 1 and transport.queue_length() == 1
    (claimed,), _ = transport.claim_pending("learner-1", 0, SPEC, 10)
    assert claimed.entry_id == dying.entry_id == ids[2]
    np.testing.assert_array_equal(claimed.batch.obs, dying.batch.obs)
    transport.ack([claimed.entry_id])
    assert transport.pending_count() == 0 and transport.queue_length() == 0


def test_read_blocks_then_returns_empty(transport):
    t0 = time.monotonic()
    assert transport.read_groups("learner-0", SPEC, 10, block_ms=300) == ([], [])
    assert 0.25 < time.monotonic() - t0 < 2.0


def test_back_pressure(transport):
    for s in range(3):
        transport.push_group(make_batch(n=1, t=2, seed=s), policy_version=0, actor_id="a")
    t0 = time.monotonic()
    assert transport.wait_for_room(max_len=2, timeout_s=0.2) is False
    assert 0.15 < time.monotonic() - t0 < 1.0
    got, _ = transport.read_groups("learner-0", SPEC, 10, count=1)
    # Read but not acknowledged: the learner holds it and may need more than max_len for one update,
    # so it no longer counts (counting it deadlocked learners needing more entries than max_len).
    assert transport.unread_length() == 2 and transport.queue_length() == 3
    assert transport.wait_for_room(max_len=2, timeout_s=0.2) is True
    transport.ack([r.entry_id for r in got])
    assert transport.unread_length() == 2 and transport.queue_length() == 2


# ---- heartbeats ---------------------------------------------------------------------------------------


def test_heartbeats_expire(transport):
    transport.heartbeat("actor-1", ttl_s=0.2)
    transport.heartbeat("actor-0", ttl_s=5.0)
    assert transport.live_actors() == ["actor-0", "actor-1"]
    time.sleep(0.35)
    assert transport.live_actors() == ["actor-0"]


# ---- failures and the server --------------------------------------------------------------------------


def test_unreachable_url_raises_quickly():
    url = f"redis://127.0.0.1:{free_port()}/0"
    t0 = time.monotonic()
    with pytest.raises(TransportError, match=f"cannot reach Redis at {url}"):
        Transport(url, run_id="x")
    assert time.monotonic() - t0 < 2.0


def test_server_gone_and_password():
    with RedisServer(password="s3cret") as server:
        assert server.url.startswith("redis://:s3cret@127.0.0.1:")
        t = Transport(server.url, run_id="pw")
        t.publish_weights(make_state(), version=1)
        assert t.fetch_weights()[0] == 1
        with pytest.raises(TransportError, match=r"cannot reach Redis at redis://:\*\*\*@"):
            Transport(server.url.replace("s3cret", "wrong"), run_id="pw")
        with pytest.raises(TransportError, match="cannot reach Redis"):
            Transport(server.url.replace(":s3cret@", ""), run_id="pw")
        pid = server.pid
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    t0 = time.monotonic()
    with pytest.raises(TransportError, match="cannot reach Redis"):
        t.latest_version()
    assert time.monotonic() - t0 < 2.0


def test_server_stopped_at_interpreter_exit_when_forgotten():
    code = "from alpagym_train.redis_server import RedisServer; print(RedisServer().start().pid, flush=True)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True)
    pid = int(out.stdout.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_binary_is_named():
    with pytest.raises(RedisServerError, match="'no-such-redis-server' was not found.*apt-get install"):
        RedisServer(binary="no-such-redis-server").start()


def test_session_server_is_alive(redis_server):
    assert redis_server.running
    assert redis_server.url == f"redis://:{redis_server.password}@127.0.0.1:{redis_server.port}/0"
