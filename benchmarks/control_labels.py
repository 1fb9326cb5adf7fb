"""How clean the behaviour-cloning control labels are, and how well they drive: one line per bad scene.

`expert_dataset` labels every step of the ego's closed-loop drive along its log (the tracking controller's
commands along the logged future). This script replays those labels closed loop through the engine (bit
for bit the same drive) and reports per scene the scene score, the largest distance to the logged
position and the number of steering labels pinned at +-1 (a chattering inverse alternates between full
left and full right in tight turns).

Targets: every scene scores >= 0.995 and stays within 0.5 m of its log; no scene has >= 5 pinned labels.

Usage: python benchmarks/control_labels.py [--suite val] [--scenes 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from alpagym_env import expert_dataset
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios.schema import Scenario

PINNED = 1.0 - 1e-6  # |normalised steering| at or above this counts as pinned at the limit


def label_replay(scenarios: Sequence[Scenario], num_envs: int = 32) -> dict[str, np.ndarray]:
    """Control labels of `scenarios` and their closed-loop replay, per scene.

    Returns:
        ``scene_score``, ``dist_to_gt`` (largest distance to the logged position, m), ``pinned`` (steering
        labels at +-1), ``flips`` (sign changes between successive steering labels beyond +-0.5) and
        ``steps``, each (S,) in the order of `scenarios`.
    """
    scenarios = list(scenarios)
    data = expert_dataset(scenarios, "control", num_envs=num_envs)
    n = len(scenarios)
    out = {k: np.zeros(n) for k in ("scene_score", "dist_to_gt", "pinned", "flips", "steps")}
    for e in range(n):
        steer = data.actions[data.episode == e, 1].astype(np.float64)
        out["pinned"][e] = np.sum(np.abs(steer) >= PINNED)
        big = steer[np.abs(steer) > 0.5]
        out["flips"][e] = np.sum(np.sign(big[1:]) != np.sign(big[:-1]))
        out["steps"][e] = steer.size
    b = max(1, min(num_envs, n))
    sim = BatchedSim(data.config, b, scenarios, n)
    actions = np.zeros((b, 1, data.actions.shape[1]))
    for first in range(0, n, b):
        ids = list(range(first, min(first + b, n)))
        sim.reset(range(len(ids)), ids)
        labels = [data.actions[data.episode == i].astype(np.float64) for i in ids]
        sim.active[:] = False
        sim.active[: len(ids)] = True
        for t in range(data.config.horizon):
            if not sim.active.any():
                break
            for k, lab in enumerate(labels):
                actions[k, 0] = lab[t] if t < len(lab) else 0.0
            sim.step(actions)
            done = sim.active & (sim.terminated[:, 0] | sim.truncated)
            for k in np.flatnonzero(done):
                m = sim.episode_metrics(int(k))
                out["scene_score"][ids[k]] = m["scene_score"]
                out["dist_to_gt"][ids[k]] = m["dist_to_gt_location"]
            sim.active &= ~done
    return out


def main(argv: list[str] | None = None) -> dict[str, np.ndarray]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="val")
    ap.add_argument("--scenes", type=int, default=None, help="a prefix of the suite")
    args = ap.parse_args(argv)
    from alpagym_env.scenarios import load_suite

    scenes = list(load_suite(args.suite))[: args.scenes]
    t0 = time.perf_counter()
    r = label_replay(scenes)
    bad = (r["scene_score"] < 0.995) | (r["dist_to_gt"] > 0.5) | (r["pinned"] >= 5)
    print(f"{len(scenes)} scenes of {args.suite!r} in {time.perf_counter() - t0:.1f} s")
    print("| scene | score | max dist to log (m) | pinned steering | sign flips |")
    print("|---|---|---|---|---|")
    for i in np.flatnonzero(bad | (r["pinned"] > 0)):
        print(
            f"| {scenes[i].scenario_id} | {r['scene_score'][i]:.3f} | {r['dist_to_gt'][i]:.3f} "
            f"| {r['pinned'][i]:.0f} | {r['flips'][i]:.0f} |"
        )
    print(
        f"min score {r['scene_score'].min():.4f}, max dist {r['dist_to_gt'].max():.3f} m, "
        f"scenes with >= 5 pinned labels {int(np.sum(r['pinned'] >= 5))}, pinned labels "
        f"{int(r['pinned'].sum())}, scenes off target {int(bad.sum())}"
    )
    return r


if __name__ == "__main__":
    main()
