"""Convert a public scenario file (ScenarioNet ``.pkl`` or GPUDrive/Waymo ``.json``) and drive it.

Real logged data (Waymo Open Motion via ScenarioNet or GPUDrive, nuPlan/nuScenes/Argoverse via
ScenarioNet) becomes AlpaGym `Scenario`s with `alpagym_env.scenarios.importers.load_file`; the
command-line equivalent for whole directories is::

    python -m alpagym_env.scenarios.convert DATA/ --out real.npz
    python -m alpagym_env.evaluate --policy expert idm --suite real.npz --horizon 90

Without a path, this script first writes a small synthetic scene in the public format you choose (a
two-lane road, three cars and a traffic light, 9.1 s at 10 Hz like a Waymo scene), so it runs offline.
It then converts the file, checks the expert logs (collisions, off-road, red lights), saves the scene
as AlpaGym's versioned ``.npz`` and loads it back (loading validates every field), and finally drives
it closed-loop with the expert (log replay) and the rule-based planner, and as a Gymnasium env.

Run:
    python examples/convert_scenario.py                          # synthetic ScenarioNet pickle
    python examples/convert_scenario.py --format gpudrive        # synthetic GPUDrive JSON
    python examples/convert_scenario.py path/to/scene.pkl        # your own file
    python examples/convert_scenario.py --quick                  # as the first, kept short
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.evaluation import eval_config, evaluate, summarize, to_markdown
from alpagym_env.policies import RulePolicy
from alpagym_env.scenarios import check_expert_logs, load_scenario, save_scenario
from alpagym_env.scenarios.importers import load_file

T = 91  # steps: 9.1 s at 10 Hz
TIME = np.arange(T) * 0.1
XS = np.arange(0.0, 301.0, 5.0)  # road samples along +x, m
# (id, x0 m, lane centre y m, speed m/s): the ego in lane 0, a car ahead of it, one in lane 1.
CARS = [("ego", 20.0, 0.0, 10.0), ("lead", 45.0, 0.0, 10.0), ("left", 10.0, 3.5, 12.0)]
LIGHT = ["LANE_STATE_GO"] * 50 + ["LANE_STATE_STOP"] * (T - 50)  # red at x = 250 m after 5 s


def line(y: float) -> np.ndarray:
    """(P, 3) polyline along +x at height 0."""
    return np.stack([XS, np.full_like(XS, y), np.zeros_like(XS)], axis=1)


def scenarionet_scene() -> dict:
    """A scene in ScenarioNet's ``ScenarioDescription`` layout (a plain dict of lists and arrays)."""
    tracks = {}
    for key, x0, y0, v in CARS:
        tracks[key] = {
            "type": "VEHICLE",
            "state": {
                "position": np.stack([x0 + v * TIME, np.full(T, y0), np.zeros(T)], axis=1),
                "heading": np.zeros(T),
                "velocity": np.tile([v, 0.0], (T, 1)),
                "valid": np.ones(T, dtype=bool),
                "length": np.full(T, 4.6),
                "width": np.full(T, 1.9),
                "height": np.full(T, 1.5),
            },
            "metadata": {"type": "VEHICLE", "object_id": key, "track_length": T},
        }
    return {
        "id": "example-straight",
        "version": "MetaDrive v0.4.2",
        "length": T,
        "metadata": {"ts": TIME, "sdc_id": "ego", "dataset": "synthetic", "scenario_id": "example-straight"},
        "tracks": tracks,
        "map_features": {
            "100": {"type": "LANE_SURFACE_STREET", "polyline": line(0.0), "speed_limit_kmh": 54},
            "101": {"type": "LANE_SURFACE_STREET", "polyline": line(3.5), "speed_limit_kmh": 54},
            "200": {"type": "ROAD_EDGE_BOUNDARY", "polyline": line(-1.75)},
            "201": {"type": "ROAD_EDGE_BOUNDARY", "polyline": line(5.25)},
            "300": {"type": "ROAD_LINE_BROKEN_SINGLE_WHITE", "polyline": line(1.75)},  # ignored
        },
        "dynamic_map_states": {
            "500": {
                "type": "TRAFFIC_LIGHT",
                "state": {"object_state": LIGHT},
                "lane": "100",
                "stop_point": np.array([250.0, 0.0, 0.0]),
            }
        },
    }


def gpudrive_scene() -> dict:
    """The same scene in GPUDrive's Waymo-JSON layout (lists of {x, y, z} points)."""

    def points(pts):
        return [{"x": float(x), "y": float(y), "z": 0.0} for x, y, _ in pts]

    objects = [
        {
            "type": "vehicle",
            "id": key,
            "position": [{"x": x0 + v * t, "y": y0, "z": 0.0} for t in TIME],
            "heading": [0.0] * T,
            "velocity": [{"x": v, "y": 0.0}] * T,
            "valid": [True] * T,
            "length": 4.6,
            "width": 1.9,
            "height": 1.5,
            "goalPosition": {"x": x0 + v * TIME[-1], "y": y0, "z": 0.0},
        }
        for key, x0, y0, v in CARS
    ]
    roads = [
        {"type": "lane", "id": 100, "geometry": points(line(0.0))},
        {"type": "lane", "id": 101, "geometry": points(line(3.5))},
        {"type": "road_edge", "id": 200, "geometry": points(line(-1.75))},
        {"type": "road_edge", "id": 201, "geometry": points(line(5.25))},
        {"type": "road_line", "id": 300, "geometry": points(line(1.75))},
    ]
    light = {"state": ["go"] * 50 + ["stop"] * (T - 50), "x": [250.0] * T, "y": [0.0] * T, "z": [0.0] * T,
             "time_index": list(range(T))}  # fmt: skip
    return {
        "name": "example-straight.json",
        "scenario_id": "example-straight",
        "objects": objects,
        "roads": roads,
        "tl_states": {"100": light},
        "metadata": {"sdc_track_index": 0},
    }


def write_synthetic(fmt: str, folder: str) -> str:
    if fmt == "scenarionet":
        path = os.path.join(folder, "sd_synthetic_example-straight.pkl")
        with open(path, "wb") as f:
            pickle.dump(scenarionet_scene(), f)
    else:
        path = os.path.join(folder, "example-straight.json")
        with open(path, "w") as f:
            json.dump(gpudrive_scene(), f)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", nargs="?", help="a ScenarioNet .pkl or GPUDrive .json (default: write one)")
    p.add_argument("--format", choices=("scenarionet", "gpudrive"), default="scenarionet",
                   help="format of the synthetic file written when no path is given")  # fmt: skip
    p.add_argument("--out", default=None, help="where to save the converted .npz (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="short episodes (the scene is small anyway)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        src = args.path or write_synthetic(args.format, tmp)
        print(f"input: {src} ({os.path.getsize(src) / 1024:.0f} KiB)")

        # 1. Convert: the importer is picked from the suffix; a malformed file raises ScenarioError
        #    naming the file and the field.
        scene = load_file(src)
        print(
            f"converted {scene.scenario_id!r} (family {scene.family!r}): {scene.num_agents} agents, "
            f"{scene.num_steps} steps of {scene.dt} s, {scene.num_lanes} lanes, {scene.num_lights} lights"
        )

        # 2. Validate the expert logs with the simulator's own geometry.
        problems = check_expert_logs(scene)
        print(f"expert-log problems: {problems or 'none'}")

        # 3. Save in AlpaGym's versioned format and load it back (loading checks every field).
        out = args.out or os.path.join(tmp, f"{scene.scenario_id}.npz")
        save_scenario(out, scene)
        scene = load_scenario(out)
        print(f"saved and reloaded {out}")

        # 4. Drive it: scored closed-loop with the expert (log replay) and the rule-based planner.
        horizon = scene.num_steps - 1  # imported logs are short: 9 s for Waymo scenes
        if args.quick:
            horizon = min(horizon, 50)
        results = evaluate(["expert", "idm"], [scene], eval_config(horizon=horizon))
        print(f"\nclosed-loop, {horizon} steps:\n")
        print(to_markdown(summarize(results)))

        # ... and as a Gymnasium env, which takes a list of scenes instead of a suite name.
        env = gym.make("AlpaDrive-v0", scenarios=[scene], horizon=horizon)
        policy = RulePolicy(obs=env.unwrapped.config.obs)
        obs, info = env.reset(seed=0)
        while True:
            obs, reward, terminated, truncated, info = env.step(policy(obs[None])[0])
            if terminated or truncated:
                break
        ep = info["alpagym"]
        print(
            f"gym.make(..., scenarios=[scene]) with RulePolicy: {info['t']} steps, return {ep['r']:.3f}, "
            f"scene_score {ep['scene_score']:.2f}, dist_to_gt_trajectory {ep['dist_to_gt_trajectory']:.2f} m"
        )
        env.close()


if __name__ == "__main__":
    main()
