"""Environments over the one batched engine."""

from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.drive_env import AlpaDriveEnv

__all__ = ["AlpaDriveEnv", "BatchedSim"]
