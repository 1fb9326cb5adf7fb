"""Learner checkpoints: everything a learner needs to continue a run where it stopped.

A checkpoint is a directory ``{run_dir}/checkpoints/update_{n:06d}/`` holding

- ``policy.safetensors`` + ``policy.json``: the weights and sidecar (`alpagym_train.policy.save`), so a
  checkpoint is also an evaluable policy;
- ``trainer.pt``: optimizer state, update step, weight version, counters, the best validation score
  and weights, the critic's weights and optimizer (PPO), and the torch/numpy RNG states (read back
  with ``torch.load(weights_only=True)``); every tensor in it is a CPU tensor, whatever device the
  learner trains on, so a checkpoint resumes on any machine;
- ``config.yaml``: the resolved run config; ``run_id``: the run's id (a resume reuses it).

``{run_dir}/checkpoints/latest`` names the newest one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from alpagym_train.policy import GaussianPolicy, load, save
from alpagym_train.rundir import write_config


@dataclass
class TrainerState:
    """The learner's progress besides the weights.

    Attributes:
        update: Updates done.
        version: The weight version published after the last update.
        env_steps: Env steps consumed by updates.
        counters: Totals: groups used, groups dropped as stale, ...
        best_score: Best validation scene score so far.
        best_update: Update at which it was reached.
        best_state: The policy weights at that update.
        optimizer: The optimizer's state dict.
        torch_rng: `torch.get_rng_state()`.
        minibatch_rng: State of the updater's minibatch generator.
        reference: Weights of the frozen KL reference (the init policy), None without a KL term.
        run_id: The run's id.
        critic: The updater's `critic_state` (PPO's value network, its optimizer and update count;
            None for GRPO).
    """

    update: int = 0
    version: int = 0
    env_steps: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    best_score: float = float("-inf")
    best_update: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    optimizer: dict[str, Any] | None = None
    torch_rng: torch.Tensor | None = None
    minibatch_rng: torch.Tensor | None = None
    reference: dict[str, torch.Tensor] | None = None
    run_id: str = ""
    critic: dict[str, Any] | None = None


def save_checkpoint(
    run_dir: str | Path, policy: GaussianPolicy, meta: dict[str, Any], state: TrainerState, config: dict
) -> Path:
    """Writes ``checkpoints/update_{n:06d}/`` and points ``checkpoints/latest`` at it; returns the dir."""
    root = Path(run_dir) / "checkpoints"
    out = root / f"update_{state.update:06d}"
    save(out / "policy.safetensors", policy, meta)
    torch.save(on_cpu(vars(state)), out / "trainer.pt.tmp")
    (out / "trainer.pt.tmp").replace(out / "trainer.pt")  # a crash mid-write leaves no torn checkpoint
    write_config(out / "config.yaml", config)
    (out / "run_id").write_text(state.run_id + "\n")
    (root / "latest.tmp").write_text(out.name + "\n")
    (root / "latest.tmp").replace(root / "latest")
    return out


def on_cpu(x: Any) -> Any:
    """`x` (tensors, possibly inside dicts, lists and tuples) with every tensor on the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, dict):
        return {k: on_cpu(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(on_cpu(v) for v in x)
    return x


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory `path` names: a checkpoint dir, a run dir (its latest), or ``.../latest``.

    Raises:
        FileNotFoundError: Nothing resumable there (the message says what was looked for).
    """
    p = Path(path)
    if p.name == "latest" and p.is_file():
        p = p.parent / p.read_text().strip()
    elif (p / "checkpoints" / "latest").is_file():
        p = p / "checkpoints" / (p / "checkpoints" / "latest").read_text().strip()
    elif (p / "latest").is_file():
        p = p / (p / "latest").read_text().strip()
    if not (p / "trainer.pt").is_file() or not (p / "policy.safetensors").is_file():
        raise FileNotFoundError(
            f"resume={path}: no checkpoint there (expected a run directory with checkpoints/latest, "
            "or a checkpoint directory with trainer.pt and policy.safetensors)"
        )
    return p


def load_checkpoint(path: str | Path) -> tuple[GaussianPolicy, dict[str, Any], TrainerState, Path]:
    """Reads a checkpoint (see `resolve_checkpoint` for `path`): policy, sidecar, state and its dir."""
    ckpt = resolve_checkpoint(path)
    policy, meta = load(ckpt / "policy.safetensors")
    raw = torch.load(ckpt / "trainer.pt", weights_only=True)
    return policy, meta, TrainerState(**raw), ckpt
