"""The Gaussian policy: tanh log-probabilities, checkpoints, numpy inference."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_train.inference import NumpyPolicy  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, RolloutPolicy, load, save  # noqa: E402


@pytest.mark.parametrize("state_dependent", [False, True])
def test_sampled_log_prob_matches_recomputed_and_change_of_variables(state_dependent):
    torch.manual_seed(0)
    pi = GaussianPolicy(PolicyConfig(6, 2, (16,), state_dependent_std=state_dependent, init_log_std=-0.5))
    obs = torch.randn(5, 6)
    a, u, logp = pi.sample(obs)
    torch.testing.assert_close(logp, pi.log_prob(obs, u))
    assert torch.all(a.abs() < 1)
    # By hand for one element: Gaussian log-density of u minus log|d tanh/du|.
    mu, log_std = pi(obs)
    gauss = torch.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1)
    torch.testing.assert_close(logp, gauss - torch.log(1 - torch.tanh(u) ** 2).sum(-1), rtol=1e-4, atol=1e-4)


def test_log_prob_stays_finite_for_saturated_actions():
    pi = GaussianPolicy(PolicyConfig(3, 2, (8,)))
    u = torch.tensor([[30.0, -30.0]])
    assert torch.isfinite(pi.log_prob(torch.zeros(1, 3), u)).all()


def test_entropy_of_the_pre_squash_gaussian():
    pi = GaussianPolicy(PolicyConfig(3, 2, (8,), init_log_std=0.0))
    assert pi.entropy(torch.zeros(1, 3)).item() == pytest.approx(2 * 0.5 * math.log(2 * math.pi * math.e))


@pytest.mark.parametrize("normalize", [False, True])
def test_checkpoint_round_trip_and_numpy_inference_agree(tmp_path, normalize):
    torch.manual_seed(1)
    pi = GaussianPolicy(PolicyConfig(10, 2, (32, 32), normalize_obs=normalize))
    with torch.no_grad():
        pi.mean.weight.normal_()
    if normalize:
        data = torch.randn(100, 10) * torch.linspace(0.001, 3.0, 10) + 5.0
        pi.set_obs_normalizer(data)
        assert pi.obs_std.min().item() == pytest.approx(0.02)  # the floor of a nearly constant feature
        z = (data - pi.obs_mean) / pi.obs_std
        assert z[:, 5:].std(0).numpy() == pytest.approx(np.ones(5), rel=1e-4)
    path = save(tmp_path / "ckpt" / "policy.safetensors", pi, {"action_type": "control", "env_kwargs": {}})
    back, meta = load(path)
    obs = np.random.default_rng(0).normal(size=(7, 10)).astype(np.float32)
    np.testing.assert_array_equal(back.act(obs), pi.act(obs))
    np.testing.assert_allclose(NumpyPolicy.load(path)(obs), pi.act(obs), atol=1e-5)
    assert meta["action_type"] == "control" and meta["policy"]["hidden"] == [32, 32]
    with pytest.raises(ValueError, match="expects 10"):
        NumpyPolicy.load(path)(np.zeros((1, 9), np.float32))


def test_bad_sidecars_are_named(tmp_path):
    pi = GaussianPolicy(PolicyConfig(4, 2, (8,)))
    path = save(tmp_path / "p.safetensors", pi)
    path.with_suffix(".json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="field 'format'"):
        load(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="no sidecar"):
        NumpyPolicy.load(path)


def test_rollout_policy_is_reproducible_with_a_seeded_generator():
    pi = GaussianPolicy(PolicyConfig(4, 2, (8,)))
    obs = np.zeros((3, 4), np.float32)
    a1 = RolloutPolicy(pi, np.random.default_rng(5))(obs)
    a2 = RolloutPolicy(pi, np.random.default_rng(5))(obs)
    for x, y in zip(a1, a2, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("state_dependent_std, normalize_obs", [(False, False), (True, True)])
def test_rollout_policy_samples_the_torch_policys_distribution(state_dependent_std, normalize_obs):
    torch.manual_seed(0)
    cfg = PolicyConfig(6, 2, (16, 8), state_dependent_std=state_dependent_std, normalize_obs=normalize_obs)
    pi = GaussianPolicy(cfg).eval()
    if normalize_obs:
        pi.set_obs_normalizer(torch.randn(100, 6) * 3 + 1)
    obs = np.random.default_rng(1).normal(size=(4000, 6)).astype(np.float32)
    a, u, logp = RolloutPolicy(pi, np.random.default_rng(2))(obs)
    assert a.dtype == u.dtype == logp.dtype == np.float32 and a.shape == u.shape == (4000, 2)
    np.testing.assert_array_equal(a, np.tanh(u))
    with torch.no_grad():
        mu, log_std = pi(torch.as_tensor(obs))
        expected = pi.log_prob(torch.as_tensor(obs), torch.as_tensor(u)).numpy()
    np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-4)
    z = (u - mu.numpy()) / np.exp(log_std.numpy())  # the noise: standard normal, independent of obs
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_rollout_policy_sees_in_place_weight_updates():
    pi = GaussianPolicy(PolicyConfig(4, 2, (8,))).eval()
    sampler, obs = RolloutPolicy(pi, np.random.default_rng(0)), np.ones((2, 4), np.float32)
    sampler(obs)
    with torch.no_grad():
        pi.mean.bias.fill_(3.0)  # as an optimiser step or load_state_dict does
        pi.log_std.fill_(-5.0)
    _, u, _ = sampler(obs)
    np.testing.assert_allclose(u, pi(torch.as_tensor(obs))[0].detach().numpy(), atol=0.05)
