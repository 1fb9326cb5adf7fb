"""The env on every procedural family: checkers, expert replay, and log inversion."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import alpagym_env  # noqa: F401
from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios import FAMILIES, generate
from alpagym_env.sim.dynamics import (
    kinematic_inverse_log,
    kinematic_rollout,
    log_speed,
    wheelbase_from_length,
)

SEEDS = range(3)


@pytest.fixture(scope="module")
def scenes():
    return [generate(f, s) for f in sorted(FAMILIES) for s in SEEDS]


def test_checkers_pass_on_the_procedural_families(scenes):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("AlpaDrive-v0", scenarios=scenes).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make("AlpaDrive-v0", scenarios=scenes, agents="idm").unwrapped, warn=True)


@pytest.mark.parametrize("mode", ["replay", "idm"])
def test_log_replay_of_the_ego_scores_one_and_never_collides(scenes, mode):
    sim = BatchedSim(EnvConfig.from_kwargs(agents=mode), len(scenes), scenes, len(scenes))
    sim.reset(range(len(scenes)), range(len(scenes)))
    sim.expert[:] = True
    for _ in range(200):
        sim.step(np.zeros((len(scenes), 1, 2)))
        assert not sim.metrics[:, 0, [M.COLLISION_ANY, M.OFFROAD]].any()  # at every step
    for b, s in enumerate(scenes):
        ep = sim.episode_metrics(b)
        assert ep["scene_score"] == 1.0, s.scenario_id
        assert ep["collision_any"] == 0.0 and ep["offroad"] == 0.0 and ep["ran_red_light"] == 0.0, (
            s.scenario_id
        )
        assert ep["progress"] == pytest.approx(1.0, abs=0.02), s.scenario_id
        assert ep["steps"] == 200


def test_inverse_then_forward_kinematics_reproduces_every_expert_log(scenes):
    """Actions recovered from the logs, replayed open-loop for 20 s, stay within 5 cm of every log."""
    worst = 0.0
    for s in scenes:
        n, t = s.traj.shape[:2]
        wb = wheelbase_from_length(s.length)
        actions = np.zeros((n, t - 1, 2))
        kinematic_inverse_log(s.traj, s.valid, wb, s.dt, actions)
        x0 = np.array([[*s.traj[i, 0, :3], log_speed(*s.traj[i, 0, 2:5])] for i in range(n)])
        out = np.zeros((n, t, 4))
        kinematic_rollout(x0, actions, wb, s.dt, out)
        whole = s.valid.all(axis=1)  # agents that exist through the whole log
        err = np.hypot(*(out[whole, :, :2] - s.traj[whole, :, :2]).transpose(2, 0, 1))
        worst = max(worst, float(err.max()))
    assert worst < 0.05


def test_env_reset_is_bit_for_bit_reproducible_on_the_families(scenes):
    def run(seed):
        env = gym.make("AlpaDrive-v0", scenarios=scenes, agents="idm")
        obs, _ = env.reset(seed=seed)
        out = [obs]
        rng = np.random.default_rng(seed)
        for _ in range(40):
            obs, r, te, tr, _ = env.step(rng.uniform(-0.5, 0.5, 2).astype(np.float32))
            out.append(np.append(obs, r))
            if te or tr:
                obs, _ = env.reset()
        return np.concatenate(out)

    np.testing.assert_array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


@pytest.mark.parametrize("action", [(0.0, 0.0), (1.0, 0.0)])
def test_score_progress_reward_sums_to_the_scene_scores_progress_part(scenes, action):
    """The `score_progress_delta` channel sums over an episode to min(clip(progress, 0, 1) / 0.8, 1):
    coasting earns part of it, full throttle saturates at 1 however far past 80 % of the log it gets."""
    reward = [{"kind": "metric", "name": "score_progress_delta", "scale": 1.0}]
    env = gym.make("AlpaDrive-v0", scenarios=scenes, reward=reward)  # ends at the cut, as the score
    for i in range(0, len(scenes), 4):
        env.reset(options={"scenario_index": i})
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, info = env.step(np.array(action, np.float32))
            total, done = total + r, term or trunc
        progress = info["alpagym"]["progress"]
        assert total == pytest.approx(min(np.clip(progress, 0.0, 1.0) / M.PROGRESS_SATURATION, 1.0), abs=1e-6)
