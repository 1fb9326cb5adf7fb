"""Leaderboard statistics and writers, and policy SPEC resolution."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alpagym_env.config import EnvConfig
from alpagym_env.evaluation import leaderboard as L
from alpagym_env.evaluation import policy_spec as P
from alpagym_env.evaluation.runner import EpisodeResult, EpisodeSpec
from alpagym_env.policies import ConstantVelocityPolicy, ExpertPolicy, RandomPolicy, RulePolicy


def test_t_quantiles_and_mean_ci():
    assert L.t_quantile_975(1) == 12.706 and L.t_quantile_975(30) == 2.042
    assert L.t_quantile_975(200) == pytest.approx(1.972, abs=1e-3)
    mean, half, n = L.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert (mean, n) == (2.5, 4) and half == pytest.approx(3.182 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert L.mean_ci([0.7, math.nan]) == (0.7, pytest.approx(math.nan, nan_ok=True), 1)
    m, h, n = L.mean_ci([math.nan])
    assert math.isnan(m) and n == 0


def result(family, score, km=0.1, incidents=0.0, scene=0, **extra):
    metrics = {"scene_score": score, "km": km, "incidents": incidents, "incidents_at_fault": 0.0, **extra}
    return EpisodeResult(EpisodeSpec(scene, 0, 7), f"{family}-{scene}", family, metrics, np.zeros((0, 2)))


def test_summarize_groups_by_family_then_all_and_counts_km_per_incident():
    res = {
        "p": [
            result("b", 1.0),
            result("a", 0.0, km=0.2, incidents=1.0),
            result("a", 0.5, min_ade_1s=math.nan),
        ]
    }
    rows = L.summarize(res)
    assert [(r.family, r.episodes) for r in rows] == [("a", 2), ("b", 1), ("all", 3)]
    assert rows[0].metrics["scene_score"][0] == 0.25 and rows[1].km_per_incident == math.inf
    assert rows[2].km_per_incident == pytest.approx(0.4) and "km" not in rows[2].metrics
    assert math.isnan(rows[2].metrics["min_ade_1s"][0])
    md = L.to_markdown(rows, ("scene_score", "min_ade_1s"))
    assert "| p | all | 3 | 0.500 ± " in md and "| n/a |" in md and "| inf | inf |" in md


def test_writers_are_deterministic(tmp_path):
    res = {"p": [result("a", 0.25), result("a", 0.75, incidents=1.0)]}
    for name in ("one", "two"):
        rows = L.summarize(res)
        L.write_csv(rows, tmp_path / f"{name}.csv")
        L.write_json(rows, tmp_path / f"{name}.json", {"seed": 0})
        L.write_episodes_csv(res, tmp_path / f"{name}-ep.csv")
    for suffix in (".csv", ".json", "-ep.csv"):
        assert (tmp_path / f"one{suffix}").read_bytes() == (tmp_path / f"two{suffix}").read_bytes()
    data = json.loads((tmp_path / "one.json").read_text())
    assert data["rows"][-1]["metrics"]["scene_score"]["mean"] == 0.5
    assert data["rows"][0]["km_per_incident"] == 0.2


def test_builtin_policy_specs():
    cfg = EnvConfig()
    assert isinstance(P.load_policy("expert", cfg), ExpertPolicy)
    assert isinstance(P.load_policy("idm", cfg), RulePolicy)
    assert isinstance(P.load_policy("constant_velocity", cfg), ConstantVelocityPolicy)
    assert isinstance(P.load_policy("random", cfg, seed=3), RandomPolicy)


def zero_policy(obs):
    return np.zeros((len(obs), 2), dtype=np.float32)


class Holder:
    policy = staticmethod(zero_policy)


def test_module_callable_and_registered_loaders(tmp_path):
    cfg = EnvConfig()
    assert P.load_policy(f"{__name__}:zero_policy", cfg) is zero_policy
    assert P.load_policy(f"{__name__}:Holder.policy", cfg) is zero_policy
    ckpt = tmp_path / "model.fakeckpt"
    ckpt.write_text("weights")
    with pytest.raises(ValueError, match="no policy loader accepts"):
        P.load_policy(str(ckpt), cfg)
    P.register_policy_loader(".fakeckpt", lambda spec, config: ("loaded", spec))
    try:
        assert P.load_policy(str(ckpt), cfg) == ("loaded", str(ckpt))
        with pytest.raises(ValueError, match="already registered"):
            P.register_policy_loader(".fakeckpt", lambda spec, config: None)
    finally:
        P.unregister_policy_loader(".fakeckpt")


@pytest.mark.parametrize(
    "spec, match",
    [("teleport", "unknown policy 'teleport'"), ("no_such_module_xyz:f", "cannot import"),
     (f"{__name__}:missing", "has no attribute")],
)  # fmt: skip
def test_bad_policy_specs_raise_clear_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        P.load_policy(spec, EnvConfig())


def test_random_policy_depends_on_the_episode_seed_only():
    a, b = RandomPolicy(0), RandomPolicy(1)
    a.reset([0, 1], [11, 12])
    b.reset([3, 0], [12, 11])
    obs = np.zeros((4, 5), dtype=np.float32)
    xa, xb = a(obs), b(obs)
    np.testing.assert_array_equal(xa[0], xb[0])
    np.testing.assert_array_equal(xa[1], xb[3])
    assert np.all(np.abs(xa) <= 1.0)
