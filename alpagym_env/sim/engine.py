"""One step of the whole batch: B scenes x N agent slots, `prange` over scenes.

`step_batch` is the only kernel the stateful engine calls per step. For each active scene it applies
the policy's actions to the controlled slots (dynamic bicycle, or the log for expert-driven slots),
moves the other agents (log replay or IDM), advances the lights, measures every controlled slot,
combines the reward terms, decides termination, aggregates the episode and writes observations.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from alpagym_env import metrics as M
from alpagym_env.sim.agents import idm_step, replay_step, set_from_log
from alpagym_env.sim.builds import serial_and_parallel
from alpagym_env.sim.controller import track as track_trajectory
from alpagym_env.sim.dynamics import ACC, P_MAX_ACC, P_MAX_BRAKE, P_MAX_STEER, STEER, dynamic_step
from alpagym_env.sim.geometry import wrap_angle
from alpagym_env.sim.measure import (
    TR_AX,
    TR_AY,
    TR_CUT,
    TR_CUT_STEPS,
    TR_DONE,
    TR_HEADING_ERR,
    TR_HINT,
    TR_LAT,
    TR_LON_ACC,
    TR_PX,
    TR_PY,
    TR_S,
    TR_WVX,
    TR_WVY,
    TR_YAW,
    TR_YAW_RATE,
    locate,
    measure,
)
from alpagym_env.sim.observation import obs_work_sizes, write_obs
from alpagym_env.sim.scene import R_S

MODE_REPLAY, MODE_IDM = 0, 1
# Action types (`EnvConfig.action_type`), the first entry of `step_batch`'s `ctrl` tuple.
ACTION_CONTROL, ACTION_TRAJECTORY = 0, 1
# Termination switches, indices into the `term` vector (`TerminationConfig`).
T_AT_FAULT, T_ANY_COLLISION, T_OFFROAD, T_ROUTE_COMPLETE, T_AT_CUT = range(5)


@njit(cache=True)
def apply_action(agent, c, action, p, kind, ctrl_p, dt, work):
    """Steps slot `c`'s dynamics with one normalised action; returns the controller's flags (0 for control).

    ``ACTION_CONTROL``: [acceleration, steering] in [-1, 1]^2 scaled to the limits. ``ACTION_TRAJECTORY``:
    future ego-frame poses that `alpagym_env.sim.controller.track` turns into commands (`work` its scratch).
    """
    if kind == ACTION_TRAJECTORY:
        a, steer, flags = track_trajectory(agent[c], action, p, ctrl_p, dt, work)
        dynamic_step(agent[c], a, steer, p, dt)
        return flags
    a = action[0] * (p[P_MAX_ACC] if action[0] >= 0.0 else p[P_MAX_BRAKE])
    dynamic_step(agent[c], a, action[1] * p[P_MAX_STEER], p, dt)
    return 0


@njit(cache=True)
def _aggregate(episode, m, track):
    """Adds this step to the episode's accumulators unless it is past the cut; returns True on the step
    that makes the cut (first collision, off-road, or >= CUT_DISTANCE from the log)."""
    if track[TR_CUT] > 0.0:
        return False
    for k in range(m.shape[0]):
        episode[k, M.ACC_SUM] += m[k]
        episode[k, M.ACC_MAX] = max(episode[k, M.ACC_MAX], m[k]) if track[TR_CUT_STEPS] > 0 else m[k]
        episode[k, M.ACC_LAST] = m[k]
    track[TR_CUT_STEPS] += 1.0
    if m[M.COLLISION_ANY] > 0.0 or m[M.OFFROAD] > 0.0 or m[M.LANE_DEVIATION] >= M.CUT_DISTANCE:
        track[TR_CUT] = 1.0
        return True
    return False


@njit(cache=True)
def _terminates(term, m, cut_now):
    """Whether the step that produced metrics `m` ends the episode (`TerminationConfig`)."""
    return (
        (term[T_AT_CUT] and cut_now)
        or (term[T_AT_FAULT] and m[M.COLLISION_AT_FAULT] > 0.0)
        or (term[T_ANY_COLLISION] and m[M.COLLISION_ANY] > 0.0)
        or (term[T_OFFROAD] and m[M.OFFROAD] > 0.0)
        or (term[T_ROUTE_COMPLETE] and m[M.ROUTE_COMPLETE] > 0.0)
    )


def step_batch(actions, active, expert, scene, routes, state, params, out, ctrl):
    """Advances every active scene by one step.

    Args:
        actions: (B, C, A) float64 normalised actions in [-1, 1]: A = 2 [acceleration, steering] for
            control, `TrajectoryConfig.action_dim` poses for trajectory actions.
        active: (B,) bool, scenes to step.
        expert: (B, C) bool, controlled slots that follow their log instead of the action.
        scene: Tuple: row (B,) int64, the row of the scene bank each scene slot reads its scene from
            (`alpagym_env.envs.batched_sim`: slots that hold the same scene share a row), then the
            bank's static arrays, Q rows of compiled scenes: log (Q, T, N, 5), log_valid (Q, T, N),
            log_s (Q, T, N) (time-major: a step of every slot of a scene is contiguous), size (Q, N, 2),
            n_agents (Q,), edges (Q, E, 4), then their grid (`alpagym_env.sim.grid`): edge_grid (Q, 5),
            edge_cells (Q, G + 1), edge_items (Q, I); lights (Q, K, T) int8.
        routes: Tuple of the bank rows' route arrays, one per controlled slot: route (Q, C, R, 5),
            n_route (Q, C), edges (Q, C, E2, 4), edge_bins (Q, C, NB + 1), lanes (Q, C, L2, 5),
            lane_bins (Q, C, NB + 1), n_bins (Q, C), stops (Q, C, S, 2), n_stops (Q, C),
            gt (Q, C, 2) ``[s_start, log_length]``, then the lane route the observation shows:
            lane_route (Q, C, R2, 8), n_lane_route (Q, C), route_map (Q, C, R), lane_stops (Q, C, S2, 2),
            n_lane_stops (Q, C).
        state: Tuple of the dynamic arrays, updated in place: agent (B, N, 8), valid (B, N),
            path_s (B, N), t (B,), track (B, C, NUM_TRACK), episode (B, C, NUM_CHANNELS, 3),
            contact (B, C, N) int8 latched collision verdicts (`alpagym_env.sim.measure`).
        params: Tuple: dynamics (P,), agents (7,), obs (8,), term (5,) bool (the T_* switches),
            reward_index (Kr,), reward_scale (Kr,), mode (B,) int64 (MODE_REPLAY or MODE_IDM per
            scene), dt, horizon (B,) int64: the step at which each scene's episode is truncated (the
            configured horizon, or less where the scene's log ends sooner).
        out: Tuple of outputs: obs (B, C, D) float32, metrics (B, C, NUM_CHANNELS),
            reward_terms (B, C, Kr), reward (B, C), terminated (B, C) bool, truncated (B,) bool,
            then a tuple of per-scene scratch rows: the reactive agents' (B, N) float64 and (B, 2 N)
            int64, the observation's float64 and int64 rows (`observation.obs_work_sizes`).
        ctrl: Tuple: action type (ACTION_CONTROL or ACTION_TRAJECTORY), controller parameters
            (NUM_CTRL_PARAMS,), controller scratch (B, C, rows, WORK_COLS), flags (B, C) int64 written
            with the controller's FLAG_* bits.
    """
    row, log, log_valid, log_s, size, n_agents, edges, grid, cells, items, lights = scene
    route, n_route, redges, ebins, rlanes, lbins, n_bins, stops, n_stops, gt = routes[:10]
    lane, n_lane, rmap, lstops, n_lstops = routes[10:]
    agent, valid, path_s, t, track, episode, contact = state
    dyn_p, agent_p, obs_p, term, r_index, r_scale, mode, dt, horizon = params
    obs, metrics, r_terms, reward, terminated, truncated, (scratch, slots, owork, oiwork) = out
    kind, ctrl_p, ctrl_work, ctrl_flags = ctrl
    num_c = actions.shape[1]
    t_max = log.shape[1] - 1
    for b in prange(actions.shape[0]):
        if not active[b]:
            continue
        k = row[b]  # the bank row of the scene slot b holds
        n = n_agents[k]
        t1 = min(t[b] + 1, t_max)
        for c in range(num_c):
            ctrl_flags[b, c] = 0
            if track[b, c, TR_DONE] > 0.0:
                valid[b, c] = False  # a controlled agent that finished leaves the scene
            elif expert[b, c]:
                set_from_log(agent[b], log[k], t1, c, dt)
            else:
                ctrl_flags[b, c] = apply_action(
                    agent[b], c, actions[b, c], dyn_p, kind, ctrl_p, dt, ctrl_work[b, c]
                )
        if mode[b] == MODE_IDM:
            idm_step(
                agent[b],
                valid[b],
                path_s[b],
                log[k],
                log_s[k],
                log_valid[k],
                size[k],
                t1,
                num_c,
                n,
                agent_p,
                dt,
                scratch[b],
                slots[b],
            )
        else:
            replay_step(agent[b], valid[b], log[k], log_valid[k], t1, num_c, n, dt)
        t[b] += 1
        light_now = lights[k, :, t1]
        truncated[b] = t[b] >= horizon[b]
        for c in range(num_c):
            tr = track[b, c]
            if tr[TR_DONE] > 0.0:
                reward[b, c] = 0.0
                r_terms[b, c, :] = 0.0
                continue
            nr = n_route[k, c]
            s, lat, route_h = locate(agent[b, c, 0], agent[b, c, 1], route[k, c], nr, tr)
            m = metrics[b, c]
            route_end = route[k, c, nr - 1, R_S]
            measure(agent[b], valid[b], size[k], n, c, s, lat, route_h, route_end, redges[k, c], ebins[k, c],
                    rlanes[k, c], lbins[k, c], n_bins[k, c], edges[k], grid[k], cells[k], items[k],
                    stops[k, c], n_stops[k, c], light_now, log[k, :, c], log_valid[k, :, c], t1, dt,
                    gt[k, c, 0], gt[k, c, 1], tr, contact[b, c], m)  # fmt: skip
            total = 0.0
            for j in range(r_index.shape[0]):
                r_terms[b, c, j] = r_scale[j] * m[r_index[j]]
                total += r_terms[b, c, j]
            reward[b, c] = total
            # One verdict for every consumer: the reward terms above, the episode aggregate and the
            # termination all read the same metric channels of this step.
            cut_now = _aggregate(episode[b, c], m, tr)
            done = _terminates(term, m, cut_now)
            terminated[b, c] = done
            if done:
                tr[TR_DONE] = 1.0
            write_obs(agent[b], valid[b], size[k], n, c, lane[k, c], n_lane[k, c], rmap[k, c], nr, s,
                      lstops[k, c], n_lstops[k, c], light_now, t[b], obs_p, obs[b, c], owork[b],
                      oiwork[b])  # fmt: skip


@njit(cache=True)
def reset_controlled(agent, log, c, dt):
    """Puts controlled slot `c` at its logged initial state with the log's initial acceleration."""
    set_from_log(agent, log, 1, c, dt)
    acc = agent[c, ACC]
    set_from_log(agent, log, 0, c, dt)
    agent[c, ACC] = acc
    agent[c, STEER] = 0.0


def empty_out(b: int, c: int, n: int, d: int, kr: int, k: int):
    """Allocates the `out` tuple of `step_batch` for B scenes, C controlled slots, N slots, observations
    of D entries, Kr reward terms and K nearest agents observed."""
    wf, wi = obs_work_sizes(k)
    return (
        np.zeros((b, c, d), dtype=np.float32),
        np.zeros((b, c, M.NUM_CHANNELS)),
        np.zeros((b, c, kr)),
        np.zeros((b, c)),
        np.zeros((b, c), dtype=np.bool_),
        np.zeros(b, dtype=np.bool_),
        (
            np.zeros((b, n)),
            np.zeros((b, 2 * n), dtype=np.int64),
            np.zeros((b, wf)),
            np.zeros((b, wi), dtype=np.int64),
        ),
    )


@njit(cache=True)
def _init_track(agent, log, c, s, lat, route_h, dt, tr):
    """Fills controlled slot `c`'s memory as if it had been driving its log up to step 0."""
    tr[:] = 0.0
    h0, h1 = log[0, c, 2], log[1, c, 2]
    v0, v1 = agent[c, 3], agent[c, 3] + agent[c, ACC] * dt
    tr[TR_S], tr[TR_PX], tr[TR_PY] = s, agent[c, 0], agent[c, 1]
    tr[TR_WVX], tr[TR_WVY] = v0 * np.cos(h0), v0 * np.sin(h0)
    tr[TR_AX] = (v1 * np.cos(h1) - tr[TR_WVX]) / dt
    tr[TR_AY] = (v1 * np.sin(h1) - tr[TR_WVY]) / dt
    tr[TR_LON_ACC] = tr[TR_AX] * np.cos(h0) + tr[TR_AY] * np.sin(h0)
    tr[TR_YAW] = h0
    tr[TR_YAW_RATE] = wrap_angle(h1 - h0) / dt
    tr[TR_LAT], tr[TR_HEADING_ERR] = lat, wrap_angle(h0 - route_h)


def reset_batch(mask, num_c, scene, routes, state, params, out):
    """Puts every scene with `mask[b]` at step 0 of its logs and writes its first observations.

    Arguments are those of `step_batch`; `num_c` is the number of controlled slots.
    """
    row, log, log_valid, log_s, size, n_agents, edges, grid, cells, items, lights = scene
    route, n_route, redges, ebins, rlanes, lbins, n_bins, stops, n_stops, gt = routes[:10]
    lane, n_lane, rmap, lstops, n_lstops = routes[10:]
    agent, valid, path_s, t, track, episode, contact = state
    dyn_p, agent_p, obs_p, term, r_index, r_scale, mode, dt, horizon = params
    obs, metrics, r_terms, reward, terminated, truncated, (scratch, slots, owork, oiwork) = out
    for b in prange(mask.shape[0]):
        if not mask[b]:
            continue
        k = row[b]  # the bank row of the scene slot b holds
        n = n_agents[k]
        t[b] = 0
        agent[b, :, :] = 0.0
        for i in range(n):
            valid[b, i] = log_valid[k, 0, i]
            path_s[b, i] = log_s[k, 0, i]
            set_from_log(agent[b], log[k], 0, i, dt)
        for i in range(n, valid.shape[1]):
            valid[b, i] = False
        light_now = lights[k, :, 0]
        truncated[b] = False
        for c in range(num_c):
            valid[b, c] = True
            reset_controlled(agent[b], log[k], c, dt)
            tr = track[b, c]
            tr[TR_HINT] = 0.0
            s, lat, route_h = locate(agent[b, c, 0], agent[b, c, 1], route[k, c], n_route[k, c], tr)
            _init_track(agent[b], log[k], c, s, lat, route_h, dt, tr)
            episode[b, c, :, :] = 0.0
            contact[b, c, :] = 0
            metrics[b, c, :] = 0.0
            r_terms[b, c, :] = 0.0
            reward[b, c] = 0.0
            terminated[b, c] = False
            write_obs(agent[b], valid[b], size[k], n, c, lane[k, c], n_lane[k, c], rmap[k, c],
                      n_route[k, c], s, lstops[k, c], n_lstops[k, c], light_now, 0, obs_p,
                      obs[b, c], owork[b], oiwork[b])  # fmt: skip


# Each batch kernel comes in two builds from one source: threaded over scenes for large batches, and
# serial for small ones, where waking a thread pool costs more than it saves (and, on a busy machine,
# can stall a step for a whole scheduler time slice).
PARALLEL_MIN_SCENES = 8
step_batch_serial, step_batch = serial_and_parallel(step_batch)
reset_batch_serial, reset_batch = serial_and_parallel(reset_batch)
