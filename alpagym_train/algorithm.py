"""One GRPO update from a batch of groups: advantages, then clipped policy-gradient epochs.

`GRPOUpdater.update(batch)` is the single place the update is computed; the synchronous loop
(`alpagym_train.sync`) and the async learner both call it, so they agree on the same groups.
`make_updater` builds the updater ``config.method`` names: GRPO's (critic-free, group baselines) or
PPO's with a learned critic (`alpagym_train.ppo.PPOUpdater`), which shares the policy step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alpagym_train import losses as L
from alpagym_train.policy import GaussianPolicy
from alpagym_train.rollout import GroupBatch

ADVANTAGES = ("outcome", "step")
METHODS = ("grpo", "ppo")


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO hyper-parameters.

    Attributes:
        lr: Adam learning rate.
        epochs: Passes over each batch.
        minibatch_groups: Groups per gradient step (0: the whole batch).
        clip_eps: PPO clip epsilon.
        log_ratio_limit: Clamp of the log-ratio.
        advantage: ``"outcome"`` (episode return) or ``"step"`` (reward-to-go) advantages.
        scale: ``"group"``, ``"batch"`` or ``"none"`` (Dr. GRPO).
        adv_clip: Advantages are clipped to +-this.
        filter_zero_variance: Drop groups whose returns are all equal.
        kl_coef: Weight of the k3 KL to the reference (initial) policy; 0 disables it.
        entropy_coef: Weight of the entropy bonus.
        max_grad_norm: Gradient-norm clip.
        learn_std: Whether the log-std is trained (else it stays at its initial value).
        decoupled: Decoupled PPO for stale rollouts: clip against the proximal policy (the weights at
            the start of the update) instead of the behaviour policy, and weigh each step by the
            truncated importance ratio pi_prox / pi_behaviour. A group rolled out a few versions ago
            then neither dominates the update through huge ratios nor is clipped away; on fresh groups
            (sync training, lag 0) the weight is 1 and the update is plain PPO-clip.
        behaviour_weight_cap: Truncation of that importance weight.
        method: ``"grpo"`` (advantages from the group, no critic) or ``"ppo"`` (GAE advantages from a
            learned critic, normalised over the batch; group structure, `advantage`, `scale` and
            `filter_zero_variance` are then ignored). The policy loss, decoupled weights and KL are
            the same for both.
        gamma: PPO's discount per 0.1 s step.
        gae_lambda: PPO's GAE lambda.
        value_lr: Adam learning rate of PPO's critic (its own network and optimiser, so no loss
            weight is needed).
        critic_warmup_updates: PPO's first updates fit only the critic, the policy held fixed: a BC
            checkpoint comes without one, and a random critic's advantages are noise.
        step_fraction: Fraction of each update's real steps the policy loss is computed on, in (0, 1]: a
            uniform random subset of round(fraction * M) of the M real steps, drawn once per update and
            shared by its epochs, whose loss is scaled by M / subset size, so it is an unbiased estimate
            of the full loss and of its gradient (1: every step, exactly the full loss). Each step's
            action noise is its own, so a subset adds variance: on 8 x 8 groups of a BC policy a half's
            gradient has cosine 0.72 with the full one, a quarter's 0.54 (full gradients of two
            independent batches: about 0). 0.5 takes about 55 % of the learner's time per update; the default
            is 1 (one-minute `make demo` runs: 0.43 at 0.5, 0.53 at 1).
    """

    lr: float = 1e-4
    epochs: int = 2
    minibatch_groups: int = 0
    clip_eps: float = 0.2
    log_ratio_limit: float = 5.0
    advantage: str = "step"
    scale: str = "group"
    adv_clip: float = 5.0
    filter_zero_variance: bool = True
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    max_grad_norm: float = 1.0
    learn_std: bool = False
    decoupled: bool = True
    behaviour_weight_cap: float = 2.0
    method: str = "grpo"
    gamma: float = 0.99
    gae_lambda: float = 0.95
    value_lr: float = 3e-4
    critic_warmup_updates: int = 0
    step_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.step_fraction <= 1:
            raise ValueError(f"step_fraction must be in (0, 1], got {self.step_fraction}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not (0 < self.gamma <= 1 and 0 <= self.gae_lambda <= 1):
            raise ValueError(
                f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, {self.gae_lambda}"
            )
        if self.value_lr <= 0 or self.critic_warmup_updates < 0:
            raise ValueError(
                f"value_lr must be > 0 and critic_warmup_updates >= 0, got {self.value_lr}, "
                f"{self.critic_warmup_updates}"
            )
        if self.advantage not in ADVANTAGES:
            raise ValueError(f"advantage must be one of {ADVANTAGES}, got {self.advantage!r}")
        if self.scale not in L.SCALES:
            raise ValueError(f"scale must be one of {L.SCALES}, got {self.scale!r}")
        if self.behaviour_weight_cap < 1:
            raise ValueError(f"behaviour_weight_cap must be >= 1, got {self.behaviour_weight_cap}")
        if self.lr <= 0 or self.epochs < 1 or self.clip_eps <= 0:
            raise ValueError(f"lr, epochs and clip_eps must be positive: {self}")


class GRPOUpdater:
    """Holds the policy, its frozen reference and the optimiser; `update` applies one batch.

    Args:
        policy: The policy being trained (updated in place).
        config: Hyper-parameters.
        reference: The frozen reference for the KL term (a copy of the initial policy when None
            and `kl_coef` > 0), moved to the policy's device.
        seed: Seed of the minibatch order.

    A batch may hold numpy arrays or tensors on the policy's device (`torch.as_tensor` passes those
    through); what the updater creates itself follows the batch's device.
    """

    def __init__(self, policy: GaussianPolicy, config: GRPOConfig, reference: GaussianPolicy | None = None,
                 seed: int = 0) -> None:  # fmt: skip
        self.policy, self.config = policy, config
        if reference is None and config.kl_coef > 0:
            reference = GaussianPolicy(policy.config)
            reference.load_state_dict(policy.state_dict())
        self.reference = reference.to(policy.device).eval() if reference is not None else None
        params = [p for n, p in policy.named_parameters() if config.learn_std or "log_std" not in n]
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.generator = torch.Generator().manual_seed(seed)

    def advantages(self, batch: GroupBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(N', G, T) advantages and the (N,) bool groups kept."""
        cfg = self.config
        rewards, mask = torch.as_tensor(batch.rewards), torch.as_tensor(batch.mask)
        returns = (rewards * mask).sum(-1)
        keep = torch.ones(len(returns), dtype=torch.bool, device=returns.device)
        if cfg.filter_zero_variance:
            keep = L.nonzero_variance_groups(returns)
        if cfg.advantage == "outcome":
            adv = L.outcome_advantages(returns[keep], mask[keep], cfg.scale)
        else:
            adv = L.step_advantages(rewards[keep], mask[keep], cfg.scale)
        return L.clip_advantages(adv, cfg.adv_clip), keep

    def _entropy(self, obs: torch.Tensor, normaliser: float) -> torch.Tensor:
        """The entropy term of (M, D) real steps; without a network pass when it is only logged (the
        coefficient is 0 and the std does not depend on the observation)."""
        if self.config.entropy_coef == 0 and not self.policy.config.state_dependent_std:
            with torch.no_grad():
                return self.policy.entropy(obs[:1]).sum() * len(obs) / normaliser
        return L.entropy_bonus(self.policy.entropy(obs), torch.ones(len(obs), device=obs.device), normaliser)

    def update(self, batch: GroupBatch) -> dict[str, float]:
        """Applies `epochs` passes of clipped policy gradient on `batch`; returns the statistics."""
        adv, keep = self.advantages(batch)
        return self.policy_step(batch, adv, keep)

    def policy_step(self, batch: GroupBatch, adv: torch.Tensor, keep: torch.Tensor) -> dict[str, float]:
        """The clipped policy-gradient epochs on the kept groups with (N', G, T) advantages `adv`."""
        cfg = self.config
        stats = {"groups": float(len(keep)), "groups_kept": float(keep.sum()), "steps": float(batch.steps)}
        if not keep.any():
            return stats | {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "grad_norm": 0.0}
        n, g, t = adv.shape
        # Only real steps are computed: the (N, G, T) padding of early-ended rollouts is never copied.
        # Every loss term is a per-step sum under the constant normaliser, so this changes nothing but
        # time; a subset of them (`step_fraction`) is an unbiased estimate of those sums.
        real = torch.as_tensor(batch.mask)[keep] > 0
        pos, scale = sample_steps(int(real.sum()), cfg.step_fraction, self.generator)
        pos = torch.nonzero(real.reshape(-1)).squeeze(1)[pos.to(real.device)]  # flat (N', G, T) index
        kept = torch.nonzero(keep).squeeze(1)
        src = kept[pos // (g * t)] * (g * t) + pos % (g * t)  # the same step in the batch's (N, G, T)
        obs = torch.as_tensor(batch.obs).reshape(-1, batch.obs.shape[-1])[src]
        u = torch.as_tensor(batch.u).reshape(-1, batch.u.shape[-1])[src]
        logp_old = torch.as_tensor(batch.logp).reshape(-1)[src]
        adv = adv.reshape(-1)[pos]
        group_of = pos // (g * t)
        stats["steps_trained"] = float(len(pos))
        per = n if cfg.minibatch_groups <= 0 else min(cfg.minibatch_groups, n)
        # Constant G * T_max per group (Dr. GRPO), times the share of steps: subset sums / share.
        normaliser = float(per * g * t) * scale
        # Decoupled PPO's proximal log-probs are the current weights' own: with one minibatch per
        # epoch, the first forward pass computes them (no separate pass).
        fused = cfg.decoupled and per >= n
        if cfg.decoupled and not fused:
            with torch.no_grad():
                adv, logp_old, stats["behaviour_weight"] = self._decouple(
                    self.policy.log_prob(obs, u), logp_old, adv
                )
        ref_logp = None
        if self.reference is not None:
            with torch.no_grad():
                ref_logp = self.reference.log_prob(obs, u)
        agg: dict[str, list[float]] = {k: [] for k in ("loss", "kl", "entropy", "clip_fraction", "grad_norm")}
        ratio_min, ratio_max = float("inf"), 0.0
        self.policy.train()
        for _ in range(cfg.epochs):
            for rows in minibatches(group_of, n, per, self.generator):
                logp = self.policy.log_prob(obs[rows], u[rows])
                if fused and "behaviour_weight" not in stats:
                    adv, logp_old, stats["behaviour_weight"] = self._decouple(logp.detach(), logp_old, adv)
                ones = torch.ones_like(logp_old[rows])
                loss, s = L.ppo_clip_loss(logp, logp_old[rows], adv[rows], ones, normaliser, cfg.clip_eps,
                                          cfg.log_ratio_limit)  # fmt: skip
                ent = self._entropy(obs[rows], normaliser)
                kl = torch.zeros(())
                if ref_logp is not None:
                    kl = L.kl_k3(logp, ref_logp[rows], ones, normaliser)
                total = loss + cfg.kl_coef * kl - cfg.entropy_coef * ent
                self.optimizer.zero_grad()
                total.backward()
                gn = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                values = {"loss": loss, "kl": kl, "entropy": ent, "grad_norm": gn}
                values["clip_fraction"] = s["clip_fraction"]
                for k, v in values.items():
                    agg[k].append(float(v.detach()))
                ratio_min = min(ratio_min, float(s["ratio_min"]))
                ratio_max = max(ratio_max, float(s["ratio_max"]))
        self.policy.eval()
        means = {k: float(np.mean(v)) for k, v in agg.items()}
        return stats | means | {"ratio_min": ratio_min, "ratio_max": ratio_max}

    def _decouple(self, logp_prox: torch.Tensor, logp_old: torch.Tensor,
                  adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:  # fmt: skip
        """Decoupled PPO: the (M,) advantages weighed by the truncated ratio pi_prox / pi_behaviour, the
        proximal log-probs the clip is taken against, and the mean weight."""
        cfg = self.config
        log_w = (logp_prox - logp_old).clamp(-cfg.log_ratio_limit, math.log(cfg.behaviour_weight_cap))
        weight = torch.exp(log_w)
        return adv * weight, logp_prox, float(weight.mean()) if len(weight) else 1.0

    def critic_state(self) -> dict[str, Any] | None:
        """What a checkpoint must keep besides the policy and its optimiser (GRPO: nothing)."""
        return None

    def load_critic_state(self, state: dict[str, Any] | None) -> None:
        """Restores `critic_state` from a checkpoint.

        Raises:
            ValueError: The checkpoint holds a critic, but this updater has none.
        """
        if state is not None:
            raise ValueError(
                f"the checkpoint was trained with a critic (algorithm.method=ppo), this run uses "
                f"algorithm.method={self.config.method}: resume with method=ppo, or start a new run with "
                "learner.init=<checkpoint>/policy.safetensors"
            )


def sample_steps(num_steps: int, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """A uniform random subset of `num_steps` steps for an unbiased estimate of a sum over all of them.

    Args:
        num_steps: M, the steps to choose from.
        fraction: Share of them to keep, in (0, 1]; 1 keeps every step in order.
        generator: Source of the draw.

    Returns:
        The (k,) sorted indices of k = max(1, round(fraction * M)) distinct steps (all M when k == M)
        and the share k / M: (sum over the subset) / share has the full sum as its expectation, since
        every step is kept with probability k / M.
    """
    k = min(num_steps, max(1, round(fraction * num_steps)))
    if k >= num_steps:
        return torch.arange(num_steps), 1.0
    return torch.randperm(num_steps, generator=generator)[:k].sort().values, k / num_steps


def group_of_steps(real: torch.Tensor) -> torch.Tensor:
    """(M,) group index of each real step of an (N, G, T) bool `real`, in `real`'s order."""
    n, g, t = real.shape
    return torch.arange(n, device=real.device)[:, None, None].expand(n, g, t)[real]


def minibatches(group_of: torch.Tensor, n: int, per: int, generator: torch.Generator):
    """Row selections of one epoch: the `n` groups in a random order, `per` at a time.

    Yields:
        A (M,) bool mask of the real steps of each minibatch (a full slice when `per` >= `n`).
    """
    order = torch.randperm(n, generator=generator).to(group_of.device)  # one order on any device
    for i in range(0, n, per):
        yield torch.isin(group_of, order[i : i + per]) if per < n else slice(None)


def make_updater(policy: GaussianPolicy, config: GRPOConfig, reference: GaussianPolicy | None = None,
                 seed: int = 0) -> GRPOUpdater:  # fmt: skip
    """The updater `config.method` names (the one place the algorithm is chosen)."""
    if config.method == "ppo":
        from alpagym_train.ppo import PPOUpdater  # ppo.py builds on this module

        return PPOUpdater(policy, config, reference, seed)
    return GRPOUpdater(policy, config, reference, seed)
