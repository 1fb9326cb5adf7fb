"""The learner: reads groups from Redis, drops stale ones, applies `GRPOUpdater.update`, publishes weights.

Each update takes at least ``learner.groups_per_update`` groups from the stream (XREADGROUP). A group
rolled out by weights more than ``learner.max_policy_lag`` versions behind the current ones is dropped:
acknowledged, counted and logged, never trained on. The update is the synchronous reference's own
`GRPOUpdater.update`, so on the same groups both give the same weights. The entries are XACKed once
the update has used them, and the new weights are published as the next version.

Entries the previous learner of the run had read but not acknowledged (it died mid-update) are
claimed back at start, so a learner restart loses no group either.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from alpagym_train.algorithm import GRPOUpdater
from alpagym_train.grpo.checkpoint import TrainerState, load_checkpoint, resolve_checkpoint, save_checkpoint
from alpagym_train.grpo.config import GRPORunConfig
from alpagym_train.policy import GaussianPolicy, load, save
from alpagym_train.rollout import GroupBatch
from alpagym_train.rundir import RunLogger
from alpagym_train.sync import evaluate_policy, set_log_std
from alpagym_train.threads import pin_torch_threads
from alpagym_train.transport import ReceivedGroup, Transport, TransportError

CONSUMER = "learner"
EXIT_REDIS = 3  # exit status of a process that lost Redis (the supervisor does not restart it)


class StopRequested(Exception):
    """Another process of the run (the supervisor on Ctrl-C or SIGTERM) asked it to stop."""


def concat_groups(batches: list[GroupBatch]) -> GroupBatch:
    """One `GroupBatch` of all groups of `batches`, in order (policy_version: the oldest)."""
    if len(batches) == 1:
        return batches[0]
    names = ("obs", "u", "logp", "rewards", "mask", "scene_score", "scenario_ids")
    arrays = {n: np.concatenate([getattr(b, n) for b in batches]) for n in names}
    return GroupBatch(**arrays, policy_version=min(b.policy_version for b in batches))


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
        policy: The policy to train (updated in place).
        state: Progress to continue from (a fresh `TrainerState` for a new run).
    """

    def __init__(
        self, cfg: GRPORunConfig, transport: Transport, policy: GaussianPolicy, state: TrainerState
    ) -> None:
        self.cfg, self.transport, self.policy, self.state = cfg, transport, policy, state
        self.updater = GRPOUpdater(policy, cfg.grpo_config(), seed=cfg.learner.seed)
        if state.optimizer is not None:
            self.updater.optimizer.load_state_dict(state.optimizer)
        if state.minibatch_rng is not None:
            self.updater.generator.set_state(state.minibatch_rng)
        self.counters = Counter(state.counters)
        self.sync_ms = 0.0
        self._backlog: list[ReceivedGroup] = []

    def publish(self) -> None:
        """Publishes the current weights as ``state.version`` and times it."""
        t0 = time.perf_counter()
        self.transport.publish_weights(self.policy.state_dict(), self.state.version)
        self.sync_ms = (time.perf_counter() - t0) * 1e3

    def start(self) -> None:
        """Takes back the previous learner's unacknowledged entries, then publishes the weights.

        A resumed run republishes its checkpoint's weights as a new version, after whatever the
        server already holds, so versions only ever go up.
        """
        self._backlog = self.transport.claim_pending(CONSUMER, min_idle_ms=0, count=10_000)
        latest = self.transport.latest_version()
        if latest is not None and (latest > self.state.version or self.state.update > 0):
            self.state.version = max(latest, self.state.version) + 1
        self.publish()

    def gather(self, timeout_s: float | None = None) -> tuple[list[ReceivedGroup], dict[str, Any]]:
        """Reads entries until at least ``groups_per_update`` fresh groups are in hand.

        Stale entries are acknowledged and counted as dropped. Returns the fresh entries (not yet
        acknowledged) and statistics: lags of the groups used and dropped, and groups per actor.

        Raises:
            TimeoutError: Nothing arrived within `timeout_s` (None waits for ever).
        """
        need, lag = self.cfg.learner.groups_per_update, self.cfg.learner.max_policy_lag
        fresh: list[ReceivedGroup] = []
        lags, dropped, per_actor = [], 0, Counter()
        have, deadline = 0, None if timeout_s is None else time.monotonic() + timeout_s
        while have < need:
            if (reason := self.transport.stop_reason()) is not None:
                raise StopRequested(reason)
            entries, self._backlog = self._backlog, []
            # One entry at a time: an entry holds several groups, so this takes no more than needed.
            entries = entries or self.transport.read_groups(CONSUMER, count=1, block_ms=500)
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

    def step(self, timeout_s: float | None = None) -> dict[str, Any]:
        """One update: gather, `GRPOUpdater.update`, acknowledge, publish the next version.

        Returns:
            The update's record (the JSONL / TensorBoard scalars).
        """
        t0 = time.perf_counter()
        entries, g = self.gather(timeout_s)
        t_gather = time.perf_counter() - t0
        batch = concat_groups([e.batch for e in entries])
        stats = self.updater.update(batch)
        self.transport.ack([e.entry_id for e in entries])
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
        s.torch_rng = torch.get_rng_state()
        s.minibatch_rng = self.updater.generator.get_state()
        return s


def preflight(cfg: GRPORunConfig) -> None:
    """Checks what would otherwise fail inside a child process, with the same clear errors.

    Raises:
        FileNotFoundError: ``learner.init`` or ``resume`` names no checkpoint.
        ValueError: An env, reward or algorithm setting is invalid.
    """
    cfg.env_config(), cfg.grpo_config(), cfg.reward_terms()
    if cfg.resume:
        resolve_checkpoint(cfg.resume)
    elif not Path(cfg.learner.init).is_file():
        raise FileNotFoundError(
            f"learner.init={cfg.learner.init}: no such checkpoint; train one with "
            "`python -m alpagym_train.bc` or point learner.init at a .safetensors policy"
        )


def _initial(cfg: GRPORunConfig) -> tuple[GaussianPolicy, dict, TrainerState, bool]:
    """The policy, sidecar and state to start from: a checkpoint (resume) or the init policy."""
    if cfg.resume:
        policy, meta, state, ckpt = load_checkpoint(cfg.resume)
        if state.torch_rng is not None:
            torch.set_rng_state(state.torch_rng)
        print(f"resuming from {ckpt} (update {state.update}, weights version {state.version})", flush=True)
        return policy, meta, state, True
    policy, meta = load(cfg.learner.init)
    if cfg.learner.log_std is not None:
        set_log_std(policy, cfg.learner.log_std)
    torch.manual_seed(cfg.learner.seed)
    return policy, meta, TrainerState(), False


def _check_policy_fits(policy: GaussianPolicy, env_kwargs: dict, reward: list) -> None:
    """Raises a clear error when the checkpoint's observation or action size does not fit the env."""
    from alpagym_train.rollout import make_group_env

    env = make_group_env(1, 1, reward=reward, **env_kwargs)
    obs_dim, act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    env.close()
    if (policy.config.obs_dim, policy.config.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"the policy takes {policy.config.obs_dim} observations and gives {policy.config.act_dim} "
            f"actions, the env has {obs_dim} and {act_dim}: train the init checkpoint with the same env "
            "settings (action_type, obs)"
        )


def run_learner(cfg: GRPORunConfig, url: str, run_id: str) -> int:
    """The learner process: trains ``learner.updates`` updates (or up to ``learner.max_env_steps``);
    returns the exit status.

    0 when done (the final policy is at ``{run_dir}/policy.safetensors``), `EXIT_REDIS` when Redis went
    away (a checkpoint of the progress so far is written first), 130 on Ctrl-C (likewise).
    """
    from alpagym_env.scenarios import load_suite

    pin_torch_threads(cfg.learner.torch_threads)
    preflight(cfg)
    policy, meta, state, resumed = _initial(cfg)
    env_kwargs = cfg.plain()["env"]
    reward = cfg.reward_terms()
    _check_policy_fits(policy, env_kwargs, reward)
    val = load_suite(cfg.learner.val_suite)[: cfg.learner.val_scenes]
    eval_kwargs = {**env_kwargs, "reward": reward}
    meta = {**meta, "trained_by": "alpagym_train.grpo", "grpo_config": cfg.plain()}
    logger = RunLogger(cfg.run_dir, cfg.plain(), append=resumed)
    learner: Learner | None = None
    status = 0
    try:
        transport = Transport(
            url, run_id, keep_versions=cfg.redis.keep_versions, timeout_s=cfg.redis.timeout_s
        )
        transport.clear_stop()
        learner = Learner(cfg, transport, policy, state)
        transport.publish_spec(run_spec(cfg, policy))
        learner.start()
        print(
            f"learner {socket.gethostname()}:{os.getpid()} run {run_id!r}, weights v{state.version}",
            flush=True,
        )
        if state.update == 0:
            _evaluate(learner, val, eval_kwargs, logger, None)
        _wait_for_actors(transport, cfg.learner.min_actors)
        _train(cfg, learner, val, eval_kwargs, logger, meta)
        transport.request_stop("done")
    except TransportError as e:
        print(f"learner: {e}; stopping (progress is checkpointed)", file=sys.stderr, flush=True)
        status = EXIT_REDIS
    except (KeyboardInterrupt, StopRequested):
        print("learner: interrupted; checkpointing", file=sys.stderr, flush=True)
        status = 130
    finally:
        if status and learner is not None and learner.state.update > 0:
            save_checkpoint(cfg.run_dir, policy, meta, learner.trainer_state(), cfg.plain())
        logger.close()
    if status == 130 and learner is not None:
        try:
            learner.transport.request_stop("interrupted")
        except TransportError:
            pass
    return status


def _wait_for_actors(transport: Transport, count: int) -> None:
    """Blocks until `count` actors send heartbeats (or the run is asked to stop)."""
    if count and len(transport.live_actors()) < count:
        print(f"learner: waiting for {count} actors", flush=True)
    while len(transport.live_actors()) < count:
        if (reason := transport.stop_reason()) is not None:
            raise StopRequested(reason)
        time.sleep(0.2)


def _train(cfg, learner: Learner, val, eval_kwargs, logger: RunLogger, meta: dict) -> None:
    lc, state = cfg.learner, learner.state
    t0, steps0 = time.perf_counter(), state.env_steps
    bar = tqdm(total=lc.updates, initial=state.update, desc="grpo", disable=not cfg.progress, file=sys.stdout)
    budget = lc.max_env_steps if lc.max_env_steps is not None else float("inf")
    while state.update < lc.updates and state.env_steps < budget:
        rec = learner.step()
        rec["seconds"] = time.perf_counter() - t0
        rec["env_steps_per_s"] = (state.env_steps - steps0) / max(rec["seconds"], 1e-9)
        last = state.update == lc.updates or state.env_steps >= budget
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
    if scores["val/scene_score"] > state.best_score:
        state.best_score, state.best_update = scores["val/scene_score"], state.update
        state.best_state = {k: v.detach().clone() for k, v in learner.policy.state_dict().items()}
    if logger is not None:
        logger.log(state.update, {"update": state.update, "version": state.version, **scores})
    return scores
