"""What closed-loop GRPO does to a behaviour-cloned policy: BC vs BC + GRPO on held-out scenes.

1. Behaviour cloning on the train suite's expert logs (open loop), early-stopped on val.
2. Synchronous GRPO from that checkpoint on train scenes, scoring val every few updates.
3. Both checkpoints and the reference policies evaluated on the test suite with the evaluation code
   of `python -m alpagym_env.evaluate`; a learning-curve PNG and the table are written to --out.

Usage: python benchmarks/grpo_learning.py [--train-scenes 1000] [--updates 100] [--groups 16]
       [--reward scene_score] [--log-std -3] [--no-normalize-obs] [--perturb 0] [--step-fraction 0.5]
       [--out runs/grpo_learning]

The flags are the recipe's levers, for ablations: the reward preset, the exploration noise, the
groups per update, BC's observation standardisation and its perturbed rollouts, the share of steps
the GRPO loss is computed on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alpagym_env.evaluation import to_markdown
from alpagym_train.algorithm import GRPOConfig
from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.report import compare_on_suite
from alpagym_train.sync import SyncConfig, train_sync


def plot(history: list[dict], bc_val: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = [r for r in history if "val/scene_score" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    steps, scores = [r["env_steps"] for r in evals], [r["val/scene_score"] for r in evals]
    ax.plot(steps, scores, "o-", label="BC + GRPO (val)")
    ax.plot(
        [r["env_steps"] for r in history[1:]],
        [r["scene_score"] for r in history[1:]],
        alpha=0.35,
        label="GRPO rollouts (train, sampled)",
    )
    ax.axhline(bc_val, color="gray", ls="--", label="BC (val)")
    ax.set_xlabel("closed-loop env steps")
    ax.set_ylabel("mean scene score")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-scenes", type=int, default=1000)
    parser.add_argument("--val-scenes", type=int, default=80)
    parser.add_argument("--test-episodes", type=int, default=200)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--reward", default="scene_score", help="reward preset of the GRPO env")
    parser.add_argument("--log-std", type=float, default=-3.0, help="GRPO exploration noise (log-std)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--normalize-obs", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--perturb", type=float, default=0.0, help="BC's perturbed-rollout noise")
    parser.add_argument(
        "--step-fraction", type=float, default=GRPOConfig.step_fraction, help="GRPO's algorithm.step_fraction"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/grpo_learning")
    args = parser.parse_args()
    out = Path(args.out)
    t0 = time.perf_counter()
    bc_cfg = BCConfig(
        train_scenes=args.train_scenes, val_scenes=args.val_scenes, seed=args.seed, out_dir=str(out / "bc"),
        normalize_obs=args.normalize_obs, perturb=args.perturb,
    )  # fmt: skip
    _, bc = train_bc(bc_cfg)
    t_bc = time.perf_counter() - t0
    sync = SyncConfig(
        init=str(out / "bc" / "policy.safetensors"),
        train_scenes=args.train_scenes,
        val_scenes=args.val_scenes,
        updates=args.updates,
        groups=args.groups,
        group_size=args.group_size,
        env={"reward": args.reward},
        grpo=GRPOConfig(lr=args.lr, advantage="step", step_fraction=args.step_fraction),
        log_std=args.log_std,
        seed=args.seed,
        out_dir=str(out / "grpo"),
    )
    t1 = time.perf_counter()
    _, history = train_sync(sync)
    t_grpo = time.perf_counter() - t1
    plot(history, history[0]["val/scene_score"], out / "learning_curve.png")
    evals = [r for r in history if "val/scene_score" in r]

    checkpoints = {
        "BC (open-loop)": str(out / "bc" / "policy.safetensors"),
        "BC + GRPO": str(out / "grpo" / "policy.safetensors"),
    }
    references = ("expert", "idm", "constant_velocity")
    rows = compare_on_suite(checkpoints, references, episodes=args.test_episodes, seed=args.seed)
    table = to_markdown(rows)
    (out / "results.md").write_text(table)
    summary = {
        "bc_seconds": t_bc,
        "grpo_seconds": t_grpo,
        "grpo_env_steps": history[-1]["env_steps"],
        "best_update": history[-1]["best_update"],
        "bc_samples": bc["train_samples"],
        "val_curve": [(r["update"], r["env_steps"], r["val/scene_score"]) for r in evals],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table)
    print(f"BC {t_bc:.0f} s ({bc['train_samples']} samples)")
    print(f"GRPO {t_grpo:.0f} s, {summary['grpo_env_steps']} closed-loop env steps")
    print("val scene score by update:", ", ".join(f"{u}:{s:.3f}" for u, _, s in summary["val_curve"]))
    print(f"learning curve: {out / 'learning_curve.png'}")


if __name__ == "__main__":
    main()
