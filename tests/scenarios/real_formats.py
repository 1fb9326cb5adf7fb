"""Small scenes written the way each public converter writes them (fields from the converters' sources).

One straight two-lane road (x from 0 to 200 m, lanes at y = 0 and y = 3.5, drivable area y in
[-1.75, 5.25]) seen through each format:

- `nuscenes`: ScenarioNet's nuScenes converter: the ego's size written width-first (``[4.08, 1.73]``
  read as length 1.73, width 4.08), the drivable-area outline as ``ROAD_LINE_SOLID_SINGLE_WHITE`` lines
  with ids ``boundary_N``, lanes with a ``polygon`` and no ``width``, lane connectors without a polygon,
  walkways as polygon-only ``ROAD_EDGE_SIDEWALK``, crosswalks as polygon-only ``CROSSWALK``, barriers and
  cones as ``TRAFFIC_BARRIER`` / ``TRAFFIC_CONE`` tracks, a motorbike without a size, no light states;
- `nuplan`: the same map code, boxes length-first, ``TRAFFIC_LIGHT_*`` states with a 2-D stop point;
- `waymo`: lanes with a (P, 2) left/right ``width``, ``ROAD_EDGE_BOUNDARY`` polylines, lights keyed by
  integer lane ids with ``LANE_STATE_*`` states and ``None`` where unobserved;
- `av2`: float32 arrays, ego ``AV``, lane ``width`` all zeros, ``OTHER`` objects, no road edges;
- `metadrive03`: MetaDrive 0.3 lights with per-step ``lane``, ``stop_point`` and numeric states under
  ``state``.
"""

from __future__ import annotations

import numpy as np

T = 101  # 10 s at 10 Hz
TIME = np.arange(T) * 0.1
XS = np.arange(0.0, 201.0, 5.0)
ROAD = (-1.75, 5.25)  # drivable area, y


def _line(y: float, dims: int = 3) -> np.ndarray:
    pts = np.stack([XS, np.full_like(XS, y), np.zeros_like(XS)], axis=1)
    return pts[:, :dims]


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])


def _track(kind, category, x0, y0, v, size, dtype=np.float64, valid_dtype=np.float64):
    """A ScenarioNet track moving along +x; `size` is what the converter writes as (length, width)."""
    pos = np.stack([x0 + v * TIME, np.full(T, y0), np.zeros(T)], axis=1)
    return {
        "type": kind,
        "state": {
            "position": pos.astype(dtype),
            "heading": np.zeros(T, dtype),
            "velocity": np.tile([v, 0.0], (T, 1)).astype(dtype),
            "valid": np.ones(T, valid_dtype),
            "length": np.full((T, 1), size[0], dtype),
            "width": np.full((T, 1), size[1], dtype),
            "height": np.full((T, 1), 1.5, dtype),
        },
        "metadata": {"type": category, "object_id": category, "track_length": T},
    }


def _boundary_map() -> dict:
    """What the nuScenes / nuPlan converters write for the map (drivable-area outline as boundary_N)."""
    ring = _rect(0.0, 200.0, ROAD[0], ROAD[1])[::-1]  # clockwise: the importer must orient it
    return {
        "boundary_0": {"type": "ROAD_LINE_SOLID_SINGLE_WHITE", "polyline": ring},
        "lane-a": {
            "type": "LANE_SURFACE_STREET",
            "polyline": _line(0.0),
            "polygon": _rect(0.0, 200.0, -1.75, 1.75),
            "entry_lanes": [],
            "exit_lanes": ["conn"],
        },
        "lane-b": {
            "type": "LANE_SURFACE_STREET",
            "polyline": _line(3.5),
            "polygon": _rect(0.0, 200.0, 1.75, 5.25),
            "entry_lanes": [],
            "exit_lanes": [],
        },
        "conn": {
            "type": "LANE_SURFACE_UNSTRUCTURE",
            "polyline": np.array([[200.0, 0.0, 0.0], [210.0, 0.0, 0.0]]),
            "speed_limit_kmh": 100,
            "entry_lanes": ["lane-a"],
            "exit_lanes": [],
        },
        "divider": {"type": "ROAD_LINE_BROKEN_SINGLE_WHITE", "polyline": _line(1.75, 2)},
        "walk-1": {"type": "ROAD_EDGE_SIDEWALK", "polygon": _rect(0.0, 200.0, 5.25, 8.0)[:-1]},
        "xing-1": {"type": "CROSSWALK", "polygon": _rect(90.0, 94.0, -1.75, 5.25)[:-1]},
    }


def _scenario(dataset: str, tracks: dict, map_features: dict, lights: dict, sdc: str = "ego") -> dict:
    return {
        "id": f"{dataset}-straight",
        "version": dataset,
        "length": T,
        "metadata": {
            "dataset": dataset,
            "ts": TIME.copy(),
            "sdc_id": sdc,
            "scenario_id": f"{dataset}-straight",
            "coordinate": "right-handed",
            "metadrive_processed": False,
        },
        "tracks": tracks,
        "dynamic_map_states": lights,
        "map_features": map_features,
    }


def nuscenes() -> dict:
    tracks = {
        "ego": _track("VEHICLE", "vehicle.car", 20.0, 0.0, 10.0, (1.73, 4.08)),  # width-first, as written
        "car": _track("VEHICLE", "vehicle.car", 40.0, 3.5, 12.0, (4.05, 1.71)),
        "moto": _track("CYCLIST", "vehicle.motorcycle", 120.0, 3.5, 5.0, (0.0, 0.0)),
        "barrier": _track("TRAFFIC_BARRIER", "movable_object.barrier", 150.0, 4.8, 0.0, (1.0, 0.4)),
        "cone": _track("TRAFFIC_CONE", "movable_object.trafficcone", 175.0, 4.9, 0.0, (0.4, 0.4)),
    }
    return _scenario("nuscenes", tracks, _boundary_map(), {})


def nuplan() -> dict:
    tracks = {
        "ego": _track("VEHICLE", "VEHICLE", 20.0, 0.0, 10.0, (4.6, 1.9)),
        "car": _track("VEHICLE", "VEHICLE", 40.0, 3.5, 12.0, (4.6, 1.9)),
        "cone": _track("TRAFFIC_CONE", "TRAFFIC_CONE", 175.0, 4.9, 0.0, (0.4, 0.4)),
    }
    states = ["TRAFFIC_LIGHT_GREEN"] * 60 + ["TRAFFIC_LIGHT_RED"] * (T - 60)
    lights = {
        "lane-a": {
            "type": "TRAFFIC_LIGHT",
            "state": {"object_state": states},
            "stop_point": [180.0, 0.0],
            "lane": "lane-a",
            "metadata": {"type": "TRAFFIC_LIGHT", "dataset": "nuplan"},
        },
        "lane-b": {  # a light the log never saw: the converter leaves its stop point None
            "type": "TRAFFIC_LIGHT",
            "state": {"object_state": ["TRAFFIC_LIGHT_UNKNOWN"] * T},
            "stop_point": None,
            "lane": "lane-b",
            "metadata": {"type": None, "dataset": "nuplan"},
        },
    }
    return _scenario("nuplan", tracks, _boundary_map(), lights)


def _waymo_map(width: np.ndarray, dtype=np.float64) -> dict:
    return {
        "100": {
            "type": "LANE_SURFACE_STREET",
            "polyline": _line(0.0).astype(dtype),
            "width": width,
            "speed_limit_mph": 30.0,
            "exit_lanes": [],
            "entry_lanes": [],
        },
        "101": {"type": "LANE_SURFACE_STREET", "polyline": _line(3.5).astype(dtype), "width": width},
        "200": {"type": "ROAD_EDGE_BOUNDARY", "polyline": _line(ROAD[0]).astype(dtype)},
        "201": {"type": "ROAD_EDGE_BOUNDARY", "polyline": _line(ROAD[1])[::-1].astype(dtype)},
        "300": {"type": "ROAD_LINE_SOLID_SINGLE_WHITE", "polyline": _line(1.75).astype(dtype)},
        "400": {"type": "CROSSWALK", "polygon": _rect(90.0, 94.0, -1.75, 5.25)[:-1].astype(dtype)},
    }


def waymo() -> dict:
    tracks = {
        "ego": _track("VEHICLE", "VEHICLE", 20.0, 0.0, 10.0, (4.6, 1.9)),
        "car": _track("VEHICLE", "VEHICLE", 40.0, 3.5, 12.0, (4.6, 1.9)),
        "ped": _track("PEDESTRIAN", "PEDESTRIAN", 100.0, 4.5, 0.0, (0.6, 0.7)),
    }
    width = np.tile([1.8, 1.8], (len(XS), 1))  # left / right distance from the centre line
    states = [None] * 5 + ["LANE_STATE_GO"] * 55 + ["LANE_STATE_STOP"] * (T - 60)
    lights = {
        100: {
            "type": "TRAFFIC_LIGHT",
            "state": {"object_state": states},
            "lane": 100,
            "stop_point": np.array([180.0, 0.0, 0.0], np.float32),
            "metadata": {"type": "TRAFFIC_LIGHT", "object_id": 100, "dataset": "waymo"},
        }
    }
    return _scenario("waymo", tracks, _waymo_map(width), lights)


def av2() -> dict:
    f32 = {"dtype": np.float32, "valid_dtype": bool}
    tracks = {
        "AV": _track("VEHICLE", "VEHICLE", 20.0, 0.0, 10.0, (4.0, 2.0), **f32),
        "car": _track("VEHICLE", "VEHICLE", 40.0, 3.5, 12.0, (4.0, 2.0), **f32),
        "static-thing": _track("OTHER", "OTHER", 150.0, 7.0, 0.0, (1.0, 1.0), **f32),
        "moving-thing": _track("OTHER", "OTHER", 60.0, -5.0, 2.0, (1.0, 1.0), **f32),
    }
    width = np.zeros((len(XS), 2), np.float32)  # the AV2 converter writes zeros
    features = {k: v for k, v in _waymo_map(width, np.float32).items() if v["type"] != "ROAD_EDGE_BOUNDARY"}
    return _scenario("av2", tracks, features, {}, sdc="AV")


def metadrive03() -> dict:
    d = waymo()
    seen = TIME >= 0.5
    lane = np.where(seen, 100, 0)
    stop = np.where(seen[:, None], [180.0, 0.0, 0.0], 0.0).astype(np.float32)
    numbers = np.where(TIME < 6.0, 6, 4) * seen  # Waymo enum: 6 GO, 4 STOP, 0 unknown
    d["dynamic_map_states"] = {
        "100": {
            "type": "TRAFFIC_LIGHT",
            "state": {"object_state": numbers, "lane": lane, "stop_point": stop},
            "metadata": {"type": "TRAFFIC_LIGHT", "dataset": "waymo"},
        },
        "101": {  # listed but never observed: no stop point to place it at
            "type": "TRAFFIC_LIGHT",
            "state": {
                "object_state": np.zeros(T, int),
                "lane": np.zeros(T, int),
                "stop_point": np.zeros((T, 3)),
            },
            "metadata": {"type": "TRAFFIC_LIGHT", "dataset": "waymo"},
        },
    }
    d["version"] = "MetaDrive v0.3.0.1"
    return d


def gpudrive_old() -> dict:
    """A GPUDrive JSON scene as written before 2024: degrees, ``1e-4`` filler, no metadata, no ids."""
    err = 1e-4

    def obj(kind, x0, y0, v, length, width, valid):
        return {
            "type": kind,
            "position": [
                {"x": x0 + v * t, "y": y0, "z": 0.0} if ok else {"x": err, "y": err, "z": err}
                for t, ok in zip(TIME, valid, strict=True)
            ],  # fmt: skip
            "heading": [0.0 if ok else err for ok in valid],
            "velocity": [{"x": v, "y": 0.0} if ok else {"x": err, "y": err} for ok in valid],
            "valid": [bool(ok) for ok in valid],
            "length": length,
            "width": width,
            "height": 1.5,
            "goalPosition": {"x": x0 + v * TIME[-1], "y": y0, "z": 0.0},
        }

    def geom(pts):
        return [{"x": float(x), "y": float(y), "z": 0.0} for x, y, *_ in pts]

    always = np.ones(T, bool)
    return {
        "name": "tfrecord-00001-of-01000_3.json",
        "scenario_id": "gd-old",
        "objects": [
            obj("vehicle", 40.0, 3.5, 12.0, 4.6, 1.9, TIME >= 1.0),  # appears late: not the ego
            obj("vehicle", 20.0, 0.0, 10.0, 4.6, 1.9, always),
            obj("other", 150.0, 4.9, 0.0, 0.4, 0.4, always),
            obj("cyclist", 120.0, 3.5, 5.0, [1.8] * T, [0.7] * T, always),  # per-step sizes
        ],
        "roads": [
            {"type": "lane", "geometry": geom(_line(0.0)), "map_element_id": 2, "id": 100},
            {"type": "lane", "geometry": geom(_line(3.5)), "map_element_id": 2, "id": 101},
            {"type": "road_edge", "geometry": geom(_line(ROAD[0])), "map_element_id": 15, "id": 200},
            {"type": "road_edge", "geometry": geom(_line(ROAD[1])), "map_element_id": 15, "id": 201},
            {"type": "crosswalk", "geometry": geom(_rect(90.0, 94.0, -1.75, 5.25)), "map_element_id": 18},
        ],
        "tl_states": {
            "100": {
                "state": ["go"] * T,
                "x": [180.0] * T,
                "y": [0.0] * T,
                "z": [0.0] * T,
                "time_index": list(range(T)),
            },
            "101": {"state": ["go"], "x": [], "y": [], "z": [], "time_index": [0]},  # malformed
        },  # fmt: skip
    }
