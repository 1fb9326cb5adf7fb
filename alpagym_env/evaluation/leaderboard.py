"""Leaderboard tables: mean and 95 % confidence interval of every metric per policy and family.

A row is one (policy, family) pair, plus an ``all`` row per policy over every episode. Each metric gets
the mean over episodes and the half-width of the 95 % Student-t confidence interval of that mean (nan
metrics, e.g. minADE of a policy without plans, are left out of both; a metric with no value is nan).
Kilometres per incident are AlpaSim's ratio of sums (`alpagym_env.metrics.km_per_incident`), without
an interval. ``scene_score`` is AlpaSim's (kept for parity: it ignores traffic lights);
``scene_score_strict`` is also 0 after a red-light violation. Output is deterministic: the same
results give byte-identical Markdown, CSV and JSON.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from alpagym_env.evaluation.runner import EpisodeResult
from alpagym_env.metrics import km_per_incident

ALL = "all"
MAIN_COLUMNS = (
    "scene_score",
    "scene_score_strict",
    "epdms",
    "collision_at_fault",
    "offroad",
    "ran_red_light",
    "progress",
    "ttc",
    "hc",
    "dist_to_gt_trajectory",
    "min_ade_1s",
)
# Bookkeeping fields that are not metrics of the policy.
HIDDEN = ("steps", "cut_step", "log_length_m", "km", "incidents", "incidents_at_fault")
# Two-sided 95 % Student-t quantiles for 1..30 degrees of freedom; beyond, a series in 1 / dof.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)  # fmt: skip


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with `dof` degrees of freedom (nan for dof < 1)."""
    if dof < 1:
        return float("nan")
    if dof <= len(_T975):
        return _T975[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


def mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, 95 % CI half-width, count) of the finite values; the half-width is nan below 2 values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), 0
    if x.size == 1:
        return float(x[0]), float("nan"), 1
    half = t_quantile_975(x.size - 1) * float(np.std(x, ddof=1)) / math.sqrt(x.size)
    return float(np.mean(x)), half, int(x.size)


@dataclass(frozen=True)
class Row:
    """One leaderboard row: `metrics[name] = (mean, ci_half_width)`."""

    policy: str
    family: str
    episodes: int
    metrics: dict[str, tuple[float, float]]
    km_per_incident: float
    km_per_incident_at_fault: float


def metric_names(results: Sequence[EpisodeResult]) -> list[str]:
    """Metric names in first-seen order, bookkeeping fields left out."""
    names: dict[str, None] = {}
    for r in results:
        for k in r.metrics:
            if k not in HIDDEN:
                names.setdefault(k, None)
    return list(names)


def summarize(results: Mapping[str, Sequence[EpisodeResult]]) -> list[Row]:
    """Rows per policy (in the mapping's order): one per family (sorted), then ``all``."""
    rows = []
    for policy, res in results.items():
        names = metric_names(res)
        families = sorted({r.family for r in res})
        for family in [*families, ALL]:
            group = [r for r in res if family in (ALL, r.family)]
            stats = {k: mean_ci([r.metrics.get(k, math.nan) for r in group])[:2] for k in names}
            km = np.array([r.metrics["km"] for r in group])
            rows.append(
                Row(
                    policy,
                    family,
                    len(group),
                    stats,
                    km_per_incident(km, np.array([r.metrics["incidents"] for r in group])),
                    km_per_incident(km, np.array([r.metrics["incidents_at_fault"] for r in group])),
                )
            )
    return rows


def _fmt(v: float, digits: int = 3) -> str:
    if math.isnan(v):
        return "n/a"
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def to_markdown(rows: Sequence[Row], columns: Sequence[str] = MAIN_COLUMNS) -> str:
    """A Markdown table: ``mean ± ci`` of `columns` per row, and km per incident (any, at fault)."""
    head = ["policy", "family", "n", *columns, "km/incident", "km/at-fault"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.policy, r.family, str(r.episodes)]
        for c in columns:
            mean, ci = r.metrics.get(c, (math.nan, math.nan))
            cells.append(_fmt(mean) + ("" if math.isnan(ci) or math.isnan(mean) else f" ± {ci:.3f}"))
        cells += [_fmt(r.km_per_incident, 2), _fmt(r.km_per_incident_at_fault, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _num(v: float) -> float | str | None:
    """JSON-safe number: nan -> null, +-inf -> "inf"/"-inf"."""
    if math.isnan(v):
        return None
    return ("inf" if v > 0 else "-inf") if math.isinf(v) else round(v, 6)


def write_csv(rows: Sequence[Row], path) -> None:
    """One line per row: policy, family, episodes, then ``<metric>_mean`` and ``<metric>_ci95``."""
    names = list(dict.fromkeys(k for r in rows for k in r.metrics))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["policy", "family", "episodes", *[f"{k}_{s}" for k in names for s in ("mean", "ci95")]]
            + ["km_per_incident", "km_per_incident_at_fault"]
        )
        for r in rows:
            vals = [x for k in names for x in r.metrics.get(k, (math.nan, math.nan))]
            w.writerow(
                [r.policy, r.family, r.episodes, *[f"{v:.6g}" for v in vals]]
                + [f"{r.km_per_incident:.6g}", f"{r.km_per_incident_at_fault:.6g}"]
            )


def write_json(rows: Sequence[Row], path, meta: Mapping[str, object]) -> None:
    """``{"meta": ..., "rows": [{policy, family, episodes, metrics: {name: {mean, ci95}}, ...}]}``."""
    out = {
        "meta": dict(meta),
        "rows": [
            {
                "policy": r.policy,
                "family": r.family,
                "episodes": r.episodes,
                "metrics": {k: {"mean": _num(m), "ci95": _num(c)} for k, (m, c) in r.metrics.items()},
                "km_per_incident": _num(r.km_per_incident),
                "km_per_incident_at_fault": _num(r.km_per_incident_at_fault),
            }
            for r in rows
        ],
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=False)
        f.write("\n")


def write_episodes_csv(results: Mapping[str, Sequence[EpisodeResult]], path) -> None:
    """Every episode's metrics: policy, scenario id, family, repeat, seed, then each metric."""
    names = list(dict.fromkeys(k for res in results.values() for r in res for k in r.metrics))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "scenario_id", "family", "repeat", "seed", *names])
        for policy, res in results.items():
            for r in res:
                vals = [f"{r.metrics.get(k, math.nan):.6g}" for k in names]
                w.writerow([policy, r.scenario_id, r.family, r.spec.repeat, r.spec.seed, *vals])
