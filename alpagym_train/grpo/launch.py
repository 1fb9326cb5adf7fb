"""``role=all``: a private Redis if none is given, the learner and the actors, supervised.

The supervisor (this process) starts a `RedisServer` when ``redis.url`` is unset, then the learner and
``actors.num`` actor processes (multiprocessing, spawn). It restarts an actor that dies (a crash, an
OOM kill, ``kill -9``) up to ``actors.max_restarts`` times, and finishes when the learner does: the
learner's stop request lets the actors exit after their current group, stragglers are terminated,
and the private Redis is stopped. Ctrl-C or SIGTERM makes the learner checkpoint and everything stop.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import sys
import time
from pathlib import Path

from alpagym_train.grpo.config import GRPORunConfig, from_plain
from alpagym_train.grpo.learner import EXIT_REDIS, preflight

POLL_S = 0.2
GRACE_S = 30.0


def run_id_for(cfg: GRPORunConfig) -> str:
    """The run's key namespace: ``redis.run_id``, else the run directory's name."""
    return cfg.redis.run_id or Path(cfg.run_dir).resolve().name


def _learner_main(values: dict, url: str, run_id: str) -> None:
    from alpagym_train.grpo.learner import run_learner

    sys.exit(run_learner(from_plain(values), url, run_id))


def _actor_main(values: dict, url: str, run_id: str, index: int, restart: int, local: int) -> None:
    from alpagym_train.grpo.actor import run_actor

    sys.exit(run_actor(from_plain(values), url, run_id, index, restart, local))


def run_all(cfg: GRPORunConfig) -> int:
    """Runs the whole training on this machine; returns the learner's exit status."""
    from alpagym_train.redis_server import RedisServer

    preflight(cfg)
    server = RedisServer().start() if cfg.redis.url is None else None
    url = server.url if server is not None else cfg.redis.url
    run_id = run_id_for(cfg)
    if server is not None:
        print(f"private redis-server on 127.0.0.1:{server.port} (no persistence)", flush=True)
    previous = signal.signal(signal.SIGTERM, interrupt)  # SIGTERM stops the run as Ctrl-C does
    try:
        return _supervise(cfg, url, run_id)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.stop()


def interrupt(signum, frame) -> None:
    """Signal handler raising KeyboardInterrupt (installed for SIGTERM)."""
    raise KeyboardInterrupt


def _supervise(cfg: GRPORunConfig, url: str, run_id: str) -> int:
    ctx = mp.get_context("spawn")
    values, n = cfg.plain(), cfg.actors.num
    learner = ctx.Process(target=_learner_main, args=(values, url, run_id), name="learner")
    learner.start()
    restarts = [0] * n

    def spawn(i: int) -> mp.Process:
        args = (values, url, run_id, i, restarts[i], n + 1)  # the learner shares the cores too
        p = ctx.Process(target=_actor_main, args=args, name=f"actor-{i}")
        p.start()
        return p

    actors = [spawn(i) for i in range(n)]
    total_restarts = 0
    try:
        while learner.is_alive():
            learner.join(POLL_S)
            for i, p in enumerate(actors):
                if p is None or p.is_alive() or not learner.is_alive():
                    continue
                code = p.exitcode
                if code == EXIT_REDIS or code == 0:
                    actors[i] = None  # lost Redis (the learner reports it too) or the run is over
                    continue
                if total_restarts >= cfg.actors.max_restarts:
                    print(f"actor {i} died (exit {code}); restart limit reached", file=sys.stderr, flush=True)
                    actors[i] = None
                    continue
                total_restarts += 1
                restarts[i] += 1
                limit = cfg.actors.max_restarts
                msg = f"actor {i} died (exit {code}); restarting it ({total_restarts}/{limit})"
                print(msg, file=sys.stderr, flush=True)
                actors[i] = spawn(i)
    except KeyboardInterrupt:
        # A Ctrl-C reaches every process of the terminal's group; a SIGTERM only this one: the stop
        # request tells the learner (which checkpoints and exits) and the actors either way.
        _request_stop(url, run_id, "interrupted")
        learner.join(GRACE_S)
        _finish([learner, *actors], grace_s=5.0)
        return 130
    if learner.exitcode not in (0, EXIT_REDIS):
        _request_stop(url, run_id, f"the learner failed (exit {learner.exitcode})")
    _finish(actors, GRACE_S)
    return learner.exitcode if learner.exitcode is not None else 1


def _request_stop(url: str, run_id: str, reason: str) -> None:
    from alpagym_train.transport import Transport, TransportError

    try:
        Transport(url, run_id).request_stop(reason)
    except TransportError:
        pass  # the actors notice Redis is gone by themselves


def _finish(procs: list, grace_s: float) -> None:
    """Waits up to `grace_s` for `procs` to exit, then terminates (and finally kills) the rest."""
    deadline = time.monotonic() + grace_s
    for p in procs:
        if p is not None:
            p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p is not None and p.is_alive():
            p.terminate()
            p.join(5.0)
            if p.is_alive():
                p.kill()
                p.join()
