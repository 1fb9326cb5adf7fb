"""Tables and figures of `benchmarks/results.py` from its runs and their test episodes.

- `markdown`: the leaderboard at the equal wall-clock budget, with each method's training seconds and
  env steps; `family_markdown`: scene score, at-fault collisions and off-road per scene family.
- `equal_steps`: each RL method's validation score at the smallest env-step count every RL run
  reached, read off its validation curve (the last validation at or before that count).
- `plot_curves`: validation scene score against env steps and against training seconds, with BC's and
  the rule-based planner's validation scores as horizontal lines.
- `write_docs`: ``docs/results.md`` and its figures from one run directory.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from results_train import LABELS, RL_METHODS, Run

from alpagym_env.evaluation.leaderboard import ALL, Row, to_markdown, write_csv

# Leaderboard columns of the table; ``comfort`` is the fraction of steps passing AlpaSim's six checks.
COLUMNS = ("scene_score", "collision_at_fault", "offroad", "progress", "comfort")
FAMILY_COLUMNS = ("scene_score", "collision_at_fault", "offroad")
CURVE_FILES = {"env_steps": "learning_curves.png", "seconds": "learning_curves_seconds.png"}
DOC_PREFIX = "results_"  # the run's figures in docs/ are ``results_{name}``


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


def readme_markdown(rows: Sequence[Row], extra: dict[str, dict]) -> str:
    """The README's headline table: scene score with its CI, the main rates, training time, env steps."""
    out = [
        "| policy | scene score (95 % CI) | at-fault collision | off-road | progress | train time "
        "| env steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m, e = row.metrics, extra[row.policy]
        timed = not math.isnan(e["train_seconds"])
        seconds = f"{e['train_seconds']:.0f} s" if timed else "–"
        steps = f"{e['env_steps']:,.0f}" if timed else "–"
        out.append(
            f"| {row.policy} | {m['scene_score'][0]:.3f} ± {m['scene_score'][1]:.3f} "
            f"| {m['collision_at_fault'][0]:.3f} | {m['offroad'][0]:.3f} | {m['progress'][0]:.3f} "
            f"| {seconds} | {steps} |"
        )
    return "\n".join(out) + "\n"


def family_markdown(family_rows: Sequence[Row]) -> str:
    """Scene score, at-fault collisions and off-road of every policy per scene family (family-major)."""
    ordered = sorted(family_rows, key=lambda r: r.family)
    return to_markdown(ordered, FAMILY_COLUMNS)


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


def score_at(curve: Sequence[tuple[int, float, float]], steps: float) -> tuple[int, float]:
    """``(env steps, val score)`` of the last validation at or before `steps` env steps of a curve."""
    done = [p for p in curve if p[0] <= steps]
    return (done[-1][0], done[-1][2]) if done else (0, math.nan)


def equal_steps(runs: Sequence[Run]) -> tuple[int, list[dict]]:
    """Every RL method's validation score at the smallest env-step count all RL runs reached.

    Returns:
        That count and one row per method: its label, the mean (over seeds) env steps of the validation
        it is read at, that validation's mean scene score, and the method's final env steps.
    """
    rl = [r for r in runs if r.method in RL_METHODS and r.curve]
    if not rl:
        return 0, []
    common = min(r.env_steps for r in rl)
    out = []
    for method in RL_METHODS:
        own = [r for r in rl if r.method == method]
        if own:
            at = [score_at(r.curve, common) for r in own]
            out.append(
                {
                    "policy": LABELS[method],
                    "at_env_steps": float(np.mean([a[0] for a in at])),
                    "val_scene_score": float(np.mean([a[1] for a in at])),
                    "final_env_steps": float(np.mean([r.env_steps for r in own])),
                    "final_val_scene_score": float(np.mean([r.curve[-1][2] for r in own])),
                }
            )
    return common, out


def equal_steps_markdown(common: int, table: Sequence[dict], val: dict[str, float]) -> str:
    """The `equal_steps` rows as Markdown, with the untrained baselines' val scores below them."""
    out = [
        f"| policy | val scene score at {common:,} env steps | read at env steps "
        "| val scene score at its own budget | its env steps |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        out.append(
            f"| {r['policy']} | {r['val_scene_score']:.3f} | {r['at_env_steps']:,.0f} "
            f"| {r['final_val_scene_score']:.3f} | {r['final_env_steps']:,.0f} |"
        )
    out += [f"| {name} | {score:.3f} | 0 | {score:.3f} | 0 |" for name, score in val.items()]
    return "\n".join(out) + "\n"


def plot_curves(runs: Sequence[Run], val: dict[str, float], out: Path) -> list[Path]:
    """Validation scene score of every RL run (one line per seed) against env steps and against training
    seconds (`CURVE_FILES`), the `val` scores of the untrained policies (BC, idm) as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    xlabels = {"env_steps": "closed-loop env steps", "seconds": "training wall-clock seconds"}
    paths = []
    for axis, name in CURVE_FILES.items():
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
        for i, method in enumerate(RL_METHODS):
            for j, run in enumerate(r for r in runs if r.method == method and r.curve):
                steps, seconds, score = zip(*run.curve, strict=True)
                x = steps if axis == "env_steps" else seconds
                ax.plot(x, score, "o-", color=f"C{i}", ms=3, label=LABELS[method] if j == 0 else None)
        for k, (policy, score) in enumerate(val.items()):
            ax.axhline(score, color="gray", ls=("--", ":", "-.")[k % 3], label=f"{policy} (no training)")
        if axis == "env_steps":
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        ax.set_xlabel(xlabels[axis])
        ax.set_ylabel("mean val scene score")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)
        paths.append(out / name)
    return paths


def family_rows(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """`summarize`'s rows split into the ``all`` rows and the per-family rows."""
    return [r for r in rows if r.family == ALL], [r for r in rows if r.family != ALL]


def write_docs(run_dir: Path, docs: Path) -> Path:
    """Writes ``{docs}/results.md`` from a run directory's ``results.md``, copying its figures (PNG, GIF)
    to ``{docs}/results_{name}`` and pointing the links there; stale ``results_*`` figures are removed.

    Raises:
        FileNotFoundError: `run_dir` holds no ``results.md`` (not a finished `results.py` run).
    """
    source = run_dir / "results.md"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file; run benchmarks/results.py --out {run_dir} first")
    text = source.read_text()
    docs.mkdir(parents=True, exist_ok=True)
    figures = sorted(p for p in run_dir.iterdir() if p.suffix in (".png", ".gif"))
    for old in docs.glob(f"{DOC_PREFIX}*"):
        if old.suffix in (".png", ".gif") and old.name not in {DOC_PREFIX + p.name for p in figures}:
            old.unlink()
    for fig in figures:
        shutil.copyfile(fig, docs / (DOC_PREFIX + fig.name))
        text = re.sub(rf"\]\({re.escape(fig.name)}\)", f"]({DOC_PREFIX}{fig.name})", text)
    path = docs / "results.md"
    path.write_text(text)
    return path
