"""Turning a policy SPEC string into a batched policy callable.

A SPEC is, in this order of precedence:

1. a built-in reference policy: ``expert``, ``constant_velocity``, ``idm`` (`RulePolicy`), ``random``;
2. a path handled by a registered loader: `register_policy_loader(match, fn)` where `match` is a file
   suffix (``".safetensors"``) or a predicate on the SPEC, and ``fn(spec, config) -> policy``; loaders
   are tried in registration order. Installed packages contribute loaders through the entry-point
   group ``alpagym.policy_loaders`` (each entry is a function that calls `register_policy_loader`):
   that is how ``alpagym_train`` checkpoints load here without this package importing the trainer;
3. ``module:attribute`` (dots allowed in the attribute): the attribute is the policy callable, or a class
   that is instantiated without arguments.

A policy maps (B, D) float32 observations to (B, 2) actions (see `alpagym_env.policies` for its
optional hooks).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable

from alpagym_env.config import EnvConfig
from alpagym_env.policies import ConstantVelocityPolicy, ExpertPolicy, RandomPolicy, RulePolicy

Policy = Callable
Loader = Callable[[str, EnvConfig], Policy]

BUILTIN: dict[str, Callable[[EnvConfig, int], Policy]] = {
    "expert": lambda config, seed: ExpertPolicy(),
    "constant_velocity": lambda config, seed: ConstantVelocityPolicy(obs=config.obs),
    "idm": lambda config, seed: RulePolicy(obs=config.obs, dynamics=config.dynamics),
    "random": lambda config, seed: RandomPolicy(seed),
}
_LOADERS: list[tuple[str | Callable[[str], bool], Loader]] = []


def register_policy_loader(match: str | Callable[[str], bool], fn: Loader) -> None:
    """Registers a loader for policy SPECs: `match` is a file suffix or a predicate ``spec -> bool``.

    Raises:
        ValueError: When a loader with the same suffix (or the same predicate object) is registered.
    """
    if not (isinstance(match, str) or callable(match)) or not callable(fn):
        raise TypeError("register_policy_loader(match, fn): match is a suffix or predicate, fn a callable")
    if any(m == match for m, _ in _LOADERS):
        raise ValueError(f"a policy loader for {match!r} is already registered")
    _LOADERS.append((match, fn))


def unregister_policy_loader(match: str | Callable[[str], bool]) -> None:
    """Removes the loader registered for `match` (no error when there is none)."""
    _LOADERS[:] = [(m, f) for m, f in _LOADERS if m != match]


def _matches(match: str | Callable[[str], bool], spec: str) -> bool:
    return spec.endswith(match) if isinstance(match, str) else bool(match(spec))


def _import_attr(spec: str) -> Policy:
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"policy {spec!r}: cannot import module {module_name!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"policy {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"policy {spec!r} is not callable")
    return obj


_DISCOVERED = False


def _discover_loaders() -> None:
    """Runs every ``alpagym.policy_loaders`` entry point once per process."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="alpagym.policy_loaders"):
        ep.load()()


def load_policy(spec: str, config: EnvConfig, seed: int = 0) -> Policy:
    """The policy for SPEC (see the module docstring); unknown SPECs raise `ValueError` listing options."""
    _discover_loaders()
    if spec in BUILTIN:
        return BUILTIN[spec](config, seed)
    for match, fn in _LOADERS:
        if _matches(match, spec):
            return fn(spec, config)
    if ":" in spec and not os.path.exists(spec):
        return _import_attr(spec)
    known = ", ".join(BUILTIN)
    suffixes = [m for m, _ in _LOADERS if isinstance(m, str)]
    hint = f"; registered loaders for {suffixes}" if suffixes else "; no checkpoint loader is registered"
    if os.path.exists(spec):
        raise ValueError(f"no policy loader accepts {spec!r}{hint}")
    raise ValueError(f"unknown policy {spec!r}: use one of {known}, 'module:callable' or a checkpoint{hint}")
