"""The versioned on-disk scenario format and its validation."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from alpagym_env.scenarios.schema import (
    ScenarioError,
    load_scenario,
    load_suite,
    make_scenario,
    replace,
    save_scenario,
    save_suite,
)
from tests.conftest import straight_road


def fields_of(s):
    from alpagym_env.scenarios.schema import ARRAY_FIELDS, SCALAR_FIELDS

    return {k: getattr(s, k) for k in ARRAY_FIELDS + SCALAR_FIELDS}


def assert_same(a, b):
    for k, v in fields_of(a).items():
        w = getattr(b, k)
        if isinstance(v, np.ndarray):
            assert v.dtype == w.dtype and np.array_equal(v, w), k
        else:
            assert v == w, k


def test_round_trip_one_file_and_a_packed_suite(tmp_path):
    s = straight_road()
    save_scenario(tmp_path / "s.npz", s)
    assert_same(s, load_scenario(tmp_path / "s.npz"))
    other = replace(s, scenario_id="straight-1")
    save_suite(tmp_path / "suite.npz", [s, other])
    back = load_suite(tmp_path / "suite.npz")
    assert [x.scenario_id for x in back] == ["straight-0", "straight-1"]
    assert_same(other, back[1])


def test_arrays_are_read_only():
    s = straight_road()
    with pytest.raises(ValueError):
        s.traj[0, 0, 0] = 1.0


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("traj", np.zeros((3, 201, 4)), "field 'traj'"),
        ("valid", np.ones((3, 200), dtype=bool), "field 'valid'"),
        ("length", np.array([4.5, -1.0, 4.5]), "field 'length'"),
        ("ego_index", 7, "field 'ego_index'"),
        ("lane_offsets", np.array([0, 5, 3]), "field 'lane_offsets'"),
        ("lane_successors", np.full((2, 4), 9), "field 'lane_successors'"),
        ("route_xy", np.zeros((1, 2)), "field 'route_xy'"),
        ("dt", 0.0, "field 'dt'"),
    ],
)
def test_invalid_fields_name_the_field(field, value, match):
    f = fields_of(straight_road())
    f[field] = value
    with pytest.raises(ScenarioError, match=match):
        make_scenario(**f)


def test_nan_in_a_log_is_rejected():
    f = fields_of(straight_road())
    traj = f["traj"].copy()
    traj[1, 5, 0] = np.nan
    f["traj"] = traj
    with pytest.raises(ScenarioError, match="field 'traj': contains NaN"):
        make_scenario(**f)


def test_unknown_and_missing_fields_are_named():
    f = fields_of(straight_road())
    with pytest.raises(ScenarioError, match="unknown scenario fields \\['speed'\\]"):
        make_scenario(**f, speed=1.0)
    del f["traj"]
    with pytest.raises(ScenarioError, match="missing scenario fields \\['traj'\\]"):
        make_scenario(**f)


def test_corrupt_files_raise_scenario_errors_naming_the_file(tmp_path):
    s = straight_road()
    good = tmp_path / "good.npz"
    save_scenario(good, s)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(ScenarioError, match="truncated.npz"):
        load_scenario(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ScenarioError, match="garbage.npz"):
        load_scenario(garbage)
    # A member removed: the missing field is named.
    missing = tmp_path / "missing.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(missing, "w") as zout:
        for item in zin.infolist():
            if item.filename != "width.npy":
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(ScenarioError, match="missing.npz: missing field 'width'"):
        load_scenario(missing)
    # A newer format version is refused with the version named.
    data = dict(np.load(good))
    data["schema_version"] = np.array(99)
    np.savez(tmp_path / "future.npz", **data)
    with pytest.raises(ScenarioError, match="schema_version"):
        load_scenario(tmp_path / "future.npz")
    with pytest.raises(ScenarioError, match="field 'format'"):
        load_suite(good)
