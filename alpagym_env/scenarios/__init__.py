"""Scenarios: the `Scenario` data model and file format, procedural families, and named suites.

- `Scenario`, `make_scenario`, `load_scenario`, `save_scenario`, `ScenarioError`: the data model
  (`schema.py`).
- `generate(family, seed)`: a procedural scene (`highway`, `merge`, `intersection`, `urban`,
  `congestion`), bit-identical for the same seed, with collision-free, on-road expert logs for every
  agent; `FAMILIES` and `register_family` form the registry.
- `load_suite(name)` / `build_suite(name, size=...)`: the named suites `train`, `val`, `test`, `smoke`,
  cached on disk (`suites.py`); `load_suite(path)` reads a converted ``.npz`` suite, one scenario
  ``.npz``, or a directory of them (`suite_files.py`), so a path goes wherever a suite name does.
- `check_expert_logs(scenario)`: collisions, off-road boxes and red-light crossings in a scene's logs.
"""

from alpagym_env.scenarios import families as _families  # noqa: F401  (registers the built-in families)
from alpagym_env.scenarios.registry import FAMILIES, generate, register_family
from alpagym_env.scenarios.schema import Scenario, ScenarioError, load_scenario, make_scenario, save_scenario
from alpagym_env.scenarios.suites import SUITE_VERSION, SUITES, build_suite, load_suite
from alpagym_env.scenarios.validate import check_expert_logs

__all__ = [
    "FAMILIES",
    "SUITES",
    "SUITE_VERSION",
    "Scenario",
    "ScenarioError",
    "build_suite",
    "check_expert_logs",
    "generate",
    "load_scenario",
    "load_suite",
    "make_scenario",
    "register_family",
    "save_scenario",
]
