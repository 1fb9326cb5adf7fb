"""ScenarioNet (.pkl) and GPUDrive (.json) importers on small files written in each public schema."""

from __future__ import annotations

import json
import math
import os
import pickle

import numpy as np
import pytest

from alpagym_env.evaluation import eval_config, evaluate
from alpagym_env.scenarios.convert import main as convert
from alpagym_env.scenarios.importers import gpudrive_json, load_file, scenarionet
from alpagym_env.scenarios.schema import (
    AGENT_PEDESTRIAN,
    LIGHT_GREEN,
    LIGHT_RED,
    ScenarioError,
    load_scenario,
    load_suite,
)

T = 91  # a Waymo scene: 9.1 s at 10 Hz
TIME = np.arange(T) * 0.1
XS = np.arange(0.0, 201.0, 5.0)


def line(y, reverse=False, z=True):
    pts = np.stack([XS, np.full_like(XS, y), np.zeros_like(XS)], axis=1)
    pts = pts[::-1] if reverse else pts
    return pts if z else pts[:, :2]


# Agents: a car ahead in lane 2, the ego (listed second) in lane 1, a pedestrian, a late car.
AGENTS = [
    ("car7", "VEHICLE", 40.0, 3.5, 12.0, np.ones(T, bool)),
    ("ego", "VEHICLE", 20.0, 0.0, 10.0, np.ones(T, bool)),
    ("ped", "PEDESTRIAN", 100.0, 8.0, 0.0, np.ones(T, bool)),
    ("late", "VEHICLE", 5.0, 3.5, 8.0, TIME >= 1.0),
]
LIGHT = ["LANE_STATE_GO"] * 50 + ["LANE_STATE_STOP"] * (T - 50)


def scenarionet_dict(ts=TIME):
    n = len(ts)
    tracks = {}
    for key, kind, x0, y0, v, valid in AGENTS:
        valid = valid[:n] if len(valid) >= n else np.ones(n, bool)
        pos = np.stack([x0 + v * (ts - ts[0]), np.full(n, y0), np.zeros(n)], axis=1) * valid[:, None]
        tracks[key] = {
            "type": kind,
            "state": {
                "position": pos,
                "heading": np.zeros(n),
                "velocity": np.stack([np.full(n, v), np.zeros(n)], axis=1) * valid[:, None],
                "valid": valid,
                "length": np.full((n, 1), 4.6 if kind == "VEHICLE" else 0.6),
                "width": np.full((n, 1), 1.9 if kind == "VEHICLE" else 0.6),
                "height": np.full((n, 1), 1.5),
            },
            "metadata": {"type": kind, "object_id": key, "track_length": n},
        }
    return {
        "id": "sn-straight",
        "version": "MetaDrive v0.4.2",
        "length": n,
        "metadata": {
            "ts": ts,
            "sdc_id": "ego",
            "metadrive_processed": False,
            "coordinate": "waymo",
            "dataset": "waymo",
            "scenario_id": "abc123",
        },  # fmt: skip
        "tracks": tracks,
        "map_features": {
            "100": {
                "type": "LANE_SURFACE_STREET",
                "polyline": line(0.0),
                "exit_lanes": ["101"],
                "speed_limit_kmh": 54,
            },
            "101": {"type": "LANE_SURFACE_STREET", "polyline": line(3.5)},
            "200": {
                "type": "ROAD_EDGE_BOUNDARY",
                "polyline": line(-1.75, reverse=True),
            },  # drivable on its right
            "201": {"type": "ROAD_EDGE_BOUNDARY", "polyline": line(5.25)},  # drivable on its right
            "300": {"type": "ROAD_LINE_BROKEN_SINGLE_WHITE", "polyline": line(1.75)},
            "400": {"type": "CROSSWALK", "polygon": np.zeros((4, 3))},
        },
        "dynamic_map_states": {
            "500": {
                "type": "TRAFFIC_LIGHT",
                "state": {"object_state": (LIGHT * 2)[:n]},
                "lane": "100",
                "stop_point": np.array([150.0, 0.0, 0.0]),
                "metadata": {"type": "TRAFFIC_LIGHT"},
            },
        },  # fmt: skip
    }


def gpudrive_dict(degrees=False):
    objects = []
    for key, kind, x0, y0, v, valid in AGENTS:
        heading = 0.0 if not degrees else 0.0
        objects.append(
            {
                "type": kind.lower(),
                "id": key,
                "position": [
                    {"x": x0 + v * t if ok else -10000.0, "y": y0 if ok else -10000.0, "z": 0.0}
                    for t, ok in zip(TIME, valid, strict=True)
                ],  # fmt: skip
                "heading": [heading if ok else -10000.0 for ok in valid],
                "velocity": [{"x": v if ok else -10000.0, "y": 0.0} for ok in valid],
                "valid": [bool(ok) for ok in valid],
                "length": 4.6 if kind == "VEHICLE" else 0.6,
                "width": 1.9 if kind == "VEHICLE" else 0.6,
                "height": 1.5,
                "goalPosition": {"x": x0 + v * TIME[-1], "y": y0, "z": 0.0},
                "mark_as_expert": False,
            }
        )

    def geom(pts):
        return [{"x": float(x), "y": float(y), "z": 0.0} for x, y, _ in pts]

    return {
        "name": "tfrecord-00000-of-01000_7.json",
        "scenario_id": "gd-straight",
        "objects": objects,
        "roads": [
            {"type": "lane", "id": 100, "map_element_id": 2, "geometry": geom(line(0.0))},
            {"type": "lane", "id": 101, "map_element_id": 2, "geometry": geom(line(3.5))},
            {
                "type": "road_edge",
                "id": 200,
                "map_element_id": 15,
                "geometry": geom(line(-1.75, reverse=True)),
            },
            {"type": "road_edge", "id": 201, "map_element_id": 15, "geometry": geom(line(5.25))},
            {"type": "road_line", "id": 300, "map_element_id": 6, "geometry": geom(line(1.75))},
            {
                "type": "stop_sign",
                "id": 600,
                "map_element_id": 17,
                "geometry": [{"x": 0.0, "y": 0.0, "z": 0.0}],
            },
        ],
        "tl_states": {
            "100": {
                "state": ["go"] * 50 + ["stop"] * (T - 50),
                "x": [150.0] * T,
                "y": [0.0] * T,
                "z": [0.0] * T,
                "time_index": list(range(T)),
            }
        },  # fmt: skip
        "metadata": {"sdc_track_index": 1, "objects_of_interest": [], "tracks_to_predict": []},
    }


def check_straight_scene(s, successors=True):
    ego = s.traj[s.ego_index]
    np.testing.assert_allclose(ego[:, 0], 20.0 + 10.0 * TIME)
    np.testing.assert_allclose(ego[:, 3:], np.tile([10.0, 0.0], (T, 1)))
    assert s.num_agents == 4 and s.dt == 0.1
    late = int(np.flatnonzero(s.traj[:, 0, 0] == 0.0)[0])
    assert not s.valid[late, :10].any() and s.valid[late, 10:].all()
    assert s.agent_type[np.argmax(s.traj[:, 0, 1] == 8.0)] == AGENT_PEDESTRIAN
    assert s.length[s.ego_index] == pytest.approx(4.6) and s.width[s.ego_index] == pytest.approx(1.9)
    # Both edges now have the road on their left (the files gave them the other way round).
    for i in range(len(s.edge_offsets) - 1):
        e = s.edge(i)
        d, rel = e[1] - e[0], np.array([100.0, 1.75]) - e[0]
        assert d[0] * rel[1] - d[1] * rel[0] > 0
    assert s.num_lanes == 2 and s.lane_successors[0, 0] == (1 if successors else -1)  # GPUDrive has no links
    np.testing.assert_array_equal(s.light_states[0, :50], LIGHT_GREEN)
    np.testing.assert_array_equal(s.light_states[0, 50:], LIGHT_RED)
    np.testing.assert_allclose(np.sort(s.stop_lines[0, [1, 3]]), [-1.85, 1.85])  # across lane 1 at x = 150
    np.testing.assert_allclose(s.stop_lines[0, [0, 2]], 150.0)
    assert s.route_xy[0, 0] < 20.0 and s.route_xy[-1, 0] > ego[-1, 0] + 50


def test_scenarionet_pickle_round_trip(tmp_path):
    path = tmp_path / "sd_waymo_v1.2_abc123.pkl"
    with open(path, "wb") as f:
        pickle.dump(scenarionet_dict(), f)
    s = load_file(path)
    assert s.scenario_id == "sn-straight" and s.family == "scenarionet-waymo"
    check_straight_scene(s)
    assert s.lane_speed_limit[0] == pytest.approx(15.0)


@pytest.mark.parametrize("degrees", [False, True])
def test_gpudrive_json_round_trip(tmp_path, degrees):
    data = gpudrive_dict()
    if degrees:  # old GPUDrive files store degrees: point everyone 30 deg left and tilt velocities to match
        for obj in data["objects"]:
            obj["heading"] = [30.0 if ok else -10000.0 for ok in obj["valid"]]
            c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
            vel = zip(obj["velocity"], obj["valid"], strict=True)
            obj["velocity"] = [{"x": v["x"] * c, "y": v["x"] * s} if ok else v for v, ok in vel]
    path = tmp_path / "scene.json"
    path.write_text(json.dumps(data))
    s = load_file(path)
    assert s.scenario_id == "gd-straight" and s.family == "gpudrive"
    if degrees:
        assert s.traj[s.ego_index, 0, 2] == pytest.approx(math.pi / 6)
    else:
        check_straight_scene(s, successors=False)


def test_imported_scenes_drive_in_the_simulator(tmp_path):
    s = scenarionet.from_dict(scenarionet_dict())
    g = gpudrive_json.from_dict(gpudrive_dict())
    res = evaluate(["expert", "idm"], [s, g], eval_config(horizon=90))
    assert [r.metrics["scene_score"] for r in res["expert"]] == [1.0, 1.0]
    assert all(
        r.metrics["offroad"] == 0 for r in res["idm"]
    )  # the oriented edges keep a lane follower on road


def test_convert_cli_writes_scenes_and_suites(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    with open(src / "sub" / "a.pkl", "wb") as f:
        pickle.dump(scenarionet_dict(), f)
    with open(src / "dataset_summary.pkl", "wb") as f:
        pickle.dump({"not": "a scene"}, f)
    (src / "b.json").write_text(json.dumps(gpudrive_dict()))
    (src / "broken.json").write_text("{")
    assert convert([str(src), "--out", str(tmp_path / "out")]) == 0
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["gd-straight.npz", "sn-straight.npz"]
    s = load_scenario(tmp_path / "out" / "sn-straight.npz")
    np.testing.assert_array_equal(s.traj, load_file(src / "sub" / "a.pkl").traj)
    assert convert([str(src / "b.json"), str(src / "sub"), "--out", str(tmp_path / "suite.npz")]) == 0
    assert [x.scenario_id for x in load_suite(tmp_path / "suite.npz")] == ["gd-straight", "sn-straight"]
    assert convert([str(src), "--out", str(tmp_path / "x"), "--strict"]) == 1  # broken.json


def test_time_steps_are_subsampled_to_10_hz_or_rejected():
    s = scenarionet.from_dict(scenarionet_dict(ts=np.arange(181) * 0.05))
    assert s.num_steps == 91
    np.testing.assert_allclose(s.traj[s.ego_index, :, 0], 20.0 + 10.0 * TIME)
    with pytest.raises(ScenarioError, match="time step 0.3 s"):
        scenarionet.from_dict(scenarionet_dict(ts=np.arange(40) * 0.3))


def broken_sn(change):
    d = scenarionet_dict()
    change(d)
    return d


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("tracks"), "'tracks'"),
        (lambda d: d["metadata"].update(sdc_id="nobody"), "'metadata.sdc_id'"),
        (lambda d: d["tracks"]["ego"]["state"].update(position=np.zeros((5, 3))), "'tracks.ego.state'"),
        (lambda d: d["tracks"]["ego"]["state"].pop("heading"), "'heading'"),
        (lambda d: d["tracks"]["ego"]["state"].update(valid=np.zeros(T, bool)), "ego track is never valid"),
    ],
)
def test_malformed_scenarionet_raises_naming_the_field(change, field):
    # (A malformed map feature, light or other agent is dropped alone: `test_real_formats`.)
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.").replace("'", "'")):
        scenarionet.from_dict(broken_sn(change), "f.pkl")


def test_pickles_that_would_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"tracks": Evil()}, f)
    with pytest.raises(ScenarioError, match="refusing to unpickle"):
        scenarionet.load(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(ScenarioError, match="not a readable ScenarioNet pickle"):
        scenarionet.load(path)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d.pop("objects"), "'objects'"),
        (lambda d: d["objects"][0]["position"].__setitem__(3, {"x": 1.0}), r"'objects\[0\]\.position'"),
        (lambda d: d["objects"][2].update(valid=[True]), r"'objects\[2\]'"),
        (lambda d: d["metadata"].update(sdc_track_index=9), "'metadata.sdc_track_index'"),
        (lambda d: d["roads"][0].pop("geometry"), "'geometry'"),
    ],
)
def test_malformed_gpudrive_raises_naming_the_field(change, field):
    d = gpudrive_dict()
    change(d)
    with pytest.raises(ScenarioError, match=field):
        gpudrive_json.from_dict(d, "f.json")


def test_gpudrive_file_errors(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        gpudrive_json.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ScenarioError, match="JSON object"):
        gpudrive_json.load(path)
