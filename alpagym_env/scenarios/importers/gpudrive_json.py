"""GPUDrive / Nocturne Waymo-JSON scenes -> `Scenario`.

The format (GPUDrive's ``data_utils/process_waymo_files.py``, one Waymo Open Motion scene a file, 10 Hz):

- ``name``, ``scenario_id``;
- ``objects``: ``[{"type": "vehicle" | "pedestrian" | "cyclist" | "other", "position": [{"x", "y", "z"}]
  * T, "heading": [float] * T, "velocity": [{"x", "y"}] * T, "valid": [bool] * T, "length", "width",
  "height", "goalPosition": {...}, optional "id", "mark_as_expert", "is_sdc"}]``; invalid steps hold
  filler values (``-1e4`` or ``1e-4``, by version). Sizes may also be per-step lists (the largest valid
  one is used); ``other`` / ``unset`` objects are static obstacles when they stay within 1 m, else
  vehicles. Older files store headings in degrees, newer ones in radians: the unit whose headings
  agree better with the direction of travel of the moving samples is used (``heading_unit`` overrides);
- ``roads``: ``[{"type": "lane" | "road_edge" | "road_line" | "stop_sign" | "crosswalk" | "speed_bump" |
  "driveway", "geometry": [{"x", "y", "z"}], "id", "map_element_id"}]``: lanes and road edges are read;
- ``tl_states``: ``{lane_id: {"state": ["stop" | "caution" | "go" | "arrow_*" | "flashing_*" | "unknown"],
  "x": [...], "y": [...], "z": [...], "time_index": [...]}}``;
  a light that cannot be read is dropped alone (counted in the `notes`);
- ``metadata`` (files from 2024 on): ``sdc_track_index`` (the ego), ``tracks_to_predict``,
  ``objects_of_interest``. Older files have none: the object flagged ``is_sdc``, else the first vehicle
  valid at every step is the ego (counted in the `notes`).

Malformed files raise `ScenarioError` naming the file and field.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping

import numpy as np

from alpagym_env.scenarios.importers.common import (
    ENGINE_DT,
    Lane,
    Light,
    Track,
    build_scenario,
    static_or_vehicle,
)
from alpagym_env.scenarios.importers.scenarionet import AGENT_TYPES, DEFAULT_SIZE, light_state
from alpagym_env.scenarios.schema import AGENT_VEHICLE, LIGHT_UNKNOWN, Scenario, ScenarioError


def _get(d, key: str, where: str):
    if not isinstance(d, Mapping) or key not in d:
        raise ScenarioError(f"{where}: missing field '{key}'")
    return d[key]


def _points(value, field: str, where: str, keys=("x", "y")) -> np.ndarray:
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: field '{field}' must be a list of points")
    try:
        return np.array([[float(p[k]) for k in keys] for p in value], dtype=np.float64).reshape(-1, len(keys))
    except (KeyError, TypeError, ValueError) as e:
        raise ScenarioError(f"{where}: field '{field}' holds a malformed point ({e!r})") from None


def _heading_scale(objects: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], unit: str) -> float:
    """Radians per stored heading unit: 1 or pi / 180 (`unit` "rad", "deg" or "auto")."""
    if unit in ("rad", "deg"):
        return 1.0 if unit == "rad" else math.pi / 180.0
    err = {1.0: 0.0, math.pi / 180.0: 0.0}
    for _, heading, vel, valid in objects:
        moving = valid & (np.hypot(vel[:, 0], vel[:, 1]) > 1.0)
        if not moving.any():
            continue
        travel = np.arctan2(vel[moving, 1], vel[moving, 0])
        for scale in err:
            d = heading[moving] * scale - travel
            err[scale] += float(np.sum(1.0 - np.cos(d)))
    if err[1.0] == err[math.pi / 180.0]:  # nothing moves: values beyond 2 pi can only be degrees
        big = any(np.any(np.abs(h[v]) > 2 * math.pi + 1e-6) for _, h, _, v in objects)
        return math.pi / 180.0 if big else 1.0
    return min(err, key=err.get)


def _object_size(obj: Mapping, key: str, valid: np.ndarray, i: int, where: str) -> float:
    """An object's ``length`` / ``width``: a number, or the largest valid one of a per-step list (0: none)."""
    try:
        a = np.asarray(obj.get(key, 0.0), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: field 'objects[{i}].{key}' is not a number") from None
    if a.size == valid.size and valid.any():
        a = a[valid]
    a = a[np.isfinite(a) & (a > 0)]
    return float(a.max()) if a.size else 0.0


def _ego(objects: list, tracks: list[Track], meta: Mapping, where: str, notes: Counter) -> int:
    """``metadata.sdc_track_index``; else the object marked ``is_sdc``; else (files written before GPUDrive
    kept the ego's index) the first vehicle valid at every step, reported in `notes`."""
    if "sdc_track_index" in meta:
        ego = meta["sdc_track_index"]
        if isinstance(ego, bool) or not isinstance(ego, int) or not 0 <= ego < len(tracks):
            raise ScenarioError(
                f"{where}: field 'metadata.sdc_track_index' = {ego!r} is not an index of 'objects'"
            )
        return ego
    marked = [i for i, obj in enumerate(objects) if obj.get("is_sdc")]
    if marked:
        return marked[0]
    full = [i for i, tr in enumerate(tracks) if tr.kind == AGENT_VEHICLE and tr.valid.all()]
    notes["scenes without an ego index: the first vehicle logged throughout is the ego"] += 1
    return full[0] if full else 0


def from_dict(
    data: Mapping, where: str = "<gpudrive>", heading_unit: str = "auto", notes: Counter | None = None
) -> Scenario:
    """Converts a GPUDrive scene dict (see the module docstring) into a `Scenario`.

    Args:
        data: The parsed JSON object.
        where: File name for error messages.
        heading_unit: ``auto``, ``rad`` or ``deg``.
        notes: Counter that receives one count per fix, default or drop (`importers.common`).
    """
    notes = Counter() if notes is None else notes
    if heading_unit not in ("auto", "rad", "deg"):
        raise ValueError(f"heading_unit must be 'auto', 'rad' or 'deg', got {heading_unit!r}")
    objects = _get(data, "objects", where)
    if not isinstance(objects, list) or not objects:
        raise ScenarioError(f"{where}: field 'objects' must be a non-empty list")
    parsed, steps = [], None
    for i, obj in enumerate(objects):
        w = f"objects[{i}]"
        pos = _points(_get(obj, "position", f"{where}: field '{w}'"), f"{w}.position", where)
        heading = np.asarray(_get(obj, "heading", f"{where}: field '{w}'"), dtype=np.float64).reshape(-1)
        vel = _points(_get(obj, "velocity", f"{where}: field '{w}'"), f"{w}.velocity", where)
        valid = np.asarray(_get(obj, "valid", f"{where}: field '{w}'"), dtype=bool).reshape(-1)
        steps = len(pos) if steps is None else steps
        if not (len(pos) == len(heading) == len(vel) == len(valid) == steps):
            raise ScenarioError(
                f"{where}: field '{w}': position, heading, velocity and valid must all have length {steps}"
            )
        valid &= np.isfinite(heading) & np.all(np.isfinite(pos), axis=1) & np.all(np.isfinite(vel), axis=1)
        parsed.append((pos, heading, vel, valid))
    scale = _heading_scale(parsed, heading_unit)
    tracks = []
    for i, (obj, (pos, heading, vel, valid)) in enumerate(zip(objects, parsed, strict=True)):
        traj = np.concatenate([pos, (heading * scale)[:, None], vel], axis=1)
        traj = np.where(valid[:, None], traj, 0.0)
        name = str(obj.get("type", "vehicle")).upper()
        kind = AGENT_TYPES[name] if name in AGENT_TYPES else static_or_vehicle(traj, valid, notes, name)
        size = [_object_size(obj, key, valid, i, where) for key in ("length", "width")]
        if min(size) <= 0:
            notes["agents without a box size: type default used"] += 1
            size = [v if v > 0 else d for v, d in zip(size, DEFAULT_SIZE[kind], strict=True)]
        tracks.append(Track(traj, valid, size[0], size[1], kind))
    ego = _ego(objects, tracks, data.get("metadata") or {}, where, notes)
    lanes, edges = [], []
    for i, road in enumerate(data.get("roads", [])):
        kind = str(_get(road, "type", f"{where}: field 'roads[{i}]'")).lower()
        if kind not in ("lane", "road_edge"):
            continue
        xy = _points(_get(road, "geometry", f"{where}: field 'roads[{i}]'"), f"roads[{i}].geometry", where)
        if kind == "lane":
            lanes.append(Lane(str(road.get("id", f"lane{i}")), xy))
        else:
            edges.append(xy)
    tl_states = data.get("tl_states") or {}
    if not isinstance(tl_states, Mapping):
        raise ScenarioError(f"{where}: field 'tl_states' must be an object keyed by lane id")
    lights = []
    for lane_id, tl in tl_states.items():
        try:
            lights.append(_light(str(lane_id), tl, steps, where))
        except ScenarioError as e:
            notes[f"lights dropped: {str(e).split(': ', 1)[-1].replace(str(lane_id), '<id>')}"] += 1
    sid = str(data.get("scenario_id", data.get("name", os.path.basename(where))))
    return build_scenario(sid, "gpudrive", where, ENGINE_DT, tracks, ego, lanes, edges, lights, where, notes)


def _light(lane_id: str, tl, steps: int, where: str) -> Light:
    w = f"tl_states.{lane_id}"
    names = _get(tl, "state", f"{where}: field '{w}'")
    xs, ys = _get(tl, "x", f"{where}: field '{w}'"), _get(tl, "y", f"{where}: field '{w}'")
    times = tl.get("time_index", list(range(len(names))))
    if not (len(names) == len(xs) == len(ys) == len(times)) or not names:
        raise ScenarioError(
            f"{where}: field '{w}': state, x, y and time_index must be non-empty, equal length"
        )
    states = np.full(steps, LIGHT_UNKNOWN, dtype=np.int8)
    for t, name in zip(times, names, strict=True):
        if 0 <= int(t) < steps:
            states[int(t)] = light_state(name)
    return Light(np.array([float(xs[0]), float(ys[0])]), lane_id, states)


def load(path: str | os.PathLike, heading_unit: str = "auto", notes: Counter | None = None) -> Scenario:
    """Reads one GPUDrive JSON scene into a `Scenario` (`notes` as in `from_dict`)."""
    where = os.fspath(path)
    try:
        with open(where) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected a JSON object at the top level")
    return from_dict(data, where, heading_unit, notes)
