"""Numpy-only inference of policy checkpoints: evaluation needs neither torch nor the trainer.

`NumpyPolicy.load(path)` reads the safetensors weights with `safetensors.numpy` and the JSON
sidecar, and maps (B, D) float32 observations to the deterministic action tanh(mu(obs)).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CHECKPOINT_FORMAT = "alpagym.policy"
CHECKPOINT_VERSION = 1


def read_sidecar(path: str | Path) -> dict:
    """The checkpoint's JSON sidecar; raises ValueError when it is missing or not a policy of ours."""
    side = Path(path).with_suffix(".json")
    if not side.exists():
        raise ValueError(f"{path}: no sidecar {side.name} beside the weights")
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{side}: not valid JSON ({e})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{side}: field 'format' is {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{side}: field 'version' is {meta.get('version')!r}, expected {CHECKPOINT_VERSION}")
    return meta


def _load_for_eval(spec: str, config) -> NumpyPolicy:
    """Evaluation loader: the checkpoint's deterministic policy, checked against the env config."""
    policy = NumpyPolicy.load(spec)
    action_type = policy.meta.get("action_type", "control")
    if action_type != config.action_type:
        raise ValueError(f"{spec}: a {action_type!r} policy cannot drive a {config.action_type!r} env")
    return policy


def _load_sb3_for_eval(spec: str, config):
    """Evaluation loader of SB3 ``.zip`` models; stable-baselines3 is imported only when one is loaded."""
    from alpagym_train.baselines.sb3 import load_sb3_policy

    return load_sb3_policy(spec, config)


def register_loader() -> None:
    """Entry point (``alpagym.policy_loaders``): lets ``alpagym_env.evaluate`` load ``.safetensors``
    checkpoints and the ``.zip`` models of `alpagym_train.baselines.sb3`."""
    from alpagym_env.evaluation.policy_spec import _LOADERS, register_policy_loader

    if not any(m == ".safetensors" for m, _ in _LOADERS):
        register_policy_loader(".safetensors", _load_for_eval)
    if not any(m == ".zip" for m, _ in _LOADERS):
        register_policy_loader(".zip", _load_sb3_for_eval)


class NumpyPolicy:
    """The deterministic action of a `GaussianPolicy` checkpoint, in float32 numpy.

    Args:
        weights: Layer matrices and biases as in the torch state dict.
        meta: The checkpoint sidecar.
    """

    def __init__(self, weights: dict[str, np.ndarray], meta: dict) -> None:
        self.meta = meta
        self.action_type = meta.get("action_type", "control")
        hidden = meta["policy"]["hidden"]
        # nn.Sequential(Linear, Tanh, Linear, Tanh, ...): Linear layers sit at even indices.
        self.layers = [
            (weights[f"body.{2 * i}.weight"].T.copy(), weights[f"body.{2 * i}.bias"])
            for i in range(len(hidden))
        ]
        self.head = (weights["mean.weight"].T.copy(), weights["mean.bias"])
        self.obs_dim = int(meta["policy"]["obs_dim"])
        # Observation standardisation (`PolicyConfig.normalize_obs`); absent in older checkpoints.
        self.norm = (weights["obs_mean"], weights["obs_std"]) if "obs_mean" in weights else None

    @classmethod
    def load(cls, path: str | Path) -> NumpyPolicy:
        from safetensors.numpy import load_file

        meta = read_sidecar(path)
        return cls({k: v.astype(np.float32) for k, v in load_file(str(path)).items()}, meta)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """(B, D) or (D,) observations -> float32 actions in [-1, 1], (B, A) or (A,)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.shape[-1] != self.obs_dim:
            raise ValueError(f"observation has {x.shape[-1]} values, the checkpoint expects {self.obs_dim}")
        w, b = self.head
        return np.tanh(tanh_mlp(x, self.layers, self.norm) @ w + b).astype(np.float32)


def tanh_mlp(
    x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], norm: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """The policy body in numpy: standardise (if `norm`), then tanh(x @ w + b) per layer.

    Args:
        x: (B, D) float32 observations.
        layers: (w (in, out), b (out,)) per hidden layer.
        norm: (mean, std) of the observation standardisation, or None.

    Returns:
        (B, hidden[-1]) float32 features.
    """
    if norm is not None:
        x = (x - norm[0]) / norm[1]
    for w, b in layers:
        x = np.tanh(x @ w + b)
    return x
