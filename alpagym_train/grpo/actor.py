"""An actor: owns a vector env, follows the published weights, rolls out whole groups, pushes them.

The actor needs nothing but the Redis URL (and the run id when the server holds several runs): the
env settings, reward, scenes, group size and policy architecture come from the run spec the learner
publishes. Each loop it sends a heartbeat, waits while the stream is full (back-pressure), fetches
the weights only if their version advanced, rolls out until ``actors.groups_per_push`` groups have
finished and pushes them as one stream entry tagged with the oldest weights version that acted on
them. Its sub-envs never wait for a group to finish: one whose rollout ends starts the next member
(`alpagym_train.rollout.GroupStream`), and members still driving at a push drive on with the weights
fetched next. A killed actor loses only the groups it was rolling out; nothing it pushed is lost.
"""

from __future__ import annotations

import os
import socket
import sys
import time

import numpy as np

from alpagym_train.exit_codes import ExitCode
from alpagym_train.grpo.config import GRPORunConfig
from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy
from alpagym_train.rollout import GroupStream, make_group_env
from alpagym_train.threads import pin_compute_threads, share_numba_threads
from alpagym_train.transport import BadPayload, Transport, TransportError


class NoRun(RuntimeError):
    """The run to join did not appear, stopped before it started, or is ambiguous."""


def join_run(
    url: str, run_id: str, timeout_s: float, timeout_conn_s: float = 2.0, secret: bytes = b""
) -> Transport:
    """Connects to the run `run_id`, or, when it is empty, to the one live run found on the server.

    Raises:
        TransportError: Redis is unreachable.
        NoRun: No run appeared within `timeout_s`, or several runs are there and none was named.
    """
    if run_id:
        return Transport(url, run_id, timeout_s=timeout_conn_s, secret=secret)
    probe = Transport(url, "", timeout_s=timeout_conn_s)
    deadline = time.monotonic() + timeout_s
    while not (runs := probe.runs()):
        if time.monotonic() > deadline:
            raise NoRun(f"no run appeared on the server within {timeout_s:g} s")
        time.sleep(0.2)
    probe.close()
    if len(runs) > 1:
        raise NoRun(f"the server holds several runs {runs}: choose one with redis.run_id=...")
    return Transport(url, runs[0], timeout_s=timeout_conn_s, secret=secret)


def _wait_for_spec(transport: Transport, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while (spec := transport.read_spec()) is None:
        if transport.stop_reason() is not None:
            raise NoRun(f"run {transport.run_id!r} stopped before it started: {transport.stop_reason()}")
        if time.monotonic() > deadline:
            raise NoRun(f"run {transport.run_id!r}: the learner published no spec within {timeout_s:g} s")
        time.sleep(0.2)
    return spec


def run_actor(cfg: GRPORunConfig, url: str, run_id: str, index: int = 0, restart: int = 0,
              sharing: int = 1, secret: bytes = b"") -> int:  # fmt: skip
    """The actor process; returns its `ExitCode` (OK when the run is over, REDIS_LOST without Redis).

    Args:
        cfg: The run config (only its ``actors`` and ``redis`` sections matter to an actor).
        url: Redis URL.
        run_id: The run, or '' to join the only run on the server.
        index: Actor number on this machine (its id is ``{host}-{pid}-{index}``).
        restart: How many times the supervisor restarted this actor (varies its seed).
        sharing: Busy processes sharing this machine's cores, this actor included (sizes the
            simulator's thread pool when ``actors.numba_threads`` is 0).
        secret: The run secret its groups are signed with and the weights checked against.
    """
    ac = cfg.actors
    actor_id = f"{socket.gethostname()}-{os.getpid()}-{index}"
    try:
        transport = join_run(url, run_id, ac.idle_timeout_s, cfg.redis.timeout_s, secret)
        spec = _wait_for_spec(transport, ac.idle_timeout_s)
        return _loop(cfg, transport, spec, actor_id, index, restart, sharing)
    except BadPayload as e:  # not the run's secret (the spec it read is not signed with it)
        print(
            f"actor {actor_id}: {e}; check redis.secret_file or ALPAGYM_RUN_SECRET",
            file=sys.stderr,
            flush=True,
        )
        return ExitCode.CONFIG
    except TransportError as e:
        print(f"actor {actor_id}: {e}; exiting", file=sys.stderr, flush=True)
        return ExitCode.REDIS_LOST
    except NoRun as e:
        print(f"actor {actor_id}: {e}", file=sys.stderr, flush=True)
        return ExitCode.CONFIG
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _loop(cfg, transport: Transport, spec: dict, actor_id: str, index: int, restart: int,
          sharing: int) -> int:  # fmt: skip
    from alpagym_env.scenarios import load_suite

    ac = cfg.actors
    pin_compute_threads(int(spec.get("torch_threads", 1)))
    share_numba_threads(sharing, ac.numba_threads)
    env_kwargs = dict(spec["env"])
    scenes = load_suite(env_kwargs["suite"])
    scenes = scenes[: spec["train_scenes"]] if spec["train_scenes"] else scenes
    g = int(spec["group_size"])
    env = make_group_env(ac.num_envs or ac.groups_per_push * g, 1, scenarios=scenes, reward=spec["reward"],
                         **env_kwargs)  # fmt: skip
    for i in range(len(scenes) if ac.warm_scenes < 0 else min(ac.warm_scenes, len(scenes))):
        env.sim.compile(i)  # cached for the process: the groups of these scenes start at once
    policy = GaussianPolicy(PolicyConfig(**spec["policy"])).eval()
    seed = ac.seed + 1000 * (index + 1) + restart
    sampler = RolloutPolicy(policy, np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    env.reset(options={"scenario_ids": np.zeros(env.num_envs, dtype=np.int64)})  # compile / load kernels
    env.step(np.zeros((env.num_envs, env.single_action_space.shape[0]), np.float32))
    stream = GroupStream(env, sampler, g, lambda: int(rng.integers(len(scenes))))
    info = {"pid": os.getpid(), "host": socket.gethostname()}
    version, last_new = None, time.monotonic()
    print(f"actor {actor_id} joined run {transport.run_id!r}", flush=True)
    while True:
        transport.heartbeat(actor_id, ac.heartbeat_ttl_s, info)
        if transport.stop_reason() is not None:
            return ExitCode.OK
        if time.monotonic() - last_new > ac.idle_timeout_s:
            print(f"actor {actor_id}: no new weights for {ac.idle_timeout_s:g} s; exiting", flush=True)
            return ExitCode.OK
        if not transport.wait_for_room(ac.max_queue, timeout_s=1.0):
            continue
        try:
            got = transport.fetch_weights(if_newer_than=version, expected=policy.state_dict())
        except BadPayload as e:  # forged or corrupt: keep acting with the weights in hand
            print(f"actor {actor_id}: {e}; ignored", file=sys.stderr, flush=True)
            time.sleep(1.0)
            continue
        if got is not None:
            version, state = got
            policy.load_state_dict(state)
            last_new = time.monotonic()
        if version is None:
            time.sleep(0.1)
            continue
        batch = stream.collect(ac.groups_per_push, version)
        transport.push_group(batch, batch.policy_version, actor_id)
