"""ScenarioNet / MetaDrive scenario description (``.pkl``) -> `Scenario`.

The format (MetaDrive's ``ScenarioDescription``, stored as a pickled plain dict) has

- ``id``, ``version``, ``length`` (T);
- ``metadata``: ``ts`` (T,) timestamps in seconds, ``sdc_id`` (the ego's key in ``tracks``), optional
  ``dataset`` and ``scenario_id``;
- ``tracks``: ``{id: {"type": "VEHICLE" | "PEDESTRIAN" | "CYCLIST" | ..., "state": {"position" (T, 2|3),
  "heading" (T,), "velocity" (T, 2), "valid" (T,), "length", "width" (T,) or (T, 1) or scalars},
  "metadata": {...}}}``;
- ``map_features``: ``{id: {"type": ..., "polyline" (P, 2|3), ...}}``; lanes are the ``LANE_*`` types
  (with optional ``width``, ``speed_limit_kmh``/``speed_limit_mph`` and ``exit_lanes``), road edges the
  ``ROAD_EDGE_*`` and ``BOUNDARY_*`` types; other features (road lines, crosswalks, ...) are ignored;
- ``dynamic_map_states``: ``{id: {"type": "TRAFFIC_LIGHT", "state": {"object_state": [str] * T},
  "lane": lane id, "stop_point": (2|3,)}}`` with Waymo's ``LANE_STATE_*`` or MetaDrive's
  ``TRAFFIC_LIGHT_*`` state names.

Only plain containers and numpy arrays are unpickled (a restricted unpickler refuses anything else), so a
file cannot run code when loaded. Malformed files raise `ScenarioError` naming the file and field.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import numpy as np

from alpagym_env.scenarios.importers.common import (
    DEFAULT_LANE_WIDTH,
    DEFAULT_SPEED_LIMIT,
    Lane,
    Light,
    Track,
    build_scenario,
)
from alpagym_env.scenarios.schema import (
    AGENT_CYCLIST,
    AGENT_PEDESTRIAN,
    AGENT_VEHICLE,
    LIGHT_GREEN,
    LIGHT_RED,
    LIGHT_UNKNOWN,
    LIGHT_YELLOW,
    Scenario,
    ScenarioError,
)

AGENT_TYPES = {"VEHICLE": AGENT_VEHICLE, "PEDESTRIAN": AGENT_PEDESTRIAN, "CYCLIST": AGENT_CYCLIST}
DEFAULT_SIZE = {AGENT_VEHICLE: (4.5, 2.0), AGENT_PEDESTRIAN: (0.8, 0.8), AGENT_CYCLIST: (1.8, 0.8)}


def light_state(name: str) -> int:
    """LIGHT_* of a Waymo ``LANE_STATE_*`` / MetaDrive ``TRAFFIC_LIGHT_*`` / GPUDrive lower-case name."""
    n = str(name).upper()
    if "STOP" in n or "RED" in n:
        return LIGHT_RED
    if "CAUTION" in n or "YELLOW" in n:
        return LIGHT_YELLOW
    if "GO" in n or "GREEN" in n:
        return LIGHT_GREEN
    return LIGHT_UNKNOWN


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles builtins containers and numpy arrays only; MetaDrive's dict subclass becomes a dict."""

    _NUMPY = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer"}
    _BUILTINS = {
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "int",
        "float",
        "str",
        "bool",
        "bytes",
        "complex",
    }

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self._NUMPY:
            return super().find_class(module, name)
        if module == "builtins" and name in self._BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return super().find_class(module, name)
        if name == "ScenarioDescription":
            return dict
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def read_pkl(path: str | os.PathLike) -> dict:
    """The scenario dict of a ScenarioNet ``.pkl`` (restricted unpickling)."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            data = _SafeUnpickler(f).load()
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, ImportError) as e:
        raise ScenarioError(f"{where}: not a readable ScenarioNet pickle ({e})") from None
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected a scenario dict, got {type(data).__name__}")
    return dict(data)


def _get(d, key: str, where: str):
    if not isinstance(d, Mapping) or key not in d:
        raise ScenarioError(f"{where}: missing field '{key}'")
    return d[key]


def _array(value, field: str, ndim: tuple[int, ...], where: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"{where}: field '{field}' is not numeric ({e})") from None
    if a.ndim not in ndim:
        raise ScenarioError(
            f"{where}: field '{field}' has shape {a.shape}, expected {len(ndim) and ndim} dims"
        )
    return a


def _size(state: Mapping, key: str, valid: np.ndarray, default: float, where: str) -> float:
    if key not in state:
        return default
    a = _array(state[key], key, (0, 1, 2), where).reshape(-1)
    if a.size == valid.size and valid.any():
        a = a[valid]
    a = a[np.isfinite(a) & (a > 0)]
    return float(a.max()) if a.size else default


def _track(tid: str, tr: Mapping, steps: int, where: str) -> Track:
    w = f"{where}: field 'tracks.{tid}"
    state = _get(tr, "state", f"{w}'")
    kind = AGENT_TYPES.get(str(tr.get("type", "VEHICLE")).upper(), AGENT_VEHICLE)
    pos = _array(_get(state, "position", f"{w}.state'"), f"tracks.{tid}.state.position", (2,), where)
    heading = _array(_get(state, "heading", f"{w}.state'"), f"tracks.{tid}.state.heading", (1, 2), where)
    valid = np.asarray(state.get("valid", np.ones(len(pos))), dtype=bool).reshape(-1)
    vel = _array(state.get("velocity", np.zeros((len(pos), 2))), f"tracks.{tid}.state.velocity", (2,), where)
    heading = heading.reshape(-1)
    if not (len(pos) == len(heading) == len(valid) == len(vel) == steps) or pos.shape[1] < 2:
        raise ScenarioError(
            f"{w}.state': position {pos.shape}, heading {heading.shape}, velocity {vel.shape} and valid "
            f"{valid.shape} must all have length {steps} (the scenario 'length')"
        )
    traj = np.concatenate([pos[:, :2], heading[:, None], vel[:, :2]], axis=1)
    valid &= np.all(np.isfinite(traj), axis=1)
    length = _size(state, "length", valid, DEFAULT_SIZE[kind][0], where)
    width = _size(state, "width", valid, DEFAULT_SIZE[kind][1], where)
    return Track(np.nan_to_num(traj), valid, length, width, kind)


def _speed_limit(feat: Mapping) -> float:
    if "speed_limit_kmh" in feat:
        return float(feat["speed_limit_kmh"]) / 3.6
    if "speed_limit_mph" in feat:
        return float(feat["speed_limit_mph"]) * 0.44704
    return DEFAULT_SPEED_LIMIT


def from_dict(data: Mapping, where: str = "<scenarionet>") -> Scenario:
    """Converts a ScenarioNet scenario dict (see the module docstring) into a `Scenario`."""
    meta = _get(data, "metadata", where)
    tracks_in = _get(data, "tracks", where)
    if not isinstance(tracks_in, Mapping) or not tracks_in:
        raise ScenarioError(f"{where}: field 'tracks' must be a non-empty dict of tracks")
    ts = _array(_get(meta, "ts", f"{where}: field 'metadata'"), "metadata.ts", (1,), where)
    steps = int(data.get("length", len(ts)))
    if len(ts) < 2 or len(ts) != steps:
        raise ScenarioError(
            f"{where}: field 'metadata.ts' has {len(ts)} stamps, expected 'length' = {steps} >= 2"
        )
    sdc = str(_get(meta, "sdc_id", f"{where}: field 'metadata'"))
    keys = [str(k) for k in tracks_in]
    if sdc not in keys:
        raise ScenarioError(f"{where}: field 'metadata.sdc_id' = {sdc!r} is not a key of 'tracks'")
    tracks = [_track(str(k), tr, steps, where) for k, tr in tracks_in.items()]
    lanes, edges = [], []
    for fid, feat in dict(data.get("map_features", {})).items():
        kind = str(_get(feat, "type", f"{where}: field 'map_features.{fid}'")).upper()
        if not (kind.startswith("LANE") or kind.startswith("ROAD_EDGE") or kind.startswith("BOUNDARY")):
            continue
        poly = _get(feat, "polyline", f"{where}: field 'map_features.{fid}'")
        xy = _array(poly, f"map_features.{fid}.polyline", (2,), where)[:, :2]
        if kind.startswith("LANE"):
            width = float(np.mean(feat["width"])) if "width" in feat else DEFAULT_LANE_WIDTH
            succ = tuple(str(s) for s in feat.get("exit_lanes", ()))
            lanes.append(
                Lane(str(fid), xy, width if width > 0 else DEFAULT_LANE_WIDTH, _speed_limit(feat), succ)
            )
        else:
            edges.append(xy)
    lights = []
    for lid, light in dict(data.get("dynamic_map_states", {})).items():
        w = f"{where}: field 'dynamic_map_states.{lid}"
        states = _get(_get(light, "state", f"{w}'"), "object_state", f"{w}.state'")
        if len(states) != steps:
            raise ScenarioError(f"{w}.state.object_state' has {len(states)} states, expected {steps}")
        stop = _array(_get(light, "stop_point", f"{w}'"), f"dynamic_map_states.{lid}.stop_point", (1,), where)
        lane = light.get("lane")
        lights.append(
            Light(stop[:2], None if lane is None else str(lane), np.array([light_state(s) for s in states]))
        )
    sid = str(data.get("id", meta.get("scenario_id", os.path.basename(where))))
    dt = float(np.mean(np.diff(ts)))
    return build_scenario(sid, "scenarionet", where, dt, tracks, keys.index(sdc), lanes, edges, lights, where)


def load(path: str | os.PathLike) -> Scenario:
    """Reads one ScenarioNet ``.pkl`` file into a `Scenario`."""
    return from_dict(read_pkl(path), os.fspath(path))
