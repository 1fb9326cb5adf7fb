"""Async GRPO's end-to-end training throughput against the raw engine's and SB3 PPO's, weight-sync
latency and policy lag.

One process, one run, one table:

0. The raw engine, `BatchedSim.step` with B = 64 scenes of 32 agents on 2 Numba threads
   (`benchmarks/env_step.py`'s `raw_engine` on its `scenes_with_agents`, constant action, no early
   ends), for `--raw-seconds` before each GRPO run and after the last: what the simulator alone does
   on this machine. The learner's consumed env-steps/s is reported as a share of the fastest of these.
1. `python -m alpagym_train.grpo` (``role=all``, a private redis-server, the same code path through
   `compose` and `run_all`) with 1 and then 2 actor processes, from an untrained `GaussianPolicy`
   (hidden (256, 256), as BC's default) and `--groups` groups of `--group-size` rollouts per update (8 x 8).
   Env-steps/s is what the learner consumed: Δenv_steps / Δseconds of its ``metrics.jsonl`` records
   after the first `--warmup` updates (process start, Numba and scene compilation, the queue filled
   during the start-up evaluation are left out; each actor compiles its training scenes before its
   first group, ``actors.warm_scenes=-1``, so no group in the window waits for a scene's first
   compilation). Validation runs only at the start and the end
   (``learner.eval_every=0``), both outside the timed window: the learner stamps a record's
   ``seconds`` before it runs the final evaluation. ``learner.checkpoint_every=0`` keeps checkpoints
   out of the window too.
2. SB3 PPO with `alpagym_train.baselines.sb3`'s defaults (8 envs x 256 steps, 10 epochs, MlpPolicy
   256x256) on the same env (suite, first `--train-scenes` scenes, horizon, control actions, replayed
   agents, reward ``metrics``), in this process. Its rate is taken between the records logged after
   each rollout (every 2048 steps), after the first, so each interval holds one rollout and one update.
3. Weight publish + fetch latency (`weight_sync_latency`) for `--sizes` MB and the policy's own size,
   and the learner's publish time (``sync_ms``) in the GRPO runs.
4. The policy lag of every group the learner trained on (``policy_lag_counts`` summed over records).
5. The CPU cost of one env-step in each part, one thread each (`cost_per_env_step`): the engine, the
   policy's sampling and the rest of an actor's rollout, and the learner's update; and the ceiling
   they put on the learner's env-steps/s on this machine's cores, as a share of the raw engine. Then
   the floor no overhead can lower: the policy's arithmetic per env-step (one forward pass to sample,
   each update epoch's forward and backward passes) at the rate one core multiplies float32 matrices,
   plus the engine.

The machine's other load shifts every number: compare rows of one run only. The raw engine's two
Numba threads suffer most from another busy process (their barriers wait for a descheduled thread),
so every rate is printed and the fastest is the reference.

Usage: python benchmarks/trainer_throughput.py [--updates 60] [--ppo-steps 24576] [--train-scenes 200]
    [--actors 1 2] [--sizes 0.1 1 10] [--raw-seconds 2] [--cost-seconds 6] [--set KEY=VALUE ...]
    [--json out.json] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SPEEDUP = 3.0  # GRPO env-steps/s over SB3 PPO's
TARGET_RAW_SHARE = 0.6  # GRPO env-steps/s over the raw engine's
RAW_SCENES = 64  # the raw engine's batch, B
RAW_THREADS = 2  # its Numba threads
TARGET_SYNC_MS = 2.0  # publish + fetch of 1 MB of weights
TARGET_LAG_P50 = 1.0  # median versions between the acting and the learning weights
PPO_ROLLOUT = 8 * 256  # SB3 defaults of alpagym_train.baselines.sb3: num_envs x n_steps


def make_init_policy(path: Path, horizon: int) -> tuple[Path, float]:
    """Saves an untrained control policy that fits the env; returns its path and its weights' MB."""
    import torch
    from safetensors.torch import save as to_bytes

    from alpagym_train.policy import GaussianPolicy, PolicyConfig, save
    from alpagym_train.rollout import make_group_env

    env = make_group_env(1, 1, horizon=horizon)
    obs_dim, act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    env.close()
    torch.manual_seed(0)
    policy = GaussianPolicy(PolicyConfig(obs_dim, act_dim, (256, 256)))
    mb = len(to_bytes(dict(policy.state_dict()))) / 1e6
    return save(path, policy, {"action_type": "control"}), mb


def window(records: list[dict], warmup: int) -> tuple[dict, dict]:
    """The first and last update records of the timed window (after `warmup` updates, at least one)."""
    updates = [r for r in records if "seconds" in r]
    if len(updates) < 2:
        raise RuntimeError(f"{len(updates)} update records: run at least 2 updates")
    first = min(max(warmup, 1), len(updates) - 1)
    return updates[first - 1], updates[-1]


def lag_stats(records: list[dict]) -> dict[str, Any]:
    """Lag histogram, median and max over every group used (all updates, start-up included)."""
    counts: dict[int, int] = {}
    for r in records:
        for k, v in r.get("policy_lag_counts", {}).items():
            counts[int(k)] = counts.get(int(k), 0) + int(v)
    lags = np.repeat(sorted(counts), [counts[k] for k in sorted(counts)])
    return {"counts": counts, "groups": int(lags.size), "p50": float(np.median(lags)), "max": int(lags.max())}


def raw_scenes() -> tuple[list, int]:
    """`env_step`'s `RAW_SCENES` scenes of its `AGENTS` agents each, and that agent count."""
    from env_step import AGENTS, scenes_with_agents  # beside this script

    return scenes_with_agents(RAW_SCENES, AGENTS), AGENTS


def run_raw_engine(scenes: list, seconds: float) -> float:
    """`BatchedSim.step` env-steps/s, B = `RAW_SCENES`, on `raw_threads()` Numba threads."""
    import numba
    from env_step import raw_engine

    numba.set_num_threads(raw_threads())
    return raw_engine(scenes, RAW_SCENES, "replay", seconds)


def raw_threads() -> int:
    """`RAW_THREADS`, or fewer on a machine with fewer cores."""
    import numba

    return min(RAW_THREADS, numba.config.NUMBA_NUM_THREADS)


def of_raw(rate: float, raw: dict | None) -> str:
    """`rate` as a share of the raw engine's, for the table's column ('-' without a raw engine row)."""
    return f"{rate / raw['env_steps_per_s']:>6.0%}" if raw else f"{'-':>6}"


def run_grpo(args, actors: int, init: Path, out: Path) -> dict[str, Any]:
    """One ``role=all`` GRPO run with `actors` actors; returns its throughput, timings and lags."""
    from alpagym_train.grpo.config import compose
    from alpagym_train.grpo.launch import run_all
    from alpagym_train.rundir import read_metrics

    run_dir = out / f"grpo_{actors}actors"
    overrides = [
        "role=all",
        f"run_dir={run_dir}",
        f"actors.num={actors}",
        f"learner.init={init}",
        f"learner.updates={args.updates}",
        f"learner.groups_per_update={args.groups}",
        f"learner.group_size={args.group_size}",
        f"learner.train_scenes={args.train_scenes}",
        f"learner.val_scenes={args.val_scenes}",
        "learner.eval_every=0",
        "learner.checkpoint_every=0",
        "actors.warm_scenes=-1",
        f"env.horizon={args.horizon}",
        "progress=false",
        *args.set,
    ]
    t0 = time.perf_counter()
    status = run_all(compose(overrides))
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"GRPO with {actors} actor(s) exited with status {status}; see {run_dir}")
    records = read_metrics(run_dir)
    a, b = window(records, args.warmup)
    timed = [r for r in records if "seconds" in r and a["update"] < r["update"] <= b["update"]]
    seconds = b["seconds"] - a["seconds"]
    return {
        "actors": actors,
        "env_steps_per_s": (b["env_steps"] - a["env_steps"]) / seconds,
        "updates_per_s": (b["update"] - a["update"]) / seconds,
        "window_updates": [a["update"] + 1, b["update"]],
        "window_seconds": seconds,
        "wait_fraction": sum(r["wait_s"] for r in timed) / seconds,
        "update_fraction": sum(r["update_s"] for r in timed) / seconds,
        "update_s_median": float(np.median([r["update_s"] for r in timed])),
        "queue_length_mean": float(np.mean([r["queue_length"] for r in timed])),
        "sync_ms_median": float(np.median([r["sync_ms"] for r in records if "sync_ms" in r])),
        "groups_dropped": int(b["groups_dropped"]),
        "groups_used": int(b["groups_used"]),
        "lag": lag_stats(records),
        "whole_run_env_steps_per_s": b["env_steps_per_s"],
        "wall_seconds": wall,
        "overrides": overrides,
    }


def cost_per_env_step(args, init: Path, seconds: float) -> dict[str, float]:
    """CPU microseconds per env-step of each part of the trainer, one thread each, in this process.

    An actor's rollout (`GroupStream` at the run's ``actors.num_envs``, the init policy, 1 Numba and
    1 torch thread) is timed for `seconds`, split into the engine (`BatchedSim.step`), the policy's
    sampling and the rest (the vector env's Python, scene loads and resets, the stream's
    bookkeeping); then the learner's update (`make_updater` on the run's algorithm config) on the
    groups it produced, ``--groups`` a batch. With the cores shared by nothing else, the trainer
    cannot consume more than ``cores / (rollout + update)`` env-steps/s (less Redis and the wire).
    """
    import numba

    from alpagym_env.scenarios import load_suite
    from alpagym_train.algorithm import make_updater
    from alpagym_train.grpo.config import compose
    from alpagym_train.policy import RolloutPolicy, load
    from alpagym_train.rollout import GroupStream, make_group_env
    from alpagym_train.sync import set_log_std
    from alpagym_train.threads import pin_compute_threads

    cfg = compose([f"learner.init={init}", f"learner.group_size={args.group_size}", *args.set])
    pin_compute_threads(1)
    numba.set_num_threads(1)
    policy, _ = load(init)
    if cfg.learner.log_std is not None:
        set_log_std(policy, cfg.learner.log_std)
    scenes = load_suite("train")[: args.train_scenes] if args.train_scenes else load_suite("train")
    envs = cfg.actors.num_envs or cfg.actors.groups_per_push * args.group_size
    env = make_group_env(envs, 1, scenarios=scenes, reward="metrics", horizon=args.horizon)
    for i in range(len(scenes)):
        env.sim.compile(i)
    timers = {"engine": 0.0, "sample": 0.0}

    def timed(name, fn):
        def call(*a):
            t = time.perf_counter()
            out = fn(*a)
            timers[name] += time.perf_counter() - t
            return out

        return call

    rng = np.random.default_rng(0)
    sampler = timed("sample", RolloutPolicy(policy, np.random.default_rng(0)))
    stream = GroupStream(env, sampler, args.group_size, lambda: int(rng.integers(len(scenes))))
    stream.collect(args.groups)  # kernels, first loads
    env.sim.step = timed("engine", env.sim.step)
    timers.update(engine=0.0, sample=0.0)
    batches, steps, t0 = [], 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(batches) < 3:
        batches.append(stream.collect(args.groups))
        steps += batches[-1].steps
    rollout = time.perf_counter() - t0
    updater = make_updater(policy, cfg.grpo_config(), seed=0)
    updater.update(batches[0])
    t0 = time.perf_counter()
    for b in batches[1:]:
        updater.update(b)
    update = (time.perf_counter() - t0) / sum(b.steps for b in batches[1:])
    us = {k: v / steps * 1e6 for k, v in timers.items()}
    us["actor_rest"] = rollout / steps * 1e6 - us["engine"] - us["sample"]
    us["update"] = update * 1e6
    us["total"] = rollout / steps * 1e6 + us["update"]
    us["num_envs"] = envs
    us["mean_episode_steps"] = steps / sum(b.mask.shape[0] * b.mask.shape[1] for b in batches)
    # The arithmetic no overhead can remove: a forward pass to sample each env-step, and each epoch's
    # forward and backward (about two forward passes) over the share of steps the update trains on.
    algo = cfg.grpo_config()
    forward = forward_flops(policy)
    us["policy_mflop"] = forward * (1 + 3 * algo.epochs * algo.step_fraction) / 1e6
    us["matmul_gflops"] = matmul_gflops(policy)
    us["policy_floor"] = us["policy_mflop"] * 1e3 / us["matmul_gflops"]
    return us


def linear_layers(policy) -> list:
    """`policy`'s `torch.nn.Linear` layers."""
    import torch

    return [m for m in policy.modules() if isinstance(m, torch.nn.Linear)]


def forward_flops(policy) -> float:
    """Floating-point operations of one forward pass of `policy`'s linear layers, per row."""
    return float(sum(2 * m.in_features * m.out_features for m in linear_layers(policy)))


def matmul_gflops(policy, rows: int = 4096, seconds: float = 0.5) -> float:
    """One thread's float32 matrix-product rate on `policy`'s widest hidden layer, `rows` rows at a time
    (the batch sizes of an update, at which BLAS runs near the core's peak), GFLOP/s."""
    import torch

    width = max(m.out_features for m in linear_layers(policy))
    x, w = torch.randn(rows, width), torch.randn(width, width)
    for _ in range(3):
        x @ w
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x @ w
        n += 1
    return 2.0 * rows * width * width * n / (time.perf_counter() - t0) / 1e9


def run_ppo(args, out: Path) -> dict[str, Any]:
    """SB3 PPO with the baseline's defaults on the same env; returns its steady and whole-run rates."""
    from alpagym_train.baselines.sb3 import sb3_config, train_sb3
    from alpagym_train.rundir import read_metrics

    cfg = sb3_config(
        algo="ppo",
        total_timesteps=args.ppo_steps,
        env={"reward": "metrics", "horizon": args.horizon},
        suite="train",
        train_scenes=args.train_scenes,
        log_every=PPO_ROLLOUT,  # a record after each rollout: intervals of one rollout + one update
        checkpoint_every=0,
        eval_suite="smoke",  # the closed-loop score after training is not timed: keep it short
        eval_episodes=1,
        eval_references=[],
        run_dir=str(out / "sb3_ppo"),
        progress=False,
    )
    _, summary = train_sb3(cfg)
    records = [r for r in read_metrics(cfg.run_dir) if "seconds" in r]
    if len(records) >= 3:  # from the end of the first rollout to the end of the last
        a, b = records[0], records[-1]
        rate = (b["env_steps"] - a["env_steps"]) / (b["seconds"] - a["seconds"])
        ppo_updates = (b["env_steps"] - a["env_steps"]) / PPO_ROLLOUT
        updates_per_s, steady = ppo_updates / (b["seconds"] - a["seconds"]), True
    else:  # too few rollouts for a window: the whole run
        rate, steady = summary["env_steps_per_s"], False
        updates_per_s = summary["env_steps"] / PPO_ROLLOUT / summary["train_seconds"]
    return {
        "env_steps_per_s": rate,
        "updates_per_s": updates_per_s,
        "steady": steady,
        "env_steps": summary["env_steps"],
        "whole_run_env_steps_per_s": summary["env_steps_per_s"],
        "train_seconds": summary["train_seconds"],
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def sync_target(ms: float) -> str:
    """The 1 MB weight-sync time against its target, e.g. ``<= 2 ms: 1.50 ms, 0.75x the target``."""
    return f"<= {TARGET_SYNC_MS:g} ms: {ms:.2f} ms, {ms / TARGET_SYNC_MS:.2f}x the target"


def report(
    args, grpo: list[dict], ppo: dict, sync: list[dict], policy_mb: float, raw: dict | None = None
) -> list[str]:
    """Prints the tables and the targets; returns the target lines."""
    scenes = f"first {args.train_scenes} scenes" if args.train_scenes else "all scenes"
    lo, hi = grpo[0]["window_updates"] if grpo else (0, 0)
    print(
        f"\nAlpaDrive-v0: train suite ({scenes}), horizon {args.horizon}, control actions, replayed agents, "
        f"reward=metrics; {os.cpu_count()} cores, one run"
    )
    print(
        f"GRPO: {args.groups} groups x {args.group_size} rollouts per update, {args.updates} updates, "
        f"rates over updates {lo}-{hi}; "
        f"SB3 PPO: baseline defaults, {ppo['env_steps']} steps, rates "
        + ("after the first rollout" if ppo["steady"] else "over the whole run (too few rollouts)")
        + (f"; GRPO overrides {' '.join(args.set)}" if getattr(args, "set", None) else "")
    )
    print(
        f"\n| {'trainer':<27} | {'env-steps/s':>11} | {'updates/s':>9} | {'x PPO':>6} | {'of raw':>6} | notes"
    )
    print("|" + "-" * 29 + "|" + "-" * 13 + "|" + "-" * 11 + "|" + "-" * 8 + "|" + "-" * 8 + "|------")
    if raw:
        rates = ", ".join(f"{r:,.0f}" for r in raw["rates"])
        note = (
            f"B = {RAW_SCENES}, {raw['agents']} agents per scene, {raw['threads']} Numba threads; the "
            f"fastest of {rates} (before each GRPO run, after the last)"
        )
        print(
            f"| {'raw engine BatchedSim.step':<27} | {raw['env_steps_per_s']:>11,.0f} | {'-':>9} "
            f"| {raw['env_steps_per_s'] / ppo['env_steps_per_s']:>5.1f}x | {1:>6.0%} | {note}"
        )
    for g in grpo:
        name = f"GRPO async, {g['actors']} actor" + ("s" if g["actors"] > 1 else "")
        note = (
            f"learner waits {g['wait_fraction']:.0%}, updates {g['update_fraction']:.0%} "
            f"({g['update_s_median']:.2f} s each); queue {g['queue_length_mean']:.1f} entries; "
            f"whole run {g['whole_run_env_steps_per_s']:,.0f}/s, {g['wall_seconds']:.0f} s wall"
        )
        ratio = g["env_steps_per_s"] / ppo["env_steps_per_s"]
        print(
            f"| {name:<27} | {g['env_steps_per_s']:>11,.0f} | {g['updates_per_s']:>9.2f} "
            f"| {ratio:>5.1f}x | {of_raw(g['env_steps_per_s'], raw)} | {note}"
        )
    note = f"whole run {ppo['whole_run_env_steps_per_s']:,.0f}/s ({ppo['train_seconds']:.0f} s)"
    print(
        f"| {'SB3 PPO (MlpPolicy 256x256)':<27} | {ppo['env_steps_per_s']:>11,.0f} "
        f"| {ppo['updates_per_s']:>9.2f} | {1:>5.1f}x "
        f"| {of_raw(ppo['env_steps_per_s'], raw)} | {note}"
    )

    print(
        "\nWeight publish + fetch, float32 safetensors with a keyed-BLAKE3 MAC checked on both sides, "
        f"private redis-server (median of {args.repeats})"
    )
    print(f"| {'size':>16} | {'publish ms':>10} | {'fetch ms':>8} | {'total ms':>8} | target")
    print("|" + "-" * 18 + "|" + "-" * 12 + "|" + "-" * 10 + "|" + "-" * 10 + "|-------")
    for r in sync:
        size = f"{r['mb']:g} MB" if r["mb"] != policy_mb else f"{r['mb']:.2f} MB (policy)"
        ms = r["total_ms"]
        target = sync_target(ms) if r["mb"] == 1.0 else ""
        print(f"| {size:>16} | {r['publish_ms']:>10.2f} | {r['fetch_ms']:>8.2f} | {ms:>8.2f} | {target}")
    sync_ms = ", ".join(f"{g['actors']} actor(s) {g['sync_ms_median']:.2f} ms" for g in grpo)
    print(f"policy weights {policy_mb:.2f} MB; learner publish time in the GRPO runs (median): {sync_ms}")

    lags = sorted({k for g in grpo for k in g["lag"]["counts"]})
    print("\nPolicy lag of the groups trained on (weight versions behind the learner's)")
    head = "".join(f" lag {k} |" for k in lags)
    print(f"| actors | groups |{head} median | max | dropped |")
    print("|--------|--------|" + "-------|" * len(lags) + "--------|-----|---------|")
    for g in grpo:
        cells = "".join(f" {g['lag']['counts'].get(k, 0):>5} |" for k in lags)
        print(
            f"| {g['actors']:>6} | {g['lag']['groups']:>6} |{cells} {g['lag']['p50']:>6g} "
            f"| {g['lag']['max']:>3} | {g['groups_dropped']:>7} |"
        )

    targets = []
    for g in grpo:
        ratio = g["env_steps_per_s"] / ppo["env_steps_per_s"]
        targets.append(
            f"{verdict(ratio >= TARGET_SPEEDUP)}  GRPO with {g['actors']} actor(s) >= "
            f"{TARGET_SPEEDUP:g}x SB3 PPO env-steps/s: {ratio:.1f}x"
        )
    for g in grpo if raw else []:
        share = g["env_steps_per_s"] / raw["env_steps_per_s"]
        targets.append(
            f"{verdict(share >= TARGET_RAW_SHARE)}  GRPO with {g['actors']} actor(s) consumes >= "
            f"{TARGET_RAW_SHARE:.0%} of the raw engine's env-steps/s: {share:.0%}"
        )
    one_mb = [r for r in sync if r["mb"] == 1.0]
    if one_mb:
        ms = one_mb[0]["total_ms"]
        targets.append(f"{verdict(ms <= TARGET_SYNC_MS)}  1 MB weight sync {sync_target(ms)}")
    for g in grpo:
        p50 = g["lag"]["p50"]
        targets.append(
            f"{verdict(p50 <= TARGET_LAG_P50)}  policy-lag median <= {TARGET_LAG_P50:g} "
            f"with {g['actors']} actor(s): {p50:g}"
        )
    cost = getattr(args, "cost", None)
    if cost:
        cores = os.cpu_count() or 1
        ceiling = cores * 1e6 / cost["total"]
        print(
            f"\nCPU cost per env-step, one thread each ({cost['num_envs']:g} sub-envs per actor, the init "
            f"policy's episodes {cost['mean_episode_steps']:.0f} steps on average)"
        )
        print("| part | us per env-step | share |")
        print("|---|---|---|")
        parts = {
            "engine (BatchedSim.step)": cost["engine"],
            "policy sampling": cost["sample"],
            "rest of the actor (vector env, resets, stream)": cost["actor_rest"],
            "learner update": cost["update"],
        }
        for name, v in parts.items():
            print(f"| {name} | {v:.1f} | {v / cost['total']:.0%} |")
        print(f"| all | {cost['total']:.1f} | 100% |")
        share = f"{ceiling / raw['env_steps_per_s']:.0%} of the raw engine" if raw else ""
        print(
            f"ceiling on {cores} cores without Redis and the wire: {ceiling:,.0f} env-steps/s {share}; "
            f"{TARGET_RAW_SHARE:.0%} of the raw engine would need "
            + (
                f"{cores * 1e6 / (TARGET_RAW_SHARE * raw['env_steps_per_s']):.1f} us per env-step"
                if raw
                else "-"
            )
        )
        floor = cost["engine"] + cost["policy_floor"]
        print(
            f"the policy's arithmetic, {cost['policy_mflop']:.2f} MFLOP per env-step (a forward pass to "
            f"sample, forward and backward passes to learn), takes {cost['policy_floor']:.1f} us at this "
            f"core's float32 matrix-product rate ({cost['matmul_gflops']:.0f} GFLOP/s, one thread): with the "
            "engine, "
            f"{floor:.1f} us per env-step before any overhead, a ceiling of {cores * 1e6 / floor:,.0f} "
            "env-steps/s"
            + (f" ({cores * 1e6 / floor / raw['env_steps_per_s']:.0%} of the raw engine)" if raw else "")
        )

    print("\nTargets")
    print("\n".join(targets))
    return targets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=60, help="GRPO updates per run")
    parser.add_argument("--warmup", type=int, default=5, help="GRPO updates left out of the rates")
    parser.add_argument("--ppo-steps", type=int, default=12 * PPO_ROLLOUT, help="SB3 PPO env steps")
    parser.add_argument("--train-scenes", type=int, default=200, help="first N train scenes (0: all)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="GRPO actor counts")
    parser.add_argument("--groups", type=int, default=8, help="GRPO groups per update")
    parser.add_argument("--group-size", type=int, default=8, help="GRPO rollouts per group")
    parser.add_argument("--horizon", type=int, default=200, help="env steps per episode (both trainers)")
    parser.add_argument("--val-scenes", type=int, default=8, help="GRPO's (untimed) start and end evaluation")
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1.0, 10.0], help="weight MB")
    parser.add_argument("--repeats", type=int, default=20, help="publish + fetch repetitions per size")
    parser.add_argument("--raw-seconds", type=float, default=2.0, help="raw engine seconds, before and after")
    parser.add_argument(
        "--cost-seconds", type=float, default=6.0, help="rollout seconds of the cost split (0: none)"
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="GRPO Hydra overrides")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--out", help="run directories go here (default: a temporary directory)")
    args = parser.parse_args(argv)
    args.train_scenes = args.train_scenes or None

    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="trainer_throughput_")
    out = Path(args.out or tmp.name)
    try:
        init, policy_mb = make_init_policy(out / "init" / "policy.safetensors", args.horizon)
        scenes, agents = raw_scenes()
        rates, grpo = [], []
        for n in args.actors:  # the raw engine before each GRPO run and after the last
            rates.append(run_raw_engine(scenes, args.raw_seconds))
            grpo.append(run_grpo(args, n, init, out))
        rates.append(run_raw_engine(scenes, args.raw_seconds))
        # The fastest: another process on the machine slows the engine's threads most.
        raw = {"env_steps_per_s": max(rates), "rates": rates, "agents": agents, "threads": raw_threads()}
        ppo = run_ppo(args, out)
        from alpagym_train.transport import weight_sync_latency

        sync = weight_sync_latency(sorted({*args.sizes, policy_mb}), args.repeats)
        args.cost = cost_per_env_step(args, init, args.cost_seconds) if args.cost_seconds else None
        targets = report(args, grpo, ppo, sync, policy_mb, raw)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        numbers = {
            "settings": {k: v for k, v in vars(args).items() if k not in ("json", "out")},
            "cpu_count": os.cpu_count(),
            "raw_engine": raw,
            "grpo": grpo,
            "ppo": ppo,
            "weight_sync": sync,
            "policy_mb": policy_mb,
            "cost_us_per_env_step": args.cost,
            "targets": targets,
        }
        Path(args.json).write_text(json.dumps(numbers, indent=2))
        print(f"\nnumbers written to {args.json}")


if __name__ == "__main__":
    main()
