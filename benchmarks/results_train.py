"""Training of `benchmarks/results.py`: the methods, their budgets and their validation curves.

Every RL method gets the same budget, wall-clock seconds (``--minutes``), env steps (``--env-steps``) or
both (whichever ends it first), and leaves a validation curve: the mean scene score on the first
``--val-scenes`` scenes of the ``val`` suite against closed-loop env steps and training seconds.

- The async trainer's runs (`ASYNC_OVERRIDES`: BC + GRPO, BC + PPO with a learned critic, BC + GRPO
  with trajectory actions) stop through ``learner.max_seconds`` / ``learner.max_env_steps`` and
  validate every ``--eval-every`` updates on the clock (the validation decides ``keep_best``).
- SB3 PPO and SAC stop through ``max_seconds`` / ``total_timesteps`` and save `CURVE_POINTS`
  checkpoints spread over the budget; those are scored on the same val scenes after training, off the
  clock (they play no part in training).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

import alpagym_train
from alpagym_env.config import EnvConfig
from alpagym_env.evaluation import eval_config, evaluate, load_policy, load_scenarios
from alpagym_train.baselines.sb3 import ALGO_DEFAULTS, sb3_config, train_sb3
from alpagym_train.bc import BCConfig, train_bc
from alpagym_train.grpo.config import compose
from alpagym_train.grpo.launch import run_all
from alpagym_train.rundir import read_metrics

METHODS = ("bc", "grpo", "ppo_bc", "grpo_traj", "sb3_ppo", "sb3_sac")
LABELS = {
    "bc": "BC (open-loop)",
    "bc_traj": "BC, trajectory actions",
    "grpo": "BC + GRPO (closed-loop)",
    "ppo_bc": "BC + PPO, learned critic",
    "grpo_traj": "BC + GRPO, trajectory actions",
    "sb3_ppo": "SB3 PPO (from scratch)",
    "sb3_sac": "SB3 SAC (from scratch)",
}
RL_METHODS = ("grpo", "ppo_bc", "grpo_traj", "sb3_ppo", "sb3_sac")
# The async trainer's methods: their overrides on top of the shared ones, and the BC run they start from.
ASYNC_OVERRIDES = {
    "grpo": [],
    "ppo_bc": ["algorithm=ppo"],
    "grpo_traj": ["env.action_type=trajectory"],
}
ASYNC_INIT = {"grpo": "bc", "ppo_bc": "bc", "grpo_traj": "bc_traj"}
# The env action type of each method's policy (the rest drive with ``control``).
ACTION_TYPES = {"bc_traj": "trajectory", "grpo_traj": "trajectory"}
GROUPS, GROUP_SIZE = 16, 8
CURVE_POINTS = 8  # SB3 checkpoints scored on the val scenes after training
NO_STEP_CAP = 10**9  # SB3's total_timesteps when only the wall clock ends a run


@dataclass
class Run:
    """One trained policy.

    Attributes:
        method: A key of `LABELS`.
        seed: Training seed.
        policy: Checkpoint path (any SPEC `alpagym_env.evaluation.load_policy` reads).
        seconds: Training wall-clock seconds: BC: dataset and fitting; the async trainer: from its first
            update to its last (validation included, process start-up not); SB3: `learn`.
        env_steps: Closed-loop env steps of training.
        curve: Validation points ``(env steps, training seconds, mean val scene score)``, the untrained
            start first where there is one.
        info: Method-specific facts for ``summary.json``.
    """

    method: str
    seed: int
    policy: str
    seconds: float
    env_steps: int
    curve: list[tuple[int, float, float]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def algorithm_available(name: str) -> bool:
    """Whether the trainer's config group ``algorithm`` has the preset `name` (``algorithm=name``)."""
    return (Path(alpagym_train.__file__).parent / "conf" / "algorithm" / f"{name}.yaml").is_file()


def val_scenes(args: argparse.Namespace) -> list:
    """The validation scenes every curve is scored on: the first ``--val-scenes`` of ``val`` (as the
    async trainer's ``learner.val_scenes``)."""
    return load_scenarios("val")[: args.val_scenes]


def evaluation_config(args: argparse.Namespace, method: str | None = None) -> EnvConfig:
    """The env configuration `method`'s policy is evaluated with (references: ``method=None``)."""
    return eval_config(horizon=args.horizon, action_type=ACTION_TYPES.get(method, "control"))


def val_scores(args: argparse.Namespace, specs: dict[str, tuple[str, str | None]]) -> dict[str, float]:
    """Mean closed-loop scene score on the val scenes (one episode a scene) of each named policy.

    Args:
        args: The command line.
        specs: Name -> (policy SPEC, the method that trained it, None for a reference).
    """
    policies = {
        name: load_policy(spec, evaluation_config(args, method)) for name, (spec, method) in specs.items()
    }
    results = evaluate(policies, val_scenes(args), evaluation_config(args), seed=0)
    return {name: float(np.mean([e.metrics["scene_score"] for e in eps])) for name, eps in results.items()}


def reward_name(spec: Any) -> str:
    """The reward preset a reward spec (a name or a list of terms) is, else ``custom``."""
    from alpagym_env import rewards

    terms = rewards.resolve(spec).terms
    return next((p for p in rewards.presets() if rewards.resolve(p).terms == terms), "custom")


def run_bc(args: argparse.Namespace, seed: int, method: str = "bc") -> Run:
    """Behaviour cloning on the expert logs of the training scenes (``bc`` or ``bc_traj``)."""
    out = Path(args.out) / f"{method}_seed{seed}"
    cfg = BCConfig(
        train_scenes=args.train_scenes,
        val_scenes=args.val_scenes,
        action_type=ACTION_TYPES.get(method, "control"),
        env={"horizon": args.horizon},
        seed=seed,
        out_dir=str(out),
        progress=args.progress,
    )
    _, summary = train_bc(cfg)
    info = {k: summary[k] for k in ("train_samples", "best_epoch", "best_val_loss")}
    return Run(method, seed, str(out / "policy.safetensors"), summary["seconds"], 0, info=info)


def async_overrides(args: argparse.Namespace, method: str, seed: int, init: str) -> list[str]:
    """The ``python -m alpagym_train.grpo`` overrides of one async run."""
    budget = [f"learner.max_seconds={args.minutes * 60}"] if args.minutes is not None else []
    budget += [f"learner.max_env_steps={args.env_steps}"] if args.env_steps is not None else []
    return [
        f"topology={args.topology}", f"run_dir={Path(args.out) / f'{method}_seed{seed}'}",
        f"progress={args.progress}", f"env.horizon={args.horizon}", f"learner.init={init}",
        f"learner.updates={args.grpo_updates}", f"learner.groups_per_update={GROUPS}",
        f"learner.group_size={GROUP_SIZE}", f"learner.train_scenes={args.train_scenes}",
        f"learner.val_scenes={args.val_scenes}", f"learner.eval_every={args.eval_every}",
        f"learner.seed={seed}", f"actors.seed={seed}", *budget,
        *ASYNC_OVERRIDES[method], *args.grpo,
    ]  # fmt: skip


def run_async(args: argparse.Namespace, method: str, seed: int, init: str) -> Run:
    """The async trainer (`ASYNC_OVERRIDES` of `method`) from the BC checkpoint `init` until the budget."""
    overrides = async_overrides(args, method, seed, init)
    cfg = compose(overrides)
    t0 = time.perf_counter()
    status = run_all(cfg)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"the {LABELS[method]} run failed (exit {status}); its log is in {cfg.run_dir}")
    records = read_metrics(cfg.run_dir)
    # The start's validation record has neither env steps nor seconds: it is the untrained (BC) policy.
    curve = [
        (r.get("env_steps", 0), r.get("seconds", 0.0), r["val/scene_score"])
        for r in records
        if "val/scene_score" in r
    ]
    last = [r for r in records if "env_steps" in r][-1]
    best = max(records, key=lambda r: r.get("val/scene_score", -math.inf))
    info = {
        "updates": last["update"],
        "overrides": overrides,
        "wall_seconds_with_start_up": wall,
        "reward": reward_name(cfg.reward_terms()),
        "best_update": best["update"],
        "best_val_scene_score": best["val/scene_score"],
    }
    policy = str(Path(cfg.run_dir) / "policy.safetensors")
    return Run(method, seed, policy, last["seconds"], last["env_steps"], curve, info)


class CurveCheckpoints(BaseCallback):
    """Saves the model every `every_steps` env steps or `every_seconds` of training, noting each file's
    env steps and seconds (`points`), so a curve can be scored after training, off the clock.

    Args:
        out: Directory of the checkpoints.
        every_steps: Env steps between checkpoints (None: by time only).
        every_seconds: Training seconds between checkpoints (None: by env steps only).
    """

    def __init__(self, out: Path, every_steps: int | None, every_seconds: float | None) -> None:
        super().__init__()
        self.out, self.every_steps, self.every_seconds = out, every_steps, every_seconds
        self.points: list[tuple[int, float, str]] = []

    def _on_training_start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self._save()

    def _on_step(self) -> bool:
        steps, seconds = self.num_timesteps - self.points[-1][0], self._seconds() - self.points[-1][1]
        if (self.every_steps and steps >= self.every_steps) or (
            self.every_seconds and seconds >= self.every_seconds
        ):
            self._save()
        return True

    def _seconds(self) -> float:
        return time.perf_counter() - self._t0

    def _save(self) -> None:
        path = self.out / f"{self.num_timesteps}.zip"
        self.model.save(path)
        self.points.append((self.num_timesteps, self._seconds(), str(path)))


def sb3_kwargs(args: argparse.Namespace, algo: str, steps: int | None) -> dict[str, Any]:
    """The SB3 arguments set here on top of `ALGO_DEFAULTS` (SAC's update ratio, so it fits the time)."""
    if algo != "sac":
        return {}
    starts = ALGO_DEFAULTS["sac"]["learning_starts"]
    return {
        "train_freq": args.sac_train_freq,
        "gradient_steps": args.sac_gradient_steps,
        "learning_starts": starts if steps is None else min(starts, steps // 4),
    }


def run_sb3(args: argparse.Namespace, method: str, seed: int, steps: int | None) -> Run:
    """SB3 PPO or SAC (`method` ``sb3_ppo`` / ``sb3_sac``) from scratch on the training scenes, for
    ``--minutes`` and/or `steps` env steps; its curve is its checkpoints scored on the val scenes."""
    algo = method.removeprefix("sb3_")
    run_dir = Path(args.out) / f"{method}_seed{seed}"
    cfg = sb3_config(
        algo=algo,
        total_timesteps=steps or NO_STEP_CAP,
        max_seconds=None if args.minutes is None else args.minutes * 60,
        env={"horizon": args.horizon},
        train_scenes=args.train_scenes,
        algo_kwargs=sb3_kwargs(args, algo, steps),
        seed=seed,
        eval_suite="val",  # its own score on val scenes, for summary.json only (no model selection)
        eval_episodes=args.val_scenes,
        eval_references=[],
        checkpoint_every=0,
        log_every=1000 if steps is None else max(steps // 40, 1000),
        run_dir=str(run_dir),
        progress=args.progress,
    )
    curve_cb = CurveCheckpoints(
        run_dir / "curve",
        None if steps is None else max(steps // CURVE_POINTS, 1),
        None if args.minutes is None else args.minutes * 60 / CURVE_POINTS,
    )
    _, summary = train_sb3(cfg, [curve_cb])
    points = curve_cb.points
    if points[-1][0] != summary["env_steps"]:
        points.append((summary["env_steps"], summary["train_seconds"], summary["policy"]))
    scores = val_scores(args, {p[2]: (p[2], method) for p in points})
    curve = [(n, s, scores[path]) for n, s, path in points]
    info = {
        "sb3_kwargs": cfg.sb3_kwargs(),
        "num_envs": cfg.num_envs,
        "reward": reward_name(cfg.env["reward"]),
        "val_scene_score": summary["eval"][f"sb3_{algo}"]["scene_score"],
    }
    policy = summary["policy"]
    return Run(method, seed, policy, summary["train_seconds"], summary["env_steps"], curve, info)
