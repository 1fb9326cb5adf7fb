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

__all__ = [
    "AgentsConfig",
    "ConfigError",
    "DynamicsConfig",
    "EnvConfig",
    "ObsConfig",
    "TerminationConfig",
    "__version__",
]
