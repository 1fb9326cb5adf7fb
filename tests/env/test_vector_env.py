"""The native vector env: Gymnasium's checks and bit-for-bit equivalence with the single env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import alpagym_env  # noqa: F401
from alpagym_env.envs.vector_env import AlpaDriveVectorEnv
from tests.conftest import straight_road


def scenes():
    """Three straight-road variants so sub-envs draw different scenes."""
    return [
        straight_road(),
        straight_road(speeds=(8.0, 6.0), starts=((30.0, 0.0), (50.0, 0.0))),
        straight_road(
            speeds=(12.0, 12.0, 9.0, 14.0), starts=((20.0, 3.5), (40.0, 3.5), (25.0, 0.0), (5.0, 0.0))
        ),
    ]


KW = dict(horizon=25, agents="idm")


def test_make_vec_returns_the_native_batched_env():
    env = gym.make_vec("AlpaDrive-v0", num_envs=4, scenarios=scenes(), **KW)
    assert isinstance(env, AlpaDriveVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, env.single_observation_space.shape[0])
    assert env.observation_space.contains(obs)


def _compare_info(single: dict, vec: dict, i: int) -> None:
    for key, value in single.items():
        assert vec[f"_{key}"][i], key
        if isinstance(value, dict):
            _compare_info(value, vec[key], i)
        else:
            assert vec[key][i] == value, key


TERMINAL_REWARD = [
    {"kind": "metric", "name": "progress", "scale": 1.0},
    {"kind": "terminal", "name": "scene_score", "scale": 2.0},
    {"kind": "terminal", "name": "collision_at_fault", "scale": -3.0},
]


def speed_reward(m):
    return m["speed"] - m["dist_to_gt"]


@pytest.mark.parametrize(
    "reward", [None, TERMINAL_REWARD, speed_reward], ids=["default", "terminal", "callable"]
)
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_sub_env_i_matches_a_single_env_seeded_seed_plus_i(mode, reward):
    n, seed, steps = 3, 5, 90
    vec = AlpaDriveVectorEnv(num_envs=n, scenarios=scenes(), autoreset_mode=mode, reward=reward, **KW)
    singles = [gym.make("AlpaDrive-v0", scenarios=scenes(), reward=reward, **KW).unwrapped for _ in range(n)]
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n, 2)).astype(np.float32)
    vobs, vinfo = vec.reset(seed=seed)
    pending = [False] * n
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        np.testing.assert_array_equal(vobs[i], obs)
        _compare_info(info, vinfo, i)
    finished = 0
    for k in range(steps):
        vobs, vrew, vterm, vtrunc, vinfo = vec.step(actions[k])
        for i, env in enumerate(singles):
            if pending[i]:  # NEXT_STEP: this call resets sub-env i, its action is ignored
                obs, info = env.reset()
                reward, term, trunc = 0.0, False, False
                pending[i] = False
            else:
                obs, reward, term, trunc, info = env.step(actions[k, i])
            assert vrew[i] == reward and vterm[i] == term and vtrunc[i] == trunc
            if mode == AutoresetMode.SAME_STEP and (term or trunc):
                np.testing.assert_array_equal(vinfo["final_obs"][i], obs)
                _compare_info(info, vinfo["final_info"], i)
                finished += 1
                obs, info = env.reset()
            elif term or trunc:
                pending[i] = True
                finished += 1
            np.testing.assert_array_equal(vobs[i], obs)
            _compare_info(info, vinfo, i)
    assert finished >= 6  # several episodes ended and reset on the way


def test_reset_chosen_sub_envs_to_one_snapshot_like_a_grpo_group():
    vec = AlpaDriveVectorEnv(num_envs=4, scenarios=scenes(), **KW)
    vec.reset(seed=0, options={"scenario_ids": [2, 2, 2, 2]})
    for _ in range(5):
        vec.step(np.zeros((4, 2), dtype=np.float32))
    snap = vec.get_state(0)
    obs, _ = vec.reset(options={"states": snap, "reset_mask": [False, True, True, True]})
    np.testing.assert_array_equal(obs[1:], np.repeat(obs[:1], 3, axis=0))
    # Identical actions from an identical state give identical steps.
    obs, rew, *_ = vec.step(np.full((4, 2), 0.3, dtype=np.float32))
    assert np.all(obs == obs[0]) and np.all(rew == rew[0])


def test_actions_of_any_real_dtype_are_taken_as_float64_and_clipped():
    given = {
        "float64": np.full((3, 2), 0.5),
        "float32": np.full((3, 2), 0.5, dtype=np.float32),
        "float16": np.full((3, 2), 0.5, dtype=np.float16),
        "list": [[0.5, 0.5]] * 3,
        "over float64": np.full((3, 2), 1.0),
        "over float32": np.full((3, 2), 4.0, dtype=np.float32),
        "over int": np.full((3, 2), 3),
    }
    obs = {}
    for name, actions in given.items():
        vec = AlpaDriveVectorEnv(num_envs=3, scenarios=scenes(), **KW)
        vec.reset(seed=0)
        for _ in range(3):
            obs[name] = vec.step(actions)[0]
    for name in ("float32", "float16", "list"):
        np.testing.assert_array_equal(obs[name], obs["float64"], err_msg=name)
    for name in ("over float32", "over int"):
        np.testing.assert_array_equal(obs[name], obs["over float64"], err_msg=name)
    assert not np.array_equal(obs["float64"], obs["over float64"])


def test_bad_actions_and_options_raise():
    vec = AlpaDriveVectorEnv(num_envs=2, scenarios=scenes(), **KW)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        vec.step(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        vec.step(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="scenario_ids"):
        vec.reset(options={"scenario_ids": [0, 7]})
    with pytest.raises(ValueError, match="unknown reset options"):
        vec.reset(options={"scenario": 1})


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("obs_type", ["flat", "dict"])
def test_native_and_gymnasium_sync_vector_env_return_equivalent_data(mode, obs_type):
    from gymnasium.utils.env_checker import data_equivalence

    kw = dict(num_envs=3, scenarios=scenes(), obs_type=obs_type, reward="metrics", **KW)
    native = gym.make_vec("AlpaDrive-v0", vector_kwargs={}, autoreset_mode=mode, **kw)
    sync_kwargs = {"autoreset_mode": mode}
    sync = gym.make_vec("AlpaDrive-v0", vectorization_mode="sync", vector_kwargs=sync_kwargs, **kw)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    assert native.single_observation_space == sync.single_observation_space
    assert native.action_space == sync.action_space
    assert data_equivalence(native.reset(seed=42), sync.reset(seed=42), exact=True)
    actions = np.random.default_rng(3).uniform(-1, 1, (80, 3, 2)).astype(np.float32)
    for a in actions:
        assert data_equivalence(native.step(a), sync.step(a), exact=True)


def test_disabled_autoreset_freezes_finished_sub_envs_until_reset():
    vec = AlpaDriveVectorEnv(num_envs=2, scenarios=scenes(), autoreset_mode=AutoresetMode.DISABLED, horizon=5)
    vec.reset(seed=0, options={"scenario_ids": [0, 0]})
    for _ in range(5):
        obs, rew, term, trunc, info = vec.step(np.zeros((2, 2), dtype=np.float32))
    assert trunc.all() and "alpagym" in info
    frozen = obs.copy()
    obs, rew, term, trunc, info = vec.step(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(obs, frozen)
    assert not rew.any() and not term.any() and not trunc.any() and info["t"].tolist() == [5, 5]
    obs, _ = vec.reset(options={"reset_mask": [True, False]})
    obs, rew, *_ = vec.step(np.zeros((2, 2), dtype=np.float32))
    assert rew[0] != 0.0 and rew[1] == 0.0


def test_trajectory_actions_through_the_vector_env_match_single_envs():
    from gymnasium.utils.env_checker import data_equivalence

    kw = dict(num_envs=2, scenarios=scenes(), action_type="trajectory", **KW)
    native = gym.make_vec("AlpaDrive-v0", **kw)
    sync = gym.make_vec("AlpaDrive-v0", vectorization_mode="sync", **kw)
    assert data_equivalence(native.reset(seed=1), sync.reset(seed=1), exact=True)
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, (30, *native.action_space.shape)).astype(np.float32)
    actions[..., 0::3] += 0.05  # poses ahead of the car
    for a in actions:
        assert data_equivalence(native.step(a), sync.step(a), exact=True)


def test_autoreset_mode_is_an_attribute():
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED):
        env = gym.make_vec("AlpaDrive-v0", num_envs=2, scenarios=scenes(), autoreset_mode=mode, **KW)
        assert env.autoreset_mode == mode == env.metadata["autoreset_mode"]


def test_step_before_reset_and_wrong_action_shapes_raise():
    env = gym.make_vec("AlpaDrive-v0", num_envs=3, scenarios=scenes(), **KW)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((3, 2)))
    env.reset(seed=0, options={"reset_mask": [True, False, True]})
    with pytest.raises(RuntimeError, match=r"sub-envs \[1\] were never reset"):
        env.step(np.zeros((3, 2)))
    env.reset(seed=0)
    for bad in (np.zeros(6), np.zeros((2, 3)), np.zeros((3, 2, 1)), np.zeros((6, 1))):
        with pytest.raises(ValueError, match=r"action has shape .* expected \(3, 2\)"):
            env.step(bad)
    env.step(np.zeros((3, 2)))
