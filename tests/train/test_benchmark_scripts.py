"""Smoke test of the trainer benchmark script: it runs end to end on a tiny budget and prints its tables."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "trainer_throughput.py"


def test_trainer_throughput_prints_its_table(redis_required, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("trainer_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # One actor count and tiny groups and episodes: the budget goes to process start-up, not to rollouts.
    module.main(
        ["--updates", "3", "--ppo-steps", "512", "--train-scenes", "8", "--actors", "1"]
        + ["--groups", "2", "--group-size", "2", "--horizon", "30", "--val-scenes", "2"]
        + ["--sizes", "0.1", "--repeats", "2", "--out", str(tmp_path), "--json", str(tmp_path / "out.json")]
    )
    out = capsys.readouterr().out
    for expected in ("| GRPO async, 1 actor", "| SB3 PPO", "(policy)", "| actors | groups |", "Targets"):
        assert expected in out
    numbers = json.loads((tmp_path / "out.json").read_text())
    assert numbers["grpo"][0]["env_steps_per_s"] > 0 and numbers["ppo"]["env_steps_per_s"] > 0
    assert numbers["grpo"][0]["lag"]["groups"] >= 3 * 2
