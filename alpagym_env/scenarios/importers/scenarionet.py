"""ScenarioNet / MetaDrive scenario description (``.pkl``) -> `Scenario`.

The format (MetaDrive's ``ScenarioDescription``, stored as a pickled plain dict) has

- ``id``, ``version``, ``length`` (T);
- ``metadata``: ``ts`` (T,) timestamps in seconds, ``sdc_id`` (the ego's key in ``tracks``), optional
  ``dataset`` (the scene's family becomes ``scenarionet-{dataset}``, e.g. ``scenarionet-nuscenes``, so
  leaderboards report each dataset apart) and ``scenario_id``;
- ``tracks``: ``{id: {"type": "VEHICLE" | "PEDESTRIAN" | "CYCLIST" | "TRAFFIC_CONE" | "TRAFFIC_BARRIER" |
  "OTHER" | ..., "state": {"position" (T, 2|3), "heading" (T,), "velocity" (T, 2), "valid" (T,),
  "length", "width" (T,) or (T, 1) or scalars, or an older "size" (T, 3)}, "metadata": {"type": the
  dataset's own category, ...}}}``;
- ``map_features``: ``{id: {"type": ..., "polyline" (P, 2|3) and/or "polygon" (Q, 2|3), ...}}``;
- ``dynamic_map_states``: ``{id: {"type": "TRAFFIC_LIGHT", "state": {"object_state": [state] * T},
  "lane": lane id, "stop_point": (2|3,)}}`` with Waymo's ``LANE_STATE_*`` names or enum numbers, or
  MetaDrive's ``TRAFFIC_LIGHT_*`` names. MetaDrive 0.3 files keep ``lane`` and ``stop_point`` per step
  under ``state`` (``(T,)`` and ``(T, 3)``, zero where the light is not observed).

What the converters write, and what this importer makes of it (each counted in the `notes`):

- lanes (``LANE_*``): the centre ``polyline``; the width is left + right where ``width`` is (P, 2) per
  point distances from the centre line (Waymo), the value itself where it is one number per point, else
  twice the median distance from the centre line to the lane ``polygon`` (nuScenes, nuPlan), else 3.7 m;
- road edges: ``ROAD_EDGE_*`` and ``BOUNDARY_*`` polylines, plus the drivable-area outline the nuScenes
  and nuPlan converters write as ``ROAD_LINE_SOLID_SINGLE_WHITE`` lines with ids ``boundary_N``; an edge
  feature with only a ``polygon`` (nuScenes' ``ROAD_EDGE_SIDEWALK`` walkways) is used as a closed outline
  when the scene has no other road edge and skipped otherwise (the drivable-area outline already bounds
  the road there); other road lines, crosswalks and speed bumps are not used;
- a map feature, light or agent (other than the ego) that cannot be read is dropped alone, never the
  whole scene;
- agents: ``TRAFFIC_CONE``, ``TRAFFIC_BARRIER``, ``TRAFFIC_OBJECT`` and nuScenes' ``movable_object.*``
  / ``static_object.*`` categories are static obstacles (`AGENT_STATIC`); ``OTHER`` / unknown types are
  static when they stay within 1 m, else vehicles; vehicle boxes given width-first are swapped.

ScenarioNet files are pickles, and unpickling can run any code a file names. `read_pkl` uses a restricted
unpickler: only builtin containers and scalars, numpy arrays, scalars and dtypes load (MetaDrive's
``ScenarioDescription`` dict subclass becomes a plain dict); any other type is refused with a
`ScenarioError` naming the file and the type. Malformed files raise `ScenarioError` naming the file and
field.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import Counter
from collections.abc import Mapping

import numpy as np

from alpagym_env.scenarios.importers.common import (
    DEFAULT_LANE_WIDTH,
    DEFAULT_SPEED_LIMIT,
    Lane,
    Light,
    Track,
    build_scenario,
    static_or_vehicle,
)
from alpagym_env.scenarios.schema import (
    AGENT_CYCLIST,
    AGENT_PEDESTRIAN,
    AGENT_STATIC,
    AGENT_VEHICLE,
    LIGHT_GREEN,
    LIGHT_RED,
    LIGHT_UNKNOWN,
    LIGHT_YELLOW,
    Scenario,
    ScenarioError,
)

AGENT_TYPES = {
    "VEHICLE": AGENT_VEHICLE,
    "PEDESTRIAN": AGENT_PEDESTRIAN,
    "CYCLIST": AGENT_CYCLIST,
    "TRAFFIC_CONE": AGENT_STATIC,
    "TRAFFIC_BARRIER": AGENT_STATIC,
    "TRAFFIC_OBJECT": AGENT_STATIC,
}
STATIC_CATEGORIES = ("movable_object.", "static_object.")  # nuScenes categories of things that never move
DEFAULT_SIZE = {
    AGENT_VEHICLE: (4.5, 2.0),
    AGENT_PEDESTRIAN: (0.8, 0.8),
    AGENT_CYCLIST: (1.8, 0.8),
    AGENT_STATIC: (0.5, 0.5),
}
# Waymo's TrafficSignalLaneState enum numbers, as MetaDrive 0.3 stored them.
WAYMO_LIGHT_NUMBERS = {
    1: LIGHT_RED,
    2: LIGHT_YELLOW,
    3: LIGHT_GREEN,
    4: LIGHT_RED,
    5: LIGHT_YELLOW,
    6: LIGHT_GREEN,
    7: LIGHT_RED,
    8: LIGHT_YELLOW,
}


def light_state(name) -> int:
    """LIGHT_* of a Waymo ``LANE_STATE_*`` name or enum number, a MetaDrive ``TRAFFIC_LIGHT_*`` name or a
    GPUDrive lower-case name (None and unknown names: LIGHT_UNKNOWN)."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        return WAYMO_LIGHT_NUMBERS.get(int(name), LIGHT_UNKNOWN)
    n = str(name).upper()
    if "STOP" in n or "RED" in n:
        return LIGHT_RED
    if "CAUTION" in n or "YELLOW" in n:
        return LIGHT_YELLOW
    if n.endswith("GO") or "GREEN" in n:
        return LIGHT_GREEN
    return LIGHT_UNKNOWN


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles builtin containers and scalars, numpy arrays, scalars and dtypes, and nothing else.

    MetaDrive's ``ScenarioDescription`` (a dict subclass) becomes a plain dict. `find_class` raises
    `pickle.UnpicklingError` naming the refused type, before anything of it is imported or called.
    """

    _NUMPY = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer"}
    _NUMPY_DTYPES = "dtypes"  # numpy >= 1.25 pickles dtypes as numpy.dtypes.Float64DType etc.
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
        "bytearray",
        "complex",
    }

    def find_class(self, module: str, name: str):
        top = module.split(".")[0]
        if top == "numpy" and (name in self._NUMPY or module == f"numpy.{self._NUMPY_DTYPES}"):
            return super().find_class(module, name)
        if module == "builtins" and name in self._BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name in ("OrderedDict", "defaultdict"):
            return super().find_class(module, name)
        if top == "metadrive" and name == "ScenarioDescription":
            return dict
        raise pickle.UnpicklingError(f"refusing to unpickle type {module}.{name}")


def _scenario_of(data, where: str) -> dict:
    """The scenario dict of an unpickled object: the object itself, or the one scenario in a tuple."""
    if isinstance(data, Mapping):
        return dict(data)
    if isinstance(data, (tuple, list)):
        found = [x for x in data if isinstance(x, Mapping) and "tracks" in x]
        if len(found) == 1:
            return dict(found[0])
        kinds = ", ".join(type(x).__name__ for x in data)
        raise ScenarioError(
            f"{where}: expected a scenario dict, got a {type(data).__name__} of ({kinds}) holding "
            f"{len(found)} scenario dicts (dicts with 'tracks'), expected exactly one"
        )
    raise ScenarioError(f"{where}: expected a scenario dict, got {type(data).__name__}")


def read_any_pkl(path: str | os.PathLike):
    """Whatever a ScenarioNet pickle holds, read with `RestrictedUnpickler`."""
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            return RestrictedUnpickler(f).load()
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        if str(e).startswith("refusing"):
            raise ScenarioError(f"{where}: {e} (only builtins and numpy arrays may load)") from None
        raise ScenarioError(f"{where}: not a readable ScenarioNet pickle ({e})") from None
    except (EOFError, AttributeError, ValueError, TypeError, ImportError, IndexError, KeyError) as e:
        raise ScenarioError(f"{where}: not a readable ScenarioNet pickle ({e!r})") from None


def read_pkl(path: str | os.PathLike) -> dict:
    """The scenario dict of a ScenarioNet ``.pkl`` (restricted unpickling; a tuple holding one scenario
    dict, as some Argoverse 2 exports are, gives that dict)."""
    return _scenario_of(read_any_pkl(path), os.fspath(path))


def _reason(e: ScenarioError) -> str:
    """The error without its file name and with feature ids masked, so equal causes count together."""
    msg = str(e).split(": ", 1)[-1]
    return re.sub(r"(map_features|dynamic_map_states|tracks)\.[^.' ]+", r"\1.<id>", msg)


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


def _size(state: Mapping, key: str, column: int, valid: np.ndarray, default: float, where: str) -> float:
    """The largest positive logged `key` (or column `column` of an older ``size`` (T, 3)), else `default`."""
    if key in state:
        a = _array(state[key], key, (0, 1, 2), where).reshape(-1)
    elif "size" in state:
        a = _array(state["size"], "size", (1, 2), where)[..., column].reshape(-1)
    else:
        return default
    if a.size == valid.size and valid.any():
        a = a[valid]
    a = a[np.isfinite(a) & (a > 0)]
    return float(a.max()) if a.size else default


def _kind(tr: Mapping, traj: np.ndarray, valid: np.ndarray, notes: Counter) -> int:
    name = str(tr.get("type", "VEHICLE")).upper()
    category = str(
        (tr.get("metadata") or {}).get("type", "") if isinstance(tr.get("metadata"), Mapping) else ""
    )
    if category.lower().startswith(STATIC_CATEGORIES) or AGENT_TYPES.get(name) == AGENT_STATIC:
        notes["static objects (barriers, cones) kept as static obstacles"] += 1
        return AGENT_STATIC
    if name in AGENT_TYPES:
        return AGENT_TYPES[name]
    return static_or_vehicle(traj, valid, notes, name)


def _track(tid: str, tr: Mapping, steps: int, where: str, notes: Counter) -> Track:
    w = f"{where}: field 'tracks.{tid}"
    state = _get(tr, "state", f"{w}'")
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
    traj = np.nan_to_num(traj)
    kind = _kind(tr, traj, valid, notes)
    length = _size(state, "length", 0, valid, 0.0, where)
    width = _size(state, "width", 1, valid, 0.0, where)
    if length <= 0 or width <= 0:
        notes["agents without a box size: type default used"] += 1
        length = length if length > 0 else DEFAULT_SIZE[kind][0]
        width = width if width > 0 else DEFAULT_SIZE[kind][1]
    return Track(traj, valid, length, width, kind)


def _speed_limit(feat: Mapping) -> float:
    if "speed_limit_kmh" in feat:
        return float(feat["speed_limit_kmh"]) / 3.6
    if "speed_limit_mph" in feat:
        return float(feat["speed_limit_mph"]) * 0.44704
    return DEFAULT_SPEED_LIMIT


def _polygon_half_width(centre: np.ndarray, polygon: np.ndarray) -> float:
    """Median distance (m) from the centre-line points to the polygon outline's segments."""
    ring = np.vstack([polygon, polygon[:1]])
    a, b = ring[:-1], ring[1:]
    ab = b - a
    den = np.maximum((ab * ab).sum(1), 1e-12)
    t = np.clip((((centre[:, None, :] - a[None]) * ab[None]).sum(-1)) / den[None], 0.0, 1.0)
    d = np.hypot(*(a[None] + t[..., None] * ab[None] - centre[:, None, :]).transpose(2, 0, 1))
    return float(np.median(d.min(axis=1)))


def _lane_width(feat: Mapping, xy: np.ndarray, field: str, where: str, notes: Counter) -> float:
    if "width" in feat:
        w = _array(feat["width"], f"{field}.width", (0, 1, 2), where)
        w = w.sum(axis=1) if w.ndim == 2 else w.reshape(-1)  # (P, 2): left + right of the centre line
        w = w[np.isfinite(w) & (w > 0.5)]
        if w.size:
            return float(np.median(w))
    if "polygon" in feat:
        poly = _array(feat["polygon"], f"{field}.polygon", (2,), where)[:, :2]
        if len(poly) >= 3:
            half = _polygon_half_width(xy, poly)
            if 0.5 < half < 5.0:
                notes["lane widths measured from the lane polygon"] += 1
                return 2.0 * half
    notes["lanes without a width: 3.7 m used"] += 1
    return DEFAULT_LANE_WIDTH


def _map(features: Mapping, where: str, notes: Counter):
    """Lanes, road-edge polylines and polygon-only edge outlines of ``map_features`` (see module doc)."""
    lanes, edges, outlines = [], [], []
    for fid, feat in features.items():
        field = f"map_features.{fid}"
        try:
            kind = str(_get(feat, "type", f"{where}: field '{field}'")).upper()
            boundary = kind.startswith("ROAD_LINE") and str(fid).startswith("boundary_")
            if kind.startswith("LANE"):
                xy = _array(
                    _get(feat, "polyline", f"{where}: field '{field}'"), f"{field}.polyline", (2,), where
                )
                xy = xy[:, :2]
                width = _lane_width(feat, xy, field, where, notes)
                succ = tuple(str(s) for s in feat.get("exit_lanes", ()))
                lanes.append(Lane(str(fid), xy, width, _speed_limit(feat), succ))
            elif kind.startswith(("ROAD_EDGE", "BOUNDARY")) or boundary:
                if "polyline" in feat:
                    edges.append(_array(feat["polyline"], f"{field}.polyline", (2,), where)[:, :2])
                    if boundary:
                        notes["drivable-area boundaries (boundary_N lines) used as road edges"] += 1
                else:
                    poly = _array(
                        _get(feat, "polygon", f"{where}: field '{field}'"), f"{field}.polygon", (2,), where
                    )
                    outlines.append(np.vstack([poly[:, :2], poly[:1, :2]]))
        except ScenarioError as e:
            notes[f"map features dropped: {_reason(e)}"] += 1
    if outlines and edges:
        notes["polygon-only road edges skipped (the scene has road-edge lines)"] += len(outlines)
    elif outlines:
        notes["polygon-only road edges used as closed outlines"] += len(outlines)
        edges = outlines
    return lanes, edges


def _first_observed(value, field: str, ndim: int, where: str) -> np.ndarray | None:
    """A per-step array's first non-zero row (MetaDrive 0.3), or the value itself when not per step."""
    a = _array(value, field, (ndim, ndim + 1), where)
    if a.ndim == ndim:
        return a
    seen = np.flatnonzero(np.any(a.reshape(len(a), -1) != 0, axis=1))
    return a[seen[0]] if seen.size else None


def _light(lid, light, steps: int, where: str, notes: Counter) -> Light | None:
    w = f"{where}: field 'dynamic_map_states.{lid}"
    field = f"dynamic_map_states.{lid}"
    state = _get(light, "state", f"{w}'")
    names = _get(state, "object_state", f"{w}.state'")
    names = list(np.asarray(names).reshape(-1)) if isinstance(names, np.ndarray) else list(names)
    if len(names) != steps:
        raise ScenarioError(f"{w}.state.object_state' has {len(names)} states, expected {steps}")
    stop = light.get("stop_point", state.get("stop_point"))
    if stop is None:
        raise ScenarioError(f"{w}': missing field 'stop_point'")
    stop = _first_observed(stop, f"{field}.stop_point", 1, where)
    lane = light.get("lane", state.get("lane"))
    if isinstance(lane, (np.ndarray, list)) and np.ndim(lane) == 1:
        seen = [x for x in np.asarray(lane).reshape(-1) if x not in (0, None, "")]
        lane = seen[0] if seen else None
    if stop is None or stop.size < 2:
        raise ScenarioError(f"{w}.stop_point' is never observed")
    states = np.array([light_state(s) for s in names], dtype=np.int8)
    if not (states != LIGHT_UNKNOWN).any():
        notes["lights whose state is never known"] += 1
    if isinstance(lane, (float, np.floating)) and float(lane).is_integer():
        lane = int(lane)
    return Light(stop[:2], None if lane is None else str(lane), states)


def from_dict(data: Mapping, where: str = "<scenarionet>", notes: Counter | None = None) -> Scenario:
    """Converts a ScenarioNet scenario dict (see the module docstring) into a `Scenario`.

    Args:
        data: The unpickled scenario dict.
        where: File name for error messages.
        notes: Counter that receives one count per fix, default or drop (see the module docstring).
    """
    notes = Counter() if notes is None else notes
    meta = _get(data, "metadata", where)
    tracks_in = _get(data, "tracks", where)
    if not isinstance(tracks_in, Mapping) or not tracks_in:
        raise ScenarioError(f"{where}: field 'tracks' must be a non-empty dict of tracks")
    if "ts" not in meta and "sample_rate" in meta and "length" in data:  # files that give only the rate
        ts = np.arange(int(data["length"])) * float(meta["sample_rate"])
    else:
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
    tracks, kept = [], []
    for k, tr in tracks_in.items():
        try:
            tracks.append(_track(str(k), tr, steps, where, notes))
            kept.append(str(k))
        except ScenarioError as e:
            if str(k) == sdc:
                raise
            notes[f"agents dropped: {_reason(e)}"] += 1
    lanes, edges = _map(dict(data.get("map_features") or {}), where, notes)
    lights = []
    for lid, light in dict(data.get("dynamic_map_states") or {}).items():
        try:
            lights.append(_light(lid, light, steps, where, notes))
        except ScenarioError as e:
            notes[f"lights dropped: {_reason(e)}"] += 1
    sid = str(data.get("id", meta.get("scenario_id", os.path.basename(where))))
    dt = float(np.mean(np.diff(ts)))
    ego = kept.index(sdc)
    dataset = meta.get("dataset")
    family = (
        f"scenarionet-{dataset}" if isinstance(dataset, str) and dataset.isidentifier() else "scenarionet"
    )
    return build_scenario(sid, family, where, dt, tracks, ego, lanes, edges, lights, where, notes)


def load(path: str | os.PathLike, notes: Counter | None = None) -> Scenario:
    """Reads one ScenarioNet ``.pkl`` file into a `Scenario` (`notes` as in `from_dict`)."""
    return from_dict(read_pkl(path), os.fspath(path), notes)
