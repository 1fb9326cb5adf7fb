"""`python -m alpagym_train.grpo` end to end, as processes, against real redis-servers: a killed actor,
a resumed learner, Redis going away, and actors that share nothing but the Redis URL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from alpagym_train.policy import GaussianPolicy, PolicyConfig, save  # noqa: E402
from alpagym_train.rollout import make_group_env  # noqa: E402
from alpagym_train.rundir import read_metrics  # noqa: E402
from alpagym_train.transport import Transport  # noqa: E402

SMALL = [
    "env.suite=smoke",
    "env.horizon=30",
    "learner.val_suite=smoke",
    "learner.val_scenes=4",
    "learner.group_size=2",
    "learner.groups_per_update=2",
    "learner.eval_every=0",
    "learner.checkpoint_every=1",
    "actors.groups_per_push=1",
    "actors.max_queue=1",  # fewer than an update needs: back-pressure must not stop the actors it waits for
    "progress=false",
]


@pytest.fixture(scope="module")
def init_policy(tmp_path_factory) -> Path:
    """An untrained policy checkpoint that fits the env (stands in for a BC checkpoint)."""
    env = make_group_env(1, 1, horizon=30)
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(env.single_observation_space.shape[0], 2, (32,)))
    return save(tmp_path_factory.mktemp("init") / "policy.safetensors", policy, {"action_type": "control"})


def _start(args: list[str], cwd: Path, **env_vars: str) -> subprocess.Popen:
    root = str(Path(__file__).resolve().parents[2])  # this checkout, whatever the cwd
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": root, **env_vars}
    return subprocess.Popen(
        [sys.executable, "-m", "alpagym_train.grpo", *args],
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"timed out:\n{out[-3000:]}\n{err[-3000:]}")
    return proc.returncode, out, err


def _wait_for(cond, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited ({proc.returncode}) before {what}:\n{out[-3000:]}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _updates(run_dir: Path) -> list[dict]:
    if not (run_dir / "metrics.jsonl").is_file():
        return []
    return [r for r in read_metrics(run_dir) if "groups_used" in r]


def test_killed_actor_loses_only_its_unfinished_group(own_redis_server, init_policy, tmp_path):
    UPDATES = 40  # noqa: N806 (more than the run makes while its supervisor replaces the actor)
    run = tmp_path / "run"
    args = [
        f"learner.init={init_policy}",
        f"run_dir={run}",
        f"redis.url={own_redis_server.url}",
        "redis.run_id=kill",
        f"learner.updates={UPDATES}",
        "learner.max_policy_lag=100",
        "actors.num=2",
    ]
    proc = _start(SMALL + args, tmp_path)
    t = Transport(own_redis_server.url, "kill")
    _wait_for(lambda: len(t.live_actors()) == 2 and len(_updates(run)) >= 2, 120, "two actors", proc)
    first = set(t.live_actors())
    victim = min(first)
    os.kill(t.actor_info(victim)["pid"], signal.SIGKILL)
    _wait_for(lambda: set(t.live_actors()) - first, 60, "a replacement actor", proc)  # a new id
    code, out, err = _finish(proc)
    assert code == 0, err[-3000:]
    assert "killed by SIGKILL; replacing it" in err
    records = _updates(run)
    assert [r["update"] for r in records] == list(range(1, UPDATES + 1))
    last = records[-1]
    pushed = sum(t.counts("pushed_groups").values())
    queued = t.queue_length()  # one group per entry
    assert pushed == last["groups_used"] + last["groups_dropped"] + queued  # nothing pushed was lost
    assert (run / "policy.safetensors").is_file() and (run / "tb").is_dir()
    assert (run / "config.yaml").read_text().count("max_policy_lag: 100") == 1


def test_resumed_learner_continues_the_version_sequence(redis_required, init_policy, tmp_path):
    run = tmp_path / "run"
    base = SMALL + [f"learner.init={init_policy}", f"run_dir={run}", "actors.num=1"]
    code, _, err = _finish(_start(base + ["learner.updates=3"], tmp_path))
    assert code == 0, err[-3000:]
    first = _updates(run)
    assert [r["version"] for r in first] == [1, 2, 3]
    code, out, err = _finish(_start(base + ["learner.updates=5", f"resume={run}"], tmp_path))
    assert code == 0, err[-3000:]
    assert "resuming from" in out and "update_000003" in out
    records = _updates(run)
    assert [r["update"] for r in records] == [1, 2, 3, 4, 5]
    versions = [r["version"] for r in records]
    assert versions[:3] == [1, 2, 3] and versions[3] > 3 and versions[4] == versions[3] + 1
    assert records[3]["env_steps"] > records[2]["env_steps"]  # counters continue too


def test_redis_going_away_is_a_clear_error_and_a_clean_exit(own_redis_server, init_policy, tmp_path):
    run = tmp_path / "run"
    args = [
        f"learner.init={init_policy}",
        f"run_dir={run}",
        f"redis.url={own_redis_server.url}",
        "learner.updates=1000",
        "actors.num=1",
        "redis.timeout_s=3",
    ]
    proc = _start(SMALL + args, tmp_path)
    _wait_for(lambda: len(_updates(run)) >= 2, 120, "two updates", proc)
    own_redis_server.stop()
    code, out, err = _finish(proc, timeout=60)
    assert code == 3, err[-3000:]
    assert "cannot reach Redis at redis://:***@127.0.0.1" in err  # the password redacted
    assert "Traceback" not in err
    assert (run / "checkpoints" / "latest").is_file()  # the progress so far is kept


def test_actors_sharing_only_the_redis_url_both_contribute(own_redis_server, init_policy, tmp_path):
    secret = {"ALPAGYM_RUN_SECRET": "ab" * 32}  # given to every machine out of band
    dirs = {name: tmp_path / name for name in ("learner", "a", "b")}
    for d in dirs.values():
        d.mkdir()
    learner = _start(
        SMALL
        + [
            f"learner.init={init_policy}",
            "run_dir=run",
            f"redis.url={own_redis_server.url}",
            "role=learner",
            "redis.run_id=shared",
            "learner.updates=12",
            "learner.min_actors=2",
        ],
        dirs["learner"],
        **secret,
    )
    actors = [
        _start(
            [
                "role=actor",
                f"redis.url={own_redis_server.url}",
                "actors.groups_per_push=1",
                "actors.num_envs=2",  # one group in flight per actor: both are needed to keep the learner fed
                "actors.numba_threads=1",
            ],
            dirs[d],
            **secret,
        )
        for d in ("a", "b")
    ]
    code, _, err = _finish(learner)
    assert code == 0, err[-3000:]
    for a in actors:
        code, out, err = _finish(a, timeout=60)
        assert code == 0, err[-3000:]
        assert "joined run 'shared'" in out
    contributors = set()
    for r in _updates(dirs["learner"] / "run"):
        contributors |= set(r["groups_per_actor"])
    assert len(contributors) == 2, contributors


def test_cli_errors_name_the_problem(tmp_path):
    cases = {
        "bogus=1": "Key 'bogus' not in 'GRPORunConfig'",
        "learner.init=/nope.safetensors": "learner.init=/nope.safetensors: no such checkpoint",
        "role=actor": "role=actor needs redis.url",
        "reward.terms=[{kind:metric,name:speeed,scale:1}]": "unknown metric reward term 'speeed'",
        "algorithm.scale=wide": "scale must be one of",
    }
    for arg, message in cases.items():
        code, _, err = _finish(_start([arg, f"run_dir={tmp_path / 'run'}"], tmp_path), timeout=60)
        assert code != 0 and message in err, (arg, err[-2000:])


def test_sigterm_checkpoints_and_stops_everything_with_the_private_redis(
    redis_required, init_policy, tmp_path
):
    run = tmp_path / "run"
    args = [f"learner.init={init_policy}", f"run_dir={run}", "learner.updates=1000", "actors.num=1"]
    proc = _start(SMALL + args, tmp_path)
    _wait_for(lambda: len(_updates(run)) >= 2, 120, "two updates", proc)
    proc.send_signal(signal.SIGTERM)
    code, out, err = _finish(proc, timeout=90)
    assert code == 130, err[-3000:]
    assert "learner: interrupted; checkpointing" in err
    assert (run / "checkpoints" / "latest").is_file()
    port = int(out.split("private redis-server on 127.0.0.1:")[1].split()[0])
    with pytest.raises(OSError):  # the private server is gone too
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_all_actors_dead_makes_the_learner_checkpoint_and_exit(own_redis_server, init_policy, tmp_path):
    run = tmp_path / "run"
    args = [f"learner.init={init_policy}", f"run_dir={run}", "learner.updates=1000", "actors.num=1"]
    args += [f"redis.url={own_redis_server.url}", "actors.max_restarts=0", "actors.heartbeat_ttl_s=2"]
    proc = _start(SMALL + [*args, "learner.actor_timeout_s=4"], tmp_path)
    _wait_for(lambda: len(_updates(run)) >= 1, 120, "an update", proc)
    t = Transport(own_redis_server.url, (run / "run_id").read_text().strip())
    os.kill(t.actor_info(t.live_actors()[0])["pid"], signal.SIGKILL)
    code, out, err = _finish(proc, timeout=60)
    assert code == 4, err[-3000:]  # ExitCode.NO_ACTORS
    assert "actor 0: killed by SIGKILL; restart budget of 0 per 60 s used up" in err
    assert "no live actor and no rollout group for 4 s" in err and "learner: exit 4 (NO_ACTORS)" in err
    assert (run / "checkpoints" / "latest").is_file() and "Traceback" not in err


def test_a_10_s_redis_stall_is_ridden_out(own_redis_server, init_policy, tmp_path):
    run = tmp_path / "run"
    args = [f"learner.init={init_policy}", f"run_dir={run}", "learner.updates=1000", "actors.num=1"]
    proc = _start(SMALL + [*args, f"redis.url={own_redis_server.url}"], tmp_path)
    _wait_for(lambda: len(_updates(run)) >= 1, 120, "an update", proc)
    os.kill(own_redis_server.pid, signal.SIGSTOP)  # Redis hangs: every call of every process blocks
    try:
        time.sleep(10)
    finally:
        os.kill(own_redis_server.pid, signal.SIGCONT)
    done = len(_updates(run))
    _wait_for(lambda: len(_updates(run)) >= done + 2, 60, "two updates after the stall", proc)
    proc.send_signal(signal.SIGTERM)
    code, out, err = _finish(proc, timeout=90)
    assert code == 130, err[-3000:]
    assert "cannot reach Redis" not in err and "replacing it" not in err  # nobody gave up or died


def test_a_killed_learner_is_reported_by_its_signal(own_redis_server, init_policy, tmp_path):
    run = tmp_path / "run"
    args = [f"learner.init={init_policy}", f"run_dir={run}", "learner.updates=1000", "actors.num=1"]
    proc = _start(SMALL + [*args, f"redis.url={own_redis_server.url}"], tmp_path)
    _wait_for(lambda: len(_updates(run)) >= 1, 120, "an update", proc)
    t = Transport(own_redis_server.url, (run / "run_id").read_text().strip())
    os.kill(int(t.lease_holder().split(":")[1]), signal.SIGKILL)
    code, out, err = _finish(proc, timeout=90)
    assert code == 1 and "learner: killed by SIGKILL" in err, err[-3000:]  # ExitCode.CRASH, not 247
    assert t.stop_reason().startswith("the learner stopped (killed by SIGKILL)")  # the actors were told
