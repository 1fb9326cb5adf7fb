"""The synchronous single-process GRPO loop: the reference the async trainer must match.

Each update draws N scenes from the training suite, resets G sub-envs of the vector env to one
identical state per scene, rolls the groups out with the current policy, computes group-relative
advantages and applies `GRPOUpdater.update`. Every `eval_every` updates the deterministic policy is
scored closed-loop on a fixed set of validation scenes. Logged per update: reward, scene score, KL,
clip fraction, ratio min/max, grad norm, env steps and seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from alpagym_train.algorithm import GRPOConfig, make_updater
from alpagym_train.policy import GaussianPolicy, RolloutPolicy, load, save
from alpagym_train.rollout import collect_groups, make_group_env
from alpagym_train.threads import pin_compute_threads


@dataclass
class SyncConfig:
    """Settings of a synchronous GRPO run.

    Attributes:
        init: Checkpoint to start from (the BC policy).
        suite: Training suite; ``train_scenes`` limits it to its first scenes.
        val_suite: Validation suite; ``val_scenes`` of its first scenes are scored.
        updates: GRPO updates.
        groups: Groups (scenes) per update, N.
        group_size: Rollouts per group, G.
        eval_every: Updates between validation scores (0: only at the start and the end).
        env: Env arguments (horizon, reward, agents, ...).
        grpo: Algorithm hyper-parameters (``method="ppo"`` trains with a learned critic instead).
        keep_best: Return (and save) the policy with the best validation score seen, not the last
            one: early stopping on val, as for BC; the test suite stays held out.
        log_std: Exploration noise: the policy's log-std is set to this before training (None keeps
            the checkpoint's). Small noise keeps group members near the policy, so their differences
            measure its choices rather than the noise: at 25 m/s a steering noise of e^-2 * 0.5 rad is
            ~15 m/s^2 of lateral acceleration, and every member crashes whatever the mean does.
        seed: Seed of scene draws, sampling noise and minibatches.
        torch_threads: Torch CPU threads; the policy is small, and one thread leaves the cores to the
            simulator's kernels (two thread pools spinning on two cores slow both down many times).
        out_dir: Where the checkpoint and metrics go ('' writes nothing).
        progress: Show a progress bar.
    """

    init: str = "runs/bc/policy.safetensors"
    suite: str = "train"
    train_scenes: int | None = None
    val_suite: str = "val"
    val_scenes: int = 40
    updates: int = 50
    groups: int = 16
    group_size: int = 8
    eval_every: int = 10
    env: dict[str, Any] = field(default_factory=lambda: {"reward": "scene_score"})
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    keep_best: bool = True
    log_std: float | None = -4.0
    seed: int = 0
    torch_threads: int = 1
    out_dir: str = "runs/grpo_sync"
    progress: bool = True


def evaluate_policy(policy: GaussianPolicy, scenes, env_kwargs: dict[str, Any]) -> dict[str, float]:
    """Mean closed-loop metrics of the deterministic policy, one episode per scene (batched)."""
    env = make_group_env(len(scenes), 1, scenarios=scenes, **env_kwargs)
    obs, _ = env.reset(options={"scenario_ids": np.arange(len(scenes))})
    alive = np.ones(len(scenes), dtype=bool)
    keys = ("scene_score", "collision_at_fault", "offroad", "progress")
    out = {k: np.zeros(len(scenes)) for k in keys}
    while alive.any():
        obs, _, term, trunc, info = env.step(policy.act(obs))
        done = (term | trunc) & alive
        if done.any():
            for k in keys:
                out[k][done] = info["alpagym"][k][done]
        alive &= ~done
    return {k: float(v.mean()) for k, v in out.items()}


def train_sync(cfg: SyncConfig, policy: GaussianPolicy | None = None) -> tuple[GaussianPolicy, list[dict]]:
    """Runs the loop; returns the trained policy and one record per update (plus evaluations)."""
    from alpagym_env.scenarios import load_suite

    torch.manual_seed(cfg.seed)
    pin_compute_threads(cfg.torch_threads)
    meta: dict[str, Any] = {}
    if policy is None:
        policy, meta = load(cfg.init)
    if cfg.log_std is not None:
        set_log_std(policy, cfg.log_std)
    train = load_suite(cfg.suite)
    train = train[: cfg.train_scenes] if cfg.train_scenes else train
    val = load_suite(cfg.val_suite)[: cfg.val_scenes]
    env = make_group_env(cfg.groups, cfg.group_size, scenarios=train, **cfg.env)
    updater = make_updater(policy, cfg.grpo, seed=cfg.seed)
    sampler = RolloutPolicy(policy, np.random.default_rng(cfg.seed + 1))
    rng = np.random.default_rng(cfg.seed)
    first = _prefix("val", evaluate_policy(policy, val, cfg.env))
    history: list[dict] = [{"update": 0, "env_steps": 0, **first}]
    best_score, best_update = first["val/scene_score"], 0
    best_state = {k: v.clone() for k, v in policy.state_dict().items()}
    steps, t0 = 0, time.perf_counter()
    bar = tqdm(range(1, cfg.updates + 1), desc="grpo", disable=not cfg.progress)
    for update in bar:
        ids = rng.choice(len(train), size=cfg.groups, replace=False)
        batch = collect_groups(env, sampler, ids, cfg.group_size)
        stats = updater.update(batch)
        steps += batch.steps
        rec = {
            "update": update,
            "env_steps": steps,
            "seconds": time.perf_counter() - t0,
            "reward": float(batch.returns.mean()),
            "reward_std": float(batch.returns.std()),
            "scene_score": float(batch.scene_score.mean()),
            **stats,
        }
        if update == cfg.updates or (cfg.eval_every and update % cfg.eval_every == 0):
            rec |= _prefix("val", evaluate_policy(policy, val, cfg.env))
            if rec["val/scene_score"] > best_score:
                best_score, best_update = rec["val/scene_score"], update
                best_state = {k: v.clone() for k, v in policy.state_dict().items()}
        history.append(rec)
        bar.set_postfix(score=f"{rec['scene_score']:.3f}")
    if cfg.keep_best:
        policy.load_state_dict(best_state)
    history[-1] |= {"best_update": best_update, "best_val_scene_score": best_score}
    if cfg.out_dir:
        out = Path(cfg.out_dir)
        extra = {"trained_by": "alpagym_train.sync", "sync_config": _plain(cfg)}
        save(out / "policy.safetensors", policy, {**meta, **extra})
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    return policy, history


def set_log_std(policy: GaussianPolicy, value: float) -> None:
    """Sets the exploration noise: the policy's log-std becomes `value` (state-independent)."""
    with torch.no_grad():
        if policy.config.state_dependent_std:
            policy.log_std_head.weight.zero_()
            policy.log_std_head.bias.fill_(value)
        else:
            policy.log_std.fill_(value)


def _prefix(p: str, d: dict[str, float]) -> dict[str, float]:
    return {f"{p}/{k}": v for k, v in d.items()}


def _plain(cfg: SyncConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg), default=str))
