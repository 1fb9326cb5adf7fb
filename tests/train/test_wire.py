"""The wire format's MAC and weight writer, without Redis: tampering, wrong keys, old tags, exact bytes."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_train.wire import (  # noqa: E402
    WIRE_FORMAT,
    BadEntry,
    RolloutSpec,
    WeightsWriter,
    decode_group,
    encode_group,
    mac,
    mac_problem,
)
from tests.train.test_transport import make_batch  # noqa: E402

SECRET = bytes(range(32))


def test_mac_accepts_its_own_tag_only():
    data = np.random.default_rng(0).bytes(100_000)
    tag = mac(SECRET, b"7:", data)
    assert tag.startswith("blake3:") and len(tag) == len("blake3:") + 64
    assert mac_problem(SECRET, tag, b"7:", data) is None
    assert mac_problem(SECRET, tag.encode(), b"7:", memoryview(data)) is None  # bytes tag, buffer parts
    assert mac(SECRET, b"7:" + data) == tag  # the parts are one message
    for i in (0, 50_000, len(data) - 1):  # a flipped byte anywhere
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        assert mac_problem(SECRET, tag, b"7:", flipped) == "MAC mismatch"
    assert mac_problem(SECRET, tag, b"8:", data) == "MAC mismatch"  # another version's blob
    assert mac_problem(SECRET, tag, b"7:", data[:-1]) == "MAC mismatch"  # truncated
    forged = tag[:-1] + ("0" if tag[-1] != "0" else "1")
    assert mac_problem(SECRET, forged, b"7:", data) == "MAC mismatch"


def test_mac_rejects_wrong_keys():
    data = b"weights"
    tag = mac(SECRET, data)
    for wrong in (b"", b"guess", SECRET[:-1], SECRET[:-1] + b"\x00", SECRET + b"\x00"):
        assert mac_problem(wrong, tag, data) == "MAC mismatch", wrong
        assert mac(wrong, data) != tag
    assert mac_problem(b"", mac(b"", data), data) is None  # no secret: integrity only


def test_old_hmac_tags_are_rejected_and_named():
    data = b"weights"
    old = hmac.new(SECRET, data, hashlib.sha256).hexdigest()
    problem = mac_problem(SECRET, old, data)
    assert problem.startswith("MAC mismatch") and "HMAC-SHA256 tag of wire format 3 or earlier" in problem
    assert f"wire format {WIRE_FORMAT}" in problem
    spec = RolloutSpec(obs_dim=5, act_dim=2, group_size=4, max_steps=7, num_scenarios=1000)
    entry = {k.encode(): v for k, v in encode_group(make_batch(), 0, "a", "run", SECRET).items()}
    assert decode_group("1-0", entry, spec, "run", SECRET, 0).actor_id == "a"
    entry[b"mac"] = hmac.new(SECRET, entry[b"data"], hashlib.sha256).hexdigest().encode()
    with pytest.raises(
        BadEntry, match="HMAC-SHA256 tag of wire format 3 or earlier.*not signed with this run"
    ):
        decode_group("1-0", entry, spec, "run", SECRET, 0)


def test_weights_writer_writes_safetensors_own_bytes_into_one_buffer():
    from safetensors.numpy import save as save_numpy
    from safetensors.torch import load, save

    g = torch.Generator().manual_seed(0)
    state = {
        "net.0.weight": torch.randn(64, 32, generator=g),
        "net.0.bias": torch.randn(64, generator=g),
        "log_std": torch.randn(2, generator=g).double(),
        "half": torch.randn(3, 5, generator=g).bfloat16(),
        "scalar": torch.tensor(3.0),
        "flags": torch.tensor([True, False]),
        "transposed": torch.randn(4, 6, generator=g).T,  # not contiguous
    }
    writer = WeightsWriter()
    blob = writer.write(state)
    assert bytes(blob) == save({k: v.contiguous() for k, v in state.items()})
    got = load(bytes(blob))
    assert all(torch.equal(got[k], v) and got[k].dtype == v.dtype for k, v in state.items())
    buffer = writer._buffer
    small = {"b": np.arange(6, dtype=np.int32).reshape(2, 3), "a": np.ones(4, np.float32)}
    assert bytes(writer.write(small)) == save_numpy(small)
    assert writer._buffer is buffer  # a smaller state reuses the buffer
    with pytest.raises(ValueError, match="weight 'z': dtype complex64"):
        writer.write({"z": torch.zeros(2, dtype=torch.complex64)})


def test_weights_of_an_older_format_or_a_wrong_key_are_refused(redis_server, raw):
    import json
    import uuid

    from alpagym_train.transport import BadPayload, Transport

    t = Transport(redis_server.url, run_id=f"wire-{uuid.uuid4().hex[:8]}", secret=SECRET)
    state = {"w": torch.randn(1000)}
    t.publish_weights(state, version=1)
    assert torch.equal(t.fetch_weights()[1]["w"], state["w"])
    meta_key, blob = t.key("weights", "meta", 1), raw.get(t.key("weights", "blob", 1))
    meta = json.loads(raw.get(meta_key))
    meta["mac"] = hmac.new(SECRET, b"1:" + blob, hashlib.sha256).hexdigest()  # what format 3 wrote
    raw.set(meta_key, json.dumps(meta))
    with pytest.raises(BadPayload, match=r"version 1: MAC mismatch \(an HMAC-SHA256 tag of wire format 3"):
        t.fetch_weights()
    other = Transport(redis_server.url, t.run_id, secret=SECRET[::-1])
    other.publish_weights(state, version=2)
    with pytest.raises(
        BadPayload, match=r"version 2: MAC mismatch; the blob is corrupt or was not published"
    ):
        t.fetch_weights()
    t.close(), other.close()


def test_entries_stop_after_the_longest_rollout_and_decode_to_the_horizon():
    batch = make_batch(t=50)
    batch.mask[:] = 0.0
    batch.mask[:, :, :9] = 1.0
    batch.mask[1, 2, :13] = 1.0  # the longest rollout: 13 steps
    for name in ("obs", "u", "logp", "rewards"):
        getattr(batch, name)[batch.mask == 0] = 0.0  # padding is zeros
    spec = RolloutSpec(obs_dim=5, act_dim=2, group_size=4, max_steps=50, num_scenarios=1000)
    fields_ = encode_group(batch, 0, "a", "run", SECRET)
    from safetensors.numpy import load

    sent = load(fields_["data"])
    assert sent["obs"].shape == (2, 4, 13, 5) and sent["mask"].shape == (2, 4, 13)  # 13 of 50 steps
    assert sent["scene_score"].shape == (2, 4)
    got = decode_group("1-0", {k.encode(): v for k, v in fields_.items()}, spec, "run", SECRET, 0).batch
    for name in ("obs", "u", "logp", "rewards", "mask", "scene_score", "scenario_ids", "terminated"):
        np.testing.assert_array_equal(getattr(got, name), getattr(batch, name), err_msg=name)
