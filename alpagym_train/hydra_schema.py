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
    return dataclasses.make_dataclass(f"{cls.__name__}Schema", specs, namespace={"__doc__": cls.__doc__})


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: one-line description}`` from the ``Attributes:`` section of `cls`'s Google docstring
    (the first sentence of each entry)."""
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:") + 1
    except StopIteration:
        return {}
    docs: dict[str, list[str]] = {}
    indent, name = None, None
    for line in lines[start:]:
        if not line.strip():
            if docs:
                break
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        head, sep, rest = line.strip().partition(":")
        if depth == indent and sep and head.isidentifier():
            name = head
            docs[name] = [rest.strip()]
        elif name is not None:
            docs[name].append(line.strip())
    out = {}
    for k, words in docs.items():
        text = " ".join(words)
        cut = text.find(". ")
        out[k] = text if cut < 0 else text[: cut + 1]
    return out


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, description)`` of every leaf field of the dataclass `cls`, recursively."""
    docs = attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows += describe(hint, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append((prefix + f.name, repr(default), docs.get(f.name, "")))
    return rows


def to_plain(cfg: Any) -> Any:
    """An OmegaConf node (or structured object) as plain dicts and lists, interpolations resolved."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    return cfg
