"""The `info` dicts of every AlpaDrive env: flat and numeric, so any wrapper can batch them.

Every step's info holds ``t`` (steps since reset), ``scenario_index`` (the scene's index in the suite)
and one ``reward/{kind}/{name}`` float per reward term (`alpagym_env.rewards`); trajectory actions add
``trajectory_infeasible`` and ``trajectory_flags`` (`alpagym_env.sim.controller.flag_names` decodes it).
On the step that ends an episode, ``info["alpagym"]`` holds the episode's closed-loop metrics
(`alpagym_env.metrics`), the scene score, the return ``r`` and the length ``l``, all floats. The key is
the env's own: ``info["episode"]`` belongs to Gymnasium's `RecordEpisodeStatistics` and SB3's
`Monitor`/`VecMonitor`, which work on top and leave ``info["alpagym"]`` alone. Values are numpy
scalars (an ``np.float64`` is also a Python float), as readers that batch infos by dtype expect
(TorchRL's ``auto_register_info_dict``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from alpagym_env import metrics as M
from alpagym_env.sim.controller import trajectory_info

INFO_KEY = "alpagym"
REWARD_PREFIX = "reward/"


def reward_info_key(term_key: str) -> str:
    """The info key of a reward term's value: ``reward/{kind}/{name}``."""
    return REWARD_PREFIX + term_key


def step_info(sim, b: int, c: int, term_keys: Sequence[str]) -> dict[str, Any]:
    """Slot `c` of scene `b`'s info for the last step: flat numbers only.

    Args:
        sim: The `BatchedSim`.
        b: Scene index.
        c: Controlled slot (0: the ego).
        term_keys: ``"{kind}/{name}"`` of the metric reward terms, in kernel order.
    """
    terms = sim.reward_terms[b, c]
    info: dict[str, Any] = {reward_info_key(k): np.float64(terms[i]) for i, k in enumerate(term_keys)}
    info["t"] = np.int64(sim.state["t"][b])
    info["scenario_index"] = np.int64(sim.scenario_index[b])
    if sim.config.action_type == "trajectory":
        traj = trajectory_info(sim.ctrl_flags[b, c])
        # A Python bool: Gymnasium batches it as a bool array (an np.bool_ would become an object array).
        info["trajectory_infeasible"] = traj["trajectory_infeasible"]
        info["trajectory_flags"] = np.int64(traj["trajectory_flags"])
    return info


EPISODE_INFO_KEYS = (*M.EPISODE_METRICS, "l")  # ``info["alpagym"]`` but the env's return ``r``


def episode_info(sim, b: int, c: int = 0) -> dict[str, np.float64]:
    """Slot `c` of scene `b`'s closed-loop episode metrics and length ``l`` (floats), for
    ``info["alpagym"]``; the env adds the return ``r``."""
    table = episode_info_table(sim, [b], c)
    return dict(zip(EPISODE_INFO_KEYS, table[:, b], strict=True))


def episode_info_table(sim, ids, c: int = 0) -> np.ndarray:
    """`episode_info` of scenes `ids` at once.

    Returns:
        (len(EPISODE_INFO_KEYS), num_scenes) float64: column b holds scene b's values for b in `ids`,
        zeros elsewhere.
    """
    out = np.zeros((len(EPISODE_INFO_KEYS), sim.num_scenes))
    sim.episode_metric_table(ids, out, c)
    out[-1, ids] = sim.state["t"][ids]
    return out


def masked_info(values: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """Gymnasium's vector info layout (`VectorEnv._add_info`'s) for values only some sub-envs hold.

    Args:
        values: (num_envs,) arrays by name, zeros where `mask` is False; nested dicts alike.
        mask: (num_envs,) bool, the sub-envs that hold the values.

    Returns:
        `values`, each key with a ``_{key}`` copy of `mask` beside it (rows of one new array).
    """
    keys = tuple(values)
    out = {k: masked_info(v, mask) if isinstance(v, dict) else v for k, v in values.items()}
    masks = np.empty((len(keys), mask.shape[0]), dtype=np.bool_)
    masks[:] = mask
    out.update(zip(mask_keys(keys), masks, strict=True))
    return out


@functools.lru_cache(maxsize=256)
def mask_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """``_{key}`` of each of `keys` (an env's info keys are the same every step)."""
    return tuple(f"_{k}" for k in keys)


def reward_terms(info: dict[str, Any]) -> dict[str, Any]:
    """The reward terms of a step's info by ``"{kind}/{name}"`` (the ``reward/`` prefix dropped)."""
    return {k[len(REWARD_PREFIX) :]: v for k, v in info.items() if k.startswith(REWARD_PREFIX)}
