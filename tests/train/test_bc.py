"""Behaviour cloning: trains, early-stops, writes a loadable checkpoint; the CLI's config is strict."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from alpagym_train.bc import BCConfig, train_bc  # noqa: E402
from alpagym_train.inference import NumpyPolicy  # noqa: E402


def test_bc_on_the_smoke_suite_writes_a_checkpoint_and_metrics(tmp_path):
    cfg = BCConfig(suite="smoke", val_suite="smoke", epochs=6, patience=2, hidden=[32], out_dir=str(tmp_path))
    cfg.progress = False
    policy, summary = train_bc(cfg)
    losses = [h["val_loss"] for h in summary["history"]]
    assert summary["best_val_loss"] == min(losses) < losses[0]
    meta = json.loads((tmp_path / "policy.json").read_text())
    assert meta["action_type"] == "control" and meta["trained_by"] == "alpagym_train.bc"
    obs = np.zeros((3, meta["obs_dim"]), np.float32)
    numpy_policy = NumpyPolicy.load(tmp_path / "policy.safetensors")
    np.testing.assert_allclose(numpy_policy(obs), policy.act(obs), atol=1e-5)
    assert json.loads((tmp_path / "bc_metrics.json").read_text())["train_samples"] > 0


def test_the_cli_rejects_unknown_and_ill_typed_keys(tmp_path):
    cases = (("epochz=3", "Key 'epochz' not in 'BCConfig'"), ("epochs=abc", "could not be converted"))
    for bad, says in cases:
        cmd = [sys.executable, "-m", "alpagym_train.bc", bad, f"out_dir={tmp_path}"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode != 0 and says in out.stderr + out.stdout
