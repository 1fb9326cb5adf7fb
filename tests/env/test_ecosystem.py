"""AlpaDrive under the RL libraries as their users run it: Gymnasium's and SB3's episode wrappers, a
CleanRL-style PPO loop, SB3 PPO and SAC, PettingZoo -> SuperSuit -> SB3, TorchRL and skrl.

Every test runs the library for real on short episodes of hand-built scenes (a few seconds each).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import alpagym_env
from alpagym_env.envs.infos import INFO_KEY
from alpagym_env.envs.sb3 import AlpaDriveSB3VecEnv
from tests.env.test_parallel_env import scenes as multi_agent_scenes
from tests.env.test_vector_env import scenes

KW = {"horizon": 12, "scenarios": scenes()}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_record_episode_statistics_on_the_single_env_keeps_the_metrics():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("AlpaDrive-v0", **KW))
    env.reset(seed=0)
    ret, done = 0.0, False
    while not done:
        _, r, te, tr, info = env.step(np.zeros(2, np.float32))
        ret, done = ret + r, te or tr
    assert info["episode"]["r"] == pytest.approx(ret) and info["episode"]["l"] == 12
    assert info[INFO_KEY]["r"] == pytest.approx(ret) and info[INFO_KEY]["l"] == 12.0
    assert 0.0 <= info[INFO_KEY]["scene_score"] <= 1.0
    assert all(isinstance(v, float) for v in info[INFO_KEY].values())
    assert all(not isinstance(v, dict) for k, v in info.items() if k not in ("episode", INFO_KEY))


def test_record_episode_statistics_on_the_vector_env_keeps_the_metrics():
    env = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec("AlpaDrive-v0", num_envs=3, **KW))
    env.reset(seed=0)
    for _ in range(12):
        _, _, te, tr, info = env.step(np.zeros((3, 2), np.float32))
    assert (te | tr).all()
    assert info["_episode"].all() and info["_alpagym"].all()
    np.testing.assert_allclose(info["episode"]["r"], info[INFO_KEY]["r"])
    assert (info["episode"]["l"] == 12).all() and info[INFO_KEY]["scene_score"].shape == (3,)


def test_cleanrl_style_ppo_loop_under_record_episode_statistics():
    """The loop of cleanrl's ppo_continuous_action.py, shrunk: rollouts, GAE, a clipped update."""
    num_envs, num_steps = 4, 16
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec("AlpaDrive-v0", num_envs=num_envs, **KW))
    obs_dim, act_dim = envs.single_observation_space.shape[0], envs.single_action_space.shape[0]
    torch.manual_seed(0)
    actor, critic = torch.nn.Linear(obs_dim, act_dim), torch.nn.Linear(obs_dim, 1)
    log_std = torch.nn.Parameter(torch.full((act_dim,), -1.0))
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters(), log_std], lr=3e-4)
    obs, _ = envs.reset(seed=1)
    returns, scores = [], []
    for _ in range(2):
        buf_obs, buf_act, buf_logp, buf_r, buf_done, buf_v = [], [], [], [], [], []
        for _ in range(num_steps):
            o = torch.as_tensor(obs)
            with torch.no_grad():
                dist = torch.distributions.Normal(actor(o), log_std.exp())
                action = dist.sample()
                buf_logp.append(dist.log_prob(action).sum(-1))
                buf_v.append(critic(o).squeeze(-1))
            obs, reward, te, tr, infos = envs.step(action.clamp(-1, 1).numpy())
            buf_obs.append(o), buf_act.append(action)
            buf_r.append(torch.as_tensor(reward, dtype=torch.float32))
            buf_done.append(torch.as_tensor(te | tr, dtype=torch.float32))
            if "episode" in infos:
                returns += list(infos["episode"]["r"][infos["_episode"]])
                scores += list(infos[INFO_KEY]["scene_score"][infos["_alpagym"]])
        adv = torch.zeros(num_steps, num_envs)
        last = torch.zeros(num_envs)
        for t in reversed(range(num_steps)):
            next_v = buf_v[t + 1] if t + 1 < num_steps else critic(torch.as_tensor(obs)).squeeze(-1).detach()
            delta = buf_r[t] + 0.99 * next_v * (1 - buf_done[t]) - buf_v[t]
            last = delta + 0.99 * 0.95 * (1 - buf_done[t]) * last
            adv[t] = last
        b_obs, b_act = torch.cat(buf_obs), torch.cat(buf_act)
        b_adv, b_ret = adv.flatten(), (adv + torch.stack(buf_v)).flatten()
        new_logp = torch.distributions.Normal(actor(b_obs), log_std.exp()).log_prob(b_act).sum(-1)
        ratio = (new_logp - torch.cat(buf_logp)).exp()
        pg = -torch.min(ratio * b_adv, ratio.clamp(0.8, 1.2) * b_adv).mean()
        loss = pg + 0.5 * ((critic(b_obs).squeeze(-1) - b_ret) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    assert len(returns) >= num_envs and len(scores) == len(returns)


def test_sb3_ppo_and_sac_with_vec_monitor_and_evaluate_policy():
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    venv = VecMonitor(AlpaDriveSB3VecEnv(2, **KW))
    seen: list[dict] = []

    from stable_baselines3.common.callbacks import BaseCallback

    class Keep(BaseCallback):
        def _on_step(self) -> bool:
            seen.extend(i for i in self.locals["infos"] if "episode" in i)
            return True

    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(48, callback=Keep())
    assert model.ep_info_buffer and {"r", "l", "t"} <= set(model.ep_info_buffer[0])
    assert seen and all("scene_score" in i[INFO_KEY] for i in seen)  # VecMonitor kept the metrics
    monitored = Monitor(gym.make("AlpaDrive-v0", **KW))
    monitored.reset(seed=0)
    for _ in range(12):
        *_, info = monitored.step(np.zeros(2, np.float32))
    assert {"r", "l", "t"} <= set(info["episode"]) and "scene_score" in info[INFO_KEY]
    mean, _ = evaluate_policy(model, monitored, n_eval_episodes=2)
    assert np.isfinite(mean)
    mean, _ = evaluate_policy(model, venv, n_eval_episodes=2)
    assert np.isfinite(mean)

    sac_env = DummyVecEnv([lambda: Monitor(gym.make("AlpaDrive-v0", **KW))])
    sac = SAC("MlpPolicy", sac_env, learning_starts=8, batch_size=8, seed=0, device="cpu")
    sac.learn(30)
    assert sac.ep_info_buffer and np.isfinite(evaluate_policy(sac, sac_env, n_eval_episodes=1)[0])


def test_pettingzoo_through_supersuit_into_sb3_ppo():
    import supersuit as ss
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    env = alpagym_env.parallel_env(num_controlled=3, scenarios=multi_agent_scenes(), horizon=12)
    vec = ss.pettingzoo_env_to_vec_env_v1(ss.black_death_v3(env))
    vec = VecMonitor(ss.concat_vec_envs_v1(vec, 1, num_cpus=0, base_class="stable_baselines3"))
    # no `seed=`: SuperSuit's SB3 wrapper has no `seed()` for SB3 2.x to call
    model = PPO("MlpPolicy", vec, n_steps=16, batch_size=24, n_epochs=1, device="cpu")
    model.learn(64)
    assert model.ep_info_buffer


def test_torchrl_gym_env_vector_wrapper_and_pettingzoo_wrapper_pass_check_env_specs():
    from torchrl.envs import GymEnv, GymWrapper
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    single = GymEnv("AlpaDrive-v0", **KW)  # TorchRL retries without `frameskip` on its TypeError
    check_env_specs(single)
    assert single.rollout(14, break_when_any_done=False)["next", "done"].any()
    single.auto_register_info_dict()  # TorchRL's info reader: flat numpy scalars, batched by dtype
    check_env_specs(single)
    steps = single.rollout(14, break_when_any_done=False)
    assert steps["next", "t"].shape == (14,) and "reward/metric/progress_delta" in steps["next"].keys()
    vec = GymWrapper(gym.make_vec("AlpaDrive-v0", num_envs=3, autoreset_mode=AutoresetMode.SAME_STEP, **KW))
    check_env_specs(vec)
    assert vec.rollout(14, break_when_any_done=False).shape == (3, 14)
    pz = PettingZooWrapper(
        alpagym_env.parallel_env(num_controlled=3, scenarios=multi_agent_scenes(), horizon=12),
        use_mask=True,
    )
    check_env_specs(pz)
    rollout = pz.rollout(12)
    info = rollout["agent", "info"]
    assert "reward/metric/progress_delta" in info.keys() and f"{INFO_KEY}/scene_score" in info.keys()


def test_skrl_ppo_trains_on_the_vector_env():
    from skrl.agents.torch.ppo import PPO
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.models.torch import DeterministicMixin, GaussianMixin, Model
    from skrl.trainers.torch import SequentialTrainer

    env = wrap_env(gym.make_vec("AlpaDrive-v0", num_envs=2, **KW), wrapper="gymnasium")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]

    class Policy(GaussianMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space)
            GaussianMixin.__init__(self, clip_actions=True)
            self.net = torch.nn.Linear(obs_dim, act_dim)
            self.log_std = torch.nn.Parameter(torch.zeros(act_dim))

        def compute(self, inputs, role=""):
            return self.net(inputs["observations"]), {"log_std": self.log_std}

    class Value(DeterministicMixin, Model):
        def __init__(self):
            Model.__init__(self, observation_space=env.observation_space, action_space=env.action_space)
            DeterministicMixin.__init__(self)
            self.net = torch.nn.Linear(obs_dim, 1)

        def compute(self, inputs, role=""):
            return self.net(inputs["observations"]), {}

    agent = PPO(
        models={"policy": Policy(), "value": Value()},
        memory=RandomMemory(memory_size=8, num_envs=env.num_envs),
        observation_space=env.observation_space,
        action_space=env.action_space,
        cfg={"rollouts": 8, "learning_epochs": 1, "mini_batches": 1},
    )
    before = [p.detach().clone() for p in agent.policy.parameters()]
    cfg = {"timesteps": 24, "headless": True, "close_environment_at_exit": False}
    SequentialTrainer(env=env, agents=agent, cfg=cfg).train()
    env.close()
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True))
