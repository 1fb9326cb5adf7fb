"""Async GRPO across machines: a learner on one, actors on others, joined by nothing but a Redis URL.

On real machines (a shared redis-server reachable from all of them, e.g. on the learner's host)::

    # machine A: Redis (password in its 0600 config file) and the learner; the password and the run
    # secret travel in environment variables or files, never on a command line
    export ALPAGYM_REDIS_PASSWORD=... ALPAGYM_RUN_SECRET=$(openssl rand -hex 32)
    python -m alpagym_train.grpo topology=learner redis.url=redis://hostA:6379/0 \\
        redis.run_id=highway-grpo learner.init=runs/bc/policy.safetensors

    # machines B, C, ...: as many actors as they have cores for (the env, reward, scenes, group size
    # and policy architecture come from the learner through Redis), given the same two variables
    python -m alpagym_train.grpo topology=actor redis.url=redis://hostA:6379/0

This script plays all the parts on one machine: it starts a password-protected redis-server, trains a
BC policy on the smoke suite, starts the learner, then two actors in separate working directories
with only the URL, waits for the learner to finish and shows what each actor contributed.

Run: ``python examples/two_machine_grpo.py --quick``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.redis_server import RedisServer
from alpagym_train.rundir import read_metrics


def grpo(*overrides: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """`python -m alpagym_train.grpo *overrides` as a child process in `cwd`, with `env` added."""
    cmd = [sys.executable, "-m", "alpagym_train.grpo", *overrides]
    return subprocess.Popen(cmd, cwd=cwd, text=True, env={**os.environ, **env})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke suite, short episodes, 12 updates")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--out", default="runs/two_machines", help="one working directory per machine here")
    args = parser.parse_args()
    updates = 12 if args.quick else args.updates
    small = ["env.suite=smoke", "env.horizon=40", "learner.val_suite=smoke", "learner.val_scenes=8"]
    small += ["learner.groups_per_update=4", "learner.group_size=4", "progress=false"] if args.quick else []
    work = Path(args.out)
    machines = {name: work / name for name in ("A", "B", "C")}
    for d in machines.values():
        d.mkdir(parents=True, exist_ok=True)

    bc = (machines["A"] / "bc" / "policy.safetensors").resolve()
    epochs = 3 if args.quick else 20
    train_bc(
        BCConfig(suite="smoke", val_suite="smoke", epochs=epochs, out_dir=str(bc.parent), progress=False)
    )
    print(f"BC policy -> {bc}")

    with RedisServer() as server:  # stands in for the shared server on machine A (random password)
        url = f"redis://127.0.0.1:{server.port}/0"
        print(f"shared Redis: redis://:***@127.0.0.1:{server.port}/0 (password in ALPAGYM_REDIS_PASSWORD)")
        # Given to every machine out of band (environment variables here; files of mode 0600 work too).
        private = {"ALPAGYM_REDIS_PASSWORD": server.password, "ALPAGYM_RUN_SECRET": secrets.token_hex(32)}
        run = ["redis.run_id=two-machines", f"learner.init={bc}", f"learner.updates={updates}", "run_dir=run"]
        run += ["learner.min_actors=2"]  # start training once both machines' actors are up
        learner = grpo("topology=learner", f"redis.url={url}", *run, *small, cwd=machines["A"], env=private)
        actor = ("topology=actor", f"redis.url={url}", "actors.numba_threads=1", "actors.groups_per_push=1")
        # Quick: one group in flight and at most one waiting unread, so neither actor can supply a whole
        # short run while the other is still starting (or descheduled on a busy machine).
        actor += ("actors.num_envs=4", "actors.max_queue=1") if args.quick else ()
        actors = [grpo(*actor, cwd=machines[m], env=private) for m in ("B", "C")]
        code = learner.wait()
        for a in actors:  # they exit by themselves once the learner is done; not if it failed
            if code != 0:
                a.terminate()
            a.wait(timeout=60)
    if code != 0:
        sys.exit(f"the learner failed (exit {code})")

    records = [r for r in read_metrics(machines["A"] / "run") if "groups_per_actor" in r]
    contributed = Counter()
    for r in records:
        contributed.update(r["groups_per_actor"])
    lag = sorted(r["policy_lag_p50"] for r in records)[len(records) // 2]
    print(f"learner: {len(records)} updates, {records[-1]['env_steps']} env steps, median policy lag {lag:g}")
    for actor, groups in sorted(contributed.items()):
        print(f"actor {actor}: {groups} groups")
    trained = machines["A"] / "run" / "policy.safetensors"
    print(f"actors that contributed: {len(contributed)}; policy -> {trained}")


if __name__ == "__main__":
    main()
