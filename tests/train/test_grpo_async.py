"""The async learner in-process against a real redis-server: same update as the sync reference,
stale groups dropped and counted, checkpoints that continue the version sequence, strict configs."""

from __future__ import annotations

import uuid

import pytest

torch = pytest.importorskip("torch")

from alpagym_train.algorithm import GRPOUpdater  # noqa: E402
from alpagym_train.grpo.checkpoint import (  # noqa: E402
    TrainerState,  # noqa: E402
    load_checkpoint,
    save_checkpoint,
)
from alpagym_train.grpo.config import GRPORunConfig, from_plain  # noqa: E402
from alpagym_train.grpo.learner import Learner, concat_groups  # noqa: E402
from alpagym_train.policy import GaussianPolicy  # noqa: E402
from alpagym_train.transport import Transport  # noqa: E402

G = 4


def _cfg(**learner) -> GRPORunConfig:
    return from_plain({"env": {"suite": "smoke", "horizon": 25}, "reward": {"terms": [
        {"kind": "metric", "name": "progress_delta", "scale": 1.0},
        {"kind": "terminal", "name": "scene_score", "scale": 1.0},
    ]}, "learner": {"group_size": G, "groups_per_update": 2, **learner}})  # fmt: skip


@pytest.fixture(scope="module")
def groups(smoke_groups):
    """Two pushes of two groups each, and the policy that rolled them out (see conftest)."""
    return smoke_groups


def _copy(policy: GaussianPolicy) -> GaussianPolicy:
    p = GaussianPolicy(policy.config)
    p.load_state_dict(policy.state_dict())
    return p


@pytest.fixture
def transport(redis_server):
    t = Transport(redis_server.url, run_id=f"async-{uuid.uuid4().hex[:8]}")
    yield t
    t.close()


def test_async_update_equals_the_synchronous_reference(groups, transport):
    policy, batches = groups
    cfg = _cfg(groups_per_update=4)
    reference = GRPOUpdater(_copy(policy), cfg.grpo_config(), seed=cfg.learner.seed)
    ref_stats = reference.update(concat_groups(batches))

    learner = Learner(cfg, transport, _copy(policy), TrainerState())
    learner.start()
    for b in batches:
        transport.push_group(b, policy_version=0, actor_id="a")
    rec = learner.step(timeout_s=10)
    for (name, p), q in zip(learner.policy.named_parameters(), reference.policy.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert rec["loss"] == ref_stats["loss"] and rec["groups_used"] == 4
    assert rec["version"] == 1 and transport.latest_version() == 1
    assert transport.queue_length() == 0 and transport.pending_count() == 0  # used entries are acked
    got = transport.fetch_weights(if_newer_than=0)
    assert got is not None and all(torch.equal(v, learner.policy.state_dict()[k]) for k, v in got[1].items())


def test_stale_groups_are_dropped_counted_and_never_trained_on(groups, transport):
    policy, batches = groups
    learner = Learner(_cfg(max_policy_lag=1), transport, _copy(policy), TrainerState(version=5))
    learner.start()
    transport.push_group(batches[0], policy_version=3, actor_id="old")  # 2 versions behind: dropped
    transport.push_group(batches[1], policy_version=4, actor_id="new")
    rec = learner.step(timeout_s=10)
    assert rec["groups_dropped"] == 2 and rec["groups_used"] == 2
    assert rec["groups_per_actor"] == {"new": 2}
    assert rec["policy_lag_max"] == 1 and rec["policy_lag_p50"] == 1.0
    assert transport.queue_length() == 0


def test_gather_times_out_with_a_clear_error(groups, transport):
    policy, _ = groups
    learner = Learner(_cfg(), transport, _copy(policy), TrainerState())
    learner.start()
    with pytest.raises(TimeoutError, match="no rollout groups arrived"):
        learner.step(timeout_s=0.3)


def test_checkpoint_resume_continues_versions_and_optimizer(groups, transport, tmp_path):
    policy, batches = groups
    cfg = _cfg()
    learner = Learner(cfg, transport, _copy(policy), TrainerState())
    learner.start()
    for _ in range(2):
        for b in batches[:1]:
            transport.push_group(b, transport.latest_version(), "a")
        learner.step(timeout_s=10)
    transport.push_group(batches[1], transport.latest_version(), "a")  # pushed, not yet used
    ckpt = save_checkpoint(tmp_path, learner.policy, {"action_type": "control"}, learner.trainer_state(),
                           cfg.plain())  # fmt: skip
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == ckpt.name

    restored, _, state, where = load_checkpoint(tmp_path)  # the run dir resolves to its latest checkpoint
    assert where == ckpt and state.update == 2 and state.version == 2
    for k, v in learner.policy.state_dict().items():
        assert torch.equal(v, restored.state_dict()[k])
    resumed = Learner(cfg, transport, restored, state)
    opt_a, opt_b = learner.updater.optimizer.state_dict(), resumed.updater.optimizer.state_dict()
    assert all(
        torch.equal(opt_a["state"][i]["exp_avg"], opt_b["state"][i]["exp_avg"]) for i in opt_a["state"]
    )
    resumed.start()
    assert state.version == 3 and transport.latest_version() == 3  # republished as the next version
    rec = resumed.step(timeout_s=10)  # the group pushed before the restart is used, not lost
    assert rec["update"] == 3 and rec["version"] == 4 and rec["groups_used"] == 6


def test_unacked_entries_of_a_dead_learner_are_claimed_back(groups, transport):
    policy, batches = groups
    cfg = _cfg()
    transport.push_group(batches[0], 0, "a")
    transport.read_groups(
        "learner", Learner(cfg, transport, _copy(policy), TrainerState()).spec, 0
    )  # then died
    assert transport.pending_count() == 1
    learner = Learner(cfg, transport, _copy(policy), TrainerState())
    learner.start()
    rec = learner.step(timeout_s=10)
    assert rec["groups_used"] == 2 and transport.pending_count() == 0


def test_config_is_strict_and_checked():
    with pytest.raises(Exception, match="bogus"):
        from_plain({"learner": {"bogus": 1}})
    with pytest.raises(Exception, match="lr"):
        from_plain({"algorithm": {"lr": "fast"}})
    with pytest.raises(ValueError, match="role"):
        from_plain({"role": "coach"})
    with pytest.raises(ValueError, match="group_size"):
        from_plain({"learner": {"group_size": 1}})
    with pytest.raises(ValueError, match="learner.max_seconds must be > 0"):
        from_plain({"learner": {"max_seconds": 0.0}})
    cfg = from_plain({"env": {"horizon": 50, "agents": {"mode": "idm"}}, "algorithm": {"scale": "none"}})
    assert cfg.env_config().horizon == 50 and cfg.env_config().agents.mode == "idm"
    assert cfg.grpo_config().scale == "none"
    with pytest.raises(ValueError, match="advantage"):
        from_plain({"algorithm": {"advantage": "magic"}}).grpo_config()
