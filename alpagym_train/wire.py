"""What travels through Redis, and the checks it passes where it enters: rollout entries and MACs.

A rollout stream entry has three fields:

- ``actor``: the pushing actor's id (also inside the signed data; kept apart so that a dead-letter
  record can name the sender of an entry too broken to parse);
- ``data``: safetensors bytes of the `GroupBatch` arrays, with ``__metadata__`` ``{format, run_id,
  actor_id, policy_version, sent_at}``; the (N, G, T, ...) arrays stop after the longest rollout's
  last step (what follows is padding: a few times fewer bytes than the horizon's T to sign, send and
  check), and `decode_group` pads them back to the horizon;
- ``mac``: the MAC of ``data`` under the run secret (`mac`).

Every MAC of the trainer (rollout entries, weight blobs, the run spec) is made here: keyed BLAKE3 (the
`blake3` package, one thread) under a 32-byte key derived from the run secret with BLAKE3's own
``derive_key`` mode, written ``blake3:<64 hex digits>``. On 1 MB it takes 0.12 ms where HMAC-SHA256
takes 0.49 ms (SHA-NI) and keyed BLAKE2b 0.90 ms, so it is a small part of a weight sync. An untagged
64-hex-digit MAC is the HMAC-SHA256 of wire format 3 and earlier: rejected, and said so.

`decode_group` checks an entry against the run's `RolloutSpec` before anything uses it: size, MAC,
format, run id, array names, dtypes and shapes, finite values, a 0/1 mask and terminal flag, scenario
ids in range and a policy version no newer than the learner's. It raises `BadEntry` naming the first
problem; the transport moves such an entry to the dead-letter stream. Never pickle: a peer can send
data, not code.
"""

from __future__ import annotations

import functools
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import blake3
import numpy as np

from alpagym_train.rollout import GroupBatch

WIRE_FORMAT = 5  # 3: GroupBatch.terminated; 4: keyed-BLAKE3 MACs (were HMAC-SHA256); 5: T trimmed
MAC_SCHEME = "blake3"
_KEY_CONTEXT = "AlpaGym 2026 run secret: MAC key of weights, rollout entries and run specs"
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
        max_steps: The env's horizon: an entry's T is at most this, and decoding pads it to this.
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


@functools.lru_cache(maxsize=16)
def mac_key(secret: bytes) -> bytes:
    """The 32-byte BLAKE3 key of a run secret of any length (BLAKE3's key-derivation mode)."""
    return blake3.blake3(secret, derive_key_context=_KEY_CONTEXT).digest()


def mac(secret: bytes, *parts: bytes | memoryview) -> str:
    """``blake3:`` and the hex keyed BLAKE3 of the concatenated `parts` under `secret` (the run secret;
    b'' gives an integrity check only). The parts are hashed in turn, never copied into one buffer."""
    h = blake3.blake3(key=mac_key(bytes(secret)))
    for p in parts:
        h.update(p)
    return f"{MAC_SCHEME}:{h.hexdigest()}"


def mac_problem(secret: bytes, tag: bytes | str, *parts: bytes | memoryview) -> str | None:
    """None when `tag` is the MAC of `parts` under `secret` (constant-time comparison), else what is
    wrong, starting with "MAC mismatch"."""
    tag = tag.decode("ascii", "replace") if isinstance(tag, bytes) else str(tag)
    if hmac.compare_digest(mac(secret, *parts), tag):
        return None
    if re.fullmatch(r"[0-9a-f]{64}", tag):
        return (
            "MAC mismatch (an HMAC-SHA256 tag of wire format 3 or earlier, where this AlpaGym signs with "
            f"keyed BLAKE3, wire format {WIRE_FORMAT}: run one AlpaGym version on every machine)"
        )
    return "MAC mismatch"


def safetensors_header(blob: bytes | memoryview) -> dict[str, Any]:
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
        header = json.loads(bytes(blob[8 : 8 + n]))
    except ValueError as e:
        raise ValueError(f"not a safetensors blob: unreadable header ({e})") from e
    if not isinstance(header, dict):
        raise ValueError("not a safetensors blob: the header is not a JSON object")
    return header


_SAFETENSORS_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8",
    "bool": "BOOL",
}  # fmt: skip


def _raw_bytes(name: str, value: Any) -> tuple[str, list[int], int, np.ndarray]:
    """Safetensors dtype, shape, element size and a flat uint8 view of the bytes of a tensor or array
    (of a CPU copy of a tensor on another device: weights always leave as CPU bytes)."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        dtype, itemsize, flat = str(array.dtype), array.itemsize, array.reshape(-1).view(np.uint8)
    else:
        import torch  # a tensor was passed: torch is loaded already

        tensor = value.detach().cpu().contiguous()
        dtype, itemsize = str(tensor.dtype).removeprefix("torch."), tensor.element_size()
        flat = tensor.reshape(-1).view(torch.uint8).numpy()
    if dtype not in _SAFETENSORS_DTYPES:
        raise ValueError(f"weight {name!r}: dtype {dtype} cannot be sent (safetensors dtypes only)")
    return _SAFETENSORS_DTYPES[dtype], list(value.shape), itemsize, flat


class WeightsWriter:
    """Writes state dicts as safetensors bytes into one buffer that it keeps and reuses.

    One copy of each tensor into a buffer whose pages are already mapped: `safetensors.torch.save`
    copies twice into fresh buffers, and on 1 MB the page faults of a fresh buffer cost more than
    the copy. The bytes are standard safetensors (tensors ordered by element size, then name, so each
    lies aligned; the header padded to 8 bytes), read back with `safetensors.torch.load`.
    """

    def __init__(self) -> None:
        self._buffer = np.empty(0, np.uint8)

    def write(self, state: Mapping[str, Any]) -> memoryview:
        """Safetensors bytes of `state` (torch tensors or numpy arrays by name).

        Returns:
            A view of the writer's buffer, valid until the next `write`.

        Raises:
            ValueError: A dtype safetensors does not know.
        """
        raw = {k: _raw_bytes(k, v) for k, v in state.items()}
        names = sorted(raw, key=lambda k: (-raw[k][2], k))
        header, offset = {}, 0
        for k in names:
            dtype, shape, _, flat = raw[k]
            header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + flat.size]}
            offset += flat.size
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        start = 8 + len(text)
        if self._buffer.size < start + offset:
            self._buffer = np.empty(start + offset, np.uint8)
        out = self._buffer[: start + offset]
        out[:8] = np.frombuffer(len(text).to_bytes(8, "little"), np.uint8)
        out[8:start] = np.frombuffer(text, np.uint8)
        for k in names:
            begin, end = header[k]["data_offsets"]
            out[start + begin : start + end] = raw[k][3]
        return memoryview(out)


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
    real = np.flatnonzero(batch.mask.reshape(-1, batch.mask.shape[-1]).any(0))
    t = int(real[-1]) + 1 if real.size else 1  # the last real step of any rollout: the rest is padding
    arrays = {n: getattr(batch, n) for n in _ARRAYS}
    data = save({n: np.ascontiguousarray(a[:, :, :t] if a.ndim >= 3 else a) for n, a in arrays.items()},
                metadata=meta)  # fmt: skip
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


def _padded(array: np.ndarray, steps: int) -> np.ndarray:
    """A copy of `array`, its T axis (the third of an (N, G, T, ...) array) zero-padded to `steps`."""
    if array.ndim < 3:
        return np.array(array)
    out = np.zeros((*array.shape[:2], steps, *array.shape[3:]), array.dtype)
    out[:, :, : array.shape[2]] = array
    return out


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
    if (problem := mac_problem(secret, entry[b"mac"], data)) is not None:
        raise BadEntry(f"{problem}: not signed with this run's secret", actor)
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
    batch = GroupBatch(**{k: _padded(v, spec.max_steps) for k, v in arrays.items()}, policy_version=version)
    return ReceivedGroup(entry_id, batch, actor, sent_at)
