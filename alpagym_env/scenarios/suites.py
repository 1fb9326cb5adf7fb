"""Named, versioned scenario suites built from fixed seeds and cached on disk.

| suite   | scenes | seeds per family            |
|---------|--------|-----------------------------|
| `train` | 1000   | 0 ... 199                   |
| `val`   | 200    | 1_000_000 ... 1_000_039     |
| `test`  | 200    | 2_000_000 ... 2_000_039     |
| `smoke` | 8      | 3_000_000 ... 3_000_001     |

Scene k of a suite is family `FAMILY_ORDER[k % 5]` (highway, merge, intersection, urban, congestion) with
seed `first_seed + k // 5`, so every suite is balanced across the families and the seed ranges never
overlap. A suite is stored once per machine as a memory-mapped directory (`alpagym_env.scenarios.mapped`)
`$ALPAGYM_CACHE/suites/{name}-v{SUITE_VERSION}-{fingerprint}` (default cache dir `~/.cache/alpagym`),
where the fingerprint hashes the generator sources, so other generator code gets another directory.
`load_suite(name)` opens it (every env of every process shares its pages: a further env adds no copy
of the scenes), or builds it on a miss or when it is unreadable; a packed ``{name}-v{SUITE_VERSION}.npz``
of an earlier AlpaGym with a matching ``.sha256`` sidecar is converted instead of regenerated. Bump
`SUITE_VERSION` when a generator's output changes on purpose.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from alpagym_env.scenarios import schema
from alpagym_env.scenarios.mapped import MappedSuite, write_mapped
from alpagym_env.scenarios.registry import generate
from alpagym_env.scenarios.schema import Scenario, ScenarioError
from alpagym_env.scenarios.suite_files import is_suite_path, load_suite_files

SUITE_VERSION = 2  # 2: the congestion family; urban and intersection egos prefer turning logs
FAMILY_ORDER = ("highway", "merge", "intersection", "urban", "congestion")


@dataclass(frozen=True)
class SuiteSpec:
    """A suite: how many scenes and the first seed of each family's seed range."""

    size: int
    first_seed: int


SUITES: dict[str, SuiteSpec] = {
    "train": SuiteSpec(1000, 0),
    "val": SuiteSpec(200, 1_000_000),
    "test": SuiteSpec(200, 2_000_000),
    "smoke": SuiteSpec(8, 3_000_000),
}


def _spec(name: str) -> SuiteSpec:
    if name not in SUITES:
        raise KeyError(
            f"unknown scenario suite {name!r}; known suites: {', '.join(SUITES)}, or a path to a converted "
            ".npz suite or a directory of .npz scenes"
        )
    return SUITES[name]


def suite_plan(name: str, size: int | None = None) -> list[tuple[str, int]]:
    """The (family, seed) of every scene of suite `name`, in order; `size` overrides the suite's size."""
    spec = _spec(name)
    n = spec.size if size is None else int(size)
    if n < 1:
        raise ValueError(f"suite size must be >= 1, got {n}")
    return [(FAMILY_ORDER[k % len(FAMILY_ORDER)], spec.first_seed + k // len(FAMILY_ORDER)) for k in range(n)]


def cache_dir() -> Path:
    """`$ALPAGYM_CACHE/suites`, default `~/.cache/alpagym/suites`."""
    root = os.environ.get("ALPAGYM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "alpagym")
    return Path(root) / "suites"


def suite_path(name: str, size: int | None = None) -> Path:
    """Cache directory of a suite (a size override gets its own), keyed by name, version and the
    generator fingerprint."""
    _spec(name)
    return cache_dir() / f"{_tag(name, size)}-v{SUITE_VERSION}-{generator_fingerprint()[:16]}"


def _tag(name: str, size: int | None) -> str:
    return name if size is None or size == SUITES[name].size else f"{name}-{int(size)}"


def _legacy_path(name: str, size: int | None) -> Path:
    """The packed ``.npz`` an earlier AlpaGym cached the suite in (with a ``.sha256`` sidecar)."""
    return cache_dir() / f"{_tag(name, size)}-v{SUITE_VERSION}.npz"


_SOURCES = (
    "road.py",
    "expert.py",
    "expert_kernel.py",
    "validate.py",
    "schema.py",
    "../sim/idm.py",
    "../sim/geometry.py",
)


@functools.cache
def generator_fingerprint() -> str:
    """SHA-256 over `SUITE_VERSION` and the sources that decide the scenes (road, expert, families, IDM)."""
    root = Path(__file__).parent
    files = [root / f for f in _SOURCES] + sorted((root / "families").glob("*.py"))
    digest = hashlib.sha256(f"suite-v{SUITE_VERSION}".encode())
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes() if f.exists() else b"")
    return digest.hexdigest()


def _generate(item: tuple[str, int]) -> Scenario:
    return generate(*item)


def build_suite(name: str, size: int | None = None, processes: int | None = None, write: bool = True):
    """Generates suite `name` (deterministically) and, with `write`, stores it in the cache.

    Args:
        name: A key of `SUITES`.
        size: Number of scenes instead of the suite's own size (a prefix of the same plan).
        processes: Worker processes; default 2 for suites of more than 16 scenes, else 1 (in-process).
        write: Write the packed cache file.

    Returns:
        The scenarios, in plan order.
    """
    plan = suite_plan(name, size)
    if processes is None:
        processes = 2 if len(plan) > 16 else 1
    if processes > 1:
        with multiprocessing.get_context().Pool(processes) as pool:
            scenes = pool.map(_generate, plan, chunksize=max(1, len(plan) // (8 * processes)))
    else:
        scenes = [_generate(item) for item in plan]
    if write:
        write_mapped(suite_path(name, size), scenes)
    return scenes


def load_suite(name: str, size: int | None = None, processes: int | None = None) -> Sequence[Scenario]:
    """Suite `name`, memory-mapped from the cache, building (and caching) it on a miss; or, where `name`
    is a path, the scenes of that converted ``.npz`` file or directory of them
    (`suite_files.load_suite_files`).

    A cache directory that cannot be read or does not hold exactly the planned scenes is rebuilt with
    a warning.

    Raises:
        KeyError: For an unknown suite name; the message lists the known ones.
    """
    if name not in SUITES and is_suite_path(name):
        scenes = load_suite_files(name)
        return scenes if size is None else scenes[: int(size)]
    plan = suite_plan(name, size)
    path = suite_path(name, size)
    if path.exists():
        try:
            suite = MappedSuite(path)
        except ScenarioError as e:
            warnings.warn(f"rebuilding unreadable suite cache {path}: {e}", stacklevel=2)
        else:
            if suite.scenario_ids == [f"{fam}-{seed:06d}" for fam, seed in plan]:
                return suite
            warnings.warn(
                f"rebuilding stale suite cache {path}: its scenes differ from the plan", stacklevel=2
            )
        shutil.rmtree(path, ignore_errors=True)
    elif _legacy_fresh(name, size):
        try:
            return MappedSuite(write_mapped(path, schema.load_suite(_legacy_path(name, size))))
        except (ScenarioError, OSError):
            pass  # an unreadable old cache: build afresh
    build_suite(name, size, processes)
    return MappedSuite(path)


def _legacy_fresh(name: str, size: int | None) -> bool:
    legacy = _legacy_path(name, size)
    sidecar = legacy.with_name(legacy.name + ".sha256")
    return legacy.exists() and sidecar.exists() and sidecar.read_text().strip() == generator_fingerprint()
