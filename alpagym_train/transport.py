"""Redis transport between the learner and the actors: weights, rollout groups, heartbeats.

This is the only module of AlpaGym that imports `redis`. Every key lives under ``alpagym:{run_id}:``:

- ``weights:version`` the latest published version; ``weights:blob:{v}`` its safetensors bytes;
  ``weights:meta:{v}`` JSON ``{version, sha256, nbytes, tensors: {name: {dtype, shape}}}``;
  ``weights:versions`` a sorted set of the versions kept (the last ``keep_versions``);
  ``weights:hint`` a Pub/Sub channel announcing each new version.
- ``rollouts`` a stream, one entry per pushed `GroupBatch`, read by the consumer group ``learner``.
  Entries are deleted when acknowledged, so the stream length is the queue length (unread + in flight).
- ``actor:{actor_id}`` heartbeat keys with a TTL.

Payloads are safetensors (weights) and a msgpack header plus raw ``ndarray.tobytes()`` (rollouts); never
pickle, so a peer can only send data, not code.

Run ``python -m alpagym_train.transport`` to measure weight publish+fetch latency on a private server
(`weight_sync_latency`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgpack
import numpy as np
import redis
from redis._parsers import Encoder
from redis.backoff import NoBackoff
from redis.connection import PythonRespSerializer
from redis.retry import Retry

from alpagym_train.rollout import GroupBatch

WIRE_FORMAT = 1
CONSUMER_GROUP = "learner"
_ARRAY_FIELDS = tuple(f.name for f in fields(GroupBatch) if f.name != "policy_version")


class TransportError(RuntimeError):
    """Redis is unreachable, or a payload read from it is invalid."""


@dataclass
class ReceivedGroup:
    """One stream entry, decoded.

    Attributes:
        entry_id: Stream entry id, to `Transport.ack` once the batch is used.
        batch: The groups, with ``batch.policy_version`` the behaviour policy version.
        actor_id: Actor that pushed them.
        sent_at: Actor's wall-clock time (s since the epoch) when it pushed them.
    """

    entry_id: str
    batch: GroupBatch
    actor_id: str
    sent_at: float


def redact(url: str) -> str:
    """`url` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def safetensors_summary(blob: bytes) -> dict[str, dict[str, Any]]:
    """``{name: {dtype, shape}}`` read from a safetensors header (without decoding the tensors).

    Raises:
        ValueError: `blob` is not a safetensors file.
    """
    if len(blob) < 8:
        raise ValueError(f"not a safetensors blob ({len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    try:
        header = json.loads(blob[8 : 8 + n])
    except ValueError as e:
        raise ValueError(f"not a safetensors blob: unreadable header ({e})") from e
    if not isinstance(header, dict):
        raise ValueError("not a safetensors blob: the header is not a JSON object")
    return {
        k: {"dtype": v["dtype"], "shape": list(v["shape"])} for k, v in header.items() if k != "__metadata__"
    }


def _serialize_state_dict(state: Mapping[str, Any]) -> bytes:
    """Safetensors bytes of a dict of torch tensors or numpy arrays."""
    values = list(state.values())
    if values and all(isinstance(v, np.ndarray) for v in values):
        from safetensors.numpy import save

        return save({k: np.ascontiguousarray(v) for k, v in state.items()})
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def encode_group(batch: GroupBatch, policy_version: int, actor_id: str) -> dict[str, bytes]:
    """The stream entry fields of `batch`: a msgpack ``header`` and one raw-bytes field per array."""
    arrays = {name: np.ascontiguousarray(getattr(batch, name)) for name in _ARRAY_FIELDS}
    header = {
        "format": WIRE_FORMAT,
        "policy_version": int(policy_version),
        "actor_id": str(actor_id),
        "sent_at": time.time(),
        "scenario_ids": arrays["scenario_ids"].tolist(),
        "scene_score": arrays["scene_score"].tolist(),
        "arrays": {name: [a.dtype.str, list(a.shape)] for name, a in arrays.items()},
    }
    return {"header": msgpack.packb(header), **{name: a.tobytes() for name, a in arrays.items()}}


def decode_group(entry_id: str, entry: Mapping[bytes, bytes]) -> ReceivedGroup:
    """Inverse of `encode_group`.

    Raises:
        TransportError: Unknown wire format, or an array whose byte count does not match its header.
    """
    header = msgpack.unpackb(entry[b"header"])
    if header.get("format") != WIRE_FORMAT:
        raise TransportError(f"rollout entry {entry_id}: wire format {header.get('format')} != {WIRE_FORMAT}")
    arrays = {}
    for name, (dtype, shape) in header["arrays"].items():
        raw = entry[name.encode()]
        dt = np.dtype(dtype)
        if len(raw) != dt.itemsize * int(np.prod(shape)):
            raise TransportError(
                f"rollout entry {entry_id}: array {name!r} has {len(raw)} bytes, not {dtype}{shape}"
            )
        arrays[name] = np.frombuffer(raw, dt).reshape(shape).copy()  # copy: writable, owns its memory
    batch = GroupBatch(**arrays, policy_version=header["policy_version"])
    return ReceivedGroup(entry_id, batch, header["actor_id"], header["sent_at"])


class Transport:
    """The learner's and the actors' view of one run's shared state in Redis.

    Args:
        url: ``redis://[[user]:password@]host:port/db``.
        run_id: Namespace of every key (``alpagym:{run_id}:...``).
        keep_versions: Weight versions kept in Redis (older blobs are deleted on publish).
        timeout_s: Socket connect and read timeout; an unreachable server fails within about this long.

    Raises:
        TransportError: The server cannot be reached (checked with a PING at construction).
    """

    def __init__(self, url: str, run_id: str, keep_versions: int = 3, timeout_s: float = 2.0) -> None:
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1, got {keep_versions}")
        self.url = url
        self.run_id = run_id
        self.keep_versions = keep_versions
        self.timeout_s = timeout_s
        self._prefix = f"alpagym:{run_id}:"
        self._group_ready = False
        try:
            self._r = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout_s,
                socket_timeout=timeout_s,
                socket_read_size=1 << 20,  # weight blobs are MBs: far fewer recv calls than 64 KiB reads
                retry=Retry(NoBackoff(), 1),  # one immediate reconnect (an idle connection closed), no more
                # hiredis' packer copies every argument into the command (1.7 ms per MB); redis-py's own
                # sends arguments over 6 kB as buffers of their own (0.3 ms for a 1 MB SET).
                command_packer=PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode),
            )
        except ValueError as e:
            raise TransportError(f"invalid Redis URL {redact(url)}: {e}") from e
        with self._reach():
            self._r.ping()

    def key(self, *parts: Any) -> str:
        """The namespaced key ``alpagym:{run_id}:part:part...``."""
        return self._prefix + ":".join(str(p) for p in parts)

    @contextmanager
    def _reach(self) -> Iterator[None]:
        """Turns connection failures into a `TransportError` naming the (redacted) URL."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise TransportError(f"cannot reach Redis at {redact(self.url)}: {e}") from e
        except redis.ResponseError as e:
            if str(e).startswith(("NOAUTH", "WRONGPASS")):
                raise TransportError(f"cannot reach Redis at {redact(self.url)}: {e}") from e
            raise

    def close(self) -> None:
        self._r.close()

    # ---- weights -------------------------------------------------------------------------------------

    @property
    def hint_channel(self) -> str:
        """Pub/Sub channel on which each new weight version number is announced."""
        return self.key("weights", "hint")

    def publish_weights(self, weights: Mapping[str, Any] | bytes, version: int) -> dict[str, Any]:
        """Publishes `weights` as `version`, atomically, then announces it on `hint_channel`.

        One MULTI writes the blob and its metadata, drops the versions beyond the last `keep_versions`
        and sets the version key last, so a reader never sees a version whose blob is missing.

        Args:
            weights: A state dict (torch tensors or numpy arrays) or safetensors bytes.
            version: Must not be lower than the latest published version.

        Returns:
            The metadata written: ``{version, sha256, nbytes, tensors}``.

        Raises:
            ValueError: `version` goes backwards, or the bytes are not safetensors.
            TransportError: Redis is unreachable.
        """
        blob = bytes(weights) if isinstance(weights, (bytes, bytearray, memoryview)) else None
        blob = blob if blob is not None else _serialize_state_dict(weights)
        meta = {
            "version": int(version),
            "sha256": hashlib.sha256(blob).hexdigest(),
            "nbytes": len(blob),
            "tensors": safetensors_summary(blob),
        }
        versions_key, version_key = self.key("weights", "versions"), self.key("weights", "version")
        with self._reach(), self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(versions_key, version_key)  # a concurrent publisher makes EXEC retry
                    latest = pipe.get(version_key)
                    if latest is not None and int(latest) > version:
                        raise ValueError(f"cannot publish weights version {version}: {int(latest)} exists")
                    kept = {int(v) for v in pipe.zrange(versions_key, 0, -1)} | {int(version)}
                    stale = sorted(kept)[: -self.keep_versions]
                    pipe.multi()
                    pipe.set(self.key("weights", "blob", version), blob)
                    pipe.set(self.key("weights", "meta", version), json.dumps(meta))
                    pipe.zadd(versions_key, {str(version): version})
                    for v in stale:
                        pipe.delete(self.key("weights", "blob", v), self.key("weights", "meta", v))
                        pipe.zrem(versions_key, str(v))
                    pipe.set(version_key, version)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
            self._r.publish(self.hint_channel, version)
        return meta

    def latest_version(self) -> int | None:
        """The latest published weight version, None before the first publish."""
        with self._reach():
            v = self._r.get(self.key("weights", "version"))
        return None if v is None else int(v)

    def fetch_weights(
        self,
        if_newer_than: int | None = None,
        expected: Mapping[str, Any] | None = None,
        framework: str = "torch",
    ) -> tuple[int, dict[str, Any]] | None:
        """The latest weights, if they are newer than the caller's.

        Args:
            if_newer_than: The version the caller holds; None fetches whatever is latest.
            expected: Optional template ``{name: tensor, array or shape}``: the fetched weights must have
                exactly these names and shapes.
            framework: ``"torch"`` (tensors) or ``"numpy"`` (arrays).

        Returns:
            ``(version, state_dict)``, or None when nothing newer than `if_newer_than` is published.

        Raises:
            TransportError: The blob fails its sha256 or shape check (the message names the version and
                the problem), or Redis is unreachable.
        """
        for _ in range(5):  # the version may be trimmed between reading its number and its blob
            version = self.latest_version()
            if version is None or (if_newer_than is not None and version <= if_newer_than):
                return None
            with self._reach():
                blob, meta = self._r.mget(
                    self.key("weights", "blob", version), self.key("weights", "meta", version)
                )
            if blob is not None and meta is not None:
                return version, self._decode_weights(version, blob, json.loads(meta), expected, framework)
        raise TransportError(f"weights version {version}: blob or metadata missing from Redis")

    @staticmethod
    def _decode_weights(
        version: int, blob: bytes, meta: dict, expected: Mapping[str, Any] | None, framework: str
    ) -> dict[str, Any]:
        digest = hashlib.sha256(blob).hexdigest()
        if digest != meta["sha256"]:
            raise TransportError(
                f"weights version {version}: checksum mismatch (sha256 {digest[:12]}..., "
                f"published {meta['sha256'][:12]}...); the blob is corrupt"
            )
        if framework == "torch":
            from safetensors.torch import load
        elif framework == "numpy":
            from safetensors.numpy import load
        else:
            raise ValueError(f"framework must be 'torch' or 'numpy', got {framework!r}")
        state = load(blob)
        if expected is not None:
            want = {k: tuple(v.shape if hasattr(v, "shape") else v) for k, v in expected.items()}
            got = {k: tuple(v.shape) for k, v in state.items()}
            if got != want:
                diff = sorted(
                    f"{k}: {got.get(k, 'missing')} vs expected {want.get(k, 'none')}"
                    for k in set(got) | set(want)
                    if got.get(k) != want.get(k)
                )
                raise TransportError(f"weights version {version}: shape mismatch ({'; '.join(diff)})")
        return state

    # ---- rollouts ------------------------------------------------------------------------------------

    @property
    def stream(self) -> str:
        return self.key("rollouts")

    def push_group(self, batch: GroupBatch, policy_version: int, actor_id: str) -> str:
        """Appends `batch` (one or more complete groups) as ONE stream entry; returns its id.

        The same MULTI adds the groups to the ``pushed_groups`` counter of `actor_id` (see `counts`), so
        the count and the stream never disagree, whenever the actor dies.
        """
        fields_ = encode_group(batch, policy_version, actor_id)
        with self._reach(), self._r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, fields_)
            pipe.hincrby(self.key("count", "pushed_groups"), actor_id, len(batch.scenario_ids))
            entry_id, _ = pipe.execute()
        return entry_id.decode()

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # id 0: entries pushed before the learner first reads are delivered too.
            self._r.xgroup_create(self.stream, CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ready = True

    def read_groups(self, consumer: str, count: int = 1, block_ms: int | None = None) -> list[ReceivedGroup]:
        """Reads up to `count` new entries for `consumer` of the ``learner`` group.

        Entries read stay pending (XPENDING) until `ack`; a consumer that dies before acking loses
        nothing: `claim_pending` hands its entries to another.

        Args:
            consumer: Consumer name within the group (e.g. ``learner-0``).
            count: Maximum number of entries.
            block_ms: Wait up to this long for an entry (None: do not wait). Long waits are split into
                short XREADGROUP calls, so a vanished server is still noticed within `timeout_s`.
        """
        deadline = time.monotonic() + (block_ms or 0) / 1000
        with self._reach():
            while True:
                self._ensure_group()
                wait_ms = int(min(deadline - time.monotonic(), self.timeout_s / 2) * 1000)
                try:
                    reply = self._r.xreadgroup(
                        CONSUMER_GROUP, consumer, {self.stream: ">"}, count=count,
                        block=wait_ms if wait_ms > 0 else None,
                    )  # fmt: skip
                except redis.ResponseError as e:
                    if "NOGROUP" not in str(e):  # the stream was deleted: recreate the group
                        raise
                    self._group_ready = False
                    continue
                entries = reply[0][1] if reply else []
                if entries or time.monotonic() >= deadline:
                    return [decode_group(i.decode(), fields_) for i, fields_ in entries]

    def claim_pending(self, consumer: str, min_idle_ms: int, count: int = 10) -> list[ReceivedGroup]:
        """Takes over entries read but not acked by any consumer for at least `min_idle_ms` (XAUTOCLAIM)."""
        with self._reach():
            self._ensure_group()
            reply = self._r.xautoclaim(self.stream, CONSUMER_GROUP, consumer, min_idle_ms, count=count)
        return [decode_group(i.decode(), f) for i, f in reply[1] if f is not None]

    def ack(self, entry_ids: Sequence[str]) -> int:
        """Acknowledges and deletes used entries (XACK + XDEL in one MULTI); returns how many were acked."""
        if not entry_ids:
            return 0
        with self._reach(), self._r.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, CONSUMER_GROUP, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            acked, _ = pipe.execute()
        return int(acked)

    def pending_count(self) -> int:
        """Entries read but not yet acknowledged (XPENDING)."""
        with self._reach():
            self._ensure_group()
            return int(self._r.xpending(self.stream, CONSUMER_GROUP)["pending"])

    def queue_length(self) -> int:
        """Entries in the stream: unread plus read-but-unacked."""
        with self._reach():
            return int(self._r.xlen(self.stream))

    def unread_length(self) -> int:
        """Entries no consumer has read yet (XLEN minus the pending entries, read in one MULTI)."""
        with self._reach():
            self._ensure_group()
            with self._r.pipeline(transaction=True) as pipe:
                pipe.xlen(self.stream)
                pipe.xpending(self.stream, CONSUMER_GROUP)
                length, pending = pipe.execute()
        return int(length) - int(pending["pending"])

    def wait_for_room(self, max_len: int, timeout_s: float, poll_s: float = 0.01) -> bool:
        """Back-pressure for actors: blocks while more than `max_len` entries wait unread.

        Entries the learner has read but not yet acknowledged do not count: it may need more of them
        than `max_len` for one update, and counting them would stop the actors it is waiting for.

        Returns:
            True once ``unread_length() <= max_len``, False if that did not happen within `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while self.unread_length() > max_len:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True

    # ---- heartbeats ----------------------------------------------------------------------------------

    def heartbeat(self, actor_id: str, ttl_s: float, info: Mapping[str, Any] | None = None) -> None:
        """Marks `actor_id` alive for the next `ttl_s` seconds, with optional JSON `info` (pid, host)."""
        value = json.dumps({"time": time.time(), **(info or {})})
        with self._reach():
            self._r.set(self.key("actor", actor_id), value, px=max(1, int(ttl_s * 1000)))

    def actor_info(self, actor_id: str) -> dict[str, Any] | None:
        """What `actor_id` sent with its last heartbeat, None when it has expired."""
        with self._reach():
            raw = self._r.get(self.key("actor", actor_id))
        return None if raw is None else json.loads(raw)

    def live_actors(self) -> list[str]:
        """Sorted ids of the actors whose heartbeat has not expired."""
        prefix = self.key("actor", "")
        with self._reach():
            keys = self._r.scan_iter(match=re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*", count=1000)
            return sorted(k.decode()[len(prefix) :] for k in keys)

    # ---- run control -------------------------------------------------------------------------------

    def publish_spec(self, spec: Mapping[str, Any]) -> None:
        """Writes the run spec actors build their env and policy from (``spec`` key, JSON)."""
        with self._reach():
            self._r.set(self.key("spec"), json.dumps(spec))

    def read_spec(self) -> dict[str, Any] | None:
        """The run spec, None before the learner published it."""
        with self._reach():
            raw = self._r.get(self.key("spec"))
        return None if raw is None else json.loads(raw)

    def runs(self) -> list[str]:
        """Run ids with a published spec on this server (any namespace)."""
        with self._reach():
            keys = self._r.scan_iter(match="alpagym:*:spec", count=1000)
            return sorted(k.decode()[len("alpagym:") : -len(":spec")] for k in keys)

    def request_stop(self, reason: str) -> None:
        """Asks every process of the run to finish (actors exit after their current group)."""
        with self._reach():
            self._r.set(self.key("stop"), reason)

    def stop_reason(self) -> str | None:
        """Why the run was asked to stop, None while it runs."""
        with self._reach():
            raw = self._r.get(self.key("stop"))
        return None if raw is None else raw.decode()

    def clear_stop(self) -> None:
        """Forgets an earlier stop request (a learner starting or resuming a run)."""
        with self._reach():
            self._r.delete(self.key("stop"))

    def counts(self, name: str) -> dict[str, int]:
        """The counters of hash `name`, e.g. ``counts("pushed_groups")``: groups pushed per actor id."""
        with self._reach():
            return {k.decode(): int(v) for k, v in self._r.hgetall(self.key("count", name)).items()}


def weight_sync_latency(sizes_mb=(0.1, 1.0, 10.0), repeats: int = 20) -> list[dict[str, float]]:
    """Median publish and fetch times of float32 weights of each size, on a private redis-server.

    Returns:
        One ``{"mb", "publish_ms", "fetch_ms", "total_ms"}`` per size.
    """
    import torch

    from alpagym_train.redis_server import RedisServer

    rows = []
    with RedisServer() as server:
        t = Transport(server.url, run_id="latency")
        version = 0
        for mb in sizes_mb:
            state = {"w": torch.randn(int(mb * 1e6 / 4))}
            pub, fetch = [], []
            for _ in range(repeats):
                version += 1
                t0 = time.perf_counter()
                t.publish_weights(state, version)
                t1 = time.perf_counter()
                got = t.fetch_weights(if_newer_than=version - 1)
                t2 = time.perf_counter()
                assert got is not None and got[0] == version
                pub.append(t1 - t0)
                fetch.append(t2 - t1)
            p, f = float(np.median(pub) * 1e3), float(np.median(fetch) * 1e3)
            rows.append({"mb": mb, "publish_ms": p, "fetch_ms": f, "total_ms": p + f})
        t.close()
    return rows


if __name__ == "__main__":
    print(f"{'size':>8} {'publish ms':>11} {'fetch ms':>9} {'total ms':>9}")
    for r in weight_sync_latency():
        print(f"{r['mb']:>6g}MB {r['publish_ms']:>11.2f} {r['fetch_ms']:>9.2f} {r['total_ms']:>9.2f}")
