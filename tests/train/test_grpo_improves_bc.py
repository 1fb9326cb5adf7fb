"""Proof on a small budget: closed-loop GRPO lifts a behaviour-cloned policy on held-out scenes.

BC on 120 training scenes (open loop, standardised observation), then 80 synchronous GRPO updates of
8 groups x 8 rollouts at exploration log-std -3 with the `scene_score` reward (the trainers'
defaults otherwise). Seeds are fixed, so the run is reproducible; it must lift the validation score by
0.15 and the score on 80 held-out test scenes by 0.03. `benchmarks/grpo_learning.py` runs the larger
version.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from alpagym_env.scenarios import load_suite  # noqa: E402
from alpagym_train.bc import BCConfig, train_bc  # noqa: E402
from alpagym_train.policy import load  # noqa: E402
from alpagym_train.sync import SyncConfig, evaluate_policy, train_sync  # noqa: E402


def test_grpo_raises_the_scene_score_of_bc_on_held_out_scenes(tmp_path):
    torch.set_num_threads(1)
    bc_dir = str(tmp_path / "bc")
    train_bc(BCConfig(train_scenes=120, val_scenes=40, epochs=15, out_dir=bc_dir, progress=False))
    init = str(tmp_path / "bc" / "policy.safetensors")
    cfg = SyncConfig(
        init=init,
        train_scenes=120,
        val_scenes=40,
        updates=80,
        groups=8,
        eval_every=10,
        log_std=-3.0,
        out_dir="",
        progress=False,
    )
    policy, history = train_sync(cfg)
    curve = [r["val/scene_score"] for r in history if "val/scene_score" in r]
    assert max(curve) >= curve[0] + 0.15, curve
    test = load_suite("test")[:80]
    bc_score = evaluate_policy(load(init)[0], test, {})["scene_score"]
    grpo_score = evaluate_policy(policy, test, {})["scene_score"]
    assert grpo_score >= bc_score + 0.03, (bc_score, grpo_score)
