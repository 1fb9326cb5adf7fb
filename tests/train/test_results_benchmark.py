"""Smoke test of `benchmarks/results.py` (`make results`) on a tiny budget: every method, every file."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "results.py"


def _load_script(monkeypatch):
    """`benchmarks/results.py` as a module (registered, as its dataclass needs, until the test ends)."""
    spec = importlib.util.spec_from_file_location("results_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_results_writes_a_row_per_method_and_the_columns(tmp_path, monkeypatch, redis_required):
    results = _load_script(monkeypatch)
    out = tmp_path / "results"
    argv = ["--env-steps", "2000", "--train-scenes", "8", "--val-scenes", "4", "--test-episodes", "8"]
    argv += [
        "--horizon",
        "40",
        "--references",
        "idm",
        "expert",
        "--no-progress",
        "--out",
        str(out),
    ]
    summary = results.main(argv)

    for name in ("results.md", "results.csv", "learning_curves.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    policies = [*results.LABELS.values(), "idm", "expert"]
    table = (out / "results.md").read_text()
    for policy in policies:
        assert f"| {policy} | all | 8 |" in table, policy

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["policy"] for r in rows] == policies
    columns = ["scene_score_mean", "scene_score_ci95", "collision_at_fault_mean", "offroad_mean"]
    columns += ["progress_mean", "comfort_mean", "km_per_incident", "train_seconds", "env_steps"]
    assert set(columns) <= set(rows[0]), sorted(set(columns) - set(rows[0]))
    by_policy = {r["policy"]: r for r in rows}
    grpo_steps = float(by_policy[results.LABELS["grpo"]]["env_steps"])
    assert grpo_steps >= 2000 and float(by_policy[results.LABELS["bc"]]["env_steps"]) == 0  # the budget
    grpo_run = next(r for r in summary["runs"] if r["method"] == "grpo")
    assert grpo_steps - 8 * 8 * 40 < 2000  # it stopped after the update that reached the budget
    assert grpo_run["info"]["updates"] >= 1
    # SB3 gets GRPO's env steps (PPO rounds up to whole rollouts of 8 envs x 256 steps, SAC to whole
    # collections of 8 envs x train_freq 2 steps).
    assert grpo_steps <= float(by_policy[results.LABELS["ppo"]]["env_steps"]) < grpo_steps + 2048
    assert grpo_steps <= float(by_policy[results.LABELS["sac"]]["env_steps"]) < grpo_steps + 16

    written = json.loads((out / "summary.json").read_text())
    assert written["command"].startswith("python benchmarks/results.py --env-steps 2000")
    assert written["budget"]["env_steps"] == summary["budget"]["env_steps"] == 2000
    assert {r["method"] for r in written["runs"]} == set(results.METHODS)
