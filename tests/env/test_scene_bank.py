"""The scene bank: slots share the rows of scenes they hold, and a scene still in the bank loads
without a copy, with the same simulation as one copied in afresh."""

import gymnasium as gym
import numpy as np
import pytest

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.scene_bank import SceneRows
from alpagym_env.scenarios import generate


def test_rows_are_shared_and_the_longest_idle_is_claimed_first():
    rows = SceneRows(num_rows=4, num_slots=2)
    assert rows.row.tolist() == [0, 1]
    a = rows.assign(0, "a")  # a never-used row, not slot 0's own (which it just left)
    assert a == 2 and rows.find("a") == 2
    assert rows.assign(1, "a") == a and rows.held(a) == 2  # slot 1 shares it
    b = rows.assign(0, "b")
    assert b == 3 and rows.held(a) == 1
    assert rows.assign(1, "c") in (0, 1)  # "a" is now idle but newer than the empty rows 0 and 1
    assert rows.find("a") == a
    rows.assign(0, "d")  # slot 0 leaves "b": the idle rows by age are 0 or 1, then "a", then "b"
    rows.assign(1, "e")
    assert rows.find("a") is None and rows.find("b") == b  # the older idle scene was overwritten first


def test_as_many_rows_as_slots_reuse_the_row_a_slot_leaves():
    rows = SceneRows(num_rows=2, num_slots=2)
    rows.assign(0, "a"), rows.assign(1, "b")
    assert rows.assign(0, "c") == rows.row[0] and rows.find("a") is None
    assert rows.assign(1, "c") == rows.row[0] and rows.held(int(rows.row[0])) == 2
    with pytest.raises(ValueError, match="2 rows cannot serve 3"):
        SceneRows(num_rows=2, num_slots=3)


def _scenes(count: int) -> list:
    return [generate(("highway", "intersection", "merge")[i % 3], 500 + i) for i in range(count)]


def _sim(scenes, b: int, spare: int | None) -> BatchedSim:
    config = EnvConfig.from_kwargs(horizon=40, max_agents=12)
    return BatchedSim(config, b, scenes, len(scenes), spare_scenes=spare)


def test_a_scene_in_the_bank_loads_without_writing_it():
    scenes = _scenes(4)
    sim = _sim(scenes, 2, spare=1)  # three rows
    sim.reset([0], [3])  # the buffers now fit every scene
    sim.reset([0, 1], [0, 1])
    sim.reset([0], [2])  # slot 0 leaves scene 0 in the spare row
    for group in (sim.scene, sim.routes):
        for arr in group.values():
            arr.flags.writeable = False
    sim.reset([1], [2])  # held by slot 0: shared
    assert sim.row[0] == sim.row[1]
    sim.reset([0, 1], [0, 1])  # scene 0 from the spare row, scene 1 from the row slot 1 just left
    assert sim.scenario_index.tolist() == [0, 1] and sim.row[0] != sim.row[1]
    with pytest.raises(ValueError, match="read-only"):
        sim.reset([0], [3])  # overwritten since: copied again


def test_shared_and_reused_rows_simulate_exactly_like_copies():
    """Random actions over many episodes of 5 scenes in 4 slots: a bank with no spare rows and one
    with many give the same observations and rewards as one single-scene sim per slot (whose every
    new scene is copied in)."""
    scenes = _scenes(5)
    banks = [_sim(scenes, 4, spare) for spare in (0, 6)]
    singles = [_sim(scenes, 1, None) for _ in range(4)]
    rng = np.random.default_rng(0)
    ids = rng.integers(len(scenes), size=4)
    for sim in banks:
        sim.reset(range(4), ids)
    for b, sim in enumerate(singles):
        sim.reset([0], [ids[b]])
    shared = 0
    for _ in range(160):
        actions = np.clip(rng.normal(0.2, 0.5, (4, 1, 2)), -1, 1)
        for sim in banks:
            sim.step(actions)
        for b, sim in enumerate(singles):
            sim.step(actions[b : b + 1])
            for bank in banks:
                np.testing.assert_array_equal(bank.obs[b], sim.obs[0])
                np.testing.assert_array_equal(bank.reward[b], sim.reward[0])
                np.testing.assert_array_equal(bank.metrics[b], sim.metrics[0])
        done = np.flatnonzero(banks[0].terminated[:, 0] | banks[0].truncated)
        if done.size:
            new = rng.integers(len(scenes), size=done.size)
            for sim in banks:
                sim.reset(done, new)
            for b, i in zip(done, new, strict=True):
                singles[b].reset([0], [i])
        shared += len(banks[0].row) - len(set(banks[0].row.tolist()))
    assert shared > 0  # slots did share rows
    for b in range(4):
        m, ref = np.zeros((len(M.EPISODE_METRICS), 4)), np.zeros((len(M.EPISODE_METRICS), 1))
        banks[0].episode_metric_table([b], m)
        singles[b].episode_metric_table([0], ref)
        np.testing.assert_array_equal(m[:, b], ref[:, 0])


def test_a_vector_env_with_a_spare_row_per_scene_keeps_the_whole_suite_loaded():
    scenes = _scenes(6)
    env = gym.make_vec(
        "AlpaDrive-v0", num_envs=2, scenarios=scenes, spare_scenes=6, horizon=40, max_agents=12
    )
    assert env.sim.scene["log"].shape[0] == 8
    for i in range(0, 6, 2):
        env.reset(options={"scenario_ids": [i, i + 1]})
    for group in (env.sim.scene, env.sim.routes):
        for arr in group.values():
            arr.flags.writeable = False  # every scene is in the bank: no reset may copy one
    rng = np.random.default_rng(0)
    for _ in range(100):
        env.step(rng.uniform(-1, 1, (2, 2)).astype(np.float32))
    for ids in ([5, 0], [3, 3], [1, 2]):
        env.reset(options={"scenario_ids": ids})
    with pytest.raises(ValueError, match="spare_scenes must be >= 0, got -1"):
        gym.make_vec("AlpaDrive-v0", num_envs=2, scenarios=scenes, spare_scenes=-1)
