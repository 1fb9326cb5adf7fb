"""The Gaussian driving policy over the flat observation, and its checkpoints.

Actions live in [-1, 1]^A (both action types are normalised Boxes). The policy samples a
pre-squash Gaussian u ~ N(mu(obs), sigma) and acts a = tanh(u); log-probabilities include the
tanh change of variables, log pi(a) = log N(u) - sum log(1 - tanh(u)^2), computed stably as
2 (log 2 - u - softplus(-2u)). Rollouts store u (not a) so the learner recomputes exact
log-probabilities. `act(obs, deterministic=True)` returns tanh(mu), the evaluation action.

Checkpoints are a safetensors file of the weights plus a JSON sidecar (``.json`` beside it) with
the architecture, observation layout, action type, env arguments and versions; see `save` / `load`.
`alpagym_train.inference` runs them with numpy alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from alpagym_train.inference import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, read_sidecar
from alpagym_train.inference import tanh_mlp as tanh_mlp_numpy


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of `GaussianPolicy`.

    Attributes:
        obs_dim: Flat observation size.
        act_dim: Action size.
        hidden: Hidden layer widths (tanh activations).
        state_dependent_std: Predict log-std from the observation (else one learned vector).
        init_log_std: Initial log-std.
        log_std_min: Lower clamp of the log-std.
        log_std_max: Upper clamp of the log-std.
        normalize_obs: Standardise the observation with fixed per-feature statistics (``obs_mean``,
            ``obs_std`` buffers, set from the training data by `set_obs_normalizer`) before the first
            layer. The flat observation mixes metres-scaled features of very different spread (a lane
            offset varies by ~0.03, a slot distance by ~0.5), and the small ones matter most for
            lane keeping.
    """

    obs_dim: int
    act_dim: int
    hidden: tuple[int, ...] = (256, 256)
    state_dependent_std: bool = False
    init_log_std: float = -1.0
    log_std_min: float = -5.0
    log_std_max: float = 1.0
    normalize_obs: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.obs_dim < 1 or self.act_dim < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"invalid policy sizes: {self}")


# Floor of the observation normaliser's per-feature std (observation units).
OBS_MIN_STD = 0.02


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """sum log(1 - tanh(u)^2) over the last axis, stable for large |u|."""
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)


def tanh_mlp(in_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Linear + tanh layers of the given widths (the policy's body; the critic's too)."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.Tanh()]
        in_dim = h
    return nn.Sequential(*layers)


class GaussianPolicy(nn.Module):
    """tanh-squashed Gaussian MLP policy."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        if config.normalize_obs:
            self.register_buffer("obs_mean", torch.zeros(config.obs_dim))
            self.register_buffer("obs_std", torch.ones(config.obs_dim))
        self.body = tanh_mlp(config.obs_dim, config.hidden)
        width = config.hidden[-1]
        self.mean = nn.Linear(width, config.act_dim)
        nn.init.zeros_(self.mean.bias)
        nn.init.uniform_(self.mean.weight, -1e-3, 1e-3)
        if config.state_dependent_std:
            self.log_std_head = nn.Linear(width, config.act_dim)
            nn.init.zeros_(self.log_std_head.weight)
            nn.init.constant_(self.log_std_head.bias, config.init_log_std)
        else:
            self.log_std = nn.Parameter(torch.full((config.act_dim,), config.init_log_std))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., obs_dim) -> pre-squash mean and clamped log-std, (..., act_dim) each."""
        if self.config.normalize_obs:
            obs = (obs - self.obs_mean) / self.obs_std
        h = self.body(obs)
        mu = self.mean(h)
        log_std = self.log_std_head(h) if self.config.state_dependent_std else self.log_std.expand_as(mu)
        return mu, log_std.clamp(self.config.log_std_min, self.config.log_std_max)

    def set_obs_normalizer(self, observations: torch.Tensor, min_std: float = OBS_MIN_STD) -> None:
        """Fixes the observation statistics from (M, obs_dim) training observations.

        Args:
            observations: Samples of the observations the policy will see (e.g. the BC data).
            min_std: Floor of each feature's std, so a (nearly) constant feature is not blown up
                when a closed-loop state moves it.
        """
        if not self.config.normalize_obs:
            raise ValueError("set_obs_normalizer needs a policy built with normalize_obs=True")
        with torch.no_grad():
            self.obs_mean.copy_(observations.mean(0))
            self.obs_std.copy_(observations.std(0).clamp_min(min_std))

    def log_prob(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log pi(tanh(u) | obs), (...,)."""
        mu, log_std = self(obs)
        gauss = (-0.5 * ((u - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return gauss - _tanh_log_det(u)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """Entropy of the pre-squash Gaussian, (...,) (the squashed one has no closed form)."""
        _, log_std = self(obs)
        return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None):
        """Samples actions: returns (a, u, log pi(a)) with a = tanh(u), shapes (..., A), (..., A), (...,)."""
        mu, log_std = self(obs)
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        u = mu + log_std.exp() * noise
        gauss = (-0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return torch.tanh(u), u, gauss - _tanh_log_det(u)

    @property
    def device(self) -> torch.device:
        """The device the policy's weights are on."""
        return self.mean.weight.device

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """(B, obs_dim) or (obs_dim,) numpy observations -> float32 actions in [-1, 1] (numpy, whatever
        the policy's device)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        if deterministic:
            a = torch.tanh(self(x)[0])
        else:
            a = self.sample(x)[0]
        return a.cpu().numpy().astype(np.float32)


def save(path: str | Path, policy: GaussianPolicy, meta: dict[str, Any] | None = None) -> Path:
    """Writes ``path`` (safetensors weights) and ``path.with_suffix('.json')`` (the sidecar).

    Args:
        path: Checkpoint file, e.g. ``runs/x/policy.safetensors``.
        policy: The policy.
        meta: Extra sidecar entries: ``action_type``, ``env_kwargs``, ``obs_layout``, training info.

    Returns:
        The weights path.
    """
    from safetensors.torch import save_file

    import alpagym_env

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    save_file(state, str(path))
    sidecar = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "policy": asdict(policy.config),
        "versions": {"alpagym": alpagym_env.__version__, "torch": torch.__version__, "numpy": np.__version__},
        **(meta or {}),
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True))
    return path


def load(path: str | Path) -> tuple[GaussianPolicy, dict[str, Any]]:
    """Loads a checkpoint written by `save`: the policy (eval mode) and its sidecar."""
    from safetensors.torch import load_file

    meta = read_sidecar(path)
    policy = GaussianPolicy(PolicyConfig(**meta["policy"]))
    policy.load_state_dict(load_file(str(path)))
    return policy.eval(), meta


@dataclass
class RolloutPolicy:
    """Batched sampling for rollouts, numpy in and out: `GaussianPolicy.sample` in float32 numpy.

    Rollouts sample a few rows per step, where torch's fixed cost per op dominates: 16 rows of the
    256 x 256 policy take about 60 us in numpy against 120 us in torch, and 90 against 210 us when an
    engine step between calls has evicted the caches. The pass reads numpy views of the policy's own
    CPU parameters, so optimiser steps and `load_state_dict` (both in place) are seen at the next call
    without a copy; a policy on another device is copied to the CPU at each call. The log-probabilities
    equal `GaussianPolicy.log_prob` of the returned u to float32 rounding (tested).

    Attributes:
        policy: The policy sampled.
        generator: The source of the action noise.
    """

    policy: GaussianPolicy
    generator: np.random.Generator = field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        if not isinstance(self.generator, np.random.Generator):
            raise TypeError(
                f"RolloutPolicy samples with numpy: generator must be a numpy Generator "
                f"(np.random.default_rng(seed)), got {type(self.generator).__name__}"
            )
        self._views, self._at = {}, None

    def _params(self) -> dict[str, np.ndarray]:
        """The parameters as numpy: the cached views while the policy's storage is the one viewed."""
        if self.policy.device.type != "cpu":
            return {k: v.detach().cpu().numpy() for k, v in self.policy.state_dict().items()}
        at = self.policy.mean.weight.data_ptr()
        if at != self._at:  # first call, or the parameters were replaced
            self._views, self._at = {k: v.detach().numpy() for k, v in self.policy.state_dict().items()}, at
        return self._views

    def __call__(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, D) obs -> actions (B, A) float32, pre-squash u (B, A) float32, log-probs (B,) float32."""
        p, cfg = self._params(), self.policy.config
        layers = [(p[f"body.{2 * i}.weight"].T, p[f"body.{2 * i}.bias"]) for i in range(len(cfg.hidden))]
        norm = (p["obs_mean"], p["obs_std"]) if cfg.normalize_obs else None
        h = tanh_mlp_numpy(np.asarray(obs, dtype=np.float32), layers, norm)
        mu = h @ p["mean.weight"].T + p["mean.bias"]
        if cfg.state_dependent_std:
            log_std = h @ p["log_std_head.weight"].T + p["log_std_head.bias"]
        else:
            log_std = np.broadcast_to(p["log_std"], mu.shape)
        log_std = np.clip(log_std, cfg.log_std_min, cfg.log_std_max)
        noise = self.generator.standard_normal(mu.shape, dtype=np.float32)
        u = mu + np.exp(log_std) * noise
        gauss = (-0.5 * noise**2 - log_std - np.float32(0.5 * math.log(2 * math.pi))).sum(-1)
        log_det = (2.0 * (np.float32(math.log(2.0)) - u - np.logaddexp(np.float32(0.0), -2.0 * u))).sum(-1)
        return np.tanh(u), u, (gauss - log_det).astype(np.float32)
