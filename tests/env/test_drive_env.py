"""The single-agent env on a hand-built straight road, where every answer is known."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.config import ConfigError
from alpagym_env.envs.infos import reward_terms
from alpagym_env.scenarios.mapped import MappedSuite
from tests.conftest import straight_road


def make(**kwargs):
    kwargs.setdefault("scenarios", [straight_road()])
    return gym.make("AlpaDrive-v0", **kwargs).unwrapped


def rollout(env, actions, seed=0):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        out.append(np.concatenate([obs, [r, te, tr]]))
        if te or tr:
            break
    return np.stack(out[1:])


def test_gymnasium_and_sb3_checkers_pass_without_warnings():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(make(), skip_render_check=True)
        check_env(make(obs_type="dict"), skip_render_check=True)
        check_env(make(render_mode="rgb_array"))
        sb3_check_env(make(), warn=True)  # SB3 targets the flat vector (it warns on any 2-D dict entry)


def test_expert_replay_of_the_ego_scores_one_and_never_collides():
    env = make()
    env.reset(seed=0)
    env.sim.expert[0, 0] = True
    while True:
        _, _, te, tr, info = env.step(np.zeros(2))
        assert info["reward/metric/collision_at_fault"] == 0.0
        if te or tr:
            break
    ep = info["alpagym"]
    assert tr and not te
    assert ep["scene_score"] == 1.0 and ep["collision_any"] == 0.0 and ep["offroad"] == 0.0
    assert ep["progress"] == pytest.approx(1.0, abs=1e-9)
    assert ep["dist_to_gt_trajectory"] < 1e-9
    assert ep["comfort"] == 1.0
    assert ep["r"] == pytest.approx(1.0, abs=1e-6)  # progress sums to 1, nothing else fires


def test_reward_is_the_sum_of_its_reported_terms():
    env = make()
    env.reset(seed=0)
    for _ in range(20):
        _, r, _, _, info = env.step(np.array([0.3, 0.02]))
        assert r == pytest.approx(sum(reward_terms(info).values()), abs=1e-12)


def test_driving_into_the_leader_is_an_at_fault_front_collision():
    env = make()
    env.reset(seed=0)
    for _ in range(200):
        _, r, te, tr, info = env.step(np.array([1.0, 0.0]))
        if te or tr:
            break
    ep = info["alpagym"]
    assert te and ep["collision_front"] == 1.0 and ep["collision_at_fault"] == 1.0
    assert ep["scene_score"] == 0.0
    assert info["reward/metric/collision_at_fault"] == -10.0


def test_being_rear_ended_is_not_at_fault():
    # A follower in the ego's lane 15 m behind at 15 m/s; the ego brakes to a stop.
    s = straight_road(speeds=(10.0, 15.0), starts=((40.0, 0.0), (25.0, 0.0)))
    env = make(scenarios=[s], termination={"any_collision": True})
    env.reset(seed=0)
    for _ in range(200):
        _, _, te, tr, info = env.step(np.array([-1.0, 0.0]))
        if te or tr:
            break
    ep = info["alpagym"]
    assert te and ep["collision_rear"] == 1.0 and ep["collision_at_fault"] == 0.0


def test_steering_off_the_road_terminates_as_offroad():
    env = make()
    env.reset(seed=0)
    for _ in range(200):
        _, _, te, tr, info = env.step(np.array([0.0, -1.0]))
        if te or tr:
            break
    assert te and info["alpagym"]["offroad"] == 1.0 and info["alpagym"]["scene_score"] == 0.0


def test_reset_with_a_seed_is_bit_for_bit_reproducible():
    env = make(agents="idm")
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (60, 2))
    np.testing.assert_array_equal(rollout(env, actions, seed=3), rollout(env, actions, seed=3))
    np.testing.assert_array_equal(rollout(env, actions, seed=3), rollout(make(agents="idm"), actions, seed=3))


def test_snapshot_restore_reproduces_a_rollout_exactly():
    env = make(agents="idm")
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([0.2, 0.01]))
    snap = env.get_state()
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, (40, 2))
    first = [env.step(a) for a in actions]
    env.step(np.array([1.0, 1.0]))  # diverge, then restore
    obs, _ = env.reset(options={"state": snap})
    np.testing.assert_array_equal(obs, snap["obs"][0])
    second = [env.step(a) for a in actions]
    for (o1, r1, *_), (o2, r2, *_) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2


def test_dict_observation_holds_the_flat_values():
    flat, dct = make(), make(obs_type="dict")
    o1, _ = flat.reset(seed=0)
    o2, _ = dct.reset(seed=0)
    parts = ("ego", "route", "limit", "lanes", "agents", "light")
    assert tuple(o2) == parts
    np.testing.assert_array_equal(o1, np.concatenate([o2[k].ravel() for k in parts]))
    assert dct.observation_space.contains(o2)


def test_observation_sees_the_leader_ahead():
    env = make(obs_type="dict")
    obs, _ = env.reset(seed=0)
    # Lane slots: the leader 25 m ahead in the ego's lane, the car 10 m ahead in the lane to its left.
    lead, left_lead = obs["lanes"][0], obs["lanes"][2]
    assert lead[0] == 1.0 and lead[1] * 50.0 == pytest.approx(25.0 - 4.5, abs=1e-5)
    assert left_lead[0] == 1.0 and left_lead[1] * 50.0 == pytest.approx(10.0 - 4.5, abs=1e-5)
    assert left_lead[2] * 5.0 == pytest.approx(3.5, abs=1e-5)
    assert obs["lanes"][[1, 3, 4, 5], 0].sum() == 0.0
    assert obs["agents"][:, 8].sum() == 0.0  # both are in lane slots, no other agent is left


@pytest.mark.parametrize(
    "bad",
    [np.array([np.nan, 0.0]), np.array([0.0, np.inf]), np.zeros(3), np.zeros((2, 2)), np.zeros(1)],
)
def test_bad_actions_raise_a_clear_error(bad):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


def test_bad_arguments_raise_a_clear_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'horizn'"):
        make(horizn=10)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'horizn'"):
        make(horizn=10)
    with pytest.raises(ConfigError, match="unknown metric reward term 'progres'"):
        make(reward=[{"kind": "metric", "name": "progres", "scale": 1.0}])
    with pytest.raises(ConfigError, match="unknown reward preset"):
        make(reward="fastest")
    with pytest.raises(ConfigError, match="agents.mode"):
        make(agents="teleport")
    with pytest.raises(ConfigError, match="unknown agents keys"):
        make(agents={"a_maxx": 1.0})


def test_custom_reward_terms_and_callable():
    env = make(
        reward=[
            {"kind": "metric", "name": "speed", "scale": 0.1},
            {"kind": "terminal", "name": "scene_score", "scale": 2.0},
        ]
    )
    env.reset(seed=0)
    _, r, *_ = env.step(np.zeros(2))
    assert r == pytest.approx(0.1 * 10.0, rel=1e-3)
    env = make(reward=lambda m: m["speed"] - m["dist_to_gt"], horizon=5)
    env.reset(seed=0)
    for _ in range(5):
        _, r, te, tr, info = env.step(np.zeros(2))
    assert tr and r == pytest.approx(10.0, abs=0.1)


def test_render_returns_a_top_down_frame():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.zeros(2))
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 3


ROLLOUT_HASH = """
import hashlib, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests.env.test_drive_env import make, rollout
actions = np.random.default_rng(7).uniform(-1, 1, (80, 2))
print(hashlib.sha256(rollout(make(agents="idm"), actions, seed=11).tobytes()).hexdigest())
"""


def test_rollouts_are_identical_across_processes():
    import hashlib
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    actions = np.random.default_rng(7).uniform(-1, 1, (80, 2))
    here = hashlib.sha256(rollout(make(agents="idm"), actions, seed=11).tobytes()).hexdigest()
    out = subprocess.run(
        [sys.executable, "-c", ROLLOUT_HASH.format(root=root)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == here


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": "100"}, "horizon must be an integer, got '100'"),
        ({"horizon": True}, "horizon must be an integer, got True"),
        ({"dynamics": {"mass": "heavy"}}, "dynamics.mass must be a number, got 'heavy'"),
        ({"termination": {"offroad": "no"}}, "termination.offroad must be a bool, got 'no'"),
        ({"obs": {"num_agents": 4.5}}, "obs.num_agents must be an integer"),
        ({"trajectory": {"heading": 1}}, "trajectory.heading must be a string"),
        ({"reward": 42}, "reward must be a preset name, a list of"),
        ({"reward": [{"name": "speed", "scale": "x"}]}, r"reward\[0\].scale must be a number"),
        ({"dynamics": 3}, "dynamics must be a DynamicsConfig or a dict"),
    ],
)
def test_wrong_typed_config_values_name_their_dotted_path(kwargs, message):
    with pytest.raises(TypeError, match=message):
        make(**kwargs)


def test_a_snapshot_refuses_to_load_into_another_scene_or_config():
    env = make()
    env.reset(seed=0)
    env.step(np.zeros(2))
    snap = env.get_state()
    assert set(snap["fingerprint"]) == {"scene", "config"}
    env.set_state(snap)  # the same env takes it back
    other_scene = straight_road(speeds=(11.0, 10.0, 12.0))
    with pytest.raises(ValueError, match="does not match this env's scene 0"):
        make(scenarios=[other_scene]).set_state(snap)
    with pytest.raises(ValueError, match="another env config"):
        make(horizon=50).set_state(snap)
    two = make(scenarios=[straight_road(), straight_road()])
    two.reset(options={"scenario_index": 1})
    with pytest.raises(ValueError, match="does not fit this env's 1 scenes"):
        env.set_state(two.get_state())


def test_envs_share_the_memory_mapped_suite_and_pickle_to_kilobytes():
    import pickle

    a, b = gym.make("AlpaDrive-v0", suite="smoke"), gym.make("AlpaDrive-v0", suite="smoke")
    a.reset(seed=3)
    b.reset(seed=3)
    # Both map the same cache files (one copy of the scenes, in the page cache), no private copy.
    src_a, src_b = a.unwrapped.sim._source, b.unwrapped.sim._source
    assert isinstance(src_a, MappedSuite) and src_a.path == src_b.path
    assert np.shares_memory(src_a[0].traj, src_a._flat["traj"])
    assert a.unwrapped.sim.compiled[0] is b.unwrapped.sim.compiled[0]  # compiled once per process
    for _ in range(3):
        a.step(np.full(2, 0.2, np.float32))
    blob = pickle.dumps(a.unwrapped)
    assert len(blob) < 64_000
    clone = pickle.loads(blob)
    for _ in range(5):
        obs_a, r_a, *_ = a.unwrapped.step(np.full(2, -0.3, np.float32))
        obs_c, r_c, *_ = clone.step(np.full(2, -0.3, np.float32))
        assert np.array_equal(obs_a, obs_c) and r_a == r_c
    assert a.unwrapped.np_random.integers(1 << 30) == clone.np_random.integers(1 << 30)


def test_flatten_observation_of_the_dict_observation_is_the_flat_observation():
    flat = make(obs_type="flat")
    wrapped = gym.wrappers.FlattenObservation(
        gym.make("AlpaDrive-v0", obs_type="dict", scenarios=[straight_road()])
    )
    obs_f, _ = flat.reset(seed=0)
    obs_w, _ = wrapped.reset(seed=0)
    np.testing.assert_array_equal(obs_f, obs_w)
    action = np.array([0.4, -0.1], np.float32)
    np.testing.assert_array_equal(flat.step(action)[0], wrapped.step(action)[0])
