"""The learner: reads groups from Redis, drops stale ones, applies the updater, publishes weights.

Each update takes at least ``learner.groups_per_update`` groups from the stream (XREADGROUP). A group
rolled out by weights more than ``learner.max_policy_lag`` versions behind the current ones is dropped:
acknowledged, counted and logged, never trained on. The update is the synchronous reference's own
updater (`alpagym_train.algorithm.make_updater`: GRPO, or PPO whose critic stays in the learner and is
never published), so on the same groups both give the same weights. The entries are XACKed once
the update has used them, and the new weights are published as the next version.

Every entry is validated where it is read (`alpagym_train.wire`): a bad one (NaN, wrong shape, a
future policy version, a foreign MAC, garbage) is moved to the dead-letter stream, counted as
``entries_rejected`` and logged, never trained on. An update whose loss, gradient or resulting weights
are not finite is undone (weights and optimizer state restored), its groups acknowledged and counted
as ``updates_skipped``; weights are checked finite before every publish.

Entries the previous learner of the run had read but not acknowledged (it died mid-update) are
claimed back at start. Groups acknowledged after the last checkpoint were trained into weights that
the checkpoint does not hold: a resumed learner has lost them (at most ``checkpoint_every`` updates).

Device (``learner.device``): the policy, a PPO critic, the optimiser state and each training batch
live on the learner's device; weights leave it as CPU bytes (`alpagym_train.wire.WeightsWriter`),
checkpoints as CPU tensors (`save_checkpoint`), and validation runs the policy on numpy observations
whatever its device (`GaussianPolicy.act`).

Liveness: with no live actor and no entry for ``learner.actor_timeout_s`` the learner checkpoints and
exits with `ExitCode.NO_ACTORS`; it holds the run's lease (`Transport.claim_lease`) while it runs, and
any crash checkpoints before the process exits with `ExitCode.CRASH`.
"""

from __future__ import annotations

import copy
import math
import os
import socket
import sys
import time
import traceback
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from alpagym_train.algorithm import make_updater
from alpagym_train.device import resolve_device
from alpagym_train.exit_codes import ExitCode
from alpagym_train.grpo.checkpoint import TrainerState, load_checkpoint, save_checkpoint
from alpagym_train.grpo.config import GRPORunConfig
from alpagym_train.grpo.identity import RunInUse, record_run_id, take_run
from alpagym_train.grpo.preflight import preflight
from alpagym_train.policy import GaussianPolicy, load, save
from alpagym_train.rollout import GroupBatch
from alpagym_train.rundir import RunLogger
from alpagym_train.sync import evaluate_policy, set_log_std
from alpagym_train.threads import pin_compute_threads, share_numba_threads
from alpagym_train.transport import Transport, TransportError
from alpagym_train.wire import BadEntry, ReceivedGroup, RolloutSpec

CONSUMER = "learner"
LEASE_S = 60.0  # the learner's lease on its run outlives a stall of this long (plus redis.timeout_s)


class StopRequested(Exception):
    """Another process of the run (the supervisor on Ctrl-C or SIGTERM) asked it to stop."""


class NoActors(Exception):
    """No actor was alive and no entry arrived for ``learner.actor_timeout_s``."""


def concat_groups(batches: list[GroupBatch]) -> GroupBatch:
    """One `GroupBatch` of all groups of `batches`, in order (policy_version: the oldest)."""
    if len(batches) == 1:
        return batches[0]
    names = [f.name for f in fields(GroupBatch) if f.name != "policy_version"]
    arrays = {n: np.concatenate([getattr(b, n) for b in batches]) for n in names}
    return GroupBatch(**arrays, policy_version=min(b.policy_version for b in batches))


def batch_on(batch: GroupBatch, device: torch.device) -> GroupBatch:
    """`batch` with its arrays as tensors on `device`, for the updater (on the CPU they share the arrays'
    memory: no copy, and the same code path as on a GPU)."""
    arrays = {f.name: torch.as_tensor(getattr(batch, f.name), device=device) for f in fields(GroupBatch)
              if f.name != "policy_version"}  # fmt: skip
    return GroupBatch(**arrays, policy_version=batch.policy_version)


def rollout_spec(cfg: GRPORunConfig, policy: GaussianPolicy) -> RolloutSpec:
    """What a valid rollout entry of this run looks like (checked on every entry read)."""
    from alpagym_env.scenarios import load_suite

    scenes = len(load_suite(cfg.env.suite))
    if cfg.learner.train_scenes:
        scenes = min(scenes, cfg.learner.train_scenes)
    return RolloutSpec(
        obs_dim=policy.config.obs_dim,
        act_dim=policy.config.act_dim,
        group_size=cfg.learner.group_size,
        max_steps=cfg.env.horizon,
        num_scenarios=scenes,
        max_groups=max(64, 4 * cfg.actors.groups_per_push, cfg.learner.groups_per_update),
    )


def weights_finite(policy: torch.nn.Module) -> bool:
    """True when every parameter and buffer of `policy` is finite."""
    return all(bool(torch.isfinite(v).all()) for v in policy.state_dict().values() if v.is_floating_point())


def run_spec(cfg: GRPORunConfig, policy: GaussianPolicy) -> dict[str, Any]:
    """What an actor needs to join the run: env, reward, scenes, group size and the policy architecture."""
    from dataclasses import asdict

    return {
        "env": cfg.plain()["env"],
        "reward": cfg.reward_terms(),
        "train_scenes": cfg.learner.train_scenes,
        "group_size": cfg.learner.group_size,
        "policy": asdict(policy.config),
        "torch_threads": cfg.learner.torch_threads,
    }


class Learner:
    """The learner's state and one-update step, independent of processes and logging.

    Args:
        cfg: The run config.
        transport: Connection to the run's Redis namespace.
        policy: The policy to train (updated in place), on the device to train on.
        state: Progress to continue from (a fresh `TrainerState` for a new run).
    """

    def __init__(
        self, cfg: GRPORunConfig, transport: Transport, policy: GaussianPolicy, state: TrainerState
    ) -> None:
        self.cfg, self.transport, self.policy, self.state = cfg, transport, policy, state
        reference = None
        if state.reference is not None:  # a resumed run keeps its KL reference (the init policy)
            reference = GaussianPolicy(policy.config)
            reference.load_state_dict(state.reference)
        self.updater = make_updater(policy, cfg.grpo_config(), reference=reference, seed=cfg.learner.seed)
        self.spec = rollout_spec(cfg, policy)
        self.lease: str | None = None  # owner token while holding the run's lease
        if state.optimizer is not None:
            self.updater.optimizer.load_state_dict(state.optimizer)
        self.updater.load_critic_state(state.critic)
        if state.minibatch_rng is not None:
            self.updater.generator.set_state(state.minibatch_rng)
        self.counters = Counter(state.counters)
        self.sync_ms = 0.0
        self._backlog: list[ReceivedGroup] = []
        self._last_alive = time.monotonic()
        self._last_probe = 0.0

    def publish(self) -> None:
        """Publishes the current weights as ``state.version`` and times it.

        Raises:
            ValueError: A weight is NaN or infinite (never published).
        """
        if not weights_finite(self.policy):
            raise ValueError(f"weights version {self.state.version} are not finite: not published")
        t0 = time.perf_counter()
        self.transport.publish_weights(self.policy.state_dict(), self.state.version)
        self.sync_ms = (time.perf_counter() - t0) * 1e3

    def start(self) -> None:
        """Takes back the previous learner's unacknowledged entries, then publishes the weights.

        A resumed run republishes its checkpoint's weights as a new version, after whatever the
        server already holds, so versions only ever go up.
        """
        latest = self.transport.latest_version()
        max_version = max(latest or 0, self.state.version)
        self._backlog, bad = self.transport.claim_pending(CONSUMER, 0, self.spec, max_version, count=10_000)
        self._report(bad)
        self._last_alive = time.monotonic()
        if latest is not None and (latest > self.state.version or self.state.update > 0):
            self.state.version = max(latest, self.state.version) + 1
        self.publish()

    def _report(self, bad: list[BadEntry]) -> None:
        """Counts and logs entries the transport rejected (already moved to the dead-letter stream)."""
        for e in bad:
            self.counters["entries_rejected"] += 1
            print(f"learner: rejected an entry of actor {e.actor_id or '?'!r}: {e.reason} "
                  f"(moved to {self.transport.dead_letters})", file=sys.stderr, flush=True)  # fmt: skip

    def _check_alive(self, got_entries: bool) -> None:
        """Renews the lease; raises `NoActors` after ``actor_timeout_s`` without a live actor or entry."""
        now = time.monotonic()
        if got_entries:
            self._last_alive = now
        if now - self._last_probe >= 1.0:
            self._last_probe = now
            if self.lease is not None:
                self.transport.renew_lease(self.lease, LEASE_S + self.cfg.redis.timeout_s)
            if self.transport.live_actors():
                self._last_alive = now
        limit = self.cfg.learner.actor_timeout_s
        if now - self._last_alive > limit:
            raise NoActors(f"no live actor and no rollout group for {limit:g} s (learner.actor_timeout_s)")

    def gather(self, timeout_s: float | None = None) -> tuple[list[ReceivedGroup], dict[str, Any]]:
        """Reads entries until at least ``groups_per_update`` fresh groups are in hand.

        Stale entries are acknowledged and counted as dropped; invalid ones were dead-lettered by the
        transport and are counted and logged here. Returns the fresh entries (not yet acknowledged) and
        statistics: lags of the groups used and dropped, and groups per actor.

        Raises:
            TimeoutError: Nothing arrived within `timeout_s` (None: no limit but ``actor_timeout_s``).
            NoActors: No live actor and no entry for ``learner.actor_timeout_s``.
        """
        need, lag = self.cfg.learner.groups_per_update, self.cfg.learner.max_policy_lag
        fresh: list[ReceivedGroup] = []
        lags, dropped, per_actor = [], 0, Counter()
        have, deadline = 0, None if timeout_s is None else time.monotonic() + timeout_s
        while have < need:
            if (reason := self.transport.stop_reason()) is not None:
                raise StopRequested(reason)
            entries, self._backlog = self._backlog, []
            if not entries:
                # One entry at a time: an entry holds several groups, so this takes no more than needed.
                entries, bad = self.transport.read_groups(CONSUMER, self.spec, self.state.version, 1, 500)
                self._report(bad)
            self._check_alive(bool(entries))
            if not entries and deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no rollout groups arrived within {timeout_s:g} s")
            stale = []
            for e in entries:
                n = len(e.batch.scenario_ids)
                behind = self.state.version - e.batch.policy_version
                if behind > lag:
                    stale.append(e.entry_id)
                    dropped += n
                    continue
                fresh.append(e)
                have += n
                lags += [behind] * n
                per_actor[e.actor_id] += n
            self.transport.ack(stale)
        self.counters["groups_dropped"] += dropped
        stats = {"lags": lags, "dropped": dropped, "per_actor": dict(per_actor)}
        return fresh, stats

    def _guarded_update(self, batch: GroupBatch) -> dict[str, float] | None:
        """The updater's `update`, undone (weights, optimizer and critic restored) when its loss,
        gradient norm or resulting weights are not finite; None then."""
        updater = self.updater
        saved = copy.deepcopy(
            (self.policy.state_dict(), updater.optimizer.state_dict(), updater.critic_state())
        )
        stats = updater.update(batch)
        keys = ("loss", "grad_norm", "kl", "value_loss", "value_grad_norm")  # the critic's: PPO only
        finite = all(math.isfinite(stats.get(k, 0.0)) for k in keys)
        if finite and weights_finite(self.policy):
            return stats
        self.policy.load_state_dict(saved[0])
        updater.optimizer.load_state_dict(saved[1])
        updater.load_critic_state(saved[2])
        self.counters["updates_skipped"] += 1
        print(f"learner: update skipped (loss {stats.get('loss')}, grad norm {stats.get('grad_norm')}: "
              "not finite); weights and optimizer restored", file=sys.stderr, flush=True)  # fmt: skip
        return None

    def step(self, timeout_s: float | None = None) -> dict[str, Any]:
        """One update: gather, the updater's `update`, acknowledge, publish the next version.

        Groups whose update is not finite are acknowledged and skipped, and more are gathered.

        Returns:
            The update's record (the JSONL / TensorBoard scalars).
        """
        t0 = time.perf_counter()
        while True:
            entries, g = self.gather(timeout_s)
            t_gather = time.perf_counter() - t0
            batch = concat_groups([e.batch for e in entries])
            stats = self._guarded_update(batch_on(batch, self.policy.device))
            self.transport.ack([e.entry_id for e in entries])
            if stats is not None:
                break
        s = self.state
        s.update += 1
        s.version += 1
        s.env_steps += batch.steps
        self.counters["groups_used"] += len(batch.scenario_ids)
        self.publish()
        lags = np.asarray(g["lags"])
        return {
            "update": s.update,
            "version": s.version,
            "env_steps": s.env_steps,
            "reward": float(batch.returns.mean()),
            "reward_std": float(batch.returns.std()),
            "scene_score": float(batch.scene_score.mean()),
            "policy_lag_p50": float(np.median(lags)),
            "policy_lag_max": int(lags.max()),
            "policy_lag_counts": {
                str(k): int(v) for k, v in zip(*np.unique(lags, return_counts=True), strict=True)
            },
            "groups_dropped": int(self.counters["groups_dropped"]),
            "entries_rejected": int(self.counters["entries_rejected"]),
            "updates_skipped": int(self.counters["updates_skipped"]),
            "groups_used": int(self.counters["groups_used"]),
            "queue_length": self.transport.unread_length(),
            "live_actors": len(self.transport.live_actors()),
            "sync_ms": self.sync_ms,
            "wait_s": t_gather,
            "update_s": time.perf_counter() - t0 - t_gather,
            "groups_per_actor": g["per_actor"],
            **stats,
        }

    def trainer_state(self) -> TrainerState:
        """The state to checkpoint now."""
        s = self.state
        s.counters = dict(self.counters)
        s.optimizer = self.updater.optimizer.state_dict()
        s.critic = self.updater.critic_state()
        s.torch_rng = torch.get_rng_state()
        s.minibatch_rng = self.updater.generator.get_state()
        ref = self.updater.reference
        s.reference = None if ref is None else {k: v.detach().clone() for k, v in ref.state_dict().items()}
        s.run_id = self.transport.run_id
        return s


def _initial(cfg: GRPORunConfig) -> tuple[GaussianPolicy, dict, TrainerState, bool]:
    """The policy, sidecar and state to start from: a checkpoint (resume) or the init policy."""
    if cfg.resume:
        policy, meta, state, ckpt = load_checkpoint(cfg.resume)
        if state.torch_rng is not None:
            torch.set_rng_state(state.torch_rng)
        if state.reference is None and cfg.grpo_config().kl_coef > 0 and Path(cfg.learner.init).is_file():
            state.reference = load(cfg.learner.init)[0].state_dict()  # a checkpoint from before it was kept
        print(f"resuming from {ckpt} (update {state.update}, weights version {state.version})", flush=True)
        return policy, meta, state, True
    policy, meta = load(cfg.learner.init)
    if cfg.learner.log_std is not None:
        set_log_std(policy, cfg.learner.log_std)
    torch.manual_seed(cfg.learner.seed)
    return policy, meta, TrainerState(), False


def run_learner(cfg: GRPORunConfig, url: str, run_id: str, secret: bytes = b"", sharing: int = 1) -> int:
    """The learner process: trains ``learner.updates`` updates (or up to ``learner.max_env_steps``);
    returns its `ExitCode`.

    `sharing` counts the busy processes on this machine, the learner included (``role=all``: the
    learner and its actors); its validation runs use that share of the cores for the simulator.

    OK when done (the final policy is at ``{run_dir}/policy.safetensors``); REDIS_LOST, NO_ACTORS,
    INTERRUPTED or CRASH otherwise, each after checkpointing the progress so far; CONFIG when the run
    cannot start (a preflight error, or another live learner holds the run).
    """
    from alpagym_env.scenarios import load_suite

    pin_compute_threads(cfg.learner.torch_threads)
    share_numba_threads(sharing)
    try:
        preflight(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"learner: {e}", file=sys.stderr, flush=True)
        return ExitCode.CONFIG
    policy, meta, state, resumed = _initial(cfg)
    device = resolve_device(cfg.learner.device, "learner.device")  # checked by preflight
    policy.to(device)
    env_kwargs = cfg.plain()["env"]
    reward = cfg.reward_terms()
    val = load_suite(cfg.learner.val_suite)[: cfg.learner.val_scenes]
    eval_kwargs = {**env_kwargs, "reward": reward}
    meta = {**meta, "trained_by": "alpagym_train.grpo", "grpo_config": cfg.plain()}
    learner: Learner | None = None
    logger: RunLogger | None = None
    status = ExitCode.OK
    try:
        transport = Transport(
            url, run_id, keep_versions=cfg.redis.keep_versions, timeout_s=cfg.redis.timeout_s, secret=secret
        )
        owner = take_run(transport, resumed, LEASE_S + cfg.redis.timeout_s)
        record_run_id(cfg.run_dir, run_id)
        logger = RunLogger(
            cfg.run_dir, cfg.plain(), append=resumed, keep_until=state.update if resumed else None
        )
        transport.clear_stop()
        learner = Learner(cfg, transport, policy, state)
        learner.lease = owner
        transport.publish_spec(run_spec(cfg, policy))
        learner.start()
        print(
            f"learner {socket.gethostname()}:{os.getpid()} run {run_id!r}, weights v{state.version}, "
            f"device {device}",
            flush=True,
        )
        if state.update == 0:
            _evaluate(learner, val, eval_kwargs, logger, None)
        _wait_for_actors(learner, cfg.learner.min_actors)
        _train(cfg, learner, val, eval_kwargs, logger, meta)
        transport.request_stop("done")
    except RunInUse as e:
        print(f"learner: {e}", file=sys.stderr, flush=True)
        return ExitCode.CONFIG
    except TransportError as e:
        print(f"learner: {e}; stopping (progress is checkpointed)", file=sys.stderr, flush=True)
        status = ExitCode.REDIS_LOST
    except NoActors as e:
        print(f"learner: {e}; checkpointing and stopping", file=sys.stderr, flush=True)
        status = ExitCode.NO_ACTORS
    except (KeyboardInterrupt, StopRequested):
        print("learner: interrupted; checkpointing", file=sys.stderr, flush=True)
        status = ExitCode.INTERRUPTED
    except Exception:
        traceback.print_exc()
        print("learner: crashed; checkpointing", file=sys.stderr, flush=True)
        status = ExitCode.CRASH
    finally:
        if status != ExitCode.OK and learner is not None and learner.state.update > 0:
            save_checkpoint(cfg.run_dir, policy, meta, learner.trainer_state(), cfg.plain())
        if logger is not None:
            logger.close()
    if learner is not None and status != ExitCode.REDIS_LOST:
        try:
            if status != ExitCode.OK:
                learner.transport.request_stop(f"the learner stopped: {status.name}")
            learner.transport.release_lease(learner.lease or "")
        except TransportError:
            pass
    return status


def _wait_for_actors(learner: Learner, count: int) -> None:
    """Blocks until `count` actors send heartbeats (or the run is asked to stop, or none comes)."""
    transport = learner.transport
    if count and len(transport.live_actors()) < count:
        print(f"learner: waiting for {count} actors", flush=True)
    while len(transport.live_actors()) < count:
        if (reason := transport.stop_reason()) is not None:
            raise StopRequested(reason)
        learner._check_alive(False)
        time.sleep(0.2)


def _train(cfg, learner: Learner, val, eval_kwargs, logger: RunLogger, meta: dict) -> None:
    lc, state = cfg.learner, learner.state
    t0, steps0 = time.perf_counter(), state.env_steps
    total = None if lc.max_seconds is not None else lc.updates  # a time budget: no meaningful total
    bar = tqdm(total=total, initial=state.update, desc="grpo", disable=not cfg.progress, file=sys.stdout)
    budget = lc.max_env_steps if lc.max_env_steps is not None else float("inf")
    max_seconds = lc.max_seconds if lc.max_seconds is not None else float("inf")
    last = False
    while state.update < lc.updates and state.env_steps < budget and not last:
        rec = learner.step()
        rec["seconds"] = time.perf_counter() - t0
        rec["env_steps_per_s"] = (state.env_steps - steps0) / max(rec["seconds"], 1e-9)
        last = state.update == lc.updates or state.env_steps >= budget or rec["seconds"] >= max_seconds
        if last or (lc.eval_every and state.update % lc.eval_every == 0):
            rec |= _evaluate(learner, val, eval_kwargs, None, state.update)
        logger.log(state.update, rec)
        if last or (lc.checkpoint_every and state.update % lc.checkpoint_every == 0):
            save_checkpoint(cfg.run_dir, learner.policy, meta, learner.trainer_state(), cfg.plain())
        bar.update(1)
        bar.set_postfix(
            steps_s=f"{rec['env_steps_per_s']:.0f}",
            score=f"{rec['scene_score']:.3f}",
            lag=f"{rec['policy_lag_p50']:.0f}",
            actors=rec["live_actors"],
        )
    bar.close()
    final = learner.policy
    if lc.keep_best and state.best_state is not None:
        final = GaussianPolicy(learner.policy.config)
        final.load_state_dict(state.best_state)
    extra = {"best_update": state.best_update, "best_val_scene_score": state.best_score}
    save(Path(cfg.run_dir) / "policy.safetensors", final, {**meta, **extra})


def _evaluate(learner: Learner, val, eval_kwargs, logger: RunLogger | None, update: int | None) -> dict:
    """Validation scores of the current weights; keeps the best weights."""
    scores = {f"val/{k}": v for k, v in evaluate_policy(learner.policy, val, eval_kwargs).items()}
    state = learner.state
    if learner.lease is not None:
        learner.transport.renew_lease(learner.lease, LEASE_S + learner.cfg.redis.timeout_s)
    if scores["val/scene_score"] > state.best_score:
        state.best_score, state.best_update = scores["val/scene_score"], state.update
        state.best_state = {k: v.detach().clone() for k, v in learner.policy.state_dict().items()}
    if logger is not None:
        logger.log(state.update, {"update": state.update, "version": state.version, **scores})
    return scores
