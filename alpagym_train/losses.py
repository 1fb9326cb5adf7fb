"""GRPO's and PPO's pure loss functions: group-relative and GAE advantages, the clipped surrogate, KL,
entropy, the critic's value loss.

Shapes: a batch holds N groups of G rollouts of at most T steps, padded, with a (N, G, T) `mask`
that is 1 on real steps. Every function is pure (tensors in, tensors out) and tested against
hand-computed values in `tests/train/test_losses.py`.
"""

from __future__ import annotations

import torch

SCALES = ("group", "batch", "none")


def group_advantages(returns: torch.Tensor, scale: str = "group", eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages of episode returns.

    Args:
        returns: (N, G) return of each rollout.
        scale: ``"group"``: (R - mean_g) / (std_g + eps); ``"batch"``: divide by the batch std of
            R - mean_g instead; ``"none"``: R - mean_g (Dr. GRPO). Stds are population stds.
        eps: Added to the std.

    Returns:
        (N, G) advantages.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    centred = returns - returns.mean(dim=1, keepdim=True)
    if scale == "group":
        return centred / (returns.std(dim=1, unbiased=False, keepdim=True) + eps)
    if scale == "batch":
        return centred / (centred.std(unbiased=False) + eps)
    return centred


def reward_to_go(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Undiscounted reward-to-go of each step, (N, G, T), zero on padding.

    Args:
        rewards: (N, G, T) per-step rewards.
        mask: (N, G, T) 1 on real steps.
    """
    r = rewards * mask
    return torch.flip(torch.cumsum(torch.flip(r, dims=[-1]), dim=-1), dims=[-1]) * mask


def step_advantages(rewards: torch.Tensor, mask: torch.Tensor, scale: str = "group", eps: float = 1e-6):
    """Per-step group-relative advantages from reward-to-go: the group baseline at each step.

    At step t the baseline and std are taken over the group members still running at t
    (members that ended count with reward-to-go 0).

    Returns:
        (N, G, T) advantages, zero on padding.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    rtg = reward_to_go(rewards, mask)
    centred = (rtg - rtg.mean(dim=1, keepdim=True)) * mask
    if scale == "group":
        centred = centred / (rtg.std(dim=1, unbiased=False, keepdim=True) + eps)
    elif scale == "batch":
        n = mask.sum().clamp(min=1.0)
        centred = centred / (torch.sqrt((centred**2).sum() / n) + eps)
    return centred * mask


def outcome_advantages(returns: torch.Tensor, mask: torch.Tensor, scale: str = "group", eps: float = 1e-6):
    """Each rollout's group-relative advantage broadcast over its steps, (N, G, T)."""
    return group_advantages(returns, scale, eps)[..., None] * mask


def nonzero_variance_groups(returns: torch.Tensor, tol: float = 1e-8) -> torch.Tensor:
    """(N,) bool: groups whose returns differ (a group with equal returns carries no signal)."""
    return returns.std(dim=1, unbiased=False) > tol


def clip_advantages(adv: torch.Tensor, limit: float = 5.0) -> torch.Tensor:
    return adv.clamp(-limit, limit)


def ppo_clip_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    normaliser: float,
    clip_eps: float = 0.2,
    log_ratio_limit: float = 5.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-step PPO-clip surrogate against the stored behaviour log-probabilities.

    loss = -sum(min(r A, clip(r, 1 - eps, 1 + eps) A) * mask) / normaliser with
    r = exp(clamp(logp - logp_old, -limit, limit)). A constant `normaliser` (G * T_max, Dr. GRPO)
    weighs every step the same whatever the rollout lengths.

    Args:
        logp, logp_old: (N, G, T) log-probabilities of the taken actions now and at collection.
        adv: (N, G, T) advantages.
        mask: (N, G, T) 1 on real steps.
        normaliser: The constant divisor.
        clip_eps: PPO's epsilon.
        log_ratio_limit: Clamp of the log-ratio before exponentiation.

    Returns:
        The loss and statistics: clip fraction, ratio min and max over real steps.
    """
    log_ratio = (logp - logp_old).clamp(-log_ratio_limit, log_ratio_limit)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv
    loss = -(torch.minimum(unclipped, clipped) * mask).sum() / normaliser
    real = mask > 0
    with torch.no_grad():
        stats = {
            "clip_fraction": ((ratio - 1.0).abs() > clip_eps)[real].float().mean(),
            "ratio_min": ratio[real].min() if real.any() else ratio.new_tensor(1.0),
            "ratio_max": ratio[real].max() if real.any() else ratio.new_tensor(1.0),
        }
    return loss, stats


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor, normaliser: float) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || pi_ref): exp(d) - d - 1 with d = logp_ref - logp, >= 0."""
    d = logp_ref - logp
    return ((torch.exp(d) - d - 1.0) * mask).sum() / normaliser


def entropy_bonus(entropy: torch.Tensor, mask: torch.Tensor, normaliser: float) -> torch.Tensor:
    """Mean per-step entropy under the same constant normaliser (subtract coef * this from the loss)."""
    return (entropy * mask).sum() / normaliser


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    bootstrap: torch.Tensor,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) of padded rollouts.

    delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1}, where after a rollout's
    last real step V_{t+1} is `bootstrap` and A_{t+1} is 0.

    Args:
        rewards: (..., T) per-step rewards.
        values: (..., T) critic values of the states the actions were taken in.
        mask: (..., T) 1 on real steps, a prefix of each rollout.
        bootstrap: (...,) value of the state after the last real step: 0 where the episode
            terminated, the critic's estimate where it was truncated.
        gamma: Discount per step.
        lam: GAE's lambda (0: one-step TD, 1: discounted return minus V).

    Returns:
        Advantages and lambda-returns (the critic's targets, advantages + values), (..., T) each,
        zero on padding.
    """
    t_max = rewards.shape[-1]
    running = torch.zeros_like(bootstrap)
    out = [running] * t_max
    for t in reversed(range(t_max)):
        nxt_real = mask[..., t + 1] if t + 1 < t_max else torch.zeros_like(bootstrap)
        next_value = torch.where(nxt_real > 0, values[..., min(t + 1, t_max - 1)], bootstrap)
        delta = rewards[..., t] + gamma * next_value - values[..., t]
        running = (delta + gamma * lam * nxt_real * running) * mask[..., t]
        out[t] = running
    adv = torch.stack(out, dim=-1)
    return adv, (adv + values) * mask


def normalise_advantages(adv: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(adv - mean) / (std + eps) over the real steps of the whole batch, zero on padding."""
    n = mask.sum().clamp(min=1.0)
    mean = (adv * mask).sum() / n
    std = torch.sqrt((((adv - mean) * mask) ** 2).sum() / n)
    return (adv - mean) / (std + eps) * mask


def value_loss(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """0.5 * mean squared error of the critic's values against their targets over real steps."""
    return 0.5 * (((values - returns) ** 2) * mask).sum() / mask.sum().clamp(min=1.0)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Var(returns - values) / Var(returns) over real steps: 1 a perfect critic, 0 one no better
    than a constant, negative a worse one; NaN when the returns do not vary."""
    real = mask > 0
    r, v = returns[real], values[real]
    var = r.var(unbiased=False)
    return 1.0 - (r - v).var(unbiased=False) / var if var > 0 else var.new_tensor(float("nan"))
