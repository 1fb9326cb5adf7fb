"""Importers of public logged-data formats into `Scenario`.

- `scenarionet`: ScenarioNet / MetaDrive scenario descriptions (``.pkl``).
- `gpudrive_json`: GPUDrive / Nocturne Waymo scenes (``.json``).

`load_file(path)` picks the importer from the file suffix; `python -m alpagym_env.scenarios.convert`
converts files or directories to AlpaGym ``.npz`` scenarios or a packed suite.
"""

from __future__ import annotations

import os
from collections import Counter

from alpagym_env.scenarios.importers import gpudrive_json, scenarionet
from alpagym_env.scenarios.schema import Scenario

FORMATS = {"scenarionet": (".pkl",), "gpudrive": (".json",)}


def detect_format(path: str | os.PathLike) -> str:
    """The importer name for a file suffix; raises `ValueError` for an unknown suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise ValueError(f"{os.fspath(path)}: unknown scenario file type {suffix!r}; known: {FORMATS}")


def load_file(path: str | os.PathLike, fmt: str = "auto", notes: Counter | None = None) -> Scenario:
    """Imports one file (`fmt`: ``auto``, ``scenarionet`` or ``gpudrive``); `notes` receives a count per
    thing the importer fixed, defaulted or dropped (`importers.common`)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "scenarionet":
        return scenarionet.load(path, notes)
    if fmt == "gpudrive":
        return gpudrive_json.load(path, notes=notes)
    raise ValueError(f"unknown scenario format {fmt!r}; known: {list(FORMATS)}")


__all__ = ["FORMATS", "detect_format", "gpudrive_json", "load_file", "scenarionet"]
