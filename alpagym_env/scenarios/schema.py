"""The `Scenario` data model and its versioned on-disk format.

A scenario is a frozen bundle of read-only numpy arrays: the road graph, every agent's log, the ego's
route and the traffic-light schedule. Units are SI, world frame x/y in metres, heading in radians
counter-clockwise from +x, time step `dt` seconds (0.1 s, 10 Hz).

On disk a scenario is one `.npz` file holding every field below plus `format` and `schema_version`;
a suite is one `.npz` holding many scenarios packed side by side (see `save_suite`). A file that is
not a valid scenario raises `ScenarioError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from dataclasses import dataclass

import numpy as np

FORMAT_NAME = "alpagym.scenario"
SUITE_FORMAT_NAME = "alpagym.suite"
SCHEMA_VERSION = 1

# Traffic-light states, as stored in `Scenario.light_states`.
LIGHT_UNKNOWN, LIGHT_GREEN, LIGHT_YELLOW, LIGHT_RED = 0, 1, 2, 3
# Agent types, as stored in `Scenario.agent_type` (AGENT_STATIC: barriers, cones and other objects that
# never move; imported logs keep them as agents so they collide, but they are not vehicles).
AGENT_VEHICLE, AGENT_PEDESTRIAN, AGENT_CYCLIST, AGENT_STATIC = 0, 1, 2, 3
AGENT_TYPE_NAMES = ("vehicle", "pedestrian", "cyclist", "static")
# Columns of `Scenario.traj`.
LOG_X, LOG_Y, LOG_HEADING, LOG_VX, LOG_VY = 0, 1, 2, 3, 4


class ScenarioError(ValueError):
    """A scenario (in memory or on disk) is malformed; the message names the file and field."""


@dataclass(frozen=True, eq=False)
class Scenario:
    """One driving scene: road graph, agent logs, ego route and traffic lights.

    Polylines are stored flat with CSR offsets: polyline `i` is `xy[offsets[i]:offsets[i + 1]]`.

    Attributes:
        scenario_id: Unique name, e.g. ``"highway-000042"``.
        family: Generator family or importer name (``"highway"``, ``"scenarionet"``, ...).
        source: Where it came from, e.g. ``"procedural:highway:seed=42"`` or a file name.
        dt: Log time step in seconds.
        lane_xy: (P, 2) float64 lane-centre polyline points, metres.
        lane_offsets: (L + 1,) int64 CSR offsets into `lane_xy`.
        lane_width: (L,) float64 lane widths, metres.
        lane_successors: (L, 4) int64 successor lane indices, -1 padded.
        lane_speed_limit: (L,) float64 speed limits, m/s.
        edge_xy: (Q, 2) float64 road-edge polyline points, metres. Each edge is directed so that the
            drivable area lies on its LEFT.
        edge_offsets: (E + 1,) int64 CSR offsets into `edge_xy`.
        stop_lines: (S, 4) float64 stop-line segments ``[x0, y0, x1, y1]``, metres.
        stop_light: (S,) int64 index of the light (row of `light_states`) that governs each stop line.
        light_states: (K, T) int8 light state per log step (LIGHT_* constants).
        traj: (N, T, 5) float64 agent logs ``[x, y, heading, vx, vy]`` (world-frame velocity, m/s).
        valid: (N, T) bool, whether the agent exists at each step.
        length: (N,) float64 box lengths, metres.
        width: (N,) float64 box widths, metres.
        agent_type: (N,) int8 AGENT_* constants.
        ego_index: Row of `traj` that is the ego vehicle.
        route_xy: (R, 2) float64 ego route polyline, starting at or behind the ego's first logged
            position and extending beyond its last one, metres.
    """

    scenario_id: str
    family: str
    source: str
    dt: float
    lane_xy: np.ndarray
    lane_offsets: np.ndarray
    lane_width: np.ndarray
    lane_successors: np.ndarray
    lane_speed_limit: np.ndarray
    edge_xy: np.ndarray
    edge_offsets: np.ndarray
    stop_lines: np.ndarray
    stop_light: np.ndarray
    light_states: np.ndarray
    traj: np.ndarray
    valid: np.ndarray
    length: np.ndarray
    width: np.ndarray
    agent_type: np.ndarray
    ego_index: int
    route_xy: np.ndarray

    def __post_init__(self) -> None:
        validate(self)
        for f in ARRAY_FIELDS:
            getattr(self, f).flags.writeable = False

    @property
    def num_agents(self) -> int:
        return self.traj.shape[0]

    @property
    def num_steps(self) -> int:
        return self.traj.shape[1]

    @property
    def num_lanes(self) -> int:
        return self.lane_offsets.shape[0] - 1

    @property
    def num_lights(self) -> int:
        return self.light_states.shape[0]

    def lane(self, i: int) -> np.ndarray:
        """(P_i, 2) centre polyline of lane `i`."""
        return self.lane_xy[self.lane_offsets[i] : self.lane_offsets[i + 1]]

    def edge(self, i: int) -> np.ndarray:
        """(Q_i, 2) road-edge polyline `i`, drivable area on its left."""
        return self.edge_xy[self.edge_offsets[i] : self.edge_offsets[i + 1]]

    def edge_segments(self) -> np.ndarray:
        """(E_seg, 4) all road-edge segments ``[x0, y0, x1, y1]``, drivable area on their left."""
        return _segments(self.edge_xy, self.edge_offsets)

    def lane_segments(self) -> np.ndarray:
        """(L_seg, 5) all lane-centre segments ``[x0, y0, x1, y1, half_width]``."""
        seg = _segments(self.lane_xy, self.lane_offsets)
        counts = np.maximum(np.diff(self.lane_offsets) - 1, 0)
        half = np.repeat(self.lane_width * 0.5, counts)
        return np.concatenate([seg, half[:, None]], axis=1)


def _segments(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    starts, ends = offsets[:-1], offsets[1:]
    idx = np.concatenate([np.arange(s, e - 1) for s, e in zip(starts, ends, strict=True)] or [[]])
    idx = idx.astype(np.int64)
    return np.concatenate([xy[idx], xy[idx + 1]], axis=1) if idx.size else np.zeros((0, 4))


# field name -> (dtype kind, ndim); shapes are cross-checked in `validate`.
_SPEC: dict[str, tuple[type, int]] = {
    "lane_xy": (np.float64, 2),
    "lane_offsets": (np.int64, 1),
    "lane_width": (np.float64, 1),
    "lane_successors": (np.int64, 2),
    "lane_speed_limit": (np.float64, 1),
    "edge_xy": (np.float64, 2),
    "edge_offsets": (np.int64, 1),
    "stop_lines": (np.float64, 2),
    "stop_light": (np.int64, 1),
    "light_states": (np.int8, 2),
    "traj": (np.float64, 3),
    "valid": (np.bool_, 2),
    "length": (np.float64, 1),
    "width": (np.float64, 1),
    "agent_type": (np.int8, 1),
    "route_xy": (np.float64, 2),
}
ARRAY_FIELDS = tuple(_SPEC)
SCALAR_FIELDS = ("scenario_id", "family", "source", "dt", "ego_index")


def make_scenario(**fields) -> Scenario:
    """Builds a `Scenario`, casting arrays to the schema's dtypes; raises `ScenarioError` on bad input."""
    unknown = set(fields) - set(ARRAY_FIELDS) - set(SCALAR_FIELDS)
    if unknown:
        raise ScenarioError(f"unknown scenario fields {sorted(unknown)}")
    missing = (set(ARRAY_FIELDS) | set(SCALAR_FIELDS)) - set(fields)
    if missing:
        raise ScenarioError(f"missing scenario fields {sorted(missing)}")
    out = {}
    for name, value in fields.items():
        if name in _SPEC:
            try:
                out[name] = np.ascontiguousarray(value, dtype=_SPEC[name][0])
            except (TypeError, ValueError) as e:
                raise ScenarioError(f"field '{name}' cannot be read as {_SPEC[name][0].__name__}: {e}") from e
        else:
            out[name] = value
    out["dt"] = float(out["dt"])
    out["ego_index"] = int(out["ego_index"])
    for name in ("scenario_id", "family", "source"):
        out[name] = str(out[name])
    return Scenario(**out)


def _fail(where: str, field: str, msg: str) -> None:
    raise ScenarioError(f"{where}field '{field}': {msg}")


def validate(s: Scenario, where: str = "") -> None:
    """Checks dtypes, shapes, cross-references and finiteness; raises `ScenarioError` naming the field."""
    where = f"{where}: " if where else ""
    for name, (dtype, ndim) in _SPEC.items():
        a = getattr(s, name)
        if not isinstance(a, np.ndarray):
            _fail(where, name, f"expected a numpy array, got {type(a).__name__}")
        if a.dtype != dtype:
            _fail(where, name, f"dtype {a.dtype}, expected {np.dtype(dtype)}")
        if a.ndim != ndim:
            _fail(where, name, f"shape {a.shape}, expected {ndim} dimensions")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            _fail(where, name, "contains NaN or inf")
    if not (np.isfinite(s.dt) and s.dt > 0):
        _fail(where, "dt", f"must be a positive number of seconds, got {s.dt}")
    n, t = s.traj.shape[:2]
    if s.traj.shape[2] != 5:
        _fail(where, "traj", f"shape {s.traj.shape}, expected (N, T, 5) [x, y, heading, vx, vy]")
    if n < 1 or t < 2:
        _fail(where, "traj", f"shape {s.traj.shape}: need at least one agent and two steps")
    for name in ("length", "width", "agent_type"):
        if getattr(s, name).shape != (n,):
            _fail(where, name, f"shape {getattr(s, name).shape}, expected ({n},) to match traj")
    if s.valid.shape != (n, t):
        _fail(where, "valid", f"shape {s.valid.shape}, expected ({n}, {t}) to match traj")
    if np.any(s.length <= 0) or np.any(s.width <= 0):
        _fail(where, "length" if np.any(s.length <= 0) else "width", "box sizes must be positive")
    if not 0 <= s.ego_index < n:
        _fail(where, "ego_index", f"{s.ego_index} is out of range for {n} agents")
    if not s.valid[s.ego_index, 0]:
        _fail(where, "valid", f"ego (agent {s.ego_index}) must be valid at step 0")
    for xy, off, kind in (("lane_xy", "lane_offsets", "lane"), ("edge_xy", "edge_offsets", "edge")):
        pts, offsets = getattr(s, xy), getattr(s, off)
        if pts.shape[1:] != (2,):
            _fail(where, xy, f"shape {pts.shape}, expected (P, 2)")
        if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != len(pts) or np.any(np.diff(offsets) < 0):
            _fail(where, off, f"must rise from 0 to {len(pts)} (CSR offsets of each {kind} polyline)")
    num_lanes = s.lane_offsets.size - 1
    for name in ("lane_width", "lane_speed_limit"):
        if getattr(s, name).shape != (num_lanes,):
            _fail(where, name, f"shape {getattr(s, name).shape}, expected ({num_lanes},)")
    if s.lane_successors.shape != (num_lanes, 4):
        _fail(where, "lane_successors", f"shape {s.lane_successors.shape}, expected ({num_lanes}, 4)")
    if np.any((s.lane_successors < -1) | (s.lane_successors >= num_lanes)):
        _fail(where, "lane_successors", "holds a lane index out of range")
    k = s.light_states.shape[0]
    if k and s.light_states.shape[1] != t:
        _fail(where, "light_states", f"shape {s.light_states.shape}, expected ({k}, {t})")
    if np.any((s.light_states < 0) | (s.light_states > LIGHT_RED)):
        _fail(where, "light_states", "values must be LIGHT_UNKNOWN..LIGHT_RED (0..3)")
    if s.stop_lines.shape[1:] != (4,) or s.stop_light.shape != (s.stop_lines.shape[0],):
        _fail(where, "stop_lines", f"shape {s.stop_lines.shape} with stop_light {s.stop_light.shape}")
    if np.any((s.stop_light < 0) | (s.stop_light >= max(k, 1))) and s.stop_light.size:
        _fail(where, "stop_light", f"refers to a light outside 0..{k - 1}")
    if s.route_xy.ndim != 2 or s.route_xy.shape[1] != 2 or s.route_xy.shape[0] < 2:
        _fail(where, "route_xy", f"shape {s.route_xy.shape}, expected (R >= 2, 2)")


# ----------------------------------------------------------------------------------------------- I/O


def _to_record(s: Scenario) -> dict[str, np.ndarray]:
    rec = {name: getattr(s, name) for name in ARRAY_FIELDS}
    rec["scenario_id"] = np.array(s.scenario_id)
    rec["family"] = np.array(s.family)
    rec["source"] = np.array(s.source)
    rec["dt"] = np.array(s.dt)
    rec["ego_index"] = np.array(s.ego_index)
    return rec


def _from_record(get, where: str) -> Scenario:
    fields = {}
    for name in ARRAY_FIELDS + SCALAR_FIELDS:
        try:
            value = get(name)
        except KeyError:
            raise ScenarioError(f"{where}: missing field '{name}'") from None
        fields[name] = value.item() if name in SCALAR_FIELDS else value
    try:
        return make_scenario(**fields)
    except ScenarioError as e:
        raise ScenarioError(f"{where}: {e}") from None


def _open_npz(path: str | os.PathLike, fmt: str):
    where = os.fspath(path)
    try:
        data = np.load(where, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ScenarioError(f"{where}: not a readable .npz file ({e})") from None
    try:
        found_fmt = str(data["format"].item()) if "format" in data else None
        version = int(data["schema_version"].item()) if "schema_version" in data else None
    except (ValueError, zipfile.BadZipFile, OSError) as e:
        raise ScenarioError(f"{where}: field 'format' is unreadable ({e})") from None
    if found_fmt != fmt:
        raise ScenarioError(f"{where}: field 'format' is {found_fmt!r}, expected {fmt!r}")
    if version != SCHEMA_VERSION:
        raise ScenarioError(
            f"{where}: field 'schema_version' is {version}, this AlpaGym reads {SCHEMA_VERSION}"
        )
    return data


def _safe_get(data, where: str):
    def get(key: str) -> np.ndarray:
        if key not in data:
            raise KeyError(key)
        try:
            return data[key]
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise ScenarioError(f"{where}: field '{key}' is unreadable ({e})") from None

    return get


def save_scenario(path: str | os.PathLike, s: Scenario) -> None:
    """Writes one scenario as a compressed `.npz` file."""
    np.savez_compressed(
        path, format=np.array(FORMAT_NAME), schema_version=np.array(SCHEMA_VERSION), **_to_record(s)
    )


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Reads and validates one scenario file; raises `ScenarioError` naming the file and field."""
    where = os.fspath(path)
    with _open_npz(path, FORMAT_NAME) as data:
        return _from_record(_safe_get(data, where), where)


def save_suite(path: str | os.PathLike, scenarios: list[Scenario]) -> None:
    """Packs many scenarios into one `.npz`: scenario `i`'s field `f` is stored under key ``"{i}/{f}"``."""
    arrays: dict[str, np.ndarray] = {"format": np.array(SUITE_FORMAT_NAME)}
    arrays["schema_version"] = np.array(SCHEMA_VERSION)
    arrays["count"] = np.array(len(scenarios))
    for i, s in enumerate(scenarios):
        for key, value in _to_record(s).items():
            arrays[f"{i}/{key}"] = value
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_suite(path: str | os.PathLike) -> list[Scenario]:
    """Reads a packed suite file written by `save_suite`."""
    where = os.fspath(path)
    with _open_npz(path, SUITE_FORMAT_NAME) as data:
        get = _safe_get(data, where)
        count = int(get("count").item())
        return [_from_record(lambda k, i=i: get(f"{i}/{k}"), f"{where} [scenario {i}]") for i in range(count)]


def replace(s: Scenario, **changes) -> Scenario:
    """A copy of `s` with some fields changed (validated again)."""
    return dataclasses.replace(s, **changes)
