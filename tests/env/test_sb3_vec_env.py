"""The SB3 VecEnv adapter trains PPO without subprocesses and never emits NaN."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import VecCheckNan  # noqa: E402

from alpagym_env.envs.sb3 import AlpaDriveSB3VecEnv  # noqa: E402
from tests.env.test_vector_env import scenes  # noqa: E402


def test_short_ppo_run_through_vec_check_nan():
    venv = VecCheckNan(AlpaDriveSB3VecEnv(4, scenarios=scenes(), horizon=20), raise_exception=True)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) >= 4  # episodes finished and were logged with "r" and "l"
    assert all(np.isfinite(ep["r"]) for ep in model.ep_info_buffer)


def test_autoreset_follows_sb3_conventions():
    venv = AlpaDriveSB3VecEnv(2, scenarios=scenes(), horizon=5)
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (2, venv.observation_space.shape[0])
    for _ in range(5):
        obs, rewards, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == obs.shape[1:]
        assert info["alpagym"]["l"] == 5 and "scene_score" in info["alpagym"]
    # The returned observations are already those of the next episode.
    assert not np.array_equal(obs[0], infos[0]["terminal_observation"])
