"""Preflight: what would otherwise fail inside a child process, checked before any process starts."""

from __future__ import annotations

from pathlib import Path

from alpagym_train.device import resolve_device
from alpagym_train.grpo.checkpoint import resolve_checkpoint
from alpagym_train.grpo.config import GRPORunConfig
from alpagym_train.policy import GaussianPolicy, load


def preflight(cfg: GRPORunConfig) -> None:
    """Checks, before any process starts, what would otherwise fail inside one, with clear errors.

    Raises:
        FileNotFoundError: ``learner.init`` or ``resume`` names no checkpoint.
        ValueError: An env, reward or algorithm setting is invalid; ``learner.device=cuda`` on a machine
            without a usable GPU; the policy to train does not fit the env's observation or action
            size; ``algorithm.entropy_coef`` cannot act.
    """
    cfg.env_config(), cfg.reward_terms()
    resolve_device(cfg.learner.device, "learner.device")
    grpo = cfg.grpo_config()
    if cfg.resume:
        path = resolve_checkpoint(cfg.resume) / "policy.safetensors"
    elif not Path(cfg.learner.init).is_file():
        raise FileNotFoundError(
            f"learner.init={cfg.learner.init}: no such checkpoint; train one with "
            "`python -m alpagym_train.bc` or point learner.init at a .safetensors policy"
        )
    else:
        path = Path(cfg.learner.init)
    policy, _ = load(path)
    check_policy_fits(policy, cfg.plain()["env"], cfg.reward_terms(), path)
    if grpo.entropy_coef != 0 and not grpo.learn_std and not policy.config.state_dependent_std:
        raise ValueError(
            f"algorithm.entropy_coef={grpo.entropy_coef:g} cannot act: with algorithm.learn_std=false and a "
            "state-independent std the entropy is a constant; set algorithm.learn_std=true or entropy_coef=0"
        )


def check_policy_fits(policy: GaussianPolicy, env_kwargs: dict, reward: list, path: Path) -> None:
    """Raises a clear error when the checkpoint's observation or action size does not fit the env."""
    from alpagym_train.rollout import make_group_env

    env = make_group_env(1, 1, reward=reward, **env_kwargs)
    obs_dim, act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    env.close()
    if (policy.config.obs_dim, policy.config.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"{path}: the policy takes {policy.config.obs_dim} observations and gives "
            f"{policy.config.act_dim} actions, the env has {obs_dim} and {act_dim}: train the init "
            "checkpoint with the same env settings (action_type, obs)"
        )
