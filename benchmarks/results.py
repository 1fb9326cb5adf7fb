"""Headline results: BC, BC + closed-loop GRPO, SB3 PPO and SAC at one env-step budget, on held-out scenes.

For each training seed, on the first `--train-scenes` scenes of the train suite:

1. BC: behaviour cloning on the expert logs of those scenes (open loop, no env steps), early-stopped on
   the validation loss (`alpagym_train.bc`).
2. BC + GRPO: the async trainer (`python -m alpagym_train.grpo`: a private redis-server, the learner and
   its actors) from that checkpoint until the update that reaches the env-step budget
   (``learner.max_env_steps``); the final policy is the one with the best validation score (the
   trainer's ``learner.keep_best``).
3. SB3 PPO and SAC from scratch (`alpagym_train.baselines.sb3`), each for exactly the env steps GRPO
   used with that seed (for the budget itself when GRPO is not run).

Then every trained policy and the reference policies are driven closed-loop on the same `--test-episodes`
test scenes by the evaluation code of `python -m alpagym_env.evaluate`; the episodes of all seeds are
pooled per method. Written to `--out`: ``results.md`` (the table), ``results.csv`` (every metric's
mean and 95 % CI, plus training time and env steps), ``learning_curves.png`` (scene score against env
steps), ``summary.json`` (command line, versions, budgets, times) and one run directory per method and
seed.

With the defaults (one seed, 200k env steps) it took 7.8 min on a quiet 2-core CPU and about 13 min
while other jobs shared it; SAC takes over half of that.

Usage: python benchmarks/results.py [--env-steps 200000] [--seeds 0 1 2] [--train-scenes 200]
       [--test-episodes 200] [--topology local|single] [--out runs/results]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from alpagym_env.evaluation import eval_config, evaluate, load_policy, load_scenarios, summarize, to_markdown
from alpagym_env.evaluation.leaderboard import ALL, Row, write_csv
from alpagym_train.baselines.sb3 import ALGO_DEFAULTS, sb3_config, train_sb3
from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.grpo.config import compose
from alpagym_train.grpo.launch import run_all
from alpagym_train.rundir import read_metrics
from alpagym_train.threads import pin_torch_threads

METHODS = ("bc", "grpo", "ppo", "sac")
LABELS = {
    "bc": "BC (open-loop)",
    "grpo": "BC + GRPO (closed-loop)",
    "ppo": "SB3 PPO (from scratch)",
    "sac": "SB3 SAC (from scratch)",
}
REFERENCES = ("idm", "constant_velocity", "expert", "random")
# Leaderboard columns of the table; ``comfort`` is the fraction of steps passing AlpaSim's six checks.
COLUMNS = ("scene_score", "collision_at_fault", "offroad", "progress", "comfort")
GROUPS, GROUP_SIZE = 8, 8
VERSIONED = ("alpagym", "torch", "stable-baselines3", "numpy", "numba", "gymnasium", "matplotlib")


@dataclass
class Run:
    """One trained policy.

    Attributes:
        method: One of `METHODS`.
        seed: Training seed.
        policy: Checkpoint path (any SPEC `alpagym_env.evaluation.load_policy` reads).
        seconds: Wall-clock training time (BC: dataset and fitting; GRPO: the whole `run_all`, with
            process start-up and validation; SB3: model construction and `learn`).
        env_steps: Closed-loop env steps of training.
        curves: Curve name -> [(env steps, mean scene score)].
        info: Method-specific facts for ``summary.json``.
    """

    method: str
    seed: int
    policy: str
    seconds: float
    env_steps: int
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=200_000, help="closed-loop env steps per RL run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--references", nargs="*", default=list(REFERENCES))
    parser.add_argument("--train-scenes", type=int, default=200)
    parser.add_argument("--val-scenes", type=int, default=40)
    parser.add_argument("--test-episodes", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=200, help="episode steps, training and evaluation")
    parser.add_argument("--grpo-updates", type=int, default=10_000, help="a cap; the budget ends GRPO first")
    # On 2 cores `local` (two actors) matched `single` in wall-clock and scored as well or better on test
    # (measured over two seeds at 23 updates), so it is the default, as in the trainer's config.
    parser.add_argument("--topology", choices=("local", "single"), default="local")
    parser.add_argument("--grpo", nargs="*", default=[], metavar="KEY=VALUE", help="extra GRPO overrides")
    parser.add_argument("--sac-train-freq", type=int, default=2, help="vec-env steps between SAC updates")
    parser.add_argument("--sac-gradient-steps", type=int, default=1)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stdout.isatty())
    parser.add_argument("--out", default="runs/results")
    args = parser.parse_args(argv)
    if args.env_steps < 1 or args.train_scenes < 1 or args.test_episodes < 1:
        parser.error("--env-steps, --train-scenes and --test-episodes must be >= 1")
    return args


def run_bc(args: argparse.Namespace, seed: int) -> Run:
    """Behaviour cloning on the expert logs of the training scenes."""
    out = Path(args.out) / f"bc_seed{seed}"
    cfg = BCConfig(
        train_scenes=args.train_scenes,
        val_scenes=args.val_scenes,
        env={"horizon": args.horizon},
        seed=seed,
        out_dir=str(out),
        progress=args.progress,
    )
    _, summary = train_bc(cfg)
    info = {k: summary[k] for k in ("train_samples", "best_epoch", "best_val_loss")}
    return Run("bc", seed, str(out / "policy.safetensors"), summary["seconds"], 0, info=info)


def run_grpo(args: argparse.Namespace, seed: int, init: str) -> Run:
    """Async closed-loop GRPO from the BC checkpoint `init`, on the same training scenes."""
    run_dir = Path(args.out) / f"grpo_seed{seed}"
    overrides = [
        f"topology={args.topology}", f"run_dir={run_dir}", f"progress={args.progress}",
        f"env.horizon={args.horizon}", f"learner.init={init}", f"learner.updates={args.grpo_updates}",
        f"learner.groups_per_update={GROUPS}", f"learner.group_size={GROUP_SIZE}",
        f"learner.train_scenes={args.train_scenes}", f"learner.val_scenes={args.val_scenes}",
        f"learner.max_env_steps={args.env_steps}", "learner.eval_every=5", f"learner.seed={seed}",
        f"actors.seed={seed}",
        *args.grpo,
    ]  # fmt: skip
    cfg = compose(overrides)
    t0 = time.perf_counter()
    status = run_all(cfg)
    seconds = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"the GRPO run failed (exit {status}); its log is in {run_dir}")
    records = read_metrics(run_dir)
    curves = {
        "training rollouts": [(r["env_steps"], r["scene_score"]) for r in records if "scene_score" in r],
        "val scenes": [
            (r.get("env_steps", 0), r["val/scene_score"]) for r in records if "val/scene_score" in r
        ],
    }
    last = [r for r in records if "env_steps" in r][-1]
    best = max(records, key=lambda r: r.get("val/scene_score", -math.inf))
    info = {
        "updates": last["update"],
        "overrides": overrides,
        "best_update": best["update"],
        "best_val_scene_score": best["val/scene_score"],
    }
    return Run("grpo", seed, str(run_dir / "policy.safetensors"), seconds, last["env_steps"], curves, info)


def sb3_kwargs(args: argparse.Namespace, algo: str, steps: int) -> dict[str, Any]:
    """The SB3 arguments set here on top of `ALGO_DEFAULTS` (SAC's update ratio, so it fits the time)."""
    if algo != "sac":
        return {}
    learning_starts = min(ALGO_DEFAULTS["sac"]["learning_starts"], steps // 4)
    return {
        "train_freq": args.sac_train_freq,
        "gradient_steps": args.sac_gradient_steps,
        "learning_starts": learning_starts,
    }


def run_sb3(args: argparse.Namespace, algo: str, seed: int, steps: int) -> Run:
    """SB3 PPO or SAC from scratch for `steps` env steps on the training scenes."""
    cfg = sb3_config(
        algo=algo,
        total_timesteps=steps,
        env={"horizon": args.horizon},
        train_scenes=args.train_scenes,
        algo_kwargs=sb3_kwargs(args, algo, steps),
        seed=seed,
        eval_suite="val",  # its own score on val scenes, for summary.json only (no model selection)
        eval_episodes=args.val_scenes,
        eval_references=[],
        checkpoint_every=0,
        log_every=max(steps // 40, 1000),
        run_dir=str(Path(args.out) / f"{algo}_seed{seed}"),
        progress=args.progress,
    )
    t0 = time.perf_counter()
    _, summary = train_sb3(cfg)
    seconds = time.perf_counter() - t0 - summary["eval_seconds"]
    records = read_metrics(cfg.run_dir)
    curve = [(r["env_steps"], r["ep_scene_score"]) for r in records if "ep_scene_score" in r]
    info = {
        "sb3_kwargs": cfg.sb3_kwargs(),
        "num_envs": cfg.num_envs,
        "val_scene_score": summary["eval"][f"sb3_{algo}"]["scene_score"],
    }
    policy = summary["policy"]
    return Run(algo, seed, policy, seconds, summary["env_steps"], {"training episodes": curve}, info)


def evaluate_runs(args: argparse.Namespace, runs: Sequence[Run]) -> tuple[list[Row], dict[str, list[float]]]:
    """Every run and reference policy on the same test episodes, episodes pooled over seeds.

    Returns:
        The ``all`` leaderboard row per policy (methods in `METHODS` order, then the references) and
        per policy its mean scene score for each seed.
    """
    config = eval_config(horizon=args.horizon)
    policies = {(r.method, r.seed): load_policy(r.policy, config) for r in runs}
    policies |= {(name, None): load_policy(name, config) for name in args.references}
    named = {f"{name} {seed}": p for (name, seed), p in policies.items()}
    results = evaluate(named, load_scenarios("test"), config, seed=0, max_episodes=args.test_episodes)
    pooled: dict[str, list] = {}
    per_seed: dict[str, list[float]] = {}
    for (name, _), episodes in zip(policies, results.values(), strict=True):
        label = LABELS.get(name, name)
        pooled.setdefault(label, []).extend(episodes)
        per_seed.setdefault(label, []).append(float(np.mean([e.metrics["scene_score"] for e in episodes])))
    return [r for r in summarize(pooled) if r.family == ALL], per_seed


def extras(runs: Sequence[Run], rows: Sequence[Row], per_seed: dict[str, list[float]]) -> dict[str, dict]:
    """The columns beside the leaderboard's, per policy: training seconds, env steps (means over seeds),
    seeds, and the standard deviation of the per-seed scene scores."""
    out = {}
    for row in rows:
        own = [r for r in runs if LABELS[r.method] == row.policy]
        scores = per_seed[row.policy]
        out[row.policy] = {
            "train_seconds": float(np.mean([r.seconds for r in own])) if own else math.nan,
            "env_steps": float(np.mean([r.env_steps for r in own])) if own else math.nan,
            "seeds": len(own),
            "scene_score_seed_sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else math.nan,
        }
    return out


def markdown(rows: Sequence[Row], extra: dict[str, dict], seeds: int) -> str:
    """The leaderboard's Markdown (`to_markdown`) with training time, env steps (and seed sd) appended."""
    head = ["train time", "env steps", *(["scene score sd over seeds"] if seeds > 1 else [])]
    lines = to_markdown(rows, COLUMNS).splitlines()
    out = [f"{lines[0]} {' | '.join(head)} |", lines[1] + "---|" * len(head)]
    for line, row in zip(lines[2:], rows, strict=True):
        e = extra[row.policy]
        cells = (
            ["–", "–"]
            if math.isnan(e["train_seconds"])
            else [f"{e['train_seconds']:.0f} s", f"{e['env_steps']:,.0f}"]
        )
        if seeds > 1:
            cells.append("–" if math.isnan(e["scene_score_seed_sd"]) else f"{e['scene_score_seed_sd']:.3f}")
        out.append(f"{line} {' | '.join(cells)} |")
    return "\n".join(out) + "\n"


def write_results_csv(rows: Sequence[Row], extra: dict[str, dict], path: Path) -> None:
    """The leaderboard's CSV (`write_csv`: every metric's mean and CI) with the `extras` columns appended."""
    write_csv(rows, path)
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    keys = list(next(iter(extra.values())))
    table[0] += keys
    for line in table[1:]:
        line += [f"{extra[line[0]][k]:.6g}" for k in keys]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(table)


def plot_curves(runs: Sequence[Run], rows: Sequence[Row], path: Path) -> None:
    """Scene score against closed-loop env steps: training and validation curves of every RL run (one
    line per seed), each method's pooled test score at its final env steps, and BC's as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    test = {r.policy: r.metrics["scene_score"][0] for r in rows}
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for i, method in enumerate(m for m in METHODS if m != "bc"):
        own = [r for r in runs if r.method == method]
        for j, run in enumerate(own):
            for k, (name, points) in enumerate(run.curves.items()):
                if points:
                    x, y = zip(*points, strict=True)
                    style = "o-" if name == "val scenes" else "-"
                    label = f"{LABELS[method]}: {name}" if j == 0 else None
                    ax.plot(x, y, style, color=f"C{i}", alpha=0.9 if k else 0.45, ms=4, label=label)
        if own:
            steps = np.mean([r.env_steps for r in own])
            ax.plot(
                steps,
                test[LABELS[method]],
                "*",
                color=f"C{i}",
                ms=14,
                mec="black",
                label=f"{LABELS[method]}: test",
            )
    if LABELS["bc"] in test:
        ax.axhline(test[LABELS["bc"]], color="gray", ls="--", label=f"{LABELS['bc']}: test")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
    ax.set_xlabel("closed-loop env steps")
    ax.set_ylabel("mean scene score")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def versions() -> dict[str, str]:
    """Python, the packages that produce the numbers, and the git commit (when in a checkout)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        git = ["git", "rev-parse", "HEAD"]
        out["git_commit"] = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["git_commit"] = "unknown"
    return out


def notes(args: argparse.Namespace, runs: Sequence[Run]) -> list[str]:
    """What the table's numbers mean, in the words of the settings that produced them."""
    lines = [
        f"Budget: {args.env_steps:,} closed-loop env steps per RL run. GRPO stops after the update that "
        f"reaches it ({np.mean([r.info['updates'] for r in runs if r.method == 'grpo'] or [0]):.0f} "
        f"updates of {GROUPS} groups x {GROUP_SIZE} rollouts, topology `{args.topology}`, so it "
        "overshoots by less than one update); PPO and SAC then get exactly the env steps GRPO used "
        "with the same seed (PPO rounds up to whole rollouts of 8 envs x 256 steps). 'env steps' and "
        "'train time' are means over seeds; train time is wall-clock on this shared 2-core machine.",
        "BC learns from the expert logs of the same training scenes (0 env steps, "
        f"{np.mean([r.info['train_samples'] for r in runs if r.method == 'bc'] or [0]):,.0f} "
        "logged observation-action pairs) and early-stops on the validation loss. BC + GRPO starts "
        "from that checkpoint (add BC's time) and keeps the update with the best validation scene "
        f"score ({args.val_scenes} val scenes; their env steps are not counted). PPO and SAC start "
        "from scratch and keep their final model.",
        f"SAC updates once every {args.sac_train_freq} steps of 8 envs with {args.sac_gradient_steps} "
        f"gradient step(s) (a replay ratio of {args.sac_gradient_steps / (8 * args.sac_train_freq):.3g} "
        "gradient steps per transition) so it fits the time budget on 2 cores; PPO uses the "
        "`alpagym_train.baselines.sb3` defaults. All RL methods use the `metrics` reward.",
        f"Test: the same {args.test_episodes} held-out `test` scenes for every policy (log-replay "
        f"agents, {args.horizon}-step episodes), the episodes of all seeds pooled; ± is the 95 % "
        "confidence interval of the mean.",
    ]
    return [f"- {line}" for line in lines]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains, evaluates and writes the results; returns the summary written to ``summary.json``."""
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/results.py", *(sys.argv[1:] if argv is None else argv)])
    pin_torch_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    runs: list[Run] = []
    for seed in args.seeds:
        if not {"bc", "grpo"}.isdisjoint(args.methods):
            print(f"[seed {seed}] BC on the expert logs of {args.train_scenes} training scenes", flush=True)
            bc = run_bc(args, seed)
            runs += [bc] if "bc" in args.methods else []
        steps = args.env_steps
        if "grpo" in args.methods:
            print(f"[seed {seed}] BC + GRPO: {args.env_steps:,} env steps ({args.topology})", flush=True)
            runs.append(run_grpo(args, seed, bc.policy))
            steps = runs[-1].env_steps
        for algo in ("ppo", "sac"):
            if algo in args.methods:
                print(f"[seed {seed}] SB3 {algo.upper()} from scratch: {steps:,} env steps", flush=True)
                runs.append(run_sb3(args, algo, seed, steps))
        for r in runs[-len(args.methods) :]:
            print(f"  {LABELS[r.method]}: {r.seconds:.0f} s, {r.env_steps:,} env steps", flush=True)
    print(f"closed-loop evaluation on {args.test_episodes} test scenes", flush=True)
    t_eval = time.perf_counter()
    rows, per_seed = evaluate_runs(args, runs)
    eval_seconds = time.perf_counter() - t_eval
    extra = extras(runs, rows, per_seed)
    table = markdown(rows, extra, len(args.seeds))
    used = np.mean([r.env_steps for r in runs if r.env_steps] or [0])
    title = (
        f"# Results: an env-step budget of {args.env_steps:,} ({used:,.0f} used per RL run), "
        f"seeds {' '.join(map(str, args.seeds))}, {args.train_scenes} training scenes\n\n"
    )
    figure = "\n![learning curves](learning_curves.png)\n"
    (out / "results.md").write_text(title + table + "\n" + "\n".join(notes(args, runs)) + "\n" + figure)
    write_results_csv(rows, extra, out / "results.csv")
    plot_curves(runs, rows, out / "learning_curves.png")
    summary = {
        "command": command,
        "args": vars(args),
        "versions": versions(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "budget": {"env_steps": args.env_steps, "grpo_update_cap": args.grpo_updates},
        "runs": [{k: v for k, v in asdict(r).items() if k != "curves"} for r in runs],
        "test": {
            r.policy: {"episodes": r.episodes, **{c: r.metrics[c] for c in COLUMNS}, **extra[r.policy]}
            | {"scene_score_per_seed": per_seed[r.policy], "km_per_incident": r.km_per_incident}
            for r in rows
        },
        "seconds": {"evaluation": eval_seconds, "total": time.perf_counter() - t_start},
    }
    (out / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    print()
    print(table)
    print(f"done in {summary['seconds']['total']:.0f} s; {out}/results.md, results.csv, learning_curves.png")
    return summary


def _json_safe(x: Any) -> Any:
    """Strict-JSON values: nan -> null, +-inf -> "inf"/"-inf", tuples -> lists, other objects -> str."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x if isinstance(x, (str, int, float, bool, type(None))) else str(x)


if __name__ == "__main__":
    main()
