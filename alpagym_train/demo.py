"""`python -m alpagym_train.demo` (`make demo`): open-loop BC, closed-loop GRPO, one leaderboard.

A short version of the headline experiment, about a minute on a 2-core CPU: behaviour cloning on
the expert logs of 120 training scenes, 40 synchronous GRPO updates from that checkpoint, then BC,
BC + GRPO and the reference policies driven closed-loop on held-out test scenes and scored with the
evaluation code of `python -m alpagym_env.evaluate`. Checkpoints and metrics go to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from alpagym_env.evaluation import to_markdown
from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.report import compare_on_suite
from alpagym_train.sync import SyncConfig, train_sync
from alpagym_train.threads import pin_torch_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-scenes", type=int, default=120)
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--out", default="runs/demo")
    args = parser.parse_args()
    pin_torch_threads(1)
    out, t0 = Path(args.out), time.perf_counter()
    print(f"1/3 behaviour cloning on the expert logs of {args.train_scenes} training scenes (open loop)")
    train_bc(BCConfig(train_scenes=args.train_scenes, val_scenes=40, epochs=15, out_dir=str(out / "bc")))
    print(f"2/3 closed-loop GRPO: {args.updates} updates of 8 groups x 8 rollouts from the BC checkpoint")
    _, history = train_sync(
        SyncConfig(
            init=str(out / "bc" / "policy.safetensors"),
            train_scenes=args.train_scenes,
            val_scenes=40,
            updates=args.updates,
            eval_every=10,
            out_dir=str(out / "grpo"),
        )
    )
    curve = ", ".join(f"{r['update']}: {r['val/scene_score']:.3f}" for r in history if "val/scene_score" in r)
    print(f"   val scene score by update: {curve}")
    print(f"3/3 closed-loop evaluation on {args.test_episodes} held-out test scenes")
    rows = compare_on_suite(
        {
            "BC (open-loop)": str(out / "bc" / "policy.safetensors"),
            "BC + GRPO (closed-loop)": str(out / "grpo" / "policy.safetensors"),
        },
        references=("idm", "expert"),
        episodes=args.test_episodes,
    )
    print()
    print(to_markdown(rows, columns=("scene_score", "collision_at_fault", "offroad", "progress")))
    print(f"done in {time.perf_counter() - t0:.0f} s; checkpoints in {out}/bc and {out}/grpo")


if __name__ == "__main__":
    main()
