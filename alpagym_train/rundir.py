"""One run directory per training run: resolved config, TensorBoard scalars, a JSONL log, checkpoints.

Every trainer (`python -m alpagym_train.grpo`, `python -m alpagym_train.baselines.sb3`) writes the same
layout, so runs can be compared and resumed the same way::

    {run_dir}/config.yaml      the resolved configuration the run used
    {run_dir}/metrics.jsonl    one JSON record per logged step
    {run_dir}/tb/              TensorBoard event files (`tensorboard --logdir {run_dir}/tb`)
    {run_dir}/checkpoints/     checkpoints (layout chosen by the trainer)
    {run_dir}/policy.*         the final policy
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RunLogger:
    """Writes a run's config once and its scalars to JSONL and TensorBoard.

    Args:
        run_dir: The run directory (created).
        config: The resolved configuration (a plain mapping) written to ``config.yaml``; None leaves an
            existing one alone (e.g. a resumed run).
        tensorboard: Also write TensorBoard event files under ``tb/``.
        append: Append to an existing ``metrics.jsonl`` (resume) instead of starting it anew.
        keep_until: With `append`, first drop the records of steps after this one (those a resumed run
            is about to redo), from the JSONL and from TensorBoard.
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: Mapping[str, Any] | None = None,
        tensorboard: bool = True,
        append: bool = False,
        keep_until: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if config is not None:
            write_config(self.run_dir / "config.yaml", config)
        path = self.run_dir / "metrics.jsonl"
        if append and keep_until is not None and path.is_file():
            kept = [line for line in path.read_text().splitlines(keepends=True) if _step(line) <= keep_until]
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(kept))
            tmp.replace(path)
        self._jsonl = open(path, "a" if append else "w")  # noqa: SIM115
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = keep_until + 1 if append and keep_until is not None else None
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)

    def log(self, step: int, record: Mapping[str, Any]) -> None:
        """Appends ``{"step": step, **record}`` to the JSONL and every finite number to TensorBoard."""
        self._jsonl.write(json.dumps({"step": int(step), **record}, default=_plain) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _step(line: str) -> float:
    """The ``step`` of one JSONL record (a torn or unreadable line counts as after every step)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Writes `config` as YAML (through OmegaConf, so it reads back with Hydra's tools)."""
    from omegaconf import OmegaConf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(json.loads(json.dumps(config, default=_plain)))))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``{run_dir}/metrics.jsonl``, in order."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _plain(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)
