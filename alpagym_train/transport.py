"""Redis transport between the learner and the actors: weights, rollout groups, heartbeats.

This is the only module of AlpaGym that imports `redis`. Every key lives under ``alpagym:{run_id}:``:

- ``weights:version`` the latest published version; ``weights:blob:{v}`` its safetensors bytes;
  ``weights:meta:{v}`` JSON ``{version, mac, nbytes, tensors: {name: {dtype, shape}}}``;
  ``weights:versions`` a sorted set of the versions kept (the last ``keep_versions``);
  ``weights:hint`` a Pub/Sub channel announcing each new version.
- ``rollouts`` a stream, one entry per pushed `GroupBatch`, read by the consumer group ``learner``.
  Entries are deleted when acknowledged, so the stream length is the queue length (unread + in flight).
  Every entry is validated where it is read (`alpagym_train.wire.decode_group`); a bad one is
  acknowledged and moved to the ``rollouts:dead`` stream (with the reason and the actor's id) and
  counted per actor in ``count:dead_letters``, never returned.
- ``actor:{actor_id}`` heartbeat keys with a TTL; ``learner`` the learner's lease (a TTL key holding
  its owner token): a run with a live lease is in use, and no second learner may take its keys.
- ``spec`` the run spec, ``stop`` a stop request.

Payloads are safetensors (weights and rollouts, see `alpagym_train.wire`); never pickle, so a peer can
only send data, not code. Weight blobs, rollout entries and the run spec carry a keyed-BLAKE3 MAC under
the run secret (`alpagym_train.wire.mac`), so a client that reaches Redis without the secret can
neither publish weights nor inject rollouts.

Weight sync is on the trainer's critical path, so its bytes are copied as few times as possible: the
learner writes the safetensors bytes into one reused buffer (`alpagym_train.wire.WeightsWriter`), MACs
them in place and hands that buffer to the socket as is (commands are packed by redis-py's Python
packer, which sends large arguments without copying, where hiredis' packer copies the whole command);
an actor checks the MAC on the reply's bytes and loads the tensors from them with safetensors.

Redis stalls shorter than ``timeout_s`` are ridden out: a read waits up to ``timeout_s`` for its
reply, and a refused or reset connection is retried with exponential backoff until ``timeout_s`` has
passed since the command began; only then does a call raise `TransportError`.

Run ``python -m alpagym_train.transport`` to measure weight publish+fetch latency on a private server
(`weight_sync_latency`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis
from redis.backoff import ExponentialBackoff
from redis.connection import Encoder, PythonRespSerializer
from redis.retry import Retry

from alpagym_train.rollout import GroupBatch
from alpagym_train.wire import (
    BadEntry,
    ReceivedGroup,
    RolloutSpec,
    WeightsWriter,
    decode_group,
    encode_group,
    mac,
    mac_problem,
)
from alpagym_train.wire import safetensors_header as _header

CONSUMER_GROUP = "learner"
DEAD_LETTER_MAXLEN = 256  # the dead-letter stream keeps about this many entries
DEAD_LETTER_FIELD_BYTES = 64 << 10  # and of each field of a rejected entry its first 64 KiB
_PACK_CUTOFF = 6000  # redis-py's default: longer command arguments are sent as buffers of their own
_SUPPORTED = (redis.ConnectionError, redis.TimeoutError, TimeoutError, ConnectionError, OSError)


class TransportError(RuntimeError):
    """Redis is unreachable, or a payload read from it is invalid."""


class BadPayload(TransportError):
    """A payload read from Redis fails its MAC or shape check (Redis itself is fine)."""


class DeadlineRetry(Retry):
    """redis-py's `Retry` with a time budget: connection failures are retried with exponential backoff
    (50 ms doubling to 1 s) until `budget_s` has passed since the command began, however many tries."""

    def __init__(self, budget_s: float) -> None:
        super().__init__(ExponentialBackoff(cap=1.0, base=0.05), retries=-1, supported_errors=_SUPPORTED)
        self.budget_s = budget_s

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        deadline, failures = time.monotonic() + self.budget_s, 0
        backoff = ExponentialBackoff(cap=1.0, base=0.05)
        while True:
            try:
                return do()
            except _SUPPORTED as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                pause = backoff.compute(failures)
                if time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)


def ping(url: str, timeout_s: float = 0.5) -> bool:
    """True when the server at `url` answers PING (authenticating with the URL's password)."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


def redact(url: str) -> str:
    """`url` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def safetensors_summary(blob: bytes | memoryview) -> dict[str, dict[str, Any]]:
    """``{name: {dtype, shape}}`` read from a safetensors header (without decoding the tensors).

    Raises:
        ValueError: `blob` is not a safetensors file.
    """
    header = _header(blob)
    return {
        k: {"dtype": v["dtype"], "shape": list(v["shape"])} for k, v in header.items() if k != "__metadata__"
    }


class Transport:
    """The learner's and the actors' view of one run's shared state in Redis.

    Args:
        url: ``redis://[[user]:password@]host:port/db``.
        run_id: Namespace of every key (``alpagym:{run_id}:...``).
        keep_versions: Weight versions kept in Redis (older blobs are deleted on publish).
        timeout_s: Longest Redis stall ridden out: a reply is awaited this long, and a lost connection
            is retried with backoff for this long, before a call raises `TransportError`.
        secret: The run secret (bytes) weights and rollouts are signed with; b'' signs with an empty key,
            which checks integrity but not origin.

    Raises:
        TransportError: The server cannot be reached (checked with a PING at construction).
    """

    def __init__(self, url: str, run_id: str, keep_versions: int = 3, timeout_s: float = 2.0,
                 secret: bytes = b"") -> None:  # fmt: skip
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1, got {keep_versions}")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]*", run_id):
            raise ValueError(f"redis.run_id={run_id!r}: use letters, digits, '_', '.' and '-' only")
        self.url = url
        self.run_id = run_id
        self.keep_versions = keep_versions
        self.timeout_s = timeout_s
        self._secret = bytes(secret)
        self._prefix = f"alpagym:{run_id}:"
        self._group_ready = False
        self._writer = WeightsWriter()
        try:
            self._r = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout_s,
                socket_timeout=timeout_s,
                socket_read_size=1 << 20,  # weight blobs are MBs: far fewer recv calls than 64 KiB reads
                retry=DeadlineRetry(timeout_s),
                # Sends a large argument (a weight blob, a rollout entry) as its own buffer, uncopied:
                # hiredis' packer copies every command whole, 0.7 ms for a 1 MB blob.
                command_packer=PythonRespSerializer(_PACK_CUTOFF, Encoder("utf-8", "strict", False).encode),
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
        except (redis.ConnectionError, redis.TimeoutError, TimeoutError, ConnectionError) as e:
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

        One MULTI writes the blob and its metadata, drops the versions beyond the last `keep_versions`,
        sets the version key last, so a reader never sees a version whose blob is missing, and
        announces it: three round trips in all (WATCH, ZRANGE of the versions kept, MULTI ... EXEC).

        Args:
            weights: A state dict (torch tensors, on any device, or numpy arrays) or safetensors bytes;
                the blob always holds CPU bytes.
            version: Must not be lower than the latest published version.

        Returns:
            The metadata written: ``{version, mac, nbytes, tensors}``, ``mac`` the MAC of the version
            number and the blob under the run secret (`alpagym_train.wire.mac`).

        Raises:
            ValueError: `version` goes backwards, or the bytes are not safetensors.
            TransportError: Redis is unreachable.
        """
        if isinstance(weights, (bytes, bytearray, memoryview)):
            blob = memoryview(weights).cast("B")
        else:
            blob = self._writer.write(weights)  # valid until the next publish: sent before returning
        meta = {
            "version": int(version),
            "mac": mac(self._secret, b"%d:" % int(version), blob),
            "nbytes": len(blob),
            "tensors": safetensors_summary(blob),
        }
        versions_key, version_key = self.key("weights", "versions"), self.key("weights", "version")
        with self._reach(), self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(versions_key, version_key)  # a concurrent publisher makes EXEC retry
                    kept = {int(v) for v in pipe.zrange(versions_key, 0, -1)}  # the latest is the highest
                    if kept and max(kept) > version:
                        raise ValueError(f"cannot publish weights version {version}: {max(kept)} exists")
                    stale = sorted(kept | {int(version)})[: -self.keep_versions]
                    pipe.multi()
                    pipe.set(self.key("weights", "blob", version), blob)
                    pipe.set(self.key("weights", "meta", version), json.dumps(meta))
                    pipe.zadd(versions_key, {str(version): version})
                    for v in stale:
                        pipe.delete(self.key("weights", "blob", v), self.key("weights", "meta", v))
                        pipe.zrem(versions_key, str(v))
                    pipe.set(version_key, version)
                    pipe.publish(self.hint_channel, version)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
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
            TransportError: The blob fails its MAC (corrupt, or not published with this run's secret) or
                shape check (the message names the version and the problem), or Redis is unreachable.
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
                return version, self._decode_weights(version, blob, meta, expected, framework)
        raise TransportError(f"weights version {version}: blob or metadata missing from Redis")

    def _decode_weights(
        self, version: int, blob: bytes, raw_meta: bytes, expected: Mapping[str, Any] | None, framework: str
    ) -> dict[str, Any]:
        try:
            tag = json.loads(raw_meta)["mac"]
        except (ValueError, KeyError, TypeError) as e:
            raise BadPayload(f"weights version {version}: unreadable metadata ({e})") from None
        problem = mac_problem(self._secret, tag, b"%d:" % version, blob) if isinstance(tag, str) else "no MAC"
        if problem is not None:
            raise BadPayload(
                f"weights version {version}: {problem}; the blob is corrupt or was not published "
                "with this run's secret"
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
                raise BadPayload(f"weights version {version}: shape mismatch ({'; '.join(diff)})")
        return state

    # ---- rollouts ------------------------------------------------------------------------------------

    @property
    def stream(self) -> str:
        return self.key("rollouts")

    def push_group(self, batch: GroupBatch, policy_version: int, actor_id: str) -> str:
        """Appends `batch` (one or more complete groups) as ONE signed stream entry; returns its id.

        The same MULTI adds the groups to the ``pushed_groups`` counter of `actor_id` (see `counts`), so
        the count and the stream never disagree, whenever the actor dies.
        """
        fields_ = encode_group(batch, policy_version, actor_id, self.run_id, self._secret)
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

    def read_groups(self, consumer: str, spec: RolloutSpec, max_version: int, count: int = 1,
                    block_ms: int | None = None) -> tuple[list[ReceivedGroup], list[BadEntry]]:  # fmt: skip
        """Reads up to `count` new entries for `consumer` of the ``learner`` group, validated.

        Entries read stay pending (XPENDING) until `ack`; a consumer that dies before acking loses
        nothing: `claim_pending` hands its entries to another. An entry that fails validation against
        `spec` (see `alpagym_train.wire.decode_group`) is acknowledged and moved to the dead-letter stream
        at once, and returned as a `BadEntry` for the caller to log.

        Args:
            consumer: Consumer name within the group (e.g. ``learner-0``).
            spec: What a valid entry looks like.
            max_version: The reader's weight version; entries claiming a newer one are rejected.
            count: Maximum number of entries.
            block_ms: Wait up to this long for an entry (None: do not wait). Long waits are split into
                short XREADGROUP calls, so a vanished server is still noticed within `timeout_s`.

        Returns:
            The valid entries and the rejected ones.
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
                    return self._validate(entries, spec, max_version)

    def claim_pending(self, consumer: str, min_idle_ms: int, spec: RolloutSpec, max_version: int,
                      count: int = 10) -> tuple[list[ReceivedGroup], list[BadEntry]]:  # fmt: skip
        """Takes over entries read but not acked by any consumer for at least `min_idle_ms` (XAUTOCLAIM),
        validated as `read_groups` does."""
        with self._reach():
            self._ensure_group()
            reply = self._r.xautoclaim(self.stream, CONSUMER_GROUP, consumer, min_idle_ms, count=count)
        return self._validate([(i, f) for i, f in reply[1] if f is not None], spec, max_version)

    def _validate(
        self, entries, spec: RolloutSpec, max_version: int
    ) -> tuple[list[ReceivedGroup], list[BadEntry]]:
        good, bad = [], []
        for raw_id, fields_ in entries:
            entry_id = raw_id.decode()
            try:
                good.append(decode_group(entry_id, fields_, spec, self.run_id, self._secret, max_version))
            except BadEntry as e:
                self._dead_letter(entry_id, fields_, e)
                bad.append(e)
        return good, bad

    @property
    def dead_letters(self) -> str:
        """The stream rejected entries are moved to: ``reason``, ``entry_id``, ``actor``, ``nbytes`` and
        the first 64 KiB of each of the entry's fields (about the last `DEAD_LETTER_MAXLEN` are kept)."""
        return self.key("rollouts", "dead")

    def _dead_letter(self, entry_id: str, fields_: Mapping[bytes, bytes], error: BadEntry) -> None:
        # The first bytes of each field are kept for inspection, not the whole entry: bounded memory.
        record = {k: v[:DEAD_LETTER_FIELD_BYTES] for k, v in fields_.items()}
        record |= {b"reason": error.reason, b"entry_id": entry_id, b"actor": error.actor_id}
        record[b"nbytes"] = sum(len(v) for v in fields_.values())
        with self._reach(), self._r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letters, record, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
            pipe.hincrby(self.key("count", "dead_letters"), error.actor_id or "?", 1)
            pipe.xack(self.stream, CONSUMER_GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            pipe.execute()

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
            keys = self._r.scan_iter(match=_escape(prefix) + "*", count=1000)
            return sorted(k.decode()[len(prefix) :] for k in keys)

    # ---- run control -------------------------------------------------------------------------------

    def publish_spec(self, spec: Mapping[str, Any]) -> None:
        """Writes the run spec actors build their env and policy from (``spec`` key: JSON, then a
        newline and its MAC under the run secret)."""
        body = json.dumps(spec).encode()
        with self._reach():
            self._r.set(self.key("spec"), body + b"\n" + mac(self._secret, body).encode())

    def read_spec(self) -> dict[str, Any] | None:
        """The run spec, None before the learner published it.

        Raises:
            BadPayload: The spec is not signed with the run secret, or unreadable.
        """
        with self._reach():
            raw = self._r.get(self.key("spec"))
        if raw is None:
            return None
        body, _, tag = raw.rpartition(b"\n")
        if (problem := mac_problem(self._secret, tag, body)) is not None:
            raise BadPayload(
                f"run {self.run_id!r}: the run spec is not signed with this run's secret ({problem})"
            )
        return json.loads(body)

    def runs(self) -> list[str]:
        """Ids of the live runs on this server: those whose learner holds its lease."""
        with self._reach():
            keys = self._r.scan_iter(match="alpagym:*:learner", count=1000)
            return sorted(k.decode()[len("alpagym:") : -len(":learner")] for k in keys)

    def claim_lease(self, owner: str, ttl_s: float) -> str | None:
        """Takes the run's learner lease for `owner` unless another owner holds it.

        Returns:
            None when `owner` now holds the lease, else the other owner's token.
        """
        with self._reach():
            if self._r.set(self.key("learner"), owner, nx=True, px=max(1, int(ttl_s * 1000))):
                return None
            holder = self._r.get(self.key("learner"))
        if holder is None:  # expired in between
            return self.claim_lease(owner, ttl_s)
        holder = holder.decode()
        if holder == owner:
            self.renew_lease(owner, ttl_s)
            return None
        return holder

    def lease_holder(self) -> str | None:
        """The owner token of the run's learner lease, None when no learner holds it."""
        with self._reach():
            raw = self._r.get(self.key("learner"))
        return None if raw is None else raw.decode()

    def renew_lease(self, owner: str, ttl_s: float) -> None:
        """Extends the learner lease of `owner` by `ttl_s` from now."""
        with self._reach():
            self._r.set(self.key("learner"), owner, px=max(1, int(ttl_s * 1000)))

    def release_lease(self, owner: str) -> None:
        """Gives the lease up if `owner` holds it (the run is no longer live)."""
        with self._reach():
            if self._r.get(self.key("learner")) == owner.encode():
                self._r.delete(self.key("learner"))

    def has_keys(self) -> bool:
        """True when any key of this run's namespace exists (an earlier run left them)."""
        with self._reach():
            return next(self._r.scan_iter(match=self._match_all(), count=1000), None) is not None

    def clear(self) -> int:
        """Deletes every key of this run's namespace; returns how many."""
        with self._reach():
            keys = list(self._r.scan_iter(match=self._match_all(), count=1000))
            if keys:
                self._r.delete(*keys)
        self._group_ready = False
        return len(keys)

    def _match_all(self) -> str:
        return _escape(self._prefix) + "*"

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


def _escape(prefix: str) -> str:
    """`prefix` with the glob characters of a SCAN pattern escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix)


def weight_sync_latency(sizes_mb=(0.1, 1.0, 10.0), repeats: int = 20) -> list[dict[str, float]]:
    """Median publish and fetch times of float32 weights of each size, on a private redis-server.

    Returns:
        One ``{"mb", "publish_ms", "fetch_ms", "total_ms"}`` per size.
    """
    import torch

    from alpagym_train.redis_server import RedisServer

    rows = []
    with RedisServer() as server:
        t = Transport(server.url, run_id="latency", secret=b"\x01" * 32)
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
