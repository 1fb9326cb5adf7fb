"""AlpaGym's trainer: behaviour cloning, GRPO and baselines over `alpagym_env` (in progress)."""

__version__ = "0.1.0"
