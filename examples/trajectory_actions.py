"""Trajectory actions: give the ego a plan of future poses and let AlpaGym's controller track it.

With ``action_type="trajectory"`` an action is H future poses of the ego (default 8 poses, 0.5 s
apart) in its current frame (+x ahead, +y left), each ``[x / 160 m, y / 40 m, heading / pi]``
(`alpagym_env.sim.trajectory.encode_poses` does the scaling). Every 0.1 s step a time-varying LQ
controller re-plans from the current state and tracks the poses on the ego's dynamic bicycle, within
its acceleration, jerk and steering limits; ``info["trajectory_infeasible"]`` flags plans beyond them.

Two planners, both re-planning every step:

- ``expert``: the ego's own logged future (`alpagym_env.dataset.future_log`) in its current frame; the
  controller then reproduces the log to a few centimetres (``dist_to_gt``);
- ``route``: a hand-made plan from the observation alone: follow the route waypoints at a target
  speed, reached with a gentle acceleration (blind to traffic and lights: it does crash).

For each, the script prints the distance to the logged position (``dist_to_gt``) and the tracking error:
how far the ego ends up, 0.5 s later, from where the plan put it (pose 1 of each plan).

Run:
    python examples/trajectory_actions.py                 # 3 train scenes, 200 steps, both planners
    python examples/trajectory_actions.py --quick         # 1 smoke scene, 60 steps
    python examples/trajectory_actions.py --planner route --target-speed 12
"""

from __future__ import annotations

import argparse
import math

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.dataset import future_log
from alpagym_env.evaluation import load_scenarios
from alpagym_env.sim.dynamics import YAW, X, Y
from alpagym_env.sim.trajectory import encode_poses


def ego_pose(env) -> np.ndarray:
    """The ego's world pose [x m, y m, heading rad], from the env's state snapshot (slot 0 is the ego)."""
    row = env.unwrapped.get_state()["agent"][0]
    return np.array([row[X], row[Y], row[YAW]])


def to_ego_frame(world: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(H, 3) world poses -> the frame of `pose` (+x along its heading, +y left)."""
    dx, dy = world[:, 0] - pose[0], world[:, 1] - pose[1]
    c, s = math.cos(pose[2]), math.sin(pose[2])
    dh = (world[:, 2] - pose[2] + np.pi) % (2 * np.pi) - np.pi
    return np.stack([dx * c + dy * s, -dx * s + dy * c, dh], axis=1)


def to_world(local: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(2,) ego-frame point -> world x, y."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return pose[:2] + np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])


class ExpertPlanner:
    """The logged future of the scene's ego, re-expressed in the ego's current frame every step."""

    def __init__(self, scene, config) -> None:
        self.traj = config.trajectory
        self.m = self.traj.steps()  # simulation steps between poses
        # Past the end of the log the ego goes on at its last speed and heading.
        self.future = future_log(scene, scene.ego_index, config.horizon + 1 + self.traj.num_poses * self.m)

    def __call__(self, obs: np.ndarray, pose: np.ndarray, t: int) -> np.ndarray:
        world = self.future[t + self.m * np.arange(1, self.traj.num_poses + 1)]
        return to_ego_frame(world, pose)  # (H, 3) ego-frame poses


class RoutePlanner:
    """Poses along the observation's route waypoints at a target speed (from the observation alone)."""

    def __init__(self, config, target_speed: float, accel: float = 1.5) -> None:
        self.config, self.target, self.accel = config, target_speed, accel
        self.times = config.trajectory.spacing * np.arange(1, config.trajectory.num_poses + 1)  # s

    def __call__(self, obs: np.ndarray, pose: np.ndarray, t: int) -> np.ndarray:
        cfg = self.config.obs
        speed = obs["ego"][0] * cfg.speed_scale  # m/s
        pts = np.vstack([[0.0, 0.0], obs["route"][:, :2] * cfg.position_scale])  # ego frame, m
        # Near the end of a route the waypoints repeat: drop repeats, then extend straight ahead.
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-3])
        pts = pts[keep]
        last = pts[-1] - pts[-2] if len(pts) > 1 else np.array([1.0, 0.0])
        pts = np.vstack([pts, pts[-1] + 100.0 * last / np.linalg.norm(last)])
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        # Distance covered at each pose time, ramping the speed to the target at `accel` m/s^2.
        dt = 0.1
        v, s, dist = speed, 0.0, []
        for k in range(1, int(round(self.times[-1] / dt)) + 1):
            v_next = float(np.clip(self.target, v - self.accel * dt, v + self.accel * dt))
            s += 0.5 * (v + v_next) * dt
            v = v_next
            if np.isclose(k * dt, self.times).any():
                dist.append(s)
        dist = np.array(dist)
        x, y = np.interp(dist, arc, pts[:, 0]), np.interp(dist, arc, pts[:, 1])
        ahead = dist + 0.5  # heading: the direction of the path half a metre further on
        heading = np.arctan2(np.interp(ahead, arc, pts[:, 1]) - y, np.interp(ahead, arc, pts[:, 0]) - x)
        return np.stack([x, y, heading], axis=1)


def drive(env, scene_index: int, planner_name: str, scene, target_speed: float, seed: int) -> None:
    config = env.unwrapped.config
    if planner_name == "expert":
        planner = ExpertPlanner(scene, config)
    else:
        planner = RoutePlanner(config, target_speed)
    m = config.trajectory.steps()
    obs, info = env.reset(seed=seed, options={"scenario_index": scene_index})
    promised: dict[int, np.ndarray] = {}  # step -> where a plan put the ego for that step (world x, y)
    tracking, dist_to_gt, infeasible = [], [], 0
    while True:
        t, pose = info["t"], ego_pose(env)
        if t in promised:
            tracking.append(float(np.linalg.norm(pose[:2] - promised.pop(t))))
        poses = planner(obs, pose, t)  # (H, 3) in the ego frame
        promised[t + m] = to_world(poses[0, :2], pose)
        obs, reward, terminated, truncated, info = env.step(encode_poses(poses, config.trajectory))
        dist_to_gt.append(env.unwrapped.step_metrics()["dist_to_gt"])
        infeasible += info["trajectory_infeasible"]
        if terminated or truncated:
            break
    ep = info["alpagym"]
    print(
        f"  {planner_name:>6} on {env.unwrapped.scenario_id:<20} {info['t']:4d} steps | tracking error "
        f"mean {np.mean(tracking):.3f} m, max {np.max(tracking):.3f} m | dist_to_gt mean "
        f"{np.mean(dist_to_gt):.3f} m, max {np.max(dist_to_gt):.3f} m | infeasible plans {infeasible} | "
        f"scene_score {ep['scene_score']:.2f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="train")
    p.add_argument("--scenes", type=int, default=3)
    p.add_argument("--horizon", type=int, default=200)
    p.add_argument("--planner", choices=("expert", "route", "both"), default="both")
    p.add_argument("--target-speed", type=float, default=10.0, help="m/s, for the route planner")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny run (1 smoke scene, 60 steps)")
    args = p.parse_args()
    if args.quick:
        args.suite, args.scenes, args.horizon = "smoke", 1, 60

    scenes = load_scenarios(args.suite)[: args.scenes]
    env = gym.make(
        "AlpaDrive-v0",
        scenarios=scenes,  # passing the scenes lets the expert planner read their logs
        horizon=args.horizon,
        action_type="trajectory",
        trajectory={"num_poses": 8, "spacing": 0.5},  # the defaults, spelled out
        obs_type="dict",
    )
    print(f"action space: {env.action_space} = 8 poses x [x / 160 m, y / 40 m, heading / pi]")
    planners = ("expert", "route") if args.planner == "both" else (args.planner,)
    for i, scene in enumerate(scenes):
        for name in planners:
            drive(env, i, name, scene, args.target_speed, args.seed)
    env.close()


if __name__ == "__main__":
    main()
