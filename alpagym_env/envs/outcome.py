"""What one vector step returns, settled in one kernel: who ended, the rewards, the episodes' metrics.

The vector env's bookkeeping after the step kernel (masking the sub-envs that were not stepped, the
terminal reward terms, the running returns and the finished episodes' ``info["alpagym"]`` table) is a
dozen small array operations on (num_envs,) arrays; one call here does them all.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env import metrics as M
from alpagym_env.envs.infos import EPISODE_INFO_KEYS
from alpagym_env.sim.measure import TR_CUT_STEPS

# Rows of `settle`'s table: the closed-loop episode metrics, the length ``l`` and the return ``r``.
TABLE_KEYS = (*EPISODE_INFO_KEYS, "r")


@njit(cache=True)
def settle(active, term, trunc, reward, t, episode, track, gt, row, terminal_index, terminal_scale,
           ep_return, terminated, truncated, rewards, done, table):  # fmt: skip
    """Masks the last step's outcome to the sub-envs that stepped and closes the finished episodes.

    Args:
        active: (B,) bool, the sub-envs the step kernel stepped.
        term: (B, C) bool, the kernel's terminated flags (slot 0: the ego).
        trunc: (B,) bool, the kernel's truncated flags.
        reward: (B, C) float64, the step's reward (the kernel's, or a callable's as (B, 1)).
        t: (B,) int, steps since reset.
        episode: (B, C, NUM_CHANNELS, 3) the metric accumulators (`BatchedSim.state["episode"]`).
        track: (B, C, NUM_TRACK) the tracking memory (its TR_CUT_STEPS column).
        gt: (Q, C, 2) each bank row's route start and logged path length, m.
        row: (B,) int, the bank row of each sub-env.
        terminal_index: (Kt,) int, the `M.EPISODE_METRICS` row of each terminal reward term.
        terminal_scale: (Kt,) float64, its scale.
        ep_return: (B,) float64, the running returns; the step's rewards are added.
        terminated: (B,) bool out: stepped and terminated.
        truncated: (B,) bool out: stepped, truncated and not terminated.
        rewards: (B,) float64 out: the step's reward, terminal terms included; 0 where not stepped.
        done: (B,) bool out: terminated or truncated.
        table: (len(TABLE_KEYS), B) float64 out, zeros in: the finished sub-envs' columns receive their
            episode's metrics (`M.episode_metric_table`), length and return.

    Returns:
        How many sub-envs finished.
    """
    n = active.shape[0]
    ids = np.empty(n, dtype=np.int64)
    count = 0
    for b in range(n):
        stepped = active[b]
        terminated[b] = stepped and term[b, 0]
        truncated[b] = stepped and trunc[b] and not term[b, 0]
        done[b] = terminated[b] or truncated[b]
        rewards[b] = reward[b, 0] if stepped else 0.0
        if done[b]:
            ids[count] = b
            count += 1
    if count:
        ids = ids[:count]
        log_length = np.empty(n)
        cut = np.empty(n)
        for b in ids:
            log_length[b] = gt[row[b], 0, 1]
            cut[b] = track[b, 0, TR_CUT_STEPS]
        M.episode_metric_table(episode[:, 0], t, cut, log_length, ids, table)
        for b in ids:
            for j in range(terminal_index.shape[0]):
                rewards[b] += terminal_scale[j] * table[terminal_index[j], b]
    last = table.shape[0] - 1
    for b in range(n):
        ep_return[b] += rewards[b]
        if done[b]:
            table[last - 1, b] = t[b]
            table[last, b] = ep_return[b]
    return count
