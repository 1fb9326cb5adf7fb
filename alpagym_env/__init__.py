"""AlpaGym's simulator: `gym.make("AlpaDrive-v0")` over a batched Numba driving engine."""

from gymnasium.envs.registration import register

from alpagym_env.config import (
    AgentsConfig,
    ConfigError,
    DynamicsConfig,
    EnvConfig,
    ObsConfig,
    TerminationConfig,
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


__all__ = [
    "parallel_env",
    "AgentsConfig",
    "ConfigError",
    "DynamicsConfig",
    "EnvConfig",
    "ObsConfig",
    "TerminationConfig",
    "__version__",
]
