"""Reward terms, presets and their registry.

A reward is a list of ``{kind, name, scale}`` terms (the AlpaGym reward-file format):

- ``kind="metric"``: every step, ``scale`` times the step's metric channel ``name`` (any channel of
  `alpagym_env.metrics`, e.g. ``progress_delta``, ``collision_at_fault``, ``dist_to_gt``). These are
  combined inside the step kernel.
- ``kind="terminal"``: on the step that ends the episode, ``scale`` times the episode metric ``name``
  (e.g. ``scene_score``, ``progress``), added outside the kernel.

Each term's value is reported in ``info["reward/{kind}/{name}"]`` (`alpagym_env.envs.infos`). A Python
callable may replace the terms: it receives the step's metrics by channel name and returns the reward.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alpagym_env import metrics as M
from alpagym_env.config import ConfigError, ConfigTypeError

KINDS = ("metric", "terminal")


@dataclass(frozen=True)
class RewardTerm:
    """One weighted reward term; unknown kinds or names raise at construction."""

    kind: str
    name: str
    scale: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"reward term kind {self.kind!r} is not one of {KINDS}")
        known = M.channel_names() if self.kind == "metric" else M.EPISODE_METRICS
        if self.name not in known:
            raise ConfigError(f"unknown {self.kind} reward term {self.name!r}; known: {sorted(known)}")
        if not np.isfinite(self.scale):
            raise ConfigError(f"reward term {self.name!r} has a non-finite scale {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


_PRESETS: dict[str, tuple[RewardTerm, ...]] = {}


def register_preset(name: str, terms: Sequence[Mapping[str, Any] | RewardTerm]) -> None:
    """Registers a named reward preset; a duplicate name raises."""
    if name in _PRESETS:
        raise ValueError(f"reward preset {name!r} is already registered")
    _PRESETS[name] = tuple(_term(t, f"reward preset {name!r}[{i}]") for i, t in enumerate(terms))


def presets() -> tuple[str, ...]:
    return tuple(_PRESETS)


def _term(t: Mapping[str, Any] | RewardTerm, where: str) -> RewardTerm:
    """Term `t` of a reward list; `where` (``reward[i]``) prefixes every error."""
    if isinstance(t, RewardTerm):
        return t
    if not isinstance(t, Mapping):
        raise ConfigTypeError(f"{where} must be a mapping with kind, name and scale, got {t!r}")
    extra = set(t) - {"kind", "name", "scale"}
    if extra or not {"name", "scale"} <= set(t):
        raise ConfigError(f"{where} needs exactly kind, name and scale; got keys {sorted(t)}")
    kind, name, scale = t.get("kind", "metric"), t["name"], t["scale"]
    for key, value in (("kind", kind), ("name", name)):
        if not isinstance(value, str):
            raise ConfigTypeError(f"{where}.{key} must be a string, got {value!r} ({type(value).__name__})")
    if isinstance(scale, bool | np.bool_) or not isinstance(scale, int | float | np.integer | np.floating):
        raise ConfigTypeError(f"{where}.scale must be a number, got {scale!r} ({type(scale).__name__})")
    return RewardTerm(kind, name, float(scale))


@dataclass(frozen=True)
class Reward:
    """A resolved reward: its terms (or a callable) and the kernel's view of the metric terms."""

    terms: tuple[RewardTerm, ...]
    fn: Callable[[Mapping[str, Any]], float] | None = None

    @property
    def metric_terms(self) -> tuple[RewardTerm, ...]:
        return tuple(t for t in self.terms if t.kind == "metric")

    @property
    def terminal_terms(self) -> tuple[RewardTerm, ...]:
        return tuple(t for t in self.terms if t.kind == "terminal")

    def kernel_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(Kr,) channel indices and (Kr,) scales of the metric terms, for the step kernel."""
        terms = self.metric_terms
        index = np.array([M.channel(t.name).index for t in terms], dtype=np.int64)
        return index, np.array([t.scale for t in terms], dtype=np.float64)


def resolve(spec: str | Sequence | Callable | Reward | None) -> Reward:
    """Builds a `Reward` from a preset name, a list of terms, or a callable (None: the default)."""
    if spec is None:
        spec = "progress_safety"
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, str):
        if spec not in _PRESETS:
            raise ConfigError(f"unknown reward preset {spec!r}; known presets: {sorted(_PRESETS)}")
        return Reward(_PRESETS[spec])
    if callable(spec):
        return Reward((), spec)
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence):
        raise ConfigTypeError(
            "reward must be a preset name, a list of {kind, name, scale} terms, a callable or a Reward, "
            f"got {spec!r} ({type(spec).__name__})"
        )
    terms = tuple(_term(t, f"reward[{i}]") for i, t in enumerate(spec))
    if not terms:
        raise ConfigError("a reward needs at least one term")
    keys = [t.key for t in terms]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"reward terms repeat: {keys}")
    return Reward(terms)


register_preset(
    "progress_safety",
    [
        {"kind": "metric", "name": "progress_delta", "scale": 1.0},
        {"kind": "metric", "name": "collision_at_fault", "scale": -10.0},
        {"kind": "metric", "name": "offroad", "scale": -5.0},
        {"kind": "metric", "name": "ran_red_light", "scale": -5.0},
        {"kind": "metric", "name": "dist_to_gt", "scale": -0.01},
    ],
)
register_preset(
    "metrics",
    [
        {"kind": "metric", "name": "progress_delta", "scale": 1.0},
        {"kind": "metric", "name": "collision_at_fault", "scale": -1.0},
        {"kind": "metric", "name": "offroad", "scale": -1.0},
        {"kind": "metric", "name": "wrong_way", "scale": -0.02},
        {"kind": "metric", "name": "ran_red_light", "scale": -1.0},
        {"kind": "metric", "name": "comfort_violation", "scale": -0.005},
        {"kind": "terminal", "name": "scene_score", "scale": 1.0},
    ],
)
# The AlpaSim scene score as a learning signal: progress earns reward only up to the 80 % of the logged
# path at which the score saturates (`score_progress_delta`), so driving faster than needed buys nothing
# but risk; an at-fault collision or off-road ends the episode (the cut) and loses the terminal score;
# ttc_violation charges following too close before a collision happens, which gives the at-fault
# penalty a warning signal the policy can act on.
register_preset(
    "scene_score",
    [
        {"kind": "metric", "name": "score_progress_delta", "scale": 1.0},
        {"kind": "metric", "name": "collision_at_fault", "scale": -3.0},
        {"kind": "metric", "name": "offroad", "scale": -1.0},
        {"kind": "metric", "name": "wrong_way", "scale": -0.02},
        {"kind": "metric", "name": "ran_red_light", "scale": -1.0},
        {"kind": "metric", "name": "ttc_violation", "scale": -0.05},
        {"kind": "metric", "name": "comfort_violation", "scale": -0.005},
        {"kind": "terminal", "name": "scene_score", "scale": 1.0},
    ],
)
register_preset(
    "distance_to_gt",
    [
        {"kind": "metric", "name": "dist_to_gt", "scale": -0.05},
        {"kind": "metric", "name": "collision_at_fault", "scale": -5.0},
        {"kind": "metric", "name": "offroad", "scale": -5.0},
    ],
)
register_preset(
    "comfort",
    [
        {"kind": "metric", "name": "comfort_violation", "scale": -0.01},
        {"kind": "metric", "name": "jerk", "scale": -0.001},
    ],
)
