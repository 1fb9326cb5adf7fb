"""`python -m alpagym_train.demo` (`make demo`): open-loop BC, then async closed-loop GRPO, one leaderboard.

A short version of the headline experiment, a couple of minutes on a 2-core CPU:

1. behaviour cloning on the expert logs of 400 training scenes (open loop);
2. `python -m alpagym_train.grpo` with ``role=all`` from that checkpoint: a private redis-server, a
   learner and two actor processes, one minute of updates of 16 groups x 8 rollouts on the whole
   train suite (the `scene_score` reward);
3. BC, BC + GRPO and the reference policies driven closed-loop on held-out test scenes, scored with the
   evaluation code of `python -m alpagym_env.evaluate`.

Extra arguments are GRPO overrides (``python -m alpagym_train.demo learner.max_seconds=120 topology=single``).
Checkpoints, logs and TensorBoard scalars go to ``runs/demo``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from alpagym_env.evaluation import to_markdown
from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.grpo.config import compose
from alpagym_train.grpo.launch import run_all
from alpagym_train.report import compare_on_suite
from alpagym_train.rundir import read_metrics
from alpagym_train.threads import pin_compute_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-scenes", type=int, default=400, help="BC's training scenes")
    parser.add_argument("--seconds", type=float, default=60.0, help="GRPO's training time")
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("overrides", nargs="*", help="GRPO config overrides, key=value")
    args = parser.parse_args()
    pin_compute_threads(1)
    out, t0 = Path(args.out), time.perf_counter()
    bc = out / "bc" / "policy.safetensors"
    print(f"1/3 behaviour cloning on the expert logs of {args.train_scenes} training scenes (open loop)")
    train_bc(BCConfig(train_scenes=args.train_scenes, val_scenes=40, epochs=15, out_dir=str(bc.parent)))
    print(f"2/3 async closed-loop GRPO from the BC checkpoint: {args.seconds:g} s, Redis, learner + actors")
    cfg = compose([
        f"learner.init={bc}", f"learner.max_seconds={args.seconds}", "learner.updates=100000",
        "learner.eval_every=5", f"run_dir={out / 'grpo'}", *args.overrides,
    ])  # fmt: skip
    status = run_all(cfg)
    if status != 0:
        sys.exit(f"the GRPO run failed (exit {status}); its log is in {cfg.run_dir}")
    curve = [(r["update"], r["val/scene_score"]) for r in read_metrics(cfg.run_dir) if "val/scene_score" in r]
    print("   val scene score by update: " + ", ".join(f"{u}: {s:.3f}" for u, s in curve))
    print(f"3/3 closed-loop evaluation on {args.test_episodes} held-out test scenes")
    rows = compare_on_suite(
        {"BC (open-loop)": str(bc), "BC + GRPO (closed-loop)": str(Path(cfg.run_dir) / "policy.safetensors")},
        references=("idm", "expert"),
        episodes=args.test_episodes,
    )
    print()
    print(to_markdown(rows, columns=("scene_score", "collision_at_fault", "offroad", "progress")))
    print(f"done in {time.perf_counter() - t0:.0f} s; run directories {bc.parent} and {cfg.run_dir}")


if __name__ == "__main__":
    main()
