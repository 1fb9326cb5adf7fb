"""``role=all``: a private Redis if none is given, the learner and the actors, supervised.

The supervisor (this process) runs the preflight checks, then starts a `RedisServer` when ``redis.url``
is unset (with a random password and its admin commands disabled), then the learner and ``actors.num``
actor processes (multiprocessing, spawn: the Redis URL and the run secret reach them through a pipe,
never a command line). While the run is live it replaces an actor that exits for any reason (a crash,
an OOM kill, ``kill -9``, a lost Redis, an idle timeout), at most ``actors.max_restarts`` times per
``actors.restart_window_s``; a crash loop waits for the window to slide. It finishes when the learner
does: the learner's stop request lets the actors exit after their current group, stragglers are
terminated, and the private Redis is stopped. Ctrl-C or SIGTERM makes the learner checkpoint and
everything stop. A learner killed by a signal is reported by the signal's name.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import signal
import sys
import time

from alpagym_train.exit_codes import ExitCode, describe
from alpagym_train.grpo.config import GRPORunConfig, from_plain
from alpagym_train.grpo.identity import ensure_secret, lease_is_live, record_run_id, run_id_for
from alpagym_train.grpo.preflight import preflight

POLL_S = 0.2
GRACE_S = 30.0


def _learner_main(values: dict, url: str, run_id: str, secret: bytes, sharing: int) -> None:
    from alpagym_train.grpo.learner import run_learner

    sys.exit(int(run_learner(from_plain(values), url, run_id, secret, sharing)))


def _actor_main(values: dict, url: str, run_id: str, index: int, restart: int, local: int,
                secret: bytes) -> None:  # fmt: skip
    from alpagym_train.grpo.actor import run_actor

    sys.exit(int(run_actor(from_plain(values), url, run_id, index, restart, local, secret)))


def run_all(cfg: GRPORunConfig) -> int:
    """Runs the whole training on this machine; returns an `ExitCode` (the learner's, or CRASH when it
    was killed)."""
    from alpagym_train.grpo.identity import with_password
    from alpagym_train.redis_server import RedisServer

    preflight(cfg)
    run_id = run_id_for(cfg)
    record_run_id(cfg.run_dir, run_id)
    secret = ensure_secret(cfg)
    server = RedisServer().start() if cfg.redis.url is None else None
    url = server.url if server is not None else with_password(cfg.redis.url)
    if server is not None:
        print(
            f"private redis-server on 127.0.0.1:{server.port} (password-protected, no persistence)",
            flush=True,
        )
    print(f"run {run_id!r} (recorded in {cfg.run_dir}/run_id)", flush=True)
    if server is None:
        _refuse_live_run(url, run_id, cfg.redis.timeout_s)
    previous = signal.signal(signal.SIGTERM, interrupt)  # SIGTERM stops the run as Ctrl-C does
    try:
        return _supervise(cfg, url, run_id, secret)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.stop()


def _refuse_live_run(url: str, run_id: str, timeout_s: float) -> None:
    """Raises RuntimeError when a live learner holds `run_id` on the server: nothing is started."""
    from alpagym_train.transport import Transport

    with_transport = Transport(url, run_id, timeout_s=timeout_s)
    holder = with_transport.lease_holder()
    with_transport.close()
    if holder is not None and lease_is_live(holder):
        raise RuntimeError(
            f"run {run_id!r} is in use by the learner {holder.rsplit(':', 1)[0]} on {url.split('@')[-1]}; "
            "pick another redis.run_id"
        )


def interrupt(signum, frame) -> None:
    """Signal handler raising KeyboardInterrupt (installed for SIGTERM)."""
    raise KeyboardInterrupt


class RestartBudget:
    """At most `limit` restarts in any `window_s` seconds.

    Args:
        limit: Restarts allowed per window.
        window_s: The window, s.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._times: collections.deque[float] = collections.deque()

    def take(self, now: float | None = None) -> bool:
        """Uses one restart if the window has one left; returns whether it did."""
        now = time.monotonic() if now is None else now
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


def _supervise(cfg: GRPORunConfig, url: str, run_id: str, secret: bytes) -> int:
    from alpagym_train.transport import Transport, TransportError

    ctx = mp.get_context("spawn")
    values, n = cfg.plain(), cfg.actors.num
    # The learner shares the cores with the actors: its validation runs size their Numba pool to that.
    args = (values, url, run_id, secret, n + 1)
    learner = ctx.Process(target=_learner_main, args=args, name="learner")
    learner.start()
    restarts = [0] * n
    budget = RestartBudget(cfg.actors.max_restarts, cfg.actors.restart_window_s)
    probe: Transport | None = None

    def spawn(i: int) -> mp.Process:
        args = (values, url, run_id, i, restarts[i], n + 1, secret)  # the learner shares the cores too
        p = ctx.Process(target=_actor_main, args=args, name=f"actor-{i}")
        p.start()
        return p

    def run_over() -> bool:
        nonlocal probe
        try:
            probe = probe or Transport(url, run_id, timeout_s=1.0)
            return probe.stop_reason() is not None
        except TransportError:
            return False  # Redis may come back within the learner's redis.timeout_s

    actors: list[mp.Process | None] = [spawn(i) for i in range(n)]
    reported: set[int] = set()
    try:
        while learner.is_alive():
            learner.join(POLL_S)
            for i, p in enumerate(actors):
                if p is None or p.is_alive() or not learner.is_alive():
                    continue
                if run_over():
                    actors[i] = None
                    continue
                if not budget.take():
                    if i not in reported:
                        msg = f"restart budget of {budget.limit} per {budget.window_s:g} s used up, waiting"
                        print(f"actor {i}: {describe(p.exitcode)}; {msg}", file=sys.stderr, flush=True)
                        reported.add(i)
                    continue
                reported.discard(i)
                restarts[i] += 1
                print(f"actor {i}: {describe(p.exitcode)}; replacing it (restart {restarts[i]})",
                      file=sys.stderr, flush=True)  # fmt: skip
                actors[i] = spawn(i)
    except KeyboardInterrupt:
        # A Ctrl-C reaches every process of the terminal's group; a SIGTERM only this one: the stop
        # request tells the learner (which checkpoints and exits) and the actors either way.
        _request_stop(url, run_id, "interrupted")
        learner.join(GRACE_S)
        _finish([learner, *actors], grace_s=5.0)
        return ExitCode.INTERRUPTED
    finally:
        if probe is not None:
            probe.close()
    code = learner.exitcode
    if code != ExitCode.OK:
        print(f"learner: {describe(code)}", file=sys.stderr, flush=True)
    if code not in (ExitCode.OK, ExitCode.REDIS_LOST, ExitCode.CONFIG):
        _request_stop(url, run_id, f"the learner stopped ({describe(code)})")
    _finish(actors, GRACE_S)
    if code is None or code < 0:
        return ExitCode.CRASH
    try:
        return ExitCode(code)
    except ValueError:
        return ExitCode.CRASH


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
