"""Suites given as files: a packed suite ``.npz``, one scenario ``.npz``, or a directory of them.

`load_suite_files(path)` is what every ``suite=`` argument falls back to when it is not the name of a
built-in suite (`alpagym_env.scenarios.suites.load_suite`), so a converted real-data suite
(`python -m alpagym_env.scenarios.convert ... --out real.npz`) goes wherever a suite name does.
"""

from __future__ import annotations

import os

from alpagym_env.scenarios import schema
from alpagym_env.scenarios.schema import Scenario, ScenarioError


def is_suite_path(suite: str | os.PathLike) -> bool:
    """Whether `suite` names a file or directory (an existing path, or one ending in ``.npz``)."""
    s = os.fspath(suite)
    return s.endswith(".npz") or os.sep in s or os.path.exists(s)


def load_suite_files(path: str | os.PathLike) -> list[Scenario]:
    """The scenes of a packed suite ``.npz``, a scenario ``.npz``, or a directory of ``.npz`` files
    (sorted by name, each a scenario or a packed suite).

    Raises:
        FileNotFoundError: Nothing at `path`.
        ValueError: A directory without ``.npz`` files.
        ScenarioError: A file that is not a scenario or suite, naming the file and field.
    """
    where = os.fspath(path)
    if os.path.isdir(where):
        files = sorted(f for f in os.listdir(where) if f.endswith(".npz"))
        if not files:
            raise ValueError(f"no .npz scenario files in directory {where}")
        return [s for f in files for s in _load_file(os.path.join(where, f))]
    if not os.path.exists(where):
        raise FileNotFoundError(f"no suite file or directory {where}")
    return _load_file(where)


def _load_file(path: str) -> list[Scenario]:
    try:
        return schema.load_suite(path)
    except ScenarioError as e:
        if f"field 'format' is {schema.FORMAT_NAME!r}" not in str(e):
            raise
    return [schema.load_scenario(path)]
