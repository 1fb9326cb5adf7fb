"""GRPO loss functions against hand-computed values."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from alpagym_train import losses as L  # noqa: E402


def test_group_advantages_by_hand():
    r = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    # group 0: mean 2, population std 1 -> (-1, 1); group 1: zero variance -> 0.
    torch.testing.assert_close(L.group_advantages(r, "group", eps=0.0)[0], torch.tensor([-1.0, 1.0]))
    torch.testing.assert_close(L.group_advantages(r, "group")[1], torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(L.group_advantages(r, "none"), torch.tensor([[-1.0, 1.0], [0.0, 0.0]]))
    # batch: centred values (-1, 1, 0, 0) have population std sqrt(0.5).
    expect = torch.tensor([[-1.0, 1.0], [0.0, 0.0]]) / math.sqrt(0.5)
    torch.testing.assert_close(L.group_advantages(r, "batch", eps=0.0), expect)
    with pytest.raises(ValueError, match="scale"):
        L.group_advantages(r, "rank")


def test_reward_to_go_and_step_advantages():
    rewards = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 1.0, 9.0]]])
    mask = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]])  # second rollout ended after 2 steps
    rtg = L.reward_to_go(rewards, mask)
    torch.testing.assert_close(rtg, torch.tensor([[[6.0, 5.0, 3.0], [1.0, 1.0, 0.0]]]))
    adv = L.step_advantages(rewards, mask, "none")
    # baselines per step: 3.5, 3.0, 1.5 -> (2.5, 2, 1.5) and (-2.5, -2, masked)
    torch.testing.assert_close(adv, torch.tensor([[[2.5, 2.0, 1.5], [-2.5, -2.0, 0.0]]]))


def test_outcome_advantages_broadcast_and_filter_and_clip():
    r = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    mask = torch.ones(2, 2, 3)
    adv = L.outcome_advantages(r, mask, "none")
    assert adv.shape == (2, 2, 3) and torch.all(adv[0, 0] == -1.0) and torch.all(adv[0, 1] == 1.0)
    assert L.nonzero_variance_groups(r).tolist() == [True, False]
    torch.testing.assert_close(
        L.clip_advantages(torch.tensor([-9.0, 2.0, 7.0])), torch.tensor([-5.0, 2.0, 5.0])
    )


def test_ppo_clip_loss_by_hand():
    logp_old = torch.zeros(1, 1, 3)
    logp = torch.log(torch.tensor([[[1.5, 0.9, 1.1]]]))  # ratios 1.5, 0.9, 1.1
    adv = torch.tensor([[[1.0, -1.0, 2.0]]])
    mask = torch.tensor([[[1.0, 1.0, 1.0]]])
    loss, stats = L.ppo_clip_loss(logp, logp_old, adv, mask, normaliser=3.0)
    # min(1.5*1, 1.2*1) = 1.2; min(0.9*-1, 0.9*-1) = -0.9; min(1.1*2, 1.1*2) = 2.2
    assert loss.item() == pytest.approx(-(1.2 - 0.9 + 2.2) / 3.0)
    assert stats["clip_fraction"].item() == pytest.approx(1 / 3)
    assert stats["ratio_min"].item() == pytest.approx(0.9) and stats["ratio_max"].item() == pytest.approx(1.5)
    # masked steps count for nothing; the normaliser stays constant
    mask2 = torch.tensor([[[1.0, 0.0, 0.0]]])
    loss2, _ = L.ppo_clip_loss(logp, logp_old, adv, mask2, normaliser=3.0)
    assert loss2.item() == pytest.approx(-1.2 / 3.0)


def test_log_ratio_is_clamped():
    loss, stats = L.ppo_clip_loss(torch.full((1, 1, 1), 50.0), torch.zeros(1, 1, 1), -torch.ones(1, 1, 1),
                                  torch.ones(1, 1, 1), 1.0)  # fmt: skip
    assert stats["ratio_max"].item() == pytest.approx(math.exp(5.0))
    assert loss.item() == pytest.approx(math.exp(5.0))


def test_kl_k3_and_entropy():
    logp = torch.log(torch.tensor([[[0.5, 0.25]]]))
    ref = torch.log(torch.tensor([[[0.25, 0.25]]]))
    mask = torch.ones(1, 1, 2)
    # d = log(0.5) and 0: exp(d) - d - 1 = 0.5 + log 2 - 1, and 0
    assert L.kl_k3(logp, ref, mask, 2.0).item() == pytest.approx((0.5 + math.log(2) - 1) / 2)
    assert L.kl_k3(ref, ref, mask, 2.0).item() == 0.0
    assert L.entropy_bonus(torch.tensor([[[1.0, 3.0]]]), mask, 2.0).item() == pytest.approx(2.0)


def test_gae_by_hand_with_early_ends_and_bootstrap():
    gamma, lam = 0.5, 0.5
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 7.0]])
    values = torch.tensor(
        [[1.0, 1.0, 2.0], [2.0, 1.0, 100.0]]
    )  # the padded step's 7 and 100 count for nothing
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # rollout 0 truncated at the horizon (bootstrap 4); rollout 1 terminated after 2 steps (bootstrap 0)
    adv, ret = L.gae(rewards, values, mask, torch.tensor([4.0, 0.0]), gamma, lam)
    # rollout 0: deltas 1 + .5*1 - 1 = .5, 2 + .5*2 - 1 = 2, 3 + .5*4 - 2 = 3; A = 3, 2 + .25*3, .5 + .25*2.75
    # rollout 1: deltas 1 + .5*1 - 2 = -.5, 1 + .5*0 - 1 = 0; A = 0, -.5
    torch.testing.assert_close(adv, torch.tensor([[1.1875, 2.75, 3.0], [-0.5, 0.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[2.1875, 3.75, 5.0], [1.5, 1.0, 0.0]]))
    # the same rollout 1 truncated instead: its last step bootstraps V = 2
    adv_t, _ = L.gae(rewards, values, mask, torch.tensor([4.0, 2.0]), gamma, lam)
    torch.testing.assert_close(adv_t[1], torch.tensor([-0.25, 1.0, 0.0]))  # delta_1 = 1 + 1 - 1


def test_gae_with_gamma_and_lambda_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 1.0, 9.0]]])
    mask = torch.tensor([[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]])
    values = torch.tensor([[[0.5, -1.0, 2.0], [3.0, 0.0, 5.0]]])
    adv, ret = L.gae(rewards, values, mask, torch.zeros(1, 2), gamma=1.0, lam=1.0)
    torch.testing.assert_close(ret, L.reward_to_go(rewards, mask))
    torch.testing.assert_close(adv, (L.reward_to_go(rewards, mask) - values) * mask)


def test_normalised_advantages_value_loss_and_explained_variance():
    adv = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    expect = torch.tensor([[-1.0, 0.0, 1.0, 0.0]]) / math.sqrt(2 / 3)  # padding ignored and zeroed
    torch.testing.assert_close(L.normalise_advantages(adv, mask, eps=0.0), expect)
    values, returns = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert L.value_loss(values, returns, torch.ones(2)).item() == pytest.approx(0.5 * (1 + 4) / 2)
    assert L.value_loss(values, returns, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)
    r, ones = torch.tensor([1.0, 2.0, 3.0, 9.0]), torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert L.explained_variance(r, r, ones).item() == pytest.approx(1.0)
    assert L.explained_variance(torch.full((4,), 2.0), r, ones).item() == pytest.approx(0.0)
    assert L.explained_variance(-r, r, ones).item() < 0
    assert math.isnan(L.explained_variance(r, torch.ones(4), ones).item())
