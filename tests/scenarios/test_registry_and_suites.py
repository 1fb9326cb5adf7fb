"""The family registry and the named, cached suites."""

from __future__ import annotations

import numpy as np
import pytest

from alpagym_env.scenarios import FAMILIES, SUITES, build_suite, generate, load_suite, register_family
from alpagym_env.scenarios import suites as suites_mod
from alpagym_env.scenarios.schema import ARRAY_FIELDS


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
    assert path.exists() and path.parent == tmp_path / "suites"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        path.name,
        path.name + ".sha256",
    ]  # no temp files
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
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="rebuilding"):
        scenes = load_suite("smoke", size=2)
    assert [s.scenario_id for s in scenes] == ["highway-3000000", "merge-3000000"]
    assert len(load_suite("smoke", size=2)) == 2


def test_smoke_suite_default_cache_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    scenes = load_suite("smoke")
    assert len(scenes) == SUITES["smoke"].size == 8
    assert (tmp_path / "suites" / f"smoke-v{suites_mod.SUITE_VERSION}.npz").exists()


def test_cache_from_other_generator_code_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPAGYM_CACHE", str(tmp_path))
    first = build_suite("test", size=1, processes=1)
    sidecar = suites_mod.suite_path("test", 1).with_name(f"test-1-v{suites_mod.SUITE_VERSION}.npz.sha256")
    assert sidecar.read_text().strip() == suites_mod.generator_fingerprint()
    sidecar.write_text("0" * 64)
    with pytest.warns(UserWarning, match="other generator code"):
        again = load_suite("test", size=1)
    _same(first[0], again[0])
    assert sidecar.read_text().strip() == suites_mod.generator_fingerprint()
