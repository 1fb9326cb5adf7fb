"""PPO with a learned critic (``algorithm=ppo``) on GRPO's rollouts: the terminal flag, the update, the
critic warm-up, the sync loop, and the async learner against a real redis-server with a checkpoint
round trip of the critic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_env.scenarios import load_suite  # noqa: E402
from alpagym_train.algorithm import GRPOConfig, GRPOUpdater, make_updater  # noqa: E402
from alpagym_train.grpo.checkpoint import TrainerState, load_checkpoint, save_checkpoint  # noqa: E402
from alpagym_train.grpo.config import compose, from_plain  # noqa: E402
from alpagym_train.grpo.learner import Learner  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy, save  # noqa: E402
from alpagym_train.ppo import PPOUpdater  # noqa: E402
from alpagym_train.rollout import GroupBatch, collect_groups, make_group_env  # noqa: E402
from alpagym_train.rundir import read_metrics  # noqa: E402
from alpagym_train.sync import SyncConfig, train_sync  # noqa: E402
from alpagym_train.transport import Transport  # noqa: E402
from alpagym_train.wire import BadEntry, RolloutSpec, decode_group, encode_group  # noqa: E402

HORIZON = 30
G = 4
PPO = {"method": "ppo", "lr": 1e-3, "value_lr": 1e-3, "epochs": 2}


@pytest.fixture(scope="module")
def rollouts():
    """Two groups of four rollouts, the policy that drove them (obs normaliser on) and its env."""
    env = make_group_env(2, G, scenarios=load_suite("smoke"), horizon=HORIZON, reward="metrics")
    torch.manual_seed(0)
    obs_dim = env.single_observation_space.shape[0]
    policy = GaussianPolicy(PolicyConfig(obs_dim, 2, (32,), init_log_std=-0.5, normalize_obs=True))
    policy.set_obs_normalizer(torch.randn(64, obs_dim) * 3 + 1)
    sample = RolloutPolicy(policy, np.random.default_rng(0))
    return policy, collect_groups(env, sample, np.array([0, 5]), G)


def _clone(policy: GaussianPolicy) -> GaussianPolicy:
    p = GaussianPolicy(policy.config)
    p.load_state_dict(policy.state_dict())
    return p


def test_rollouts_record_whether_they_terminated_or_were_truncated(rollouts):
    policy, b = rollouts
    lengths = b.mask.sum(-1)
    assert b.terminated.shape == (2, G) and b.terminated.dtype == np.float32
    assert np.all(b.terminated[lengths < HORIZON] == 1.0)  # ended early: the AlpaSim cut
    assert (b.terminated == 1.0).any()  # noisy driving: rollouts are cut
    env = make_group_env(1, G, scenarios=load_suite("smoke"), horizon=5, reward="metrics")
    calm = _clone(policy)
    with torch.no_grad():
        calm.log_std.fill_(-6.0)
    short = collect_groups(env, RolloutPolicy(calm, np.random.default_rng(0)), np.array([0]), G)
    assert np.all(short.mask.sum(-1) == 5) and np.all(short.terminated == 0.0)  # truncated at the horizon
    # the critic's target at a truncation bootstraps the last state's value; at a termination it does not
    updater = make_updater(calm, GRPOConfig(method="ppo", gamma=0.9))
    values, _, returns = updater.values_and_targets(short)
    torch.testing.assert_close(returns[..., 4], torch.as_tensor(short.rewards[..., 4]) + 0.9 * values[..., 4])
    _, _, returns = updater.values_and_targets(b)
    last = torch.as_tensor(lengths).long()[..., None] - 1
    cut = torch.as_tensor(b.terminated) == 1.0
    torch.testing.assert_close(
        returns.gather(-1, last)[cut], torch.as_tensor(b.rewards).gather(-1, last)[cut]
    )


def test_the_wire_carries_and_checks_the_terminal_flag(rollouts):
    _, b = rollouts
    spec = RolloutSpec(obs_dim=b.obs.shape[-1], act_dim=2, group_size=G, max_steps=HORIZON, num_scenarios=100)

    def roundtrip(batch):
        entry = {k.encode(): v for k, v in encode_group(batch, 0, "a", "run", b"k").items()}
        return decode_group("1-0", entry, spec, "run", b"k", max_version=0).batch

    np.testing.assert_array_equal(roundtrip(b).terminated, b.terminated)
    with pytest.raises(BadEntry, match="'terminated' holds values other than 0 and 1"):
        roundtrip(replace(b, terminated=np.full_like(b.terminated, 0.5)))
    with pytest.raises(BadEntry, match="'terminated' is F32"):
        roundtrip(replace(b, terminated=b.terminated[:, :1]))


def test_ppo_update_trains_policy_and_critic_and_keeps_equal_return_groups(rollouts):
    behaviour, b = rollouts
    rewards = b.rewards.copy()
    rewards[0] = 0.0
    flat = GroupBatch(**{**vars(b), "rewards": rewards})  # group 0's returns are all equal
    assert GRPOUpdater(_clone(behaviour), GRPOConfig()).advantages(flat)[1].tolist() == [False, True]
    policy = _clone(behaviour)
    updater = make_updater(policy, GRPOConfig(**PPO))
    assert isinstance(updater, PPOUpdater)
    # the critic is the policy's shape and reads the policy's observation normaliser
    assert [m.out_features for m in updater.critic.net if isinstance(m, torch.nn.Linear)] == [32, 1]
    assert torch.equal(updater.critic.obs_mean, policy.obs_mean) and torch.equal(
        updater.critic.obs_std, policy.obs_std
    )
    adv, keep = updater.advantages(b)
    real = torch.as_tensor(b.mask) > 0
    assert keep.all() and adv[real].mean().abs() < 1e-5 and (adv[real].std(unbiased=False) - 1).abs() < 1e-3
    assert torch.all(adv[~real] == 0)
    before = [p.detach().clone() for p in policy.parameters()]
    first = updater.update(b)
    later = [updater.update(b) for _ in range(30)]
    last = later[-1]
    assert first["groups_kept"] == 2 and last["grad_norm"] > 0
    assert any(not torch.equal(p, q) for p, q in zip(policy.parameters(), before, strict=True))
    # The critic learns. Its targets move with its own values (GAE, bootstraps at truncations), so its
    # loss is not monotone: it rises for a few updates from a random start before it falls.
    assert min(s["value_loss"] for s in later) < 0.9 * first["value_loss"]
    assert max(s["explained_variance"] for s in later) > first["explained_variance"] + 0.1
    for key in (
        "loss",
        "clip_fraction",
        "value_loss",
        "explained_variance",
        "value_mean",
        "behaviour_weight",
    ):
        assert np.isfinite(last[key]), key
    assert make_updater(policy, GRPOConfig(**PPO)).update(flat)["groups_kept"] == 2  # PPO keeps them


def test_critic_warmup_holds_the_policy_and_fits_the_critic(rollouts):
    behaviour, b = rollouts
    policy = _clone(behaviour)
    updater = make_updater(policy, GRPOConfig(**PPO, critic_warmup_updates=1))
    critic0 = [p.detach().clone() for p in updater.critic.parameters()]
    stats = updater.update(b)
    assert stats["groups_kept"] == 0 and np.isfinite(stats["value_loss"])
    assert all(torch.equal(p, q) for p, q in zip(policy.parameters(), behaviour.parameters(), strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(updater.critic.parameters(), critic0, strict=True))
    updater.update(b)  # warm-up over: the policy moves
    assert any(
        not torch.equal(p, q) for p, q in zip(policy.parameters(), behaviour.parameters(), strict=True)
    )


def test_config_checks_the_method_and_ppo_fields():
    with pytest.raises(ValueError, match="method"):
        GRPOConfig(method="a2c")
    with pytest.raises(ValueError, match="gae_lambda"):
        GRPOConfig(method="ppo", gae_lambda=1.5)
    with pytest.raises(ValueError, match="value_lr"):
        GRPOConfig(method="ppo", value_lr=0.0)
    assert type(make_updater(GaussianPolicy(PolicyConfig(4, 2, (8,))), GRPOConfig())) is GRPOUpdater
    assert compose(["algorithm=ppo"]).grpo_config().method == "ppo"
    assert compose([]).grpo_config() == GRPOConfig()  # GRPO stays the default, unchanged


def test_sync_loop_trains_with_ppo(tmp_path):
    policy = GaussianPolicy(PolicyConfig(177, 2, (32,)))
    init = save(tmp_path / "init.safetensors", policy, {"action_type": "control"})
    cfg = SyncConfig(init=str(init), suite="smoke", val_suite="smoke", val_scenes=2, updates=2, groups=2,
                     group_size=2, eval_every=0, env={"horizon": HORIZON}, grpo=GRPOConfig(**PPO),
                     keep_best=False, out_dir="", progress=False)  # fmt: skip
    trained, history = train_sync(cfg)
    assert [r["update"] for r in history] == [0, 1, 2]
    for key in ("value_loss", "explained_variance", "loss", "grad_norm"):
        assert np.isfinite(history[-1][key]), key
    assert any(not torch.equal(p, q) for p, q in zip(trained.parameters(), policy.parameters(), strict=True))


def _cfg(**algorithm):
    return from_plain({"env": {"suite": "smoke", "horizon": HORIZON}, "reward": {"terms": [
        {"kind": "metric", "name": "progress_delta", "scale": 1.0},
    ]}, "learner": {"group_size": G, "groups_per_update": 2}, "algorithm": algorithm})  # fmt: skip


def test_async_learner_trains_with_ppo_and_checkpoints_its_critic(rollouts, redis_server, tmp_path):
    policy, b = rollouts
    cfg = _cfg(**PPO, critic_warmup_updates=1)
    transport = Transport(redis_server.url, run_id=f"ppo-{uuid.uuid4().hex[:8]}")
    learner = Learner(cfg, transport, _clone(policy), TrainerState())
    assert isinstance(learner.updater, PPOUpdater)
    learner.start()
    for _ in range(2):
        transport.push_group(b, transport.latest_version(), "a")
        rec = learner.step(timeout_s=10)
        assert np.isfinite(rec["value_loss"]) and np.isfinite(rec["explained_variance"])
    assert rec["update"] == 2 and rec["groups_used"] == 4 and rec["groups_kept"] == 2
    version, weights = transport.fetch_weights(if_newer_than=0)
    assert version == 2 and set(weights) == set(learner.policy.state_dict())  # the critic is never published

    ckpt = save_checkpoint(tmp_path, learner.policy, {}, learner.trainer_state(), cfg.plain())
    restored, _, state, _ = load_checkpoint(ckpt)
    resumed = Learner(cfg, transport, restored, state)
    a, r = learner.updater, resumed.updater
    assert r.updates == 2
    for k, v in a.critic.state_dict().items():
        assert torch.equal(v, r.critic.state_dict()[k]), k
    opt_a, opt_r = a.critic_optimizer.state_dict()["state"], r.critic_optimizer.state_dict()["state"]
    assert opt_a.keys() == opt_r.keys() and all(
        torch.equal(opt_a[i]["exp_avg"], opt_r[i]["exp_avg"]) for i in opt_a
    )
    with pytest.raises(ValueError, match="algorithm.method=ppo"):  # a critic is never silently dropped
        Learner(_cfg(), transport, restored, state)

    # an update whose critic diverges is undone whole: policy, critic and its optimiser, update count
    real_update = r.update

    def diverging(batch):
        stats = real_update(batch)
        with torch.no_grad():
            next(r.critic.parameters()).fill_(float("nan"))
        return stats | {"value_loss": float("nan")}

    r.update = diverging
    resumed.start()
    transport.push_group(b, transport.latest_version(), "a")
    with pytest.raises(TimeoutError):  # skipped: it waits for more groups
        resumed.step(timeout_s=1)
    assert resumed.counters["updates_skipped"] == 1 and r.updates == 2
    for k, v in a.critic.state_dict().items():
        assert torch.equal(v, r.critic.state_dict()[k]), k
    transport.close()


def test_ppo_run_as_processes_checkpoints_the_critic(redis_required, tmp_path):
    """`python -m alpagym_train.grpo algorithm=ppo learner.device=cpu` end to end: a private redis-server,
    one actor."""
    env = make_group_env(1, 1, horizon=HORIZON)
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(env.single_observation_space.shape[0], 2, (32,)))
    init = save(tmp_path / "init.safetensors", policy, {"action_type": "control"})
    run = tmp_path / "run"
    args = [
        "algorithm=ppo",
        "algorithm.critic_warmup_updates=1",
        "env.suite=smoke",
        f"env.horizon={HORIZON}",
        "learner.val_suite=smoke",
        "learner.val_scenes=2",
        "learner.group_size=2",
        "learner.groups_per_update=2",
        "learner.eval_every=0",
        "learner.updates=2",
        "learner.device=cpu",
        "actors.num=1",
        "actors.groups_per_push=2",
        "progress=false",
        f"learner.init={init}",
        f"run_dir={run}",
    ]
    root = str(Path(__file__).resolve().parents[2])  # this checkout, whatever the cwd
    env_vars = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": root}
    proc = subprocess.run([sys.executable, "-m", "alpagym_train.grpo", *args], cwd=tmp_path, env=env_vars,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "device cpu" in proc.stdout
    records = [r for r in read_metrics(run) if "groups_used" in r]
    assert [r["update"] for r in records] == [1, 2]
    assert all(np.isfinite(r["value_loss"]) and "explained_variance" in r for r in records)
    _, _, state, _ = load_checkpoint(run)
    assert state.critic is not None and state.critic["updates"] == 2
    assert set(state.critic["weights"]) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
