"""Smoke test of every script in `examples/`: each runs in its quick mode and prints what it promises.

Every ``examples/*.py`` must have an entry in `EXPECTATIONS` (a new example without one fails here, so
none goes untested). Each runs as a subprocess of this interpreter with the caller's environment (so
``ALPAGYM_CACHE`` and ``NUMBA_CACHE_DIR`` keep pointing at the warm caches) from a temporary working
directory, so nothing lands in the repository.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "examples"


@dataclass(frozen=True)
class Expect:
    """How to smoke-test one example.

    Attributes:
        args: Command-line arguments (the example's quick mode).
        output: Substrings that must all appear in its stdout.
        requires: Modules the example imports beyond `alpagym_env`'s own dependencies; the test skips
            when one is missing.
        timeout: Seconds before the run counts as hung (generous: a cold Numba cache compiles first).
    """

    args: tuple[str, ...] = ("--quick",)
    output: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    timeout: float = 600.0


# One entry per example script (file name -> expectation). Add yours here.
EXPECTATIONS: dict[str, Expect] = {
    "quickstart.py": Expect(
        output=("episode 0 [", "scene_score", "vector env: AlpaDriveVectorEnv", "env-steps/s")
    ),
    "custom_reward_terms.py": Expect(
        output=("a typo raises at construction", '"metric/jerk"', '"terminal/scene_score"', "== return")
    ),
    "custom_reward_callable.py": Expect(
        output=("single env [", "reward terms in info with a callable: {}", "vector env: 4 envs")
    ),
    "pettingzoo_multi_agent.py": Expect(
        output=("possible agents: ['agent_0',", "agent_2", "mean return over agents")
    ),
    "sb3_ppo.py": Expect(
        output=("trained PPO for", "| policy | family |", "| ppo | all |", "| idm | all |"),
        requires=("stable_baselines3", "torch"),
    ),
    "trajectory_actions.py": Expect(output=("expert on ", "route on ", "tracking error mean")),
    "two_machine_grpo.py": Expect(
        output=(
            "shared Redis: redis://:***@127.0.0.1",
            "joined run 'two-machines'",
            "actors that contributed: 2",
        ),
        requires=("torch", "redis"),
    ),
    "convert_scenario.py": Expect(
        output=("converted 'example-straight'", "expert-log problems: none", "| expert | all | 1 | 1.000")
    ),
}


def example_scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))


def test_every_expectation_names_an_existing_example():
    stale = sorted(set(EXPECTATIONS) - set(example_scripts()))
    assert not stale, f"EXPECTATIONS lists examples that do not exist: {stale}"


@pytest.mark.parametrize("name", example_scripts())
def test_example_runs(name, tmp_path):
    if name not in EXPECTATIONS:
        pytest.fail(f"examples/{name} has no entry in EXPECTATIONS of {__file__}; add one (args, output)")
    expect = EXPECTATIONS[name]
    missing = [m for m in expect.requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"examples/{name} needs {missing}")
    env = dict(os.environ)
    # The repository first on the path, as for a user running from a checkout (works without `pip -e`).
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name), *expect.args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=expect.timeout,
    )
    seconds = time.perf_counter() - start
    command = f"examples/{name} {' '.join(expect.args)}"
    log = f"{command} ({seconds:.1f} s)\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, log
    for text in expect.output:
        assert text in proc.stdout, f"expected {text!r} in the output of\n{log}"
