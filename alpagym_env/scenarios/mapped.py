"""A scenario suite stored once per machine and memory-mapped by every env in every process.

On disk a mapped suite is a directory: one ``{field}.npy`` per array field of `Scenario`, holding every
scene's array flattened and concatenated, and ``index.npz`` with, per field, each scene's offset into
that file and its shape, plus the scalar fields (``scenario_id``, ``family``, ``source``, ``dt``,
``ego_index``), ``format`` and ``schema_version``. `MappedSuite` opens the ``.npy`` files with
``mmap_mode="r"``: the operating system's page cache holds the data once, however many envs and
processes read it, a scene is built (as views, validated) only when an env asks for it, and a suite
pickles as its path.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from alpagym_env.scenarios.schema import (
    ARRAY_FIELDS,
    SCHEMA_VERSION,
    Scenario,
    ScenarioError,
    make_scenario,
)

MAPPED_FORMAT = "alpagym.mapped_suite"
INDEX = "index.npz"


def write_mapped(path: str | os.PathLike, scenarios: Sequence[Scenario]) -> Path:
    """Writes `scenarios` as a mapped suite directory at `path`, atomically.

    The files go to a private temporary directory that is then renamed into place, so concurrent
    writers never expose half a suite; when another writer got there first, its copy is kept.

    Returns:
        `path`.
    """
    if not scenarios:
        raise ValueError("a mapped suite needs at least one scenario")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    tmp.mkdir()
    index: dict[str, np.ndarray] = {
        "format": np.array(MAPPED_FORMAT),
        "schema_version": np.array(SCHEMA_VERSION),
        "count": np.array(len(scenarios)),
        "scenario_id": np.array([s.scenario_id for s in scenarios], dtype=str),
        "family": np.array([s.family for s in scenarios], dtype=str),
        "source": np.array([s.source for s in scenarios], dtype=str),
        "dt": np.array([s.dt for s in scenarios], dtype=np.float64),
        "ego_index": np.array([s.ego_index for s in scenarios], dtype=np.int64),
    }
    for name in ARRAY_FIELDS:
        arrays = [getattr(s, name) for s in scenarios]
        sizes = np.array([a.size for a in arrays], dtype=np.int64)
        index[f"{name}.offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        index[f"{name}.shape"] = np.array([a.shape for a in arrays], dtype=np.int64).reshape(len(arrays), -1)
        dtype = arrays[0].dtype if arrays else np.float64
        np.save(
            tmp / f"{name}.npy", np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, dtype)
        )
    np.savez(tmp / INDEX, **index)
    try:
        os.replace(tmp, path)
    except OSError:  # `path` exists (another writer finished first) and is not empty
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / INDEX).exists():
            raise
    return path


class MappedSuite(Sequence[Scenario]):
    """The scenes of a mapped suite directory (`write_mapped`), read-only and memory-mapped.

    A `Sequence` of `Scenario`: ``suite[i]`` builds scene i from views of the mapped files, a slice
    gives a list, ``+`` concatenates into a list. Pickles as its path.

    Raises:
        ScenarioError: The directory is not a readable mapped suite; the message names the file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._open()

    def _open(self) -> None:
        where = os.fspath(self.path / INDEX)
        try:
            with np.load(where, allow_pickle=False) as data:
                index = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as e:
            raise ScenarioError(f"{where}: not a readable mapped suite index ({e})") from None
        required = {"format", "schema_version", "count", "scenario_id", "family", "source", "dt", "ego_index"}
        required |= {f"{name}.{part}" for name in ARRAY_FIELDS for part in ("offsets", "shape")}
        missing = sorted(required - set(index))
        if missing:
            raise ScenarioError(f"{where}: missing fields {missing}")
        found = str(index["format"].item())
        if found != MAPPED_FORMAT:
            raise ScenarioError(f"{where}: field 'format' is {found!r}, expected {MAPPED_FORMAT!r}")
        version = int(index["schema_version"].item())
        if version != SCHEMA_VERSION:
            raise ScenarioError(
                f"{where}: field 'schema_version' is {version}, this AlpaGym reads {SCHEMA_VERSION}"
            )
        self._index = index
        self._count = int(index["count"].item())
        self._flat: dict[str, np.ndarray] = {}
        for name in ARRAY_FIELDS:
            file = self.path / f"{name}.npy"
            try:
                flat = np.load(file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise ScenarioError(f"{file}: unreadable ({e})") from None
            if flat.ndim != 1 or flat.shape[0] != int(index[f"{name}.offsets"][-1]):
                raise ScenarioError(
                    f"{file}: holds {flat.shape}, the index expects {index[f'{name}.offsets'][-1]}"
                )
            self._flat[name] = flat

    @property
    def scenario_ids(self) -> list[str]:
        """Every scene's id, in order (read from the index, no scene is built)."""
        return [str(s) for s in self._index["scenario_id"]]

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> Scenario: ...

    @overload
    def __getitem__(self, i: slice) -> list[Scenario]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._count))]
        k = int(i)
        if k < 0:
            k += self._count
        if not 0 <= k < self._count:
            raise IndexError(f"scene {i} is outside this suite of {self._count}")
        idx = self._index
        fields: dict[str, Any] = {
            name: self._flat[name][idx[f"{name}.offsets"][k] : idx[f"{name}.offsets"][k + 1]].reshape(
                idx[f"{name}.shape"][k]
            )
            for name in ARRAY_FIELDS
        }
        for name in ("scenario_id", "family", "source", "dt", "ego_index"):
            fields[name] = idx[name][k].item()
        try:
            return make_scenario(**fields)
        except ScenarioError as e:
            raise ScenarioError(f"{self.path} [scenario {k}]: {e}") from None

    def __iter__(self) -> Iterator[Scenario]:
        return (self[k] for k in range(self._count))

    def __add__(self, other: Sequence[Scenario]) -> list[Scenario]:
        return [*self, *other]

    def __radd__(self, other: Sequence[Scenario]) -> list[Scenario]:
        return [*other, *self]

    def __repr__(self) -> str:
        return f"MappedSuite({os.fspath(self.path)!r}, {self._count} scenes)"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": os.fspath(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self._open()
