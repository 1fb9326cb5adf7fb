"""Fault injection against real redis-servers: bad stream entries, forged weights and rollouts, an
unauthenticated client, a stalled server, dead actors, run-id reuse, non-finite updates, crashes and
resumes, strict configs and the exit-code table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

redis = pytest.importorskip("redis")
torch = pytest.importorskip("torch")

from alpagym_train.exit_codes import ExitCode, describe  # noqa: E402
from alpagym_train.grpo.checkpoint import TrainerState  # noqa: E402
from alpagym_train.grpo.config import GRPORunConfig, from_plain  # noqa: E402
from alpagym_train.grpo.identity import RunInUse, record_run_id, run_id_for, take_run  # noqa: E402
from alpagym_train.grpo.launch import RestartBudget  # noqa: E402
from alpagym_train.grpo.learner import Learner, NoActors  # noqa: E402
from alpagym_train.grpo.preflight import preflight  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, save  # noqa: E402
from alpagym_train.redis_server import RedisServer  # noqa: E402
from alpagym_train.rollout import make_group_env  # noqa: E402
from alpagym_train.rundir import RunLogger, read_metrics  # noqa: E402
from alpagym_train.transport import BadPayload, Transport  # noqa: E402
from alpagym_train.wire import encode_group  # noqa: E402
from tests.train.conftest import SMOKE_REWARD  # noqa: E402

G = 4
SECRET = b"\x07" * 32


def _cfg(**learner) -> GRPORunConfig:
    values = {"env": {"suite": "smoke", "horizon": 25}, "reward": {"terms": SMOKE_REWARD}}
    return from_plain({**values, "learner": {"group_size": G, "groups_per_update": 2, **learner}})


@pytest.fixture(scope="module")
def groups(smoke_groups):
    """Two real groups in one push, and the policy that rolled them out."""
    policy, batches = smoke_groups
    return policy, batches[0]


@pytest.fixture
def transport(redis_server):
    t = Transport(redis_server.url, run_id=f"trust-{uuid.uuid4().hex[:8]}", secret=SECRET)
    yield t
    t.close()


def _copy(policy: GaussianPolicy) -> GaussianPolicy:
    p = GaussianPolicy(policy.config)
    p.load_state_dict(policy.state_dict())
    return p


def _learner(policy, transport, **learner) -> Learner:
    learner_ = Learner(_cfg(**learner), transport, _copy(policy), TrainerState())
    learner_.start()
    return learner_


def _dead(transport, raw) -> list[dict]:
    return [{k.decode(): v for k, v in f.items()} for _, f in raw.xrange(transport.dead_letters)]


# ---- entry validation and the dead-letter stream --------------------------------------------------------


def test_bad_entries_are_dead_lettered_never_trained_on_never_fatal(groups, transport, raw):
    policy, batch = groups
    learner = _learner(policy, transport)
    nan = GroupBatch_with(batch, logp=np.full_like(batch.logp, np.nan))
    transport.push_group(nan, 0, "nan-actor")
    transport.push_group(batch, 10**9, "future-actor")  # a behaviour version the learner never had
    wrong = GroupBatch_with(batch, obs=batch.obs[..., :-1])  # one observation short
    transport.push_group(wrong, 0, "shape-actor")
    raw.xadd(transport.stream, {"actor": "junk-actor", "data": b"\x93garbage", "mac": b"00"})
    raw.xadd(transport.stream, {"header": b"\x81\xa6format\x01"})  # the old wire format
    big = np.zeros(learner.spec.max_bytes + 1, np.uint8).tobytes()
    raw.xadd(transport.stream, {"actor": "big-actor", "data": big, "mac": b"00"})
    transport.push_group(batch, 0, "good")
    before = {k: v.clone() for k, v in learner.policy.state_dict().items()}
    rec = learner.step(timeout_s=10)
    assert rec["groups_used"] == 2 and rec["groups_per_actor"] == {"good": 2}
    assert rec["entries_rejected"] == 6 and rec["version"] == 1
    assert all(torch.isfinite(v).all() for v in learner.policy.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in learner.policy.state_dict().items())
    dead = _dead(transport, raw)
    reasons = {d["actor"].decode(): d["reason"].decode() for d in dead}
    assert "'logp' holds NaN" in reasons["nan-actor"]
    assert "policy_version 1000000000 outside [0, 0]" in reasons["future-actor"]
    assert "'obs' is F32[2, 4, 25, " in reasons["shape-actor"]
    assert "MAC mismatch" in reasons["junk-actor"]
    assert f"{learner.spec.max_bytes + 1} bytes > the limit" in reasons["big-actor"]
    big_record = next(d for d in dead if d["actor"] == b"big-actor")
    assert len(big_record["data"]) == 64 << 10 and int(big_record["nbytes"]) > learner.spec.max_bytes
    assert "fields" in reasons[""]
    assert transport.counts("dead_letters")["nan-actor"] == 1
    assert transport.queue_length() == 0 and transport.pending_count() == 0


def GroupBatch_with(batch, **arrays):
    from dataclasses import replace

    return replace(batch, **arrays)


def test_crashed_learner_resumes_past_a_bad_pending_entry(groups, transport, raw):
    policy, batch = groups
    transport.push_group(GroupBatch_with(batch, rewards=np.full_like(batch.rewards, np.inf)), 0, "bad")
    # A learner read the entry and crashed on it before acknowledging: it is still pending.
    raw.xgroup_create(transport.stream, "learner", id="0", mkstream=True)
    raw.xreadgroup("learner", "learner", {transport.stream: ">"}, count=1)
    assert transport.pending_count() == 1
    transport.push_group(batch, 0, "good")
    learner = _learner(policy, transport)  # claims the pending entry back: it is dead-lettered
    rec = learner.step(timeout_s=10)
    assert rec["entries_rejected"] >= 1 and rec["groups_per_actor"] == {"good": 2}
    assert transport.pending_count() == 0


def test_non_finite_update_is_skipped_and_weights_are_finite_before_publish(groups, transport, monkeypatch):
    policy, batch = groups
    learner = _learner(policy, transport)
    before = {k: v.clone() for k, v in learner.policy.state_dict().items()}
    real_update, calls = learner.updater.update, []

    def poisoned(b):
        stats = real_update(b)
        if not calls:
            with torch.no_grad():
                next(learner.policy.parameters()).fill_(float("nan"))
            stats["loss"] = float("nan")
        calls.append(1)
        return stats

    monkeypatch.setattr(learner.updater, "update", poisoned)
    transport.push_group(batch, 0, "a")
    transport.push_group(batch, 0, "a")
    rec = learner.step(timeout_s=10)  # the first update is undone, the second one applied
    assert len(calls) == 2 and rec["updates_skipped"] == 1 and rec["version"] == 1
    assert all(torch.isfinite(v).all() for v in learner.policy.state_dict().values())
    _, got = transport.fetch_weights()
    assert all(torch.isfinite(v).all() for v in got.values())
    with torch.no_grad():
        next(learner.policy.parameters()).fill_(float("inf"))
    with pytest.raises(ValueError, match="not finite: not published"):
        learner.publish()
    assert transport.latest_version() == 1
    assert before  # (the weights before were finite too)


# ---- authentication ------------------------------------------------------------------------------------


def test_a_client_without_the_secret_can_neither_publish_nor_push(groups, transport, redis_server, raw):
    policy, batch = groups
    learner = _learner(policy, transport)
    intruder = Transport(redis_server.url, transport.run_id, secret=b"guess")
    intruder.push_group(batch, 0, "intruder")
    transport.push_group(batch, 0, "a")
    rec = learner.step(timeout_s=10)
    assert rec["groups_per_actor"] == {"a": 2}
    assert "MAC mismatch" in _dead(transport, raw)[0]["reason"].decode()
    transport.publish_spec({"group_size": G})
    with pytest.raises(BadPayload, match="spec is not signed"):
        intruder.read_spec()
    intruder.publish_spec({"group_size": 1000})
    with pytest.raises(BadPayload, match="spec is not signed"):
        transport.read_spec()
    intruder.publish_weights({k: torch.zeros_like(v) for k, v in policy.state_dict().items()}, version=5)
    with pytest.raises(BadPayload, match="version 5: MAC mismatch"):
        transport.fetch_weights(if_newer_than=1)
    # A copied entry replayed into another run's stream is not that run's either.
    other = Transport(redis_server.url, f"{transport.run_id}-b", secret=SECRET)
    raw.xadd(other.stream, encode_group(batch, 0, "a", transport.run_id, SECRET))
    good, bad = other.read_groups("learner", learner.spec, 0)
    assert good == [] and "not this run's entry" in bad[0].reason


def test_private_server_requires_a_password_and_has_no_admin_commands():
    with RedisServer() as server:
        assert len(server.password) >= 24
        with redis.Redis(host="127.0.0.1", port=server.port) as anonymous:
            with pytest.raises(redis.AuthenticationError):
                anonymous.set("x", 1)
        with redis.Redis.from_url(server.url) as client:
            for command in (("CONFIG", "SET", "dir", "/tmp"), ("FLUSHALL",), ("DEBUG", "SLEEP", "0"),
                            ("SHUTDOWN", "NOSAVE")):  # fmt: skip
                with pytest.raises(redis.ResponseError, match="unknown command"):
                    client.execute_command(*command)
        conf = next(server._dir.glob("redis.conf"))
        assert oct(conf.stat().st_mode & 0o777) == "0o600"
        cmdline = open(f"/proc/{server.pid}/cmdline").read() if os.path.exists("/proc") else ""
        assert server.password not in cmdline


# ---- liveness ------------------------------------------------------------------------------------------


def test_learner_stops_when_no_actor_is_alive(groups, transport):
    policy, _ = groups
    learner = _learner(policy, transport, actor_timeout_s=1.0)
    transport.heartbeat("short-lived", ttl_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(NoActors, match=r"no live actor and no rollout group for 1 s"):
        learner.step()
    assert 1.0 < time.monotonic() - t0 < 5.0


def test_restart_budget_is_per_window():
    budget = RestartBudget(limit=2, window_s=10.0)
    assert budget.take(0.0) and budget.take(1.0) and not budget.take(2.0)  # a crash loop waits
    assert budget.take(10.5) and not budget.take(10.6)
    assert not RestartBudget(0, 10.0).take(0.0)


# ---- run identity --------------------------------------------------------------------------------------


def test_fresh_runs_get_unique_ids_and_resume_reuses_its_own(tmp_path):
    cfg = from_plain({"run_dir": str(tmp_path / "grpo")})
    a, b = run_id_for(cfg), run_id_for(cfg)
    assert a != b and a.startswith("grpo-")
    record_run_id(cfg.run_dir, a)
    ckpt = tmp_path / "grpo" / "checkpoints" / "update_000001"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer.pt").touch(), (ckpt / "policy.safetensors").touch()
    (tmp_path / "grpo" / "checkpoints" / "latest").write_text(ckpt.name)
    assert run_id_for(from_plain({"run_dir": str(tmp_path / "grpo"), "resume": str(tmp_path / "grpo")})) == a


def test_run_ids_cannot_reach_into_other_namespaces(redis_server):
    for bad in ("a:b", "run*", "x y"):
        with pytest.raises(ValueError, match="letters, digits"):
            Transport(redis_server.url, bad)


def test_a_live_run_cannot_be_taken_and_a_dead_runs_leftovers_are_cleared(groups, transport, redis_server):
    policy, batch = groups
    transport.claim_lease("other-host:1:abcd", ttl_s=30)  # a learner on another machine holds the run
    with pytest.raises(RunInUse, match="in use by the learner other-host:1"):
        take_run(transport, resumed=False, ttl_s=30)
    transport.release_lease("other-host:1:abcd")
    transport.push_group(batch, 0, "old-run-actor")  # a dead run of the same id left a group, a stop key
    transport.request_stop("done")
    owner = take_run(transport, resumed=False, ttl_s=30)
    assert transport.queue_length() == 0 and transport.stop_reason() is None
    assert (
        transport.lease_holder() == owner
        and transport.runs() == [transport.run_id]
        or transport.run_id in transport.runs()
    )


# ---- resume, logs, exit codes, config --------------------------------------------------------------------


def test_resume_keeps_the_kl_reference(groups, transport):
    policy, batch = groups
    cfg = from_plain({**_cfg().plain(), "algorithm": {"kl_coef": 0.1}})
    learner = Learner(cfg, transport, _copy(policy), TrainerState())
    learner.start()
    transport.push_group(batch, 0, "a")
    learner.step(timeout_s=10)
    state = learner.trainer_state()
    resumed = Learner(cfg, transport, _copy(learner.policy), state)
    for k, v in resumed.updater.reference.state_dict().items():
        assert torch.equal(v, policy.state_dict()[k]), k  # the init policy, not the resumed weights


def test_resumed_metrics_are_truncated_to_the_checkpoint(tmp_path):
    with RunLogger(tmp_path, {}, tensorboard=False) as log:
        for step in range(1, 6):
            log.log(step, {"update": step})
    with RunLogger(tmp_path, None, tensorboard=False, append=True, keep_until=3) as log:
        log.log(4, {"update": 4})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4]


def test_exit_codes_name_signals():
    assert describe(-9) == "killed by SIGKILL" and describe(3) == "exit 3 (REDIS_LOST)"
    assert ExitCode.CONFIG == 2 and ExitCode.INTERRUPTED == 130


def test_preflight_checks_policy_fit_and_entropy(tmp_path):
    env = make_group_env(1, 1, horizon=25)
    d = env.single_observation_space.shape[0]
    wrong = save(tmp_path / "wrong.safetensors", GaussianPolicy(PolicyConfig(d + 1, 2, (8,))), {})
    with pytest.raises(ValueError, match=rf"takes {d + 1} observations .* the env has {d}"):
        preflight(from_plain({**_cfg().plain(), "learner": {"init": str(wrong)}}))
    fits = save(tmp_path / "fits.safetensors", GaussianPolicy(PolicyConfig(d, 2, (8,))), {})
    values = {**_cfg().plain(), "learner": {"init": str(fits)}, "algorithm": {"entropy_coef": 0.01}}
    with pytest.raises(ValueError, match="entropy_coef=0.01 cannot act"):
        preflight(from_plain(values))
    preflight(from_plain({**values, "algorithm": {"entropy_coef": 0.01, "learn_std": True}}))


def test_cli_rejects_added_keys_and_documents_every_key(tmp_path):
    run = [sys.executable, "-m", "alpagym_train.grpo"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([*run, "+learner.updatez=3", f"run_dir={tmp_path}"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)  # fmt: skip
    assert out.returncode == ExitCode.CONFIG and "updatez" in out.stderr, out.stderr[-2000:]
    text = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60, env=env).stdout
    assert "learner.actor_timeout_s" in text and "checkpoints and exits" in text
    assert "redis.timeout_s" in text and "algorithm.entropy_coef" in text
    assert "reward=distance_to_gt|metrics|progress_safety|scene_score" in text  # the presets on disk
    assert "algorithm=dr_grpo|grpo|kl|outcome|ppo" in text


def test_any_learner_crash_checkpoints_and_a_live_run_is_refused(groups, redis_server, tmp_path, monkeypatch,
                                                                capsys):  # fmt: skip
    import alpagym_train.grpo.learner as learner_module

    policy, _ = groups
    init = save(tmp_path / "init.safetensors", policy, {"action_type": "control"})
    values = _cfg().plain()
    values["learner"] |= {"init": str(init), "val_suite": "smoke", "val_scenes": 1, "eval_every": 0}
    cfg = from_plain({**values, "run_dir": str(tmp_path / "run"), "progress": False})

    def crash(cfg, learner, *args):
        learner.state.update = 1
        raise RuntimeError("boom")

    monkeypatch.setattr(learner_module, "_train", crash)
    run_id = f"crash-{uuid.uuid4().hex[:6]}"
    assert learner_module.run_learner(cfg, redis_server.url, run_id, SECRET) == ExitCode.CRASH
    assert (tmp_path / "run" / "checkpoints" / "update_000001" / "trainer.pt").is_file()
    assert "RuntimeError: boom" in capsys.readouterr().err
    t = Transport(redis_server.url, run_id, secret=SECRET)
    assert t.lease_holder() is None and t.stop_reason().startswith("the learner stopped: CRASH")
    t.claim_lease("other-host:7:beef", ttl_s=30)
    assert learner_module.run_learner(cfg, redis_server.url, run_id, SECRET) == ExitCode.CONFIG
    assert "in use by the learner other-host:7" in capsys.readouterr().err
