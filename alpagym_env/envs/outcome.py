"""What one vector step returns, settled in one kernel: who ended, the rewards, the infos' arrays.

The vector env's work after the step kernel (masking the outcome to the sub-envs that were stepped, the
terminal reward terms, the running returns, the finished episodes' ``info["alpagym"]`` table, the step
infos and every ``_{key}`` mask of Gymnasium's info layout) is a few dozen small array operations on
(num_envs,) arrays; one call here does them all, into three new arrays whose rows the env hands out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alpagym_env import metrics as M
from alpagym_env.envs.infos import EPISODE_INFO_KEYS
from alpagym_env.sim.measure import TR_CUT_STEPS

# Rows of `settle`'s table: the closed-loop episode metrics, the length ``l`` and the return ``r``.
TABLE_KEYS = (*EPISODE_INFO_KEYS, "r")
# Rows of `settle`'s bool output before the masks.
TERMINATED, TRUNCATED, DONE, FIRST_MASK = range(4)


def empty_outcome(num_envs: int, num_terms: int, num_shown: int, num_final: int):
    """New `settle` outputs for `num_envs` sub-envs, `num_terms` metric reward terms, `num_shown` step
    info keys and `num_final` keys that only finished sub-envs hold.

    Returns:
        values (1 + len(TABLE_KEYS) + num_terms, num_envs) float64 zeros, ints (2, num_envs) int64,
        flags (FIRST_MASK + num_shown + num_final, num_envs) bool.
    """
    return (
        np.zeros((1 + len(TABLE_KEYS) + num_terms, num_envs)),
        np.empty((2, num_envs), dtype=np.int64),
        np.empty((FIRST_MASK + num_shown + num_final, num_envs), dtype=np.bool_),
    )


@njit(cache=True)
def settle(active, shown, term, trunc, reward, reward_terms, t, scenario_index, episode, track, gt, row,
           terminal_index, terminal_scale, ep_return, num_shown, values, ints, flags):  # fmt: skip
    """Masks the last step's outcome to the sub-envs that stepped and closes the finished episodes.

    Args:
        active: (B,) bool, the sub-envs the step kernel stepped.
        shown: (B,) bool, the sub-envs that hold this step's infos.
        term: (B, C) bool, the kernel's terminated flags (slot 0: the ego).
        trunc: (B,) bool, the kernel's truncated flags.
        reward: (B, C) float64, the step's reward (the kernel's, or a callable's as (B, 1)).
        reward_terms: (B, C, Kr) float64, the metric reward terms.
        t: (B,) int, steps since reset.
        scenario_index: (B,) int, each sub-env's scene.
        episode: (B, C, NUM_CHANNELS, 3) the metric accumulators (`BatchedSim.state["episode"]`).
        track: (B, C, NUM_TRACK) the tracking memory (its TR_CUT_STEPS column).
        gt: (Q, C, 2) each bank row's route start and logged path length, m.
        row: (B,) int, the bank row of each sub-env.
        terminal_index: (Kt,) int, the `M.EPISODE_METRICS` row of each terminal reward term.
        terminal_scale: (Kt,) float64, its scale.
        ep_return: (B,) float64, the running returns; the step's rewards are added.
        num_shown: S, the step info keys: rows of `flags` that receive `shown`.
        values: (1 + len(TABLE_KEYS) + Kr, B) float64 out, zeros in: row 0 the step's reward, terminal
            terms included, 0 where not stepped; then the table: the finished sub-envs' episode metrics
            (`M.episode_metric_table`), length and return, zeros elsewhere; then the reward terms.
        ints: (2, B) int64 out: t and scenario_index.
        flags: (FIRST_MASK + S + F, B) bool out: TERMINATED (stepped and terminated), TRUNCATED
            (stepped, truncated and not terminated), DONE (either), then S rows of `shown` and F rows of
            DONE (the masks of Gymnasium's info layout).

    Returns:
        How many sub-envs finished.
    """
    n = active.shape[0]
    num_terms = reward_terms.shape[2]
    first_term = values.shape[0] - num_terms
    ids = np.empty(n, dtype=np.int64)
    count = 0
    for b in range(n):
        stepped = active[b]
        flags[TERMINATED, b] = stepped and term[b, 0]
        flags[TRUNCATED, b] = stepped and trunc[b] and not term[b, 0]
        flags[DONE, b] = flags[TERMINATED, b] or flags[TRUNCATED, b]
        values[0, b] = reward[b, 0] if stepped else 0.0
        for j in range(num_terms):
            values[first_term + j, b] = reward_terms[b, 0, j]
        ints[0, b] = t[b]
        ints[1, b] = scenario_index[b]
        if flags[DONE, b]:
            ids[count] = b
            count += 1
    table = values[1:first_term]
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
                values[0, b] += terminal_scale[j] * table[terminal_index[j], b]
    last = table.shape[0] - 1
    for b in range(n):
        ep_return[b] += values[0, b]
        done = flags[DONE, b]
        if done:
            table[last - 1, b] = t[b]
            table[last, b] = ep_return[b]
        for i in range(FIRST_MASK, FIRST_MASK + num_shown):
            flags[i, b] = shown[b]
        for i in range(FIRST_MASK + num_shown, flags.shape[0]):
            flags[i, b] = done
    return count
