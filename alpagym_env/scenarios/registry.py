"""Registry of procedural scenario families: `register_family(name)` and `generate(family, seed)`."""

from __future__ import annotations

from collections.abc import Callable

from alpagym_env.scenarios.schema import Scenario

Generator = Callable[[int], Scenario]
FAMILIES: dict[str, Generator] = {}


def register_family(name: str) -> Callable[[Generator], Generator]:
    """Decorator registering `fn(seed) -> Scenario` as family `name`.

    Raises:
        ValueError: When `name` is already registered.
    """

    def deco(fn: Generator) -> Generator:
        if name in FAMILIES:
            raise ValueError(f"scenario family {name!r} is already registered")
        FAMILIES[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    import alpagym_env.scenarios.families  # noqa: F401  (registers the built-in families)


def generate(family: str, seed: int) -> Scenario:
    """The scene of procedural family `family` for `seed`: same seed, bit-identical arrays.

    Raises:
        KeyError: For an unknown family; the message lists the known ones.
        ValueError: For a negative seed.
    """
    _load_builtin()
    if family not in FAMILIES:
        raise KeyError(f"unknown scenario family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return FAMILIES[family](seed)
