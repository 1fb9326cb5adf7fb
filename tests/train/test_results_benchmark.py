"""Smoke test of `benchmarks/results.py` (`make results`) on tiny budgets: every method, every file."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")
iio = pytest.importorskip("imageio.v3")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SECONDS = 3.0  # --minutes 0.05


def _load_script(monkeypatch):
    """`benchmarks/results.py` as a module (registered, as its dataclasses need, until the test ends),
    with its `results_*` helpers importable as when it runs as a script."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for name in ("results_train", "results_report", "results_gifs"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location("results_benchmark", BENCHMARKS / "results.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_results_at_equal_wall_clock_writes_every_table_curve_and_gif(tmp_path, monkeypatch, redis_required):
    results = _load_script(monkeypatch)
    out = tmp_path / "results"
    argv = ["--minutes", str(SECONDS / 60), "--train-scenes", "8", "--val-scenes", "4"]
    argv += ["--test-episodes", "8", "--horizon", "40", "--topology", "single", "--eval-every", "1"]
    argv += ["--references", "idm", "expert", "--no-progress", "--out", str(out)]
    summary = results.main(argv)

    methods = results.default_methods()  # BC + PPO needs the trainer's algorithm=ppo preset
    assert set(methods) >= {"bc", "grpo", "grpo_traj", "sb3_ppo", "sb3_sac"}
    labels = results.LABELS
    trained = [labels[m] for m in ("bc", "bc_traj", *methods[1:])]
    policies = [*trained, "idm", "expert"]
    files = ["results.md", "results.csv", "readme_table.md", "summary.json"]
    for name in [*files, "learning_curves.png", "learning_curves_seconds.png"]:
        assert (out / name).stat().st_size > 0, name
    text = (out / "results.md").read_text()
    main_table, rest = text.split("\n\n- Seeds 0; budget per RL run: 0.05 min;", 1)
    for policy in policies:
        assert f"| {policy} | all | 8 |" in main_table, policy
    assert "train time | env steps |" in main_table

    # The equal-env-step table: every RL method at the fewest env steps any RL run took.
    rl = [m for m in methods if m != "bc"]
    runs = {r["method"]: r for r in summary["runs"]}
    common = min(runs[m]["env_steps"] for m in rl)
    equal = rest.split("## Equal env steps (validation scenes)\n\n", 1)[1].split("\n\n")[0]
    assert f"val scene score at {common:,} env steps" in equal
    for m in rl:
        assert f"| {labels[m]} | " in equal, m
        curve = runs[m]["curve"]
        assert len(curve) >= 2 and curve[0][0] == 0  # the untrained start, then the trained points
    assert [r["policy"] for r in summary["equal_env_steps"]["rows"]] == [labels[m] for m in rl]
    assert all(r["at_env_steps"] <= common for r in summary["equal_env_steps"]["rows"])

    # The per-family table: each policy on each family of the test episodes.
    families = rest.split("## Per scene family (test scenes)\n\n", 1)[1].split("\n\n")[0]
    test_families = {line.split(" | ")[1] for line in families.splitlines()[2:]}
    assert len(test_families) >= 2
    for policy in policies:
        for family in test_families:
            assert f"| {policy} | {family} |" in families, (policy, family)

    # Equal wall-clock: each RL run stopped at its first update / env step past the budget.
    for m in rl:
        assert SECONDS <= runs[m]["seconds"] < SECONDS + 30, m
    records = [json.loads(x) for x in (out / "grpo_seed0" / "metrics.jsonl").read_text().splitlines()]
    timed = [r["seconds"] for r in records if "seconds" in r]
    assert timed[-1] >= SECONDS and all(s < SECONDS for s in timed[:-1])
    assert runs["grpo"]["env_steps"] > 0 and runs["sb3_sac"]["env_steps"] > 0

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["policy"] for r in rows] == policies
    columns = ["scene_score_mean", "scene_score_ci95", "collision_at_fault_mean", "offroad_mean"]
    columns += ["progress_mean", "comfort_mean", "km_per_incident", "train_seconds", "env_steps"]
    assert set(columns) <= set(rows[0]), sorted(set(columns) - set(rows[0]))
    readme = (out / "readme_table.md").read_text()
    assert all(f"| {policy} | " in readme for policy in policies)

    # GIFs: BC and BC + GRPO side by side, one frame per step of the longer episode.
    gifs = sorted(out.glob("bc_vs_grpo_*.gif"))
    assert gifs and gifs[0].name.startswith("bc_vs_grpo_gained_most_")
    frames = iio.imread(gifs[0], index=None)
    assert frames.shape[2] == 2 * 256 + 4 and 2 <= frames.shape[0] <= 41
    assert all(f"]({g.name})" in text for g in gifs)

    written = json.loads((out / "summary.json").read_text())
    assert written["command"].startswith("python benchmarks/results.py --minutes 0.05")
    assert written["budget"]["minutes"] == 0.05 and written["machine"]["usable_cpus"] >= 1
    assert {r["method"] for r in written["runs"]} == {"bc", "bc_traj", *rl}

    # The docs from the run: results.md with its figures beside it, links pointing at them.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "results_stale.png").write_bytes(b"old")
    results.main(["--docs-from", str(out), "--docs-dir", str(docs)])
    page = (docs / "results.md").read_text()
    assert "](results_learning_curves.png)" in page and "](results_learning_curves_seconds.png)" in page
    assert f"](results_{gifs[0].name})" in page and (docs / f"results_{gifs[0].name}").is_file()
    assert not (docs / "results_stale.png").exists()


def test_bad_budgets_and_missing_runs_are_reported(tmp_path, monkeypatch, capsys):
    results = _load_script(monkeypatch)
    with pytest.raises(SystemExit):
        results.parse_args(["--minutes", "0"])
    assert "--minutes > 0" in capsys.readouterr().err
    args = results.parse_args(["--env-steps", "1000"])
    assert args.minutes is None and args.env_steps == 1000
    assert results.parse_args([]).minutes == results.DEFAULT_MINUTES
    if not results.algorithm_available("ppo"):
        with pytest.raises(SystemExit):
            results.parse_args(["--methods", "ppo_bc"])
        assert "algorithm=ppo" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such file; run benchmarks/results.py"):
        results.main(["--docs-from", str(tmp_path / "nothing"), "--docs-dir", str(tmp_path / "docs")])


def test_equal_steps_reads_each_curve_at_the_fewest_env_steps_any_run_took(monkeypatch):
    results = _load_script(monkeypatch)
    from results_report import equal_steps
    from results_train import Run

    runs = [
        Run("bc", 0, "bc.safetensors", 1.0, 0),
        Run("grpo", 0, "a", 9.0, 3000, [(0, 0.0, 0.4), (1000, 3.0, 0.5), (2500, 7.0, 0.7), (3000, 9.0, 0.8)]),
        Run("grpo", 1, "b", 9.0, 2800, [(0, 0.0, 0.2), (2000, 6.0, 0.3), (2800, 9.0, 0.9)]),
        Run("sb3_sac", 0, "c", 9.0, 2600, [(0, 0.0, 0.1), (1300, 4.5, 0.2), (2600, 9.0, 0.6)]),
    ]
    common, table = equal_steps(runs)
    assert common == 2600
    by_policy = {r["policy"]: r for r in table}
    grpo, sac = by_policy[results.LABELS["grpo"]], by_policy[results.LABELS["sb3_sac"]]
    assert grpo["at_env_steps"] == (2500 + 2000) / 2 and grpo["val_scene_score"] == pytest.approx(0.5)
    assert grpo["final_val_scene_score"] == pytest.approx(0.85) and grpo["final_env_steps"] == 2900
    assert sac["at_env_steps"] == 2600 and sac["val_scene_score"] == pytest.approx(0.6)
    assert list(by_policy) == [results.LABELS["grpo"], results.LABELS["sb3_sac"]]  # no BC row


def test_gif_scenes_are_the_largest_gain_the_largest_loss_and_the_worst(monkeypatch):
    import numpy as np

    from alpagym_env.evaluation import EpisodeResult, EpisodeSpec

    _load_script(monkeypatch)
    from results_gifs import pick_scenes, side_by_side

    def episodes(scores):
        return [
            EpisodeResult(EpisodeSpec(i, 0, 0), f"s{i}", "f", {"scene_score": s}, np.zeros((0, 2)))
            for i, s in enumerate(scores)
        ]

    bc, grpo = episodes([0.1, 0.9, 0.5, 0.3]), episodes([0.8, 0.2, 0.6, 0.1])
    picked = [(label, a.scenario_id, b.scenario_id) for label, a, b in pick_scenes(bc, grpo)]
    assert picked == [("gained_most", "s0", "s0"), ("lost_most", "s1", "s1"), ("grpo_worst", "s3", "s3")]
    # The worst is also the largest loss: shown once.
    bc, grpo = episodes([0.9, 0.5]), episodes([0.1, 0.6])
    assert [p[0] for p in pick_scenes(bc, grpo)] == ["gained_most", "lost_most"]

    short, long = [np.zeros((4, 5, 3), np.uint8)] * 2, [np.full((4, 5, 3), 9, np.uint8)] * 3
    frames = side_by_side(short, long)
    assert len(frames) == 3 and frames[2].shape == (4, 5 + 4 + 5, 3)
    assert frames[2][:, :5].max() == 0 and frames[2][:, -5:].min() == 9  # BC holds its last frame
