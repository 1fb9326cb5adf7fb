"""Smoke test of the trainer benchmark script: it runs end to end on a tiny budget and prints its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "trainer_throughput.py"


def test_trainer_throughput_prints_its_table(redis_required, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its `env_step` import, as when it runs as a script
    spec = importlib.util.spec_from_file_location("trainer_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # One actor count and tiny groups and episodes: the budget goes to process start-up, not to rollouts.
    module.main(
        ["--updates", "3", "--ppo-steps", "512", "--train-scenes", "8", "--actors", "1"]
        + ["--groups", "2", "--group-size", "2", "--horizon", "30", "--val-scenes", "2"]
        + ["--sizes", "0.1", "--repeats", "2", "--raw-seconds", "0.2", "--cost-seconds", "0.3"]
        + ["--set", "algorithm.step_fraction=0.5"]
        + ["--out", str(tmp_path), "--json", str(tmp_path / "out.json")]
    )
    out = capsys.readouterr().out
    for expected in ("| GRPO async, 1 actor", "| SB3 PPO", "(policy)", "| actors | groups |", "Targets"):
        assert expected in out
    assert "| raw engine BatchedSim.step" in out and "of the raw engine's env-steps/s" in out
    numbers = json.loads((tmp_path / "out.json").read_text())
    assert numbers["grpo"][0]["env_steps_per_s"] > 0 and numbers["ppo"]["env_steps_per_s"] > 0
    assert numbers["grpo"][0]["lag"]["groups"] >= 3 * 2
    assert len(numbers["raw_engine"]["rates"]) == 2 and min(numbers["raw_engine"]["rates"]) > 0
    assert "algorithm.step_fraction=0.5" in numbers["grpo"][0]["overrides"]
    cost = numbers["cost_us_per_env_step"]  # the split adds up, and names the ceiling it puts on the trainer
    assert min(cost["engine"], cost["sample"], cost["update"]) > 0
    parts = cost["engine"] + cost["sample"] + cost["actor_rest"] + cost["update"]
    assert abs(parts - cost["total"]) < 1e-6 * cost["total"]
    assert "CPU cost per env-step" in out and "ceiling on" in out
    # The floor: 0.5 of the steps trained, 2 epochs: a forward pass, then 3 of them per epoch on half.
    forward = 2 * (177 * 256 + 256 * 256 + 256 * 2)
    assert cost["policy_mflop"] == pytest.approx(forward * (1 + 3 * 2 * 0.5) / 1e6)
    assert cost["matmul_gflops"] > 0 and "before any overhead" in out


def test_weight_sync_row_states_the_target_and_ratio(capsys):
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("trainer_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = SimpleNamespace(train_scenes=8, horizon=30, groups=2, group_size=2, updates=3, repeats=2)
    ppo = {"env_steps": 512, "steady": True, "env_steps_per_s": 1.0, "updates_per_s": 1.0,
           "whole_run_env_steps_per_s": 1.0, "train_seconds": 1.0}  # fmt: skip
    sync = [{"mb": 1.0, "publish_ms": 0.5, "fetch_ms": 1.0, "total_ms": 1.5}]
    targets = module.report(args, [], ppo, sync, policy_mb=0.45)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("|             1 MB"))
    assert row.endswith("| <= 2 ms: 1.50 ms, 0.75x the target")
    assert targets == ["PASS  1 MB weight sync <= 2 ms: 1.50 ms, 0.75x the target"]
