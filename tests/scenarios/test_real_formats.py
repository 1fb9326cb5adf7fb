"""Importers on scenes written the way ScenarioNet (nuScenes, nuPlan, Waymo, AV2), MetaDrive 0.3 and old
GPUDrive write them (`tests.scenarios.real_formats`), the conversion report, and dataset directories."""

from __future__ import annotations

import json
import pickle
from collections import Counter

import numpy as np
import pytest

from alpagym_env.evaluation import eval_config, evaluate
from alpagym_env.scenarios import check_expert_logs
from alpagym_env.scenarios.convert import main as convert
from alpagym_env.scenarios.importers import gpudrive_json, scenarionet
from alpagym_env.scenarios.schema import (
    AGENT_CYCLIST,
    AGENT_STATIC,
    AGENT_VEHICLE,
    LIGHT_GREEN,
    LIGHT_RED,
    LIGHT_UNKNOWN,
    ScenarioError,
    load_suite,
    replace,
)
from tests.scenarios import real_formats as rf


def imported(data: dict) -> tuple:
    notes = Counter()
    return scenarionet.from_dict(data, "f.pkl", notes), notes


def note(notes: Counter, text: str) -> int:
    return sum(n for k, n in notes.items() if text in k)


def test_nuscenes_scene_keeps_its_map_boxes_and_static_objects():
    s, notes = imported(rf.nuscenes())
    ego = s.ego_index
    assert (s.length[ego], s.width[ego]) == (pytest.approx(4.08), pytest.approx(1.73))  # swapped
    assert note(notes, "wider than long") == 1
    assert len(s.edge_offsets) - 1 == 1 and note(notes, "boundary_N") == 1  # drivable-area outline
    assert note(notes, "polygon-only road edges skipped") == 1  # the walkway, redundant here
    kinds = {round(float(s.traj[i, 0, 0])): int(k) for i, k in enumerate(s.agent_type)}
    assert kinds[150] == kinds[175] == AGENT_STATIC and kinds[120] == AGENT_CYCLIST
    moto = int(np.flatnonzero(s.agent_type == AGENT_CYCLIST)[0])
    assert (s.length[moto], s.width[moto]) == (1.8, 0.8) and note(notes, "without a box size") == 1
    np.testing.assert_allclose(s.lane_width[:2], 3.5)  # twice the centre line's distance to its polygon
    assert s.lane_width[2] == 3.7 and note(notes, "lanes without a width") == 1  # the connector
    assert s.num_lights == 0 and note(notes, "without traffic-light states") == 1
    assert check_expert_logs(s) == []  # the logs stay on the road and clear of each other
    # The imported edges make off-road fire: the ego's log moved 5 m to the left leaves the road.
    traj = s.traj.copy()
    traj[ego, :, 1] += 5.0
    assert any("off-road" in p for p in check_expert_logs(replace(s, traj=traj), lights=False))


def test_walkways_bound_the_road_when_the_scene_has_no_other_edge():
    d = rf.nuscenes()
    del d["map_features"]["boundary_0"]
    s, notes = imported(d)
    assert len(s.edge_offsets) - 1 == 1 and note(notes, "used as closed outlines") == 1
    e = s.edge(0)
    assert np.allclose(e[0], e[-1]) and len(e) == 5  # the walkway's closed outline


def test_a_map_feature_or_agent_that_cannot_be_read_is_dropped_alone():
    d = rf.nuscenes()
    d["map_features"]["lane-b"].pop("polyline")
    d["map_features"]["junk"] = "not a feature"
    d["tracks"]["car"]["state"]["position"] = np.zeros((5, 3))
    s, notes = imported(d)
    assert s.num_lanes == 2 and note(notes, "map features dropped: field 'map_features.<id>'") == 2
    assert s.num_agents == 4 and note(notes, "agents dropped: field 'tracks.<id>.state'") == 1


def test_a_scene_with_only_a_sample_rate_gets_its_time_stamps():
    d = rf.waymo()
    del d["metadata"]["ts"]
    d["metadata"]["sample_rate"] = 0.1
    s, _ = imported(d)
    assert s.num_steps == rf.T and s.dt == 0.1


def test_nuplan_lights_and_an_unseen_light():
    s, notes = imported(rf.nuplan())
    assert s.num_lights == 1 and note(notes, "lights dropped") == 1  # stop_point None
    np.testing.assert_array_equal(s.light_states[0, :60], LIGHT_GREEN)
    np.testing.assert_array_equal(s.light_states[0, 60:], LIGHT_RED)
    np.testing.assert_allclose(s.stop_lines[0, [0, 2]], 180.0)
    assert s.agent_type[np.argmax(s.traj[:, 0, 0] == 175.0)] == AGENT_STATIC


def test_waymo_lane_width_is_left_plus_right():
    s, notes = imported(rf.waymo())
    np.testing.assert_allclose(s.lane_width, 3.6)  # was 1.8: the mean of left and right
    assert s.lane_speed_limit[0] == pytest.approx(30 * 0.44704)
    assert s.num_lights == 1 and np.all(s.light_states[0, :5] == LIGHT_UNKNOWN)
    assert s.light_states[0, 10] == LIGHT_GREEN and s.light_states[0, -1] == LIGHT_RED
    assert abs(s.stop_lines[0, 1] - s.stop_lines[0, 3]) == pytest.approx(3.6)  # across lane 100
    assert not notes.get("scenes without road edges (off-road cannot fire)")


def test_av2_scene_from_a_tuple_pickle(tmp_path):
    path = tmp_path / "sd_av2_v2_0a0a.pkl"
    with open(path, "wb") as f:
        pickle.dump(("0a0a", rf.av2()), f)
    notes = Counter()
    s = scenarionet.load(path, notes)
    assert s.scenario_id == "av2-straight" and s.num_agents == 4
    still = s.agent_type[np.argmax(s.traj[:, 0, 0] == 150.0)]
    moving = s.agent_type[np.argmax(s.traj[:, 0, 0] == 60.0)]
    assert (still, moving) == (AGENT_STATIC, AGENT_VEHICLE)
    np.testing.assert_allclose(s.lane_width, 3.7)
    assert note(notes, "lanes without a width") == 2 and note(notes, "without road edges") == 1
    with open(path, "wb") as f:
        pickle.dump(("a", "b"), f)
    with pytest.raises(ScenarioError, match="sd_av2_v2_0a0a.pkl: expected a scenario dict, got a tuple"):
        scenarionet.load(path)


def test_metadrive_03_lights_keep_the_scene():
    s, notes = imported(rf.metadrive03())
    assert s.num_lights == 1 and note(notes, "lights dropped: field 'dynamic_map_states.<id>") == 1
    assert s.light_states[0, 0] == LIGHT_UNKNOWN and s.light_states[0, 10] == LIGHT_GREEN
    assert s.light_states[0, -1] == LIGHT_RED
    np.testing.assert_allclose(s.stop_lines[0, [0, 2]], 180.0)


def test_old_gpudrive_json_without_an_ego_index():
    notes = Counter()
    s = gpudrive_json.from_dict(rf.gpudrive_old(), "old.json", notes=notes)
    assert s.traj[s.ego_index, 0, 0] == 20.0  # the first vehicle logged throughout
    assert note(notes, "without an ego index") == 1 and note(notes, "lights dropped") == 1
    assert s.agent_type[np.argmax(s.traj[:, 0, 0] == 150.0)] == AGENT_STATIC
    cyc = int(np.flatnonzero(s.agent_type == AGENT_CYCLIST)[0])
    assert (s.length[cyc], s.width[cyc]) == (pytest.approx(1.8), pytest.approx(0.7))
    assert s.num_lights == 1 and check_expert_logs(s) == []


def test_log_replay_scores_full_marks_on_every_format():
    scenes = [imported(make())[0] for make in (rf.nuscenes, rf.nuplan, rf.waymo, rf.av2, rf.metadrive03)]
    scenes.append(gpudrive_json.from_dict(rf.gpudrive_old()))
    res = evaluate(["expert"], scenes, eval_config(horizon=100))["expert"]
    assert [r.metrics["scene_score"] for r in res] == [1.0] * len(scenes)


def test_restricted_unpickler_names_the_file_and_the_refused_type(tmp_path):
    path = tmp_path / "sd_evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"tracks": Counter()}, f)  # harmless, but not a type a scenario needs
    with pytest.raises(ScenarioError, match=r"sd_evil\.pkl: refusing to unpickle type collections\.Counter"):
        scenarionet.load(path)


def _dump(path, value):
    with open(path, "wb") as f:
        pickle.dump(value, f)


def test_convert_reads_scenarionet_dataset_directories_and_reports(tmp_path, capsys):
    # A combined ScenarioNet dataset: the summary and mapping point into two source datasets beside it.
    root = tmp_path / "sn"
    for sub, name, make in (
        ("nuscenes_0", "sd_nuscenes_a.pkl", rf.nuscenes),
        ("waymo_0", "sd_waymo_b.pkl", rf.waymo),
    ):
        (root / sub).mkdir(parents=True)
        _dump(root / sub / name, make())
    (root / "combined").mkdir()
    summary = {"sd_nuscenes_a.pkl": {"id": "a", "number_summary": {"num_object_types": {"VEHICLE"}}},
               "sd_waymo_b.pkl": {"id": "b"}}  # fmt: skip
    _dump(root / "combined" / "dataset_summary.pkl", summary)
    _dump(
        root / "combined" / "dataset_mapping.pkl",
        {"sd_nuscenes_a.pkl": "../nuscenes_0", "sd_waymo_b.pkl": "../waymo_0"},
    )
    (tmp_path / "old.json").write_text(json.dumps(rf.gpudrive_old()))
    out = tmp_path / "real.npz"
    assert convert([str(root / "combined"), str(tmp_path / "old.json"), "--out", str(out)]) == 0
    assert [s.scenario_id for s in load_suite(out)] == ["nuscenes-straight", "waymo-straight", "gd-old"]
    err = capsys.readouterr().err
    assert f"{root / 'combined'}: 2 scenes converted, 0 failed" in err
    assert "agents: 1 cyclist, 1 pedestrian, 2 static, 4 vehicle" in err
    assert (
        "map: 5 lanes (median width 3.60 m), 3 road edges" in err
        and "log length: 10.0 / 10.0 / 10.0 s" in err
    )
    assert "traffic lights: 1 in 1 of 2 scenes" in err
    assert "1 x vehicle boxes wider than long: length and width swapped" in err
    assert "1 x scenes without an ego index" in err
    _dump(
        root / "combined" / "dataset_mapping.pkl",
        {"sd_nuscenes_a.pkl": "../gone", "sd_waymo_b.pkl": "../waymo_0"},
    )
    assert convert([str(root / "combined"), "--out", str(tmp_path / "x.npz")]) == 0
    assert "1 scenes converted, 1 failed" in capsys.readouterr().err
