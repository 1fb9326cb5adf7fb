"""What travels through Redis, and the checks it passes where it enters: rollout entries and MACs.

A rollout stream entry has three fields:

- ``actor``: the pushing actor's id (also inside the signed data; kept apart so that a dead-letter
  record can name the sender of an entry too broken to parse);
- ``data``: safetensors bytes of the `GroupBatch` arrays, with ``__metadata__`` ``{format, run_id,
  actor_id, policy_version, sent_at}``;
- ``mac``: HMAC-SHA256 of ``data`` under the run secret (SHA-NI makes it the fastest keyed hash here).

`decode_group` checks an entry against the run's `RolloutSpec` before anything uses it: size, MAC,
format, run id, array names, dtypes and shapes, finite values, a 0/1 mask and terminal flag, scenario
ids in range and a policy version no newer than the learner's. It raises `BadEntry` naming the first
problem; the transport moves such an entry to the dead-letter stream. Never pickle: a peer can send
data, not code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from alpagym_train.rollout import GroupBatch

WIRE_FORMAT = 3  # 3: GroupBatch.terminated
_FLOATS = ("obs", "u", "logp", "rewards", "mask", "scene_score")
_ARRAYS = tuple(f.name for f in fields(GroupBatch) if f.name != "policy_version")


class BadEntry(ValueError):
    """A stream entry failed validation.

    Attributes:
        reason: What is wrong, in words.
        actor_id: The actor the entry claims to come from ('' when unreadable).
    """

    def __init__(self, reason: str, actor_id: str = "") -> None:
        super().__init__(reason)
        self.reason, self.actor_id = reason, actor_id


@dataclass(frozen=True)
class RolloutSpec:
    """What a valid rollout entry of a run looks like.

    Attributes:
        obs_dim: D, observation size.
        act_dim: A, action size.
        group_size: G, rollouts per group.
        max_steps: Upper bound of T, the padded rollout length (the env's horizon).
        num_scenarios: Scenario ids must lie in [0, num_scenarios).
        max_groups: Upper bound of N, groups per entry.
    """

    obs_dim: int
    act_dim: int
    group_size: int
    max_steps: int
    num_scenarios: int
    max_groups: int = 64

    @property
    def max_bytes(self) -> int:
        """Upper bound of an entry's ``data`` size: `max_groups` full groups plus 64 KiB of header."""
        per_group = self.group_size * (self.max_steps * (self.obs_dim + self.act_dim + 3) + 2) * 4 + 8
        return self.max_groups * per_group + (64 << 10)


@dataclass
class ReceivedGroup:
    """One stream entry, decoded and validated.

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


def mac(secret: bytes, *parts: bytes | memoryview) -> str:
    """Hex HMAC-SHA256 of the concatenated `parts` under `secret` (the run secret; b'' gives an
    integrity check only). The parts are hashed in turn, never copied into one buffer."""
    h = hmac.new(secret, digestmod=hashlib.sha256)
    for p in parts:
        h.update(p)
    return h.hexdigest()


def verify(secret: bytes, tag: bytes | str, *parts: bytes | memoryview) -> bool:
    """True when `tag` is the MAC of `parts` under `secret` (constant-time comparison)."""
    tag = tag.decode("ascii", "replace") if isinstance(tag, bytes) else tag
    return hmac.compare_digest(mac(secret, *parts), tag)


def safetensors_header(blob: bytes) -> dict[str, Any]:
    """The JSON header of a safetensors blob (tensor entries and ``__metadata__``), without the tensors.

    Raises:
        ValueError: `blob` is not a safetensors file.
    """
    if len(blob) < 8:
        raise ValueError(f"not a safetensors blob ({len(blob)} bytes)")
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise ValueError(f"not a safetensors blob: header of {n} bytes in {len(blob)}")
    try:
        header = json.loads(blob[8 : 8 + n])
    except ValueError as e:
        raise ValueError(f"not a safetensors blob: unreadable header ({e})") from e
    if not isinstance(header, dict):
        raise ValueError("not a safetensors blob: the header is not a JSON object")
    return header


def encode_group(batch: GroupBatch, policy_version: int, actor_id: str, run_id: str,
                 secret: bytes) -> dict[str, bytes]:  # fmt: skip
    """The stream entry fields of `batch` (see the module docstring)."""
    from safetensors.numpy import save

    meta = {
        "format": str(WIRE_FORMAT),
        "run_id": run_id,
        "actor_id": actor_id,
        "policy_version": str(int(policy_version)),
        "sent_at": repr(time.time()),
    }
    data = save({n: np.ascontiguousarray(getattr(batch, n)) for n in _ARRAYS}, metadata=meta)
    return {"actor": actor_id.encode(), "data": data, "mac": mac(secret, data).encode()}


def _shapes(spec: RolloutSpec, n: int, t: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    g = spec.group_size
    ngt = (n, g, t)
    return {
        "obs": ("F32", (*ngt, spec.obs_dim)),
        "u": ("F32", (*ngt, spec.act_dim)),
        "logp": ("F32", ngt),
        "rewards": ("F32", ngt),
        "mask": ("F32", ngt),
        "scene_score": ("F32", (n, g)),
        "scenario_ids": ("I64", (n,)),
        "terminated": ("F32", (n, g)),
    }


def decode_group(entry_id: str, entry: Mapping[bytes, bytes], spec: RolloutSpec, run_id: str,
                 secret: bytes, max_version: int) -> ReceivedGroup:  # fmt: skip
    """Validates and decodes one stream entry (inverse of `encode_group`).

    Args:
        entry_id: The stream entry id.
        entry: Its fields.
        spec: The shapes and limits of the run.
        run_id: The run the entry must belong to.
        secret: The run secret its MAC must be made with.
        max_version: The learner's current weight version; a newer behaviour version is a lie.

    Raises:
        BadEntry: The first problem found (the message names it; ``actor_id`` the claimed sender).
    """
    actor = entry.get(b"actor", b"").decode("utf-8", "replace")[:200]
    if set(entry) != {b"actor", b"data", b"mac"}:
        raise BadEntry(
            f"fields {sorted(k.decode('utf-8', 'replace') for k in entry)} != actor, data, mac", actor
        )
    data = entry[b"data"]
    if len(data) > spec.max_bytes:
        raise BadEntry(f"{len(data)} bytes > the limit of {spec.max_bytes}", actor)
    if not verify(secret, entry[b"mac"], data):
        raise BadEntry("MAC mismatch: not signed with this run's secret", actor)
    try:
        header = safetensors_header(data)
        meta = header.pop("__metadata__", None) or {}
        if meta.get("format") != str(WIRE_FORMAT):
            raise BadEntry(f"wire format {meta.get('format')!r} != {WIRE_FORMAT}", actor)
        if meta.get("run_id") != run_id or meta.get("actor_id") != actor:
            raise BadEntry(
                f"run {meta.get('run_id')!r}, actor {meta.get('actor_id')!r}: not this run's entry", actor
            )
        version = int(meta["policy_version"])
        sent_at = float(meta["sent_at"])
        if set(header) != set(_ARRAYS):
            raise BadEntry(f"arrays {sorted(header)} != {sorted(_ARRAYS)}", actor)
        n, t = header["scenario_ids"]["shape"][0], header["obs"]["shape"][2]
    except BadEntry:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise BadEntry(f"unreadable header: {type(e).__name__}: {e}", actor) from None
    if not 0 <= version <= max_version:
        raise BadEntry(f"policy_version {version} outside [0, {max_version}] (the learner's version)", actor)
    if not (1 <= n <= spec.max_groups and 1 <= t <= spec.max_steps):
        raise BadEntry(
            f"{n} groups of {t} steps: outside [1, {spec.max_groups}] x [1, {spec.max_steps}]", actor
        )
    for name, (dtype, shape) in _shapes(spec, n, t).items():
        got = (header[name].get("dtype"), tuple(header[name].get("shape", ())))
        if got != (dtype, shape):
            raise BadEntry(f"array {name!r} is {got[0]}{list(got[1])}, expected {dtype}{list(shape)}", actor)
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(data)
    except SafetensorError as e:
        raise BadEntry(f"unreadable tensors: {e}", actor) from None
    for name in _FLOATS:
        if not np.isfinite(arrays[name]).all():
            raise BadEntry(f"array {name!r} holds NaN or inf", actor)
    for name in ("mask", "terminated"):
        if not np.isin(arrays[name], (0.0, 1.0)).all():
            raise BadEntry(f"array {name!r} holds values other than 0 and 1", actor)
    ids = arrays["scenario_ids"]
    if ids.min() < 0 or ids.max() >= spec.num_scenarios:
        raise BadEntry(f"scenario ids outside [0, {spec.num_scenarios})", actor)
    batch = GroupBatch(**{k: np.array(v) for k, v in arrays.items()}, policy_version=version)
    return ReceivedGroup(entry_id, batch, actor, sent_at)
