"""PPO with a learned critic on GRPO's rollouts: the critic-based comparison point of critic-free GRPO.

`PPOUpdater` takes the same `GroupBatch`es and applies the same clipped policy step
(`GRPOUpdater.policy_step`: decoupled importance weights, KL, entropy), but its advantages come from a
value network instead of the group: GAE(gamma, lambda) per rollout, normalised over the batch. Every
rollout counts as an episode of its own, so no group is dropped for having equal returns. After the
policy epochs the critic is fitted to the lambda-returns for as many epochs, with its own Adam.

A rollout that ended in a terminal state (the AlpaSim cut, route completion) has nothing after it; one
truncated at the horizon or the end of its log bootstraps the value of what follows. The state after
the last step is not kept in the batch, so the value of the last observed state stands in for it (one
0.1 s step earlier: a difference of about one step's reward in a value worth ~1 / (1 - gamma) of them).

The critic lives only in the learner: actors roll out with the policy alone, and the critic's weights,
optimiser and update count travel in learner checkpoints (`critic_state`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from alpagym_train import losses as L
from alpagym_train.algorithm import GRPOConfig, GRPOUpdater, group_of_steps, minibatches
from alpagym_train.policy import GaussianPolicy, tanh_mlp
from alpagym_train.rollout import GroupBatch


class ValueNetwork(nn.Module):
    """State-value MLP over the flat observation, shaped like the policy's body (tanh hidden layers).

    Args:
        policy: The policy whose observation size, hidden widths and (when it normalises observations)
            fixed ``obs_mean`` / ``obs_std`` statistics the critic takes over.
    """

    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        cfg = policy.config
        self.normalize_obs = cfg.normalize_obs
        if cfg.normalize_obs:
            self.register_buffer("obs_mean", policy.obs_mean.detach().clone())
            self.register_buffer("obs_std", policy.obs_std.detach().clone())
        self.net = nn.Sequential(*tanh_mlp(cfg.obs_dim, cfg.hidden), nn.Linear(cfg.hidden[-1], 1))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(..., obs_dim) observations -> (...,) values."""
        if self.normalize_obs:
            obs = (obs - self.obs_mean) / self.obs_std
        return self.net(obs).squeeze(-1)


class PPOUpdater(GRPOUpdater):
    """GRPO's updater with GAE advantages from a critic, which it fits after each policy step.

    Args: as `GRPOUpdater`; ``config.method`` is ``"ppo"``.
    """

    def __init__(self, policy: GaussianPolicy, config: GRPOConfig, reference: GaussianPolicy | None = None,
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(policy, config, reference, seed)
        self.critic = ValueNetwork(policy).to(policy.device)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.value_lr)
        self.updates = 0  # for the critic warm-up

    def values_and_targets(self, batch: GroupBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The critic's (N, G, T) values, GAE advantages (raw) and lambda-returns of `batch`."""
        cfg = self.config
        mask = torch.as_tensor(batch.mask)
        real = mask > 0
        values = torch.zeros_like(mask)
        with torch.no_grad():  # the real steps only: padding after early ends is often half the batch
            values[real] = self.critic(torch.as_tensor(batch.obs)[real])
        last = (mask.sum(-1).long() - 1).clamp(min=0)  # index of each rollout's last real step
        truncated = 1.0 - torch.as_tensor(batch.terminated)
        bootstrap = truncated * values.gather(-1, last[..., None]).squeeze(-1)
        adv, returns = L.gae(
            torch.as_tensor(batch.rewards), values, mask, bootstrap, cfg.gamma, cfg.gae_lambda
        )
        return values, adv, returns

    def advantages(self, batch: GroupBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, G, T) batch-normalised, clipped GAE advantages and the (N,) groups kept (all of them)."""
        _, adv, _ = self.values_and_targets(batch)
        return self._normalised(adv, batch), torch.ones(adv.shape[0], dtype=torch.bool, device=adv.device)

    def _normalised(self, adv: torch.Tensor, batch: GroupBatch) -> torch.Tensor:
        adv = L.normalise_advantages(adv, torch.as_tensor(batch.mask))
        return L.clip_advantages(adv, self.config.adv_clip)

    def update(self, batch: GroupBatch) -> dict[str, float]:
        """The policy step on GAE advantages (skipped during the critic warm-up), then the critic fit."""
        values, adv, returns = self.values_and_targets(batch)
        keep = torch.ones(adv.shape[0], dtype=torch.bool, device=adv.device)
        if self.updates < self.config.critic_warmup_updates:
            stats = {"groups": float(len(keep)), "groups_kept": 0.0, "steps": float(batch.steps)}
            stats |= {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "grad_norm": 0.0}
        else:
            stats = self.policy_step(batch, self._normalised(adv, batch), keep)
        mask = torch.as_tensor(batch.mask)
        stats["explained_variance"] = float(L.explained_variance(values, returns, mask))
        stats["value_mean"] = float((values * mask).sum() / mask.sum().clamp(min=1.0))
        stats |= self._fit_critic(batch, returns)
        self.updates += 1
        return stats

    def _fit_critic(self, batch: GroupBatch, returns: torch.Tensor) -> dict[str, float]:
        """`epochs` passes of the value loss over the real steps, in the policy step's minibatches."""
        cfg = self.config
        real = torch.as_tensor(batch.mask) > 0
        obs, targets = torch.as_tensor(batch.obs)[real], returns[real]
        group_of = group_of_steps(real)
        n = real.shape[0]
        per = n if cfg.minibatch_groups <= 0 else min(cfg.minibatch_groups, n)
        losses, norms = [], []
        for _ in range(cfg.epochs):
            for rows in minibatches(group_of, n, per, self.generator):
                loss = L.value_loss(self.critic(obs[rows]), targets[rows], torch.ones_like(targets[rows]))
                self.critic_optimizer.zero_grad()
                loss.backward()
                norms.append(
                    float(torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm))
                )
                self.critic_optimizer.step()
                losses.append(float(loss.detach()))
        return {"value_loss": sum(losses) / len(losses), "value_grad_norm": sum(norms) / len(norms)}

    def critic_state(self) -> dict[str, Any]:
        """The critic's weights, its optimiser and the update count (for a checkpoint)."""
        return {
            "weights": {k: v.detach().clone() for k, v in self.critic.state_dict().items()},
            "optimizer": self.critic_optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_critic_state(self, state: dict[str, Any] | None) -> None:
        """Restores `critic_state`; None (a GRPO checkpoint) keeps the fresh critic and its warm-up."""
        if state is None:
            return
        self.critic.load_state_dict(state["weights"])
        self.critic_optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
