"""Headline results: BC and closed-loop RL methods at one budget, on held-out scenes.

For each training seed, on the first `--train-scenes` scenes of the train suite (`results_train.py`):

- ``bc``: behaviour cloning on the expert logs of those scenes (open loop, no env steps), early-stopped
  on the validation loss (`alpagym_train.bc`).
- ``grpo``: BC + GRPO, the async trainer (`python -m alpagym_train.grpo`: a private redis-server, the
  learner and its actors) from the BC checkpoint; the final policy is the one with the best validation
  score (the trainer's ``learner.keep_best``).
- ``ppo_bc``: the same trainer, rollouts and budget with ``algorithm=ppo`` (a learned critic: value head
  and GAE) from the same BC checkpoint.
- ``grpo_traj``: BC with trajectory actions (``action_type=trajectory``), then GRPO with
  ``env.action_type=trajectory`` from it.
- ``sb3_ppo``, ``sb3_sac``: SB3 PPO and SAC from scratch (`alpagym_train.baselines.sb3`).

Every RL method gets the same budget: ``--minutes`` of training wall-clock each (the default,
`DEFAULT_MINUTES`), or ``--env-steps`` (with ``--env-steps`` alone, SB3 gets exactly the env steps GRPO
used with that seed), or both (whichever comes first). Then every trained policy and the reference
policies are driven closed-loop on the same `--test-episodes` test scenes by the evaluation code of
`python -m alpagym_env.evaluate`; the episodes of all seeds are pooled per method. Written to `--out`:

- ``results.md``: the table at the equal budget (each method's training seconds and env steps), the
  equal-env-step table (validation score at the smallest env-step count every RL run reached), the
  per-family table, the notes (seeds, budgets, cores, total time) and links to the figures;
- ``readme_table.md``: the README's headline table; ``results.csv``: every metric's mean and 95 % CI,
  plus training time and env steps;
- ``learning_curves.png`` / ``learning_curves_seconds.png``: validation scene score against env steps
  / training seconds, BC and idm as horizontal lines;
- ``bc_vs_grpo_*.gif``: BC (left) and BC + GRPO (right) on the test scene where GRPO gained most, the
  one where it lost most and the one where BC + GRPO scores worst (first seed);
- ``summary.json`` (command line, versions, machine, budgets, times) and one run directory per method
  and seed.

``--write-docs`` then writes ``docs/results.md`` and its figures (``docs/results_*``) from the run;
``--docs-from RUN_DIR`` does only that, from an earlier run.

Usage: python benchmarks/results.py [--minutes 1.75 | --env-steps 200000] [--seeds 0 1 2]
       [--methods bc grpo ppo_bc grpo_traj sb3_ppo sb3_sac] [--train-scenes 200] [--test-episodes 200]
       [--topology local|single] [--out runs/results] [--write-docs | --docs-from RUN_DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import results_report as report
from results_gifs import write_pair_gifs
from results_train import (
    ASYNC_INIT,
    ASYNC_OVERRIDES,
    GROUP_SIZE,
    GROUPS,
    LABELS,
    METHODS,
    Run,
    algorithm_available,
    evaluation_config,
    run_async,
    run_bc,
    run_sb3,
    val_scores,
)

from alpagym_env.evaluation import (
    evaluate,
    load_policy,
    load_scenarios,
    policy_config,
    summarize,
)
from alpagym_train.threads import pin_compute_threads

# Minutes of training per RL method. 5 RL methods x 1.75 min leave about 6 min of the 15 min `make results`
# (one seed, 2 cores) should take for the two BC fits (about 50 s each at 200 scenes), the trainer's
# start-ups, scoring SB3's curve checkpoints, the test evaluation and the GIFs.
DEFAULT_MINUTES = 1.75
REFERENCES = ("idm", "constant_velocity", "expert", "random")
VERSIONED = ("alpagym", "torch", "stable-baselines3", "numpy", "numba", "gymnasium", "matplotlib")


def default_methods() -> list[str]:
    """Every method whose trainer preset exists (``ppo_bc`` needs ``algorithm=ppo``)."""
    return [m for m in METHODS if m != "ppo_bc" or algorithm_available("ppo")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_argument_group("budget (per RL method; --minutes by default)")
    budget.add_argument(
        "--minutes", type=float, help=f"training wall-clock minutes (default {DEFAULT_MINUTES})"
    )
    budget.add_argument("--env-steps", type=int, help="closed-loop env steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="default: all available")
    parser.add_argument("--references", nargs="*", default=list(REFERENCES))
    parser.add_argument("--train-scenes", type=int, default=1000, help="the whole train suite")
    parser.add_argument("--val-scenes", type=int, default=40)
    parser.add_argument("--test-episodes", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=200, help="episode steps, training and evaluation")
    parser.add_argument("--grpo-updates", type=int, default=10_000, help="a cap; the budget ends runs first")
    parser.add_argument("--eval-every", type=int, default=5, help="async trainer updates between val scores")
    # On 2 cores `local` (two actors) matched `single` in wall-clock and scored as well or better on test
    # (measured over two seeds at 23 updates), so it is the default, as in the trainer's config.
    parser.add_argument("--topology", choices=("local", "single"), default="local")
    parser.add_argument(
        "--grpo", nargs="*", default=[], metavar="KEY=VALUE", help="extra async trainer overrides"
    )
    parser.add_argument("--sac-train-freq", type=int, default=2, help="vec-env steps between SAC updates")
    parser.add_argument("--sac-gradient-steps", type=int, default=1)
    parser.add_argument("--gifs", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stdout.isatty())
    parser.add_argument("--out", default="runs/results")
    docs = parser.add_argument_group("docs")
    docs.add_argument("--write-docs", action="store_true", help="write DOCS_DIR/results.md from the run")
    docs.add_argument("--docs-from", metavar="RUN_DIR", help="only write the docs from an earlier run")
    docs.add_argument("--docs-dir", default="docs")
    args = parser.parse_args(argv)
    if args.minutes is None and args.env_steps is None:
        args.minutes = DEFAULT_MINUTES
    if (args.env_steps is not None and args.env_steps < 1) or (
        args.minutes is not None and args.minutes <= 0
    ):
        parser.error("--env-steps must be >= 1 and --minutes > 0")
    if args.train_scenes < 1 or args.test_episodes < 1 or args.eval_every < 1:
        parser.error("--train-scenes, --test-episodes and --eval-every must be >= 1")
    if args.gifs and importlib.util.find_spec("imageio") is None:
        parser.error("the GIFs need imageio (pip install 'alpagym[bench]'); or pass --no-gifs")
    args.methods = args.methods or default_methods()
    if "ppo_bc" in args.methods and not algorithm_available("ppo"):
        parser.error(
            "--methods ppo_bc needs the async trainer's algorithm=ppo preset "
            "(alpagym_train/conf/algorithm/ppo.yaml), which this checkout does not have"
        )
    return args


def train(args: argparse.Namespace) -> list[Run]:
    """Every method of ``--methods`` for every seed, BC first (the async methods start from it)."""
    runs: list[Run] = []
    for seed in args.seeds:
        bcs: dict[str, Run] = {}
        wanted = {ASYNC_INIT[m] for m in args.methods if m in ASYNC_INIT} | {"bc"} & set(args.methods)
        for method in ("bc", "bc_traj"):
            if method in wanted:
                print(f"[seed {seed}] {LABELS[method]}: {args.train_scenes} training scenes", flush=True)
                bcs[method] = run_bc(args, seed, method)
                runs.append(bcs[method])
        steps = args.env_steps
        for method in ASYNC_OVERRIDES:
            if method in args.methods:
                print(f"[seed {seed}] {LABELS[method]}: {budget_text(args)} ({args.topology})", flush=True)
                runs.append(run_async(args, method, seed, bcs[ASYNC_INIT[method]].policy))
                if method == "grpo" and args.minutes is None:
                    steps = runs[-1].env_steps  # SB3 gets exactly the env steps GRPO used
        for method in ("sb3_ppo", "sb3_sac"):
            if method in args.methods:
                print(f"[seed {seed}] {LABELS[method]}: {budget_text(args, steps)}", flush=True)
                runs.append(run_sb3(args, method, seed, steps))
        for r in (r for r in runs if r.seed == seed):
            print(f"  {LABELS[r.method]}: {r.seconds:.0f} s, {r.env_steps:,} env steps", flush=True)
    return runs


def budget_text(args: argparse.Namespace, steps: int | None = None) -> str:
    """The budget of one RL run in words."""
    steps = args.env_steps if steps is None else steps
    parts = [f"{args.minutes:g} min"] if args.minutes is not None else []
    return " or ".join(parts + ([f"{steps:,} env steps"] if steps is not None else []))


def evaluate_runs(args: argparse.Namespace, runs: Sequence[Run]) -> dict[str, Any]:
    """Every run and reference policy on the same test episodes, episodes pooled over seeds.

    Returns:
        ``rows``: the ``all`` leaderboard row per policy (runs in order, then the references);
        ``families``: the per-family rows; ``per_seed``: per policy its mean scene score per seed;
        ``episodes`` and ``configs``: per ``(method, seed)`` its episodes and evaluation env config;
        ``scenarios``: the test scenes.
    """
    config = evaluation_config(args)
    policies = {(r.method, r.seed): load_policy(r.policy, evaluation_config(args, r.method)) for r in runs}
    policies |= {(name, None): load_policy(name, config) for name in args.references}
    named = {f"{name} {seed}": p for (name, seed), p in policies.items()}
    scenarios = load_scenarios("test")
    results = evaluate(named, scenarios, config, seed=0, max_episodes=args.test_episodes)
    pooled: dict[str, list] = {}
    per_seed: dict[str, list[float]] = {}
    for (name, _), episodes in zip(policies, results.values(), strict=True):
        label = LABELS.get(name, name)
        pooled.setdefault(label, []).extend(episodes)
        per_seed.setdefault(label, []).append(float(np.mean([e.metrics["scene_score"] for e in episodes])))
    rows, families = report.family_rows(summarize(pooled))
    return {
        "rows": rows,
        "families": families,
        "per_seed": per_seed,
        "episodes": dict(zip(policies, results.values(), strict=True)),
        "configs": {key: policy_config(p, config) for key, p in policies.items()},
        "scenarios": scenarios,
    }


def baseline_val_scores(args: argparse.Namespace, runs: Sequence[Run]) -> dict[str, float]:
    """Validation scene scores of the policies that take no env steps (BC runs, means over seeds; idm),
    on the val scenes of the curves."""
    specs = {f"{r.method} {r.seed}": (r.policy, r.method) for r in runs if r.method in ("bc", "bc_traj")}
    scores = val_scores(args, specs | {"idm": ("idm", None)})
    out: dict[str, list[float]] = {}
    for name, score in scores.items():
        out.setdefault(LABELS.get(name.split()[0], name), []).append(score)
    return {name: float(np.mean(v)) for name, v in out.items()}


def gifs(args: argparse.Namespace, evaluation: dict[str, Any]) -> list[Path]:
    """BC and BC + GRPO side by side on the picked test scenes of the first seed (`write_pair_gifs`)."""
    keys = [("bc", args.seeds[0]), ("grpo", args.seeds[0])]
    if not args.gifs or any(k not in evaluation["episodes"] for k in keys):
        return []
    return write_pair_gifs(
        Path(args.out),
        (LABELS["bc"], LABELS["grpo"]),
        tuple(evaluation["episodes"][k] for k in keys),
        evaluation["scenarios"],
        tuple(evaluation["configs"][k] for k in keys),
    )


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


def machine() -> dict[str, Any]:
    """Where the numbers were measured: platform, logical CPUs and the CPUs this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "usable_cpus": usable}


def notes(args: argparse.Namespace, runs: Sequence[Run], seconds: float, common: int) -> list[str]:
    """What the tables' numbers mean, in the words of the settings that produced them."""
    cpu = machine()
    updates = {
        m: np.mean([r.info["updates"] for r in runs if r.method == m])
        for m in ASYNC_OVERRIDES
        if m in args.methods
    }
    steps_rule = (
        "SB3 PPO and SAC get exactly the env steps GRPO used with the same seed (PPO rounds up to whole "
        "rollouts of 8 envs x 256 steps). "
        if args.minutes is None and "grpo" in args.methods
        else ""
    )
    async_text = (
        "The async trainer's runs ("
        + "; ".join(f"{LABELS[m]}: {u:.0f} updates" for m, u in updates.items())
        + f"; each update {GROUPS} groups x {GROUP_SIZE} rollouts, topology `{args.topology}`) stop after "
        "the update that passes the budget, so they overshoot by less than one update; their time counts "
        "from the first update (process start-up excluded) and includes validating every "
        f"{args.eval_every} updates on {args.val_scenes} val scenes, whose env steps are not counted; "
        "groups the actors queued while the learner started up count in its env steps, not its time. "
        if updates
        else ""
    )
    lines = [
        f"Seeds {' '.join(map(str, args.seeds))}; budget per RL run: {budget_text(args)}; "
        f"{args.train_scenes} training scenes; {cpu['usable_cpus']} usable CPU cores "
        f"({cpu['platform']}); the whole run took {seconds / 60:.1f} min.",
        async_text
        + f"SB3 runs stop at the first env step past the budget; their time is `learn`'s. {steps_rule}"
        "'env steps' and 'train time' are means over seeds, wall-clock on this machine (shared with "
        "other jobs, so times vary).",
        "BC learns from the expert logs of the same training scenes (0 env steps, "
        f"{np.mean([r.info['train_samples'] for r in runs if r.method == 'bc'] or [0]):,.0f} "
        "logged observation-action pairs) and early-stops on the validation loss; its time is not part "
        "of the BC-initialised methods' budget. Those keep the update with the best validation scene "
        "score; SB3 PPO and SAC start from scratch and keep their final model.",
        f"Equal env steps: each RL method's mean val scene score at {common:,} env steps, the fewest any "
        "RL run took, read at its last validation at or before that count (the async trainer validates "
        f"every {args.eval_every} updates; SB3's checkpoints, spread over its budget, are scored on the "
        "same val scenes after training).",
        f"SAC updates once every {args.sac_train_freq} steps of 8 envs with {args.sac_gradient_steps} "
        f"gradient step(s) (a replay ratio of {args.sac_gradient_steps / (8 * args.sac_train_freq):.3g} "
        "gradient steps per transition); PPO uses the `alpagym_train.baselines.sb3` defaults. "
        + rewards_text(runs),
        f"Test: the same {args.test_episodes} held-out `test` scenes for every policy (log-replay "
        f"agents, {args.horizon}-step episodes), the episodes of all seeds pooled; ± is the 95 % "
        "confidence interval of the mean.",
    ]
    return [f"- {line}" for line in lines]


def rewards_text(runs: Sequence[Run]) -> str:
    """Which reward preset the RL methods trained on (each trainer's default)."""
    names = {LABELS[r.method]: r.info["reward"] for r in runs if "reward" in r.info}
    if not names:
        return ""
    if len(set(names.values())) == 1:
        return f"All RL methods use the `{next(iter(names.values()))}` reward (the trainers' default)."
    return "Rewards (the trainers' defaults): " + "; ".join(f"{k}: `{v}`" for k, v in names.items()) + "."


def write_results(
    args: argparse.Namespace,
    runs: Sequence[Run],
    evaluation: dict[str, Any],
    val: dict[str, float],
    t0: float,
) -> dict[str, Any]:
    """Tables, figures, GIFs and ``summary.json`` into ``--out``; returns the summary."""
    out = Path(args.out)
    rows, per_seed = evaluation["rows"], evaluation["per_seed"]
    extra = report.extras(runs, rows, per_seed)
    table = report.markdown(rows, extra, len(args.seeds))
    common, at_steps = report.equal_steps(runs)
    curves = report.plot_curves(runs, val, out)
    gif_paths = gifs(args, evaluation)
    seconds = time.perf_counter() - t0
    title = f"# Results: {budget_text(args)} per RL method, seeds {' '.join(map(str, args.seeds))}\n\n"
    sections = [
        title + table,
        "\n".join(notes(args, runs, seconds, common)),
        "## Equal env steps (validation scenes)\n\n" + report.equal_steps_markdown(common, at_steps, val),
        "## Per scene family (test scenes)\n\n" + report.family_markdown(evaluation["families"]),
        "## Learning curves\n\n" + "\n".join(f"![learning curves]({p.name})" for p in curves),
    ]
    if gif_paths:
        sections.append(
            f"## {LABELS['bc']} (left) and {LABELS['grpo']} (right) on the same test scene\n\n"
            + "\n".join(f"- {p.stem.removeprefix('bc_vs_grpo_')}: ![{p.stem}]({p.name})" for p in gif_paths)
        )
    (out / "results.md").write_text("\n\n".join(s.rstrip("\n") for s in sections) + "\n")
    (out / "readme_table.md").write_text(report.readme_markdown(rows, extra))
    report.write_results_csv(rows, extra, out / "results.csv")
    return {
        "args": vars(args),
        "versions": versions(),
        "machine": machine(),
        "budget": {
            "minutes": args.minutes,
            "env_steps": args.env_steps,
            "grpo_update_cap": args.grpo_updates,
        },
        "runs": [asdict(r) for r in runs],
        "test": {
            r.policy: {"episodes": r.episodes, **{c: r.metrics[c] for c in report.COLUMNS}, **extra[r.policy]}
            | {"scene_score_per_seed": per_seed[r.policy], "km_per_incident": r.km_per_incident}
            for r in rows
        },
        "equal_env_steps": {"env_steps": common, "rows": at_steps},
        "val_no_training": val,
        "figures": [p.name for p in [*curves, *gif_paths]],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains, evaluates and writes the results; returns the summary written to ``summary.json``."""
    args = parse_args(argv)
    if args.docs_from:
        path = report.write_docs(Path(args.docs_from), Path(args.docs_dir))
        print(
            f"wrote {path}; the README's table:\n\n{(Path(args.docs_from) / 'readme_table.md').read_text()}"
        )
        return {"docs": str(path)}
    command = shlex.join(["python", "benchmarks/results.py", *(sys.argv[1:] if argv is None else argv)])
    pin_compute_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    runs = train(args)
    print(f"closed-loop evaluation on {args.test_episodes} test scenes", flush=True)
    t_eval = time.perf_counter()
    evaluation = evaluate_runs(args, runs)
    val = baseline_val_scores(args, runs)
    eval_seconds = time.perf_counter() - t_eval
    summary = {"command": command, **write_results(args, runs, evaluation, val, t_start)}
    summary["seconds"] = {"evaluation": eval_seconds, "total": time.perf_counter() - t_start}
    (out / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2) + "\n")
    if args.write_docs:
        print(f"wrote {report.write_docs(out, Path(args.docs_dir))}")
    print()
    print((out / "results.md").read_text().split("\n\n- ")[0])
    print(f"done in {summary['seconds']['total']:.0f} s; {out}/results.md, results.csv, the figures")
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
