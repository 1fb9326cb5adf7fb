"""The policy loss on a random subset of steps (``algorithm.step_fraction``): the full loss at 1, an
unbiased estimate of it below, and a checked setting."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_train import losses as L  # noqa: E402
from alpagym_train.algorithm import GRPOConfig, GRPOUpdater, sample_steps  # noqa: E402
from alpagym_train.grpo.config import from_plain  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig  # noqa: E402
from alpagym_train.rollout import GroupBatch  # noqa: E402

N, G, T, D = 3, 4, 12, 6


@pytest.fixture(scope="module")
def batch() -> GroupBatch:
    """Groups of rollouts of different lengths, one group with equal returns (filtered out)."""
    rng = np.random.default_rng(0)
    mask = (np.arange(T)[None, None] < rng.integers(2, T + 1, size=(N, G))[..., None]).astype(np.float32)
    rewards = rng.normal(size=(N, G, T)).astype(np.float32) * mask
    rewards[1] = 0.0
    return GroupBatch(
        obs=rng.normal(size=(N, G, T, D)).astype(np.float32),
        u=rng.normal(0.0, 0.3, size=(N, G, T, 2)).astype(np.float32),
        logp=(rng.normal(size=(N, G, T)) * mask).astype(np.float32),
        rewards=rewards,
        mask=mask,
        scene_score=np.zeros((N, G), np.float32),
        scenario_ids=np.arange(N),
        terminated=np.zeros((N, G), np.float32),
    )


@pytest.fixture(scope="module")
def policy() -> GaussianPolicy:
    torch.manual_seed(0)
    return GaussianPolicy(PolicyConfig(D, 2, (16,), init_log_std=-0.5))


def _loss(policy: GaussianPolicy, batch: GroupBatch, fraction: float, seed: int = 0) -> dict[str, float]:
    """The statistics of one update (one epoch, plain PPO-clip) on a copy of `policy`: its ``loss`` is
    the loss at `policy`'s weights, before the step."""
    copy = GaussianPolicy(policy.config)
    copy.load_state_dict(policy.state_dict())
    cfg = GRPOConfig(epochs=1, decoupled=False, step_fraction=fraction)
    return GRPOUpdater(copy, cfg, seed=seed).update(batch)


def _full_loss(policy: GaussianPolicy, batch: GroupBatch) -> float:
    """The surrogate over every real step of the kept groups, from the padded arrays and the mask."""
    updater = GRPOUpdater(policy, GRPOConfig())
    adv, keep = updater.advantages(batch)
    mask = torch.as_tensor(batch.mask)[keep]
    with torch.no_grad():
        logp = policy.log_prob(torch.as_tensor(batch.obs)[keep], torch.as_tensor(batch.u)[keep])
    n, g, t = mask.shape
    loss, _ = L.ppo_clip_loss(logp, torch.as_tensor(batch.logp)[keep], adv, mask, float(n * g * t))
    return float(loss)


def test_sample_steps_draws_distinct_steps_and_their_share():
    gen = torch.Generator().manual_seed(0)
    idx, share = sample_steps(10, 1.0, gen)
    assert torch.equal(idx, torch.arange(10)) and share == 1.0
    idx, share = sample_steps(10, 0.3, gen)
    assert len(idx) == 3 and len(set(idx.tolist())) == 3 and torch.equal(idx, idx.sort().values)
    assert share == pytest.approx(0.3) and 0 <= int(idx.min()) and int(idx.max()) < 10
    assert len(sample_steps(10, 0.01, gen)[0]) == 1  # at least one step


def test_each_step_is_kept_with_the_share_so_the_scaled_subset_sum_is_unbiased():
    gen = torch.Generator().manual_seed(1)
    x = torch.tensor([3.0, -1.0, 0.5, 7.0, 2.0, -4.0])
    draws = 4000
    counts, estimates = torch.zeros(6), []
    for _ in range(draws):
        idx, share = sample_steps(6, 1 / 3, gen)
        counts[idx] += 1
        estimates.append(float(x[idx].sum()) / share)
    assert torch.allclose(counts / draws, torch.full((6,), 1 / 3), atol=0.03)
    se = np.std(estimates) / math.sqrt(draws)
    assert abs(np.mean(estimates) - float(x.sum())) < 4 * se


def test_fraction_one_is_exactly_the_full_loss(batch, policy):
    stats = _loss(policy, batch, 1.0)
    assert stats["loss"] == pytest.approx(_full_loss(policy, batch), rel=1e-5)
    assert stats["steps_trained"] == float(batch.mask[[0, 2]].sum())  # the real steps of the kept groups


def test_a_fraction_of_the_steps_estimates_the_full_loss_without_bias(batch, policy):
    real = float(batch.mask[[0, 2]].sum())
    losses = []
    for seed in range(300):
        stats = _loss(policy, batch, 0.25, seed)
        assert stats["steps_trained"] == round(0.25 * real)
        losses.append(stats["loss"])
    full = _full_loss(policy, batch)
    se = np.std(losses) / math.sqrt(len(losses))
    assert np.std(losses) > 0  # the subsets differ
    assert abs(np.mean(losses) - full) < 4 * se


def test_step_fraction_is_checked():
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError, match="step_fraction must be in"):
            GRPOConfig(step_fraction=bad)
    with pytest.raises(ValueError, match=r"algorithm: step_fraction must be in \(0, 1\], got 0.0"):
        from_plain({"algorithm": {"step_fraction": 0.0}}).grpo_config()
    assert from_plain({"algorithm": {"step_fraction": 0.5}}).grpo_config().step_fraction == 0.5
