"""The engine's thread settings and the scaling benchmark's workloads."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _spincount(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, alpagym_env; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True)
    return out.stdout.strip()


def test_idle_pool_threads_spin_briefly_unless_the_user_chose():
    assert _spincount() == "10000"
    assert _spincount(OMP_WAIT_POLICY="ACTIVE") == "None"
    assert _spincount(GOMP_SPINCOUNT="5") == "5"


@pytest.fixture(scope="module")
def scaling():
    sys.path.insert(0, str(BENCH))
    import env_scaling

    yield env_scaling
    sys.path.remove(str(BENCH))


def test_dense_scene_adds_time_shifted_copies(scaling):
    (scene,) = scaling.scenes_with_agents(1, 20)
    dense = scaling.dense_scene(scene, 100)
    assert dense.traj.shape[0] == 100 and dense.ego_index == scene.ego_index
    n = scene.traj.shape[0]
    src = next(i for i in range(n) if i != scene.ego_index)
    shift = scaling.SHIFT_STEPS
    # The first copy is agent `src` SHIFT_STEPS steps later, invalid past its log's end.
    np.testing.assert_array_equal(dense.traj[n, :-shift], scene.traj[src, shift:])
    assert (
        not dense.valid[n, -shift:].any() and dense.valid[n, :-shift].all() == scene.valid[src, shift:].all()
    )
    assert dense.length[n] == scene.length[src]


def test_random_workload_resets_finished_scenes(scaling):
    scenes = scaling.scenes_with_agents(4, 8)
    w = scaling.RawWorkload(scenes, 4, "random", max_agents=8)
    resets = 0
    for _ in range(60):
        w.step()
        resets += int((w.sim.state["t"] == 0).sum())  # a finished scene is back at step 0
    assert resets > 0 and not (w.sim.terminated[:, 0] & (w.sim.state["t"] > 0)).any()


def test_random_workload_can_restart_each_slot_on_its_own_scene_or_copy_every_load(scaling):
    scenes = scaling.scenes_with_agents(9, 8)
    drawn = scaling.RawWorkload(scenes[:4], 4, "random", max_agents=8)
    kept = scaling.RawWorkload(scenes[:4], 4, "random", max_agents=8, loads="kept")
    copied = scaling.RawWorkload(scenes, 4, "random", max_agents=8, loads="copied")
    assert copied.sim.row.tolist() == [0, 1, 2, 3] and len(copied.sim.scene["log"]) == 4  # no spare rows
    resets, copies = 0, 0
    for _ in range(60):
        drawn.step()
        kept.step()
        before = copied.sim.scenario_index.copy()
        copied.step()
        resets += int((kept.sim.state["t"] == 0).sum())
        new = copied.sim.scenario_index != before
        assert not np.isin(copied.sim.scenario_index[new], before).any()  # a scene no slot held
        copies += int(new.sum())
        assert len(set(copied.sim.scenario_index.tolist())) == 4  # so no two slots share a row
    assert resets > 0 and copies > 0
    np.testing.assert_array_equal(kept.sim.scenario_index, kept.ids)
    assert (drawn.sim.scenario_index != drawn.ids).any()  # 60 steps of resets draw other scenes
    with pytest.raises(ValueError, match="more scenes than the 4 slots"):
        scaling.RawWorkload(scenes[:4], 4, "random", max_agents=8, loads="copied")


def test_interleaved_rates_time_every_step_in_turns(scaling):
    import time

    import env_step

    calls = []
    steps = {"fast": lambda: calls.append("fast"), "slow": lambda: (calls.append("slow"), time.sleep(0.002))}
    rates = env_step.interleaved_rates(steps, 0.1, batch=4, windows=5)
    assert rates["fast"] > 10 * rates["slow"] > 0
    assert rates["slow"] < 4 / 0.002  # 4 env-steps a call, each call at least 2 ms
    turns = [name for i, name in enumerate(calls) if i == 0 or calls[i - 1] != name]
    assert turns[:2] == ["fast", "slow"] and len(turns) >= 2 * 5  # warm-ups, then 5 windows of each


def test_batch_and_agent_tables_print(scaling, capsys):
    scenes = scaling.scenes_with_agents(2, 8)
    scaling.batch_table(scenes, [1, 2], 0.05)
    scaling.agents_table(scenes, [8, 40], 0.05)
    out = capsys.readouterr().out
    assert "| 2 |" in out and "| idm | 40 |" in out and "ns per agent-step" in out


def test_resetting_a_slot_to_its_scene_copies_nothing_and_replays_the_same(scaling, monkeypatch):
    from alpagym_env.config import EnvConfig
    from alpagym_env.envs.batched_sim import BatchedSim

    scenes = scaling.scenes_with_agents(3, 8)
    sim = BatchedSim(EnvConfig.from_kwargs(max_agents=8), 2, scenes, 3)
    acts = np.full((2, 1, 2), 0.3)
    runs = []
    for ids in ([0, 1], [0, 1], [2, 1]):
        sim.reset([0, 1], ids)
        for _ in range(20):
            sim.step(acts)
        runs.append(sim.obs.copy())
        if len(runs) == 1:  # slots that keep their scene must not touch the scene source again
            monkeypatch.setattr(
                sim, "compile", lambda i, c=None, real=sim.compile: real(i, c) if i == 2 else 1 / 0
            )
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0][1], runs[2][1])
    assert not np.array_equal(runs[0][0], runs[2][0]) and sim.scenario_index.tolist() == [2, 1]
