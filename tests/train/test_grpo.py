"""Group rollouts, the GRPO update and the synchronous loop, on the real env."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_env.scenarios import load_suite  # noqa: E402
from alpagym_train.algorithm import GRPOConfig, GRPOUpdater  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy, save  # noqa: E402
from alpagym_train.rollout import GroupBatch, collect_groups, make_group_env  # noqa: E402
from alpagym_train.sync import SyncConfig, train_sync  # noqa: E402

HORIZON = 30


@pytest.fixture(scope="module")
def scenes():
    return load_suite("smoke")


@pytest.fixture(scope="module")
def batch(scenes):
    env = make_group_env(2, 4, scenarios=scenes, horizon=HORIZON, reward="metrics")
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(env.single_observation_space.shape[0], 2, (32,), init_log_std=-0.5))
    sample = RolloutPolicy(policy, np.random.default_rng(0))
    return policy, collect_groups(env, sample, np.array([0, 5]), 4)


def test_groups_start_from_one_identical_state(batch):
    _, b = batch
    assert b.obs.shape[:3] == (2, 4, HORIZON)
    for g in range(2):
        first = b.obs[g, :, 0]
        assert np.all(first == first[0])  # identical start state in a group
        assert not np.all(b.u[g, :, 0] == b.u[g, 0, 0])  # different noise
    lengths = b.mask.sum(-1)
    assert np.all(lengths >= 1) and np.all(lengths <= HORIZON)
    for n in range(2):  # masks are prefixes: a member stops at its end
        for g in range(4):
            k = int(lengths[n, g])
            assert b.mask[n, g, :k].all() and not b.mask[n, g, k:].any()
    assert np.all((b.scene_score >= 0) & (b.scene_score <= 1))


def test_the_policy_samples_for_the_members_still_driving_only(batch, scenes):
    policy, _ = batch
    inner, sizes = RolloutPolicy(policy, np.random.default_rng(0)), []

    def sample(obs):
        sizes.append(len(obs))
        return inner(obs)

    env = make_group_env(2, 4, scenarios=scenes, horizon=HORIZON, reward="metrics")
    b = collect_groups(env, sample, np.array([0, 5]), 4)
    alive = b.mask.reshape(8, HORIZON).sum(0)  # members driving at each step
    assert sizes == [int(a) for a in alive[: len(sizes)]] and sizes[0] == 8 and alive[len(sizes) :].sum() == 0


def test_update_moves_probability_towards_positive_advantages(batch):
    behaviour, b = batch
    policy = _clone(behaviour)  # the fixture's policy stays the behaviour policy of `b` for other tests
    before = GaussianPolicy(policy.config)
    before.load_state_dict(policy.state_dict())
    updater = GRPOUpdater(policy, GRPOConfig(lr=1e-3, epochs=4, advantage="step"))
    adv, keep = updater.advantages(b)
    stats = updater.update(b)
    assert stats["ratio_min"] <= 1.0 <= stats["ratio_max"] and stats["grad_norm"] > 0
    obs, u = torch.as_tensor(b.obs)[keep], torch.as_tensor(b.u)[keep]
    mask = torch.as_tensor(b.mask)[keep]
    with torch.no_grad():
        delta = policy.log_prob(obs, u) - before.log_prob(obs, u)
    # The surrogate's first-order gain: advantage-weighted log-probability change is positive.
    assert float((adv * delta * mask).sum()) > 0.0


def test_sync_loop_trains_logs_and_writes_a_checkpoint(tmp_path, scenes):
    policy = GaussianPolicy(PolicyConfig(177, 2, (32,)))
    init = save(tmp_path / "init.safetensors", policy, {"action_type": "control"})
    cfg = SyncConfig(
        init=str(init),
        suite="smoke",
        val_suite="smoke",
        val_scenes=4,
        updates=2,
        groups=2,
        group_size=4,
        eval_every=1,
        env={"horizon": HORIZON},
        out_dir=str(tmp_path / "run"),
        progress=False,
    )
    _, history = train_sync(cfg)
    assert [r["update"] for r in history] == [0, 1, 2]
    for key in ("reward", "scene_score", "kl", "clip_fraction", "ratio_min", "ratio_max", "grad_norm"):
        assert np.isfinite(history[-1][key])
    assert (tmp_path / "run" / "policy.safetensors").exists()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["env_steps"] > 0


def test_decoupled_update_weighs_stale_steps_by_the_truncated_importance_ratio(batch):
    policy, b = batch
    stale = GroupBatch(**{**vars(b), "logp": b.logp + 3.0})  # the behaviour policy liked its actions more
    updater = GRPOUpdater(_clone(policy), GRPOConfig(lr=1e-3, behaviour_weight_cap=2.0))
    stats = updater.update(stale)
    assert stats["behaviour_weight"] == pytest.approx(np.exp(-3.0), rel=1e-3)
    assert GRPOUpdater(_clone(policy), GRPOConfig()).update(b)["behaviour_weight"] == pytest.approx(
        1.0, abs=0.05
    )
    fresh = GroupBatch(**{**vars(b), "logp": b.logp - 3.0})  # weights above the cap are truncated
    assert GRPOUpdater(_clone(policy), GRPOConfig()).update(fresh)["behaviour_weight"] == pytest.approx(2.0)
    assert all(torch.isfinite(p).all() for p in updater.policy.parameters())


def _clone(policy: GaussianPolicy) -> GaussianPolicy:
    p = GaussianPolicy(policy.config)
    p.load_state_dict(policy.state_dict())
    return p
