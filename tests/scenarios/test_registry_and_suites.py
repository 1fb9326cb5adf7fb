"""The family registry and the named, cached suites."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from alpagym_env.scenarios import FAMILIES, SUITES, build_suite, generate, load_suite, register_family
from alpagym_env.scenarios import suites as suites_mod
from alpagym_env.scenarios.mapped import MappedSuite
from alpagym_env.scenarios.schema import ARRAY_FIELDS, save_suite


def test_unknown_family_lists_known_ones():
    with pytest.raises(KeyError, match="highway.*intersection.*merge.*urban"):
        generate("motorway", 0)


def test_negative_seed_raises():
    with pytest.raises(ValueError, match="seed"):
        generate("highway", -1)


def test_duplicate_family_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_family("highway")(lambda seed: None)
    assert "highway" in FAMILIES


def test_suite_names_sizes_and_balance():
    assert {"train", "val", "test", "smoke"} <= set(SUITES)
    assert SUITES["train"].size >= 1000 and SUITES["val"].size >= 200 and SUITES["test"].size >= 200
    for name in ("train", "val", "test", "smoke"):
        plan = suites_mod.suite_plan(name)
        counts = {f: sum(1 for fam, _ in plan if fam == f) for f in suites_mod.FAMILY_ORDER}
        assert max(counts.values()) - min(counts.values()) <= 1, (name, counts)
        assert len(set(plan)) == len(plan)


def test_suite_seeds_are_disjoint():
    plans = {name: set(suites_mod.suite_plan(name)) for name in ("train", "val", "test", "smoke")}
    names = list(plans)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not plans[a] & plans[b], (a, b)
    seeds = {name: {seed for _, seed in plan} for name, plan in plans.items()}
    assert not seeds["train"] & seeds["val"] and not seeds["val"] & seeds["test"]


def test_unknown_suite_lists_known_ones():
    with pytest.raises(KeyError, match="train, val, test, smoke"):
        load_suite("holdout")


def _same(a, b):
    assert a.scenario_id == b.scenario_id and a.ego_index == b.ego_index
    for name in ARRAY_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_suite_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    n = len(suites_mod.FAMILY_ORDER)
    built = build_suite("val", size=n, processes=1)
    path = suites_mod.suite_path("val", n)
    assert path.is_dir() and path.parent == tmp_path / "suites"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files
    assert [s.family for s in built] == list(suites_mod.FAMILY_ORDER)
    loaded = load_suite("val", size=n)
    assert len(loaded) == n
    for a, b in zip(built, loaded, strict=True):
        _same(a, b)
    # the suite is a prefix of the same deterministic plan as a direct generate
    _same(built[2], generate("intersection", SUITES["val"].first_seed))


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    path = suites_mod.suite_path("smoke", 2)
    path.mkdir(parents=True)
    (path / "index.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="rebuilding"):
        scenes = load_suite("smoke", size=2)
    assert [s.scenario_id for s in scenes] == ["highway-3000000", "merge-3000000"]
    assert len(load_suite("smoke", size=2)) == 2


def test_smoke_suite_default_cache_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    scenes = load_suite("smoke")
    assert len(scenes) == SUITES["smoke"].size == 8
    fingerprint = suites_mod.generator_fingerprint()[:16]
    assert (tmp_path / "suites" / f"smoke-v{suites_mod.SUITE_VERSION}-{fingerprint}" / "index.npz").exists()


def test_cache_of_other_generator_code_lives_in_another_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    first = suites_mod.suite_path("test", 1)
    monkeypatch.setattr(suites_mod, "generator_fingerprint", lambda: "0" * 64)
    assert suites_mod.suite_path("test", 1) != first


def test_a_packed_cache_of_an_earlier_version_is_converted(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    scenes = build_suite("smoke", size=2, processes=1, write=False)
    legacy = tmp_path / "suites" / f"smoke-2-v{suites_mod.SUITE_VERSION}.npz"
    legacy.parent.mkdir(parents=True)
    save_suite(legacy, scenes)
    legacy.with_name(legacy.name + ".sha256").write_text(suites_mod.generator_fingerprint() + "\n")
    monkeypatch.setattr(suites_mod, "build_suite", None)  # converting must not regenerate
    loaded = load_suite("smoke", size=2)
    for a, b in zip(scenes, loaded, strict=True):
        _same(a, b)


def test_a_suite_is_memory_mapped_shared_and_pickles_by_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    suite, again = load_suite("smoke"), load_suite("smoke")
    assert isinstance(suite, MappedSuite)
    traj = suite[3].traj
    assert not traj.flags.writeable and np.shares_memory(traj, suite._flat["traj"])  # a view, no copy
    assert isinstance(suite._flat["traj"], np.memmap)
    blob = pickle.dumps(again)
    assert len(blob) < 1000
    _same(pickle.loads(blob)[3], suite[3])
    assert [s.scenario_id for s in suite[1:3]] == suite.scenario_ids[1:3]
    joined = suite + [generate("highway", 5)]
    assert [s.scenario_id for s in joined[-2:]] == [suite[-1].scenario_id, "highway-000005"]
