"""AlpaGym's simulator: `gym.make("AlpaDrive-v0")` over a batched Numba driving engine."""

import hashlib
import os
from pathlib import Path

from gymnasium.envs.registration import register


def _numba_cache_dir() -> str:
    """A Numba cache folder keyed by a hash of this package's kernel sources.

    Numba's on-disk cache keeps a kernel compiled against the callees it had then: editing
    `measure.py` would not invalidate the cached `step_batch` that calls it. Keying the folder by
    the files that define kernels makes every kernel edit start from a clean cache. `NUMBA_CACHE_DIR`
    still wins when set.
    """
    digest = hashlib.sha1()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        text = path.read_bytes()
        if b"from numba import" in text:
            digest.update(path.name.encode() + text)
    root = Path(os.environ.get("ALPAGYM_CACHE", Path.home() / ".cache" / "alpagym"))
    return str(root / "numba" / digest.hexdigest()[:16])


# Numba's OpenMP pool (its default threading layer on Linux) reads these when its first parallel kernel
# starts it. GNU OpenMP's default lets idle pool threads spin for about 300,000 checks after each kernel;
# where the cores are shared (actor processes beside a learner, other jobs) the spinning threads take
# the cores the working ones need, and a batched step of 2 threads took 5-25x longer than with one.
# 10,000 checks still bridge the few microseconds between two steps' kernels on idle cores, and cost
# little where cores are shared (`benchmarks/env_scaling.py` measures the policies side by side). A
# user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"

import numba  # noqa: E402

if "NUMBA_CACHE_DIR" not in os.environ:
    numba.config.CACHE_DIR = _numba_cache_dir()

from alpagym_env.config import (  # noqa: E402 (after the Numba cache is configured)
    AgentsConfig,
    ConfigError,
    ConfigTypeError,
    ControllerConfig,
    DynamicsConfig,
    EnvConfig,
    ObsConfig,
    TerminationConfig,
    TrajectoryConfig,
)

__version__ = "0.1.0"

register(
    id="AlpaDrive-v0",
    entry_point="alpagym_env.envs.drive_env:AlpaDriveEnv",
    vector_entry_point="alpagym_env.envs.vector_env:AlpaDriveVectorEnv",
)


def parallel_env(**kwargs):
    """The PettingZoo `ParallelEnv` (`alpagym_env.envs.parallel_env.AlpaDriveParallelEnv`)."""
    from alpagym_env.envs.parallel_env import AlpaDriveParallelEnv

    return AlpaDriveParallelEnv(**kwargs)


def expert_dataset(suite_or_scenarios, action_type: str = "control", **kwargs):
    """Expert observations and actions for behaviour cloning (`alpagym_env.dataset.expert_dataset`)."""
    from alpagym_env.dataset import expert_dataset as build

    return build(suite_or_scenarios, action_type, **kwargs)


__all__ = [
    "expert_dataset",
    "parallel_env",
    "AgentsConfig",
    "ConfigError",
    "ConfigTypeError",
    "ControllerConfig",
    "DynamicsConfig",
    "EnvConfig",
    "ObsConfig",
    "TerminationConfig",
    "TrajectoryConfig",
    "__version__",
]
