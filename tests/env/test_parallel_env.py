"""The PettingZoo env: PettingZoo's own API and seed tests, per-agent fault attribution."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import alpagym_env
from alpagym_env.envs.parallel_env import BatchedMultiAgent
from tests.conftest import straight_road


def scenes():
    return [
        straight_road(
            speeds=(10.0, 10.0, 12.0, 11.0), starts=((40.0, 0.0), (20.0, 0.0), (30.0, 3.5), (60.0, 3.5))
        ),
        straight_road(speeds=(9.0, 9.0, 9.0), starts=((30.0, 3.5), (55.0, 3.5), (45.0, 0.0))),
    ]


def make(**kw):
    kw.setdefault("scenarios", scenes())
    kw.setdefault("horizon", 60)
    return alpagym_env.parallel_env(num_controlled=3, **kw)


def test_pettingzoo_api_and_seed_tests_pass_with_warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(make(), num_cycles=200)
        parallel_seed_test(make, num_cycles=100)


def test_spaces_are_fixed_objects_and_agents_are_fixed():
    env = make()
    env.reset(seed=0)
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is env.action_space(a)


@pytest.mark.parametrize("at_cut", [True, False])
def test_rear_end_blames_the_follower_only(at_cut):
    # agent_2 (20 m behind the ego, same lane) holds its speed into the braking ego; agent_1 (next
    # lane) accelerates into the replayed car ahead of it.
    env = make(scenarios=scenes()[:1], termination={"at_cut": at_cut})
    env.reset(seed=0)
    final, ended_at = {}, {}
    for k in range(60):
        actions = {a: np.zeros(2, dtype=np.float32) for a in env.agents}
        if "agent_0" in actions:
            actions["agent_0"][0] = -1.0  # the ego brakes
        if "agent_1" in actions:
            actions["agent_1"][0] = 1.0
        obs, rew, term, trunc, info = env.step(actions)
        for a in term:
            if term[a] or trunc[a]:
                final[a], ended_at[a] = (info[a], rew[a], term[a]), k
                assert a not in obs or a not in env.agents
        if not env.agents:
            break
    ego, rew_ego, term_ego = final["agent_0"]
    follower, rew_follower, term_follower = final["agent_2"]
    assert follower["alpagym/collision_front"] == 1.0 and follower["alpagym/collision_at_fault"] == 1.0
    assert term_follower and follower["reward/metric/collision_at_fault"] == -10.0
    assert ego["alpagym/collision_rear"] == 1.0 and ego["alpagym/collision_at_fault"] == 0.0
    assert ego["reward/metric/collision_at_fault"] == 0.0
    assert final["agent_1"][0]["alpagym/collision_at_fault"] == 1.0
    if at_cut:
        assert term_ego and ended_at["agent_0"] == ended_at["agent_2"]  # both at the contact's cut
    else:
        assert not term_ego and ended_at["agent_0"] == 59  # not at fault: drives on to the horizon


def test_batched_multi_agent_step_shapes():
    batch = BatchedMultiAgent(4, 3, scenarios=scenes(), horizon=30)
    obs = batch.reset(range(4), [0, 1, 0, 1])
    assert obs.shape == (4, 3, batch.sim.obs_dim)
    obs, rew, term, trunc = batch.step(np.zeros((4, 3, 2)))
    assert obs.shape == (4, 3, batch.sim.obs_dim) and rew.shape == (4, 3) and trunc.shape == (4,)


def test_bad_actions_name_the_agent():
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"agent_0": np.zeros(2)})
    acts = {a: np.zeros(2) for a in env.agents}
    acts["agent_2"] = np.array([np.nan, 0.0])
    with pytest.raises(ValueError, match="agent_2"):
        env.step(acts)


def test_trajectory_actions_for_every_agent():
    env = make(action_type="trajectory")
    obs, _ = env.reset(seed=0)
    acts = {a: np.zeros(env.action_space(a).shape, np.float32) for a in env.agents}
    obs, rew, term, trunc, info = env.step(acts)
    assert all("trajectory_infeasible" in i for i in info.values())


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        make().step({})
