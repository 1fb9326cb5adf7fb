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

from collections.abc import Sequence
from typing import Any

import numpy as np

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


def episode_info(sim, b: int, c: int = 0) -> dict[str, float]:
    """Slot `c` of scene `b`'s closed-loop episode metrics and length ``l`` (floats), for
    ``info["alpagym"]``; the env adds the return ``r``."""
    ep = {k: np.float64(v) for k, v in sim.episode_metrics(b, c).items()}
    ep["l"] = np.float64(sim.state["t"][b])
    return ep


def reward_terms(info: dict[str, Any]) -> dict[str, Any]:
    """The reward terms of a step's info by ``"{kind}/{name}"`` (the ``reward/`` prefix dropped)."""
    return {k[len(REWARD_PREFIX) :]: v for k, v in info.items() if k.startswith(REWARD_PREFIX)}
