"""Hydra schemas of AlpaGym's frozen config dataclasses, derived from them instead of copied.

The library's configs (`alpagym_env.config.EnvConfig`, `alpagym_train.algorithm.GRPOConfig`) are frozen
dataclasses, and OmegaConf makes a frozen dataclass node read-only, so command-line overrides of it
would fail. `schema_of` builds a mutable twin with the same fields, types and defaults (recursively for
nested configs); Hydra validates overrides against it (unknown keys and wrong types raise), and the
frozen config is then built from the plain values, so its own checks run too.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from typing import Any


@functools.cache
def schema_of(cls: type) -> type:
    """A mutable dataclass with the fields, types and defaults of the dataclass `cls`.

    Tuple-typed fields become lists (OmegaConf stores sequences as lists); the frozen config's own
    ``__post_init__`` converts them back.
    """
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            sub = schema_of(hint)
            specs.append((f.name, sub, dataclasses.field(default_factory=sub)))
            continue
        if typing.get_origin(hint) is tuple:
            hint = list[typing.get_args(hint)[0]]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            default = list(default)
        if isinstance(default, (list, dict)):
            factory = functools.partial(copy.deepcopy, default)
            specs.append((f.name, hint, dataclasses.field(default_factory=factory)))
        else:
            specs.append((f.name, hint, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(f"{cls.__name__}Schema", specs)


def to_plain(cfg: Any) -> Any:
    """An OmegaConf node (or structured object) as plain dicts and lists, interpolations resolved."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return cfg
