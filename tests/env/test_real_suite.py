"""A converted real-data suite goes wherever a suite name does, and episodes end where a scene's log ends."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import alpagym_env
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.evaluation import load_scenarios
from alpagym_env.scenarios import load_suite
from alpagym_env.scenarios.importers import gpudrive_json, scenarionet
from alpagym_env.scenarios.schema import save_scenario, save_suite
from tests.scenarios import real_formats as rf


@pytest.fixture(scope="module")
def real_scenes():
    return [scenarionet.from_dict(rf.waymo()), gpudrive_json.from_dict(rf.gpudrive_old())]


@pytest.fixture(scope="module")
def suite_file(real_scenes, tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "real.npz"
    save_suite(path, real_scenes)
    return str(path)


def test_suite_paths_load_as_suites(real_scenes, suite_file, tmp_path):
    ids = [s.scenario_id for s in real_scenes]
    assert [s.scenario_id for s in load_suite(suite_file)] == ids
    for s in real_scenes:
        save_scenario(tmp_path / f"{s.scenario_id}.npz", s)
    assert [s.scenario_id for s in load_suite(str(tmp_path))] == sorted(ids)
    assert [s.scenario_id for s in load_scenarios(suite_file)] == ids
    with pytest.raises(KeyError, match="or a path to a converted .npz suite"):
        load_suite("trian")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_suite(str(tmp_path / "missing.npz"))


def test_every_env_takes_a_suite_path(suite_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scenes are 10 s, shorter than the default horizon
        env = gym.make("AlpaDrive-v0", suite=suite_file)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        envs = gym.make_vec("AlpaDrive-v0", num_envs=2, suite=suite_file)
        obs, _ = envs.reset(seed=0)
        assert obs.shape[0] == 2
        penv = alpagym_env.parallel_env(suite=suite_file, num_controlled=2)
        obs, _ = penv.reset(seed=0)
        assert "agent_0" in obs


def test_bc_and_grpo_read_a_suite_path(suite_file):
    from alpagym_train.bc import _scenes

    assert len(_scenes(suite_file, 1)) == 1


def run_expert(sim: BatchedSim, scene: int) -> int:
    sim.reset([0], [scene])
    sim.expert[0, 0] = True
    actions = np.zeros((1, 1, sim.action_dim))
    while True:
        sim.step(actions)
        if sim.truncated[0] or sim.terminated[0, 0]:
            return int(sim.state["t"][0])


def test_episodes_end_where_the_log_ends_with_one_warning(real_scenes):
    sim = BatchedSim(EnvConfig(horizon=200), 1, real_scenes, len(real_scenes))
    with pytest.warns(UserWarning, match="logs 100 steps, fewer than horizon=200") as caught:
        assert run_expert(sim, 0) == 100  # truncated at the log's end, not padded to 200
    assert len(caught) == 1 and sim.truncated[0] and not sim.terminated[0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once: the second short scene stays quiet
        assert run_expert(sim, 1) == 100
    short = BatchedSim(EnvConfig(horizon=40), 1, real_scenes, len(real_scenes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_expert(short, 0) == 40  # a horizon within the log truncates as before
