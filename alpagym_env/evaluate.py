"""`python -m alpagym_env.evaluate`: the closed-loop leaderboard of one or more policies on a suite.

Example::

    python -m alpagym_env.evaluate --policy expert constant_velocity idm random --suite test --out eval/
    python -m alpagym_env.evaluate --policy my_pkg.agents:policy --reference --videos 3 --out eval/
    python -m alpagym_env.evaluate --policy ppo_model.zip --env horizon=200 'obs={"num_agents": 8}'

Every scene of the suite is driven closed-loop by each policy through the batched engine (log-replay or
IDM agents), and scored with AlpaSim's metrics and EPDMS-style sub-scores (`alpagym_env.metrics`,
`alpagym_env.evaluation.subscores`). The leaderboard (mean and 95 % CI per family and overall) is
printed as Markdown; with ``--out`` it is also written as ``leaderboard.{md,csv,json}`` beside
``episodes.csv`` (every episode) and, with ``--videos K``, the K worst and best episodes of each policy
under ``videos/``. A fixed ``--seed`` gives byte-identical files. ``--env`` sets env arguments (those a
plain SB3 ``model.save`` zip was trained with; models of `alpagym_train.baselines.sb3` carry theirs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from alpagym_env.evaluation import eval_config, evaluate, load_scenarios, policy_config
from alpagym_env.evaluation.leaderboard import (
    MAIN_COLUMNS,
    summarize,
    to_markdown,
    write_csv,
    write_episodes_csv,
    write_json,
)
from alpagym_env.evaluation.policy_spec import BUILTIN, load_policy

REFERENCE = tuple(BUILTIN)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m alpagym_env.evaluate", description=__doc__.splitlines()[0])
    spec_help = f"{', '.join(REFERENCE)}, module:callable, or a checkpoint with a registered loader"
    p.add_argument("--policy", nargs="+", required=True, metavar="SPEC", help=spec_help)
    p.add_argument("--reference", action="store_true", help="also run the built-in reference policies")
    p.add_argument("--suite", default="test", help="suite name, packed suite .npz, or directory of .npz")
    cap_help = "evaluate at most N scenes, taken round-robin over families (default: all)"
    p.add_argument("--episodes", type=int, default=None, metavar="N", help=cap_help)
    p.add_argument("--repeats", type=int, default=1, help="episodes per scene (for stochastic policies)")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="write leaderboard.{md,csv,json} and videos here"
    )
    p.add_argument(
        "--agents", choices=("replay", "idm"), default="replay", help="other agents (default replay)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--videos", type=int, default=0, metavar="K", help="write the K worst and K best episodes")
    p.add_argument("--horizon", type=int, default=200, help="steps per episode (0.1 s each)")
    p.add_argument("--action-type", choices=("control", "trajectory"), default="control",
                   help="action type of policies that do not declare theirs (default control)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32, help="scenes stepped together")
    env_help = (
        "env arguments as KEY=VALUE (VALUE read as JSON when it parses), e.g. obs_type=flat "
        "'obs={\"num_agents\": 4}': those a plain SB3 .zip was trained with"
    )
    p.add_argument("--env", nargs="+", default=[], metavar="KEY=VALUE", help=env_help)
    p.add_argument("--columns", nargs="+", default=list(MAIN_COLUMNS), help="metrics shown in the terminal")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = p.parse_args(argv)
    if args.videos and not args.out:
        p.error("--videos needs --out DIR")
    if args.repeats < 1 or (args.episodes is not None and args.episodes < 1) or args.batch_size < 1:
        p.error("--repeats, --episodes and --batch-size must be >= 1")
    args.env_kwargs = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--env takes KEY=VALUE, got {item!r}")
        try:
            args.env_kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            args.env_kwargs[key] = value
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    specs = list(dict.fromkeys(([*REFERENCE] if args.reference else []) + args.policy))
    try:
        env = {"action_type": args.action_type, "agents": args.agents, "horizon": args.horizon}
        env.update(args.env_kwargs)
        config = eval_config(env.pop("agents"), env.pop("horizon"), **env)
        policies = {s: load_policy(s, config, args.seed) for s in specs}
        t0 = time.perf_counter()
        scenarios = load_scenarios(args.suite)
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = evaluate(
        policies, scenarios, config, args.seed, args.repeats, args.episodes, args.batch_size,
        progress=not args.no_progress,
    )  # fmt: skip
    t_eval = time.perf_counter() - t0
    rows = summarize(results)
    table = to_markdown(rows, args.columns)
    print(table)
    steps = sum(int(r.metrics["steps"]) for res in results.values() for r in res)
    print(
        f"{sum(map(len, results.values()))} episodes, {steps} closed-loop steps in {t_eval:.1f} s "
        f"(suite {args.suite!r} ready in {t_load:.1f} s), agents={args.agents}, seed={args.seed}",
        file=sys.stderr,
    )
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "leaderboard.md"), "w") as f:
            f.write(table)
        write_csv(rows, os.path.join(args.out, "leaderboard.csv"))
        meta = {
            "suite": args.suite,
            "agents": args.agents,
            "seed": args.seed,
            "horizon": args.horizon,
            "repeats": args.repeats,
            "episodes": args.episodes,
            "policies": specs,
        }
        write_json(rows, os.path.join(args.out, "leaderboard.json"), meta)
        write_episodes_csv(results, os.path.join(args.out, "episodes.csv"))
        if args.videos:
            from alpagym_env.evaluation.videos import write_videos

            for name, res in results.items():
                follows = bool(getattr(policies[name], "follows_log", False))
                video_dir = os.path.join(args.out, "videos")
                cfg = policy_config(policies[name], config)
                paths = write_videos(video_dir, name, res, scenarios, cfg, args.videos, follows)
                print(f"{name}: {len(paths)} videos in {video_dir}", file=sys.stderr)
        print(f"leaderboard written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
