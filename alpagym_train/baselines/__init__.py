"""Baselines that closed-loop post-training is compared with: SB3 PPO and SAC (`baselines.sb3`)."""
