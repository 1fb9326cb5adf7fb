"""The device the learner trains on: ``learner.device=auto|cpu|cuda``.

The learner's policy, PPO critic, optimiser state and each training batch live on that device; what
leaves the learner (weights published to the actors, checkpoints) is always CPU tensors, and the
actors always run on the CPU, next to the simulator.
"""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def check_device_name(name: str, key: str = "learner.device") -> None:
    """Raises a `ValueError` naming `key` unless `name` is one of `DEVICES`."""
    if name not in DEVICES:
        raise ValueError(f"{key} must be one of {', '.join(DEVICES)}, got {name!r}")


def resolve_device(name: str, key: str = "learner.device") -> torch.device:
    """The torch device `name` stands for: ``auto`` is ``cuda`` when `torch.cuda.is_available`, else ``cpu``.

    Args:
        name: ``auto``, ``cpu`` or ``cuda``.
        key: The config key it came from (for the error messages).

    Raises:
        ValueError: `name` is not a device name, or it is ``cuda`` and this machine has no usable CUDA GPU.
    """
    check_device_name(name, key)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{key}=cuda, but torch.cuda.is_available() is False here (no CUDA GPU, no driver, or a "
            f"CPU-only torch {torch.__version__}): use {key}=auto or {key}=cpu"
        )
    return torch.device(name)
