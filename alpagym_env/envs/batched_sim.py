"""`BatchedSim`: the one stateful simulator, B scenes x N agent slots as contiguous arrays.

The single env is this engine with B = 1, the vector env the same engine with B = num_envs, and the
multi-agent env controls several slots of each scene. All per-step work happens in the Numba kernels
of `alpagym_env.sim.engine`; this class owns the buffers, loads compiled scenes into them, and
copies snapshots in and out.

Buffers (B scene slots, N = max_agents agent slots, C controlled slots, T = horizon + 1 log steps). The
static ones form a bank of Q >= B rows of compiled scenes; slot b reads row `row[b]` (`SceneRows`), so
slots holding one scene share a row and a scene still in the bank loads without a copy:

- scene: log (Q, T, N, 5), log_valid (Q, T, N), log_s (Q, T, N) (time-major: replaying a step reads one
  contiguous run per scene), size (Q, N, 2), n_agents (Q,),
  edges (Q, E, 4), edge_grid (Q, 5), edge_cells (Q, G + 1), edge_items (Q, I) (the edges' grid,
  `alpagym_env.sim.grid`), lights (Q, K, T)
- routes: route (Q, C, R, 5), n_route (Q, C), edges (Q, C, E2, 4), edge_bins (Q, C, NB + 1),
  lanes (Q, C, L2, 5), lane_bins (Q, C, NB + 1), n_bins (Q, C), stops (Q, C, S, 2), n_stops (Q, C),
  gt (Q, C, 2), lane_route (Q, C, R2, 8), n_lane_route (Q, C), route_map (Q, C, R),
  lane_stops (Q, C, S2, 2), n_lane_stops (Q, C)
- state: agent (B, N, 8), valid (B, N), path_s (B, N), t (B,), track (B, C, NUM_TRACK),
  episode (B, C, NUM_CHANNELS, 3), contact (B, C, N) int8 (each controlled slot's latched collision
  verdict against every slot; part of the snapshots, so a restored episode judges contacts alike)

Capacities E, G, I, K, R, R2, E2, L2, NB and S grow when a larger scene is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.envs.scene_bank import SceneRows
from alpagym_env.scenarios.mapped import MappedSuite
from alpagym_env.scenarios.schema import ARRAY_FIELDS, Scenario
from alpagym_env.sim import controller, engine
from alpagym_env.sim.dynamics import NUM_STATE
from alpagym_env.sim.measure import NUM_TRACK, TR_CUT_STEPS
from alpagym_env.sim.observation import obs_params, obs_size
from alpagym_env.sim.scene import CompiledScene, RouteData, compile_scene

SCENE_FIELDS = (
    "log",
    "log_valid",
    "log_s",
    "size",
    "n_agents",
    "edges",
    "edge_grid",
    "edge_cells",
    "edge_items",
    "lights",
)
ROUTE_FIELDS = (
    "route",
    "n_route",
    "edges",
    "edge_bins",
    "lanes",
    "lane_bins",
    "n_bins",
    "stops",
    "n_stops",
    "gt",
    "lane_route",
    "n_lane_route",
    "route_map",
    "lane_stops",
    "n_lane_stops",
)
STATE_FIELDS = ("agent", "valid", "path_s", "t", "track", "episode", "contact")


def _fit(arr: np.ndarray, axis_sizes: dict[int, int]) -> np.ndarray:
    """`arr` grown (zero-padded) so that dimension `d` holds at least `axis_sizes[d]`."""
    shape = list(arr.shape)
    grow = False
    for d, need in axis_sizes.items():
        if need > shape[d]:
            shape[d], grow = max(need, int(shape[d] * 1.5)), True
    if not grow:
        return arr
    new = np.zeros(shape, dtype=arr.dtype)
    new[tuple(slice(0, s) for s in arr.shape)] = arr
    return new


def _scene_arrays(cs: CompiledScene) -> tuple[tuple[str, np.ndarray], ...]:
    """The scene buffers `BatchedSim.load` fills from `cs`, by name, each along its axis 1."""
    _, start, items = cs.edge_grid
    return (("edges", cs.edges), ("edge_cells", start), ("edge_items", items), ("lights", cs.lights))


def _route_arrays(r: RouteData) -> tuple[tuple[str, np.ndarray], ...]:
    """The route buffers `BatchedSim.load` fills from one controlled slot's route, along axis 2."""
    return (
        ("route", r.route),
        ("route_map", r.route_map),
        ("edges", r.edges),
        ("edge_bins", r.edge_bins),
        ("lanes", r.lanes),
        ("lane_bins", r.lane_bins),
        ("stops", r.stops),
        ("lane_route", r.lane_route),
        ("lane_stops", r.lane_stops),
    )


# Compiled scenes of named suites, shared by every `BatchedSim` of the process (LRU, by count).
SHARED_CACHE_SIZE = 2048
_SHARED_COMPILED: OrderedDict[tuple, CompiledScene] = OrderedDict()


class BatchedSim:
    """B scenes stepped together by one kernel call.

    Args:
        config: The env configuration.
        num_scenes: B.
        scenario_source: Maps a scenario index to a `Scenario` (a list, a suite, or a callable).
        num_scenarios: How many indices the source has.
        num_controlled: C, controlled slots per scene (1: the ego).
        reward_index: (Kr,) int64 metric channel of each reward term.
        reward_scale: (Kr,) float64 scale of each reward term.
        cache_size: Compiled scenes kept in memory (of sources other than a named suite, whose compiled
            scenes the process shares).
        spare_scenes: Bank rows beyond the B in use (default min(B - 1, 64): none for a single env):
            the scenes that slots left most recently stay loaded there, so drawing one again copies
            nothing. Each row holds one scene's padded arrays, about 0.8 MB at the default horizon and
            32 agents.
    """

    def __init__(
        self,
        config: EnvConfig,
        num_scenes: int,
        scenario_source: Sequence[Scenario] | Callable[[int], Scenario],
        num_scenarios: int,
        num_controlled: int = 1,
        reward_index: np.ndarray | None = None,
        reward_scale: np.ndarray | None = None,
        cache_size: int = 2048,
        spare_scenes: int | None = None,
    ) -> None:
        self.config = config
        self.num_scenes, self.num_controlled = num_scenes, num_controlled
        self._source = scenario_source
        self.num_scenarios = num_scenarios
        self._cache: OrderedDict[tuple, CompiledScene] = OrderedDict()
        self._scene_digest: dict[tuple, str] = {}
        # The suite's name is left out: the scene digest already tells scenes apart.
        config_key = repr((dataclasses.replace(config, suite=""), num_controlled))
        self._config_digest = hashlib.blake2b(config_key.encode(), digest_size=16).hexdigest()
        self._cache_size = cache_size
        b, c, n, t = num_scenes, num_controlled, config.max_agents, config.horizon + 1
        self.dt = 0.1
        self.obs_dim = obs_size(config.obs.num_agents, config.obs.route_points)
        spare = min(b - 1, 64) if spare_scenes is None else int(spare_scenes)
        if spare < 0:
            raise ValueError(f"spare_scenes must be >= 0, got {spare_scenes}")
        q = b + spare  # the static buffers: a row per bank row
        self._rows = SceneRows(q, b)
        self.row = self._rows.row  # (B,) the bank row each scene slot reads
        self._row_scene: list[CompiledScene | None] = [None] * q  # the compiled scene of each row
        self.scene = {
            "log": np.zeros((q, t, n, 5)),
            "log_valid": np.zeros((q, t, n), dtype=np.bool_),
            "log_s": np.zeros((q, t, n)),
            "size": np.ones((q, n, 2)),
            "n_agents": np.zeros(q, dtype=np.int64),
            "edges": np.zeros((q, 1, 4)),
            "edge_grid": np.zeros((q, 5)),
            "edge_cells": np.zeros((q, 2), dtype=np.int64),
            "edge_items": np.zeros((q, 1), dtype=np.int64),
            "lights": np.zeros((q, 1, t), dtype=np.int8),
        }
        self.routes = {
            "route": np.zeros((q, c, 2, 5)),
            "n_route": np.full((q, c), 2, dtype=np.int64),
            "edges": np.zeros((q, c, 1, 4)),
            "edge_bins": np.zeros((q, c, 2), dtype=np.int64),
            "lanes": np.zeros((q, c, 1, 5)),
            "lane_bins": np.zeros((q, c, 2), dtype=np.int64),
            "n_bins": np.ones((q, c), dtype=np.int64),
            "stops": np.zeros((q, c, 1, 2)),
            "n_stops": np.zeros((q, c), dtype=np.int64),
            "gt": np.zeros((q, c, 2)),
            "lane_route": np.zeros((q, c, 2, 8)),
            "n_lane_route": np.full((q, c), 2, dtype=np.int64),
            "route_map": np.zeros((q, c, 2)),
            "lane_stops": np.zeros((q, c, 1, 2)),
            "n_lane_stops": np.zeros((q, c), dtype=np.int64),
        }
        self.state = {
            "agent": np.zeros((b, n, NUM_STATE)),
            "valid": np.zeros((b, n), dtype=np.bool_),
            "path_s": np.zeros((b, n)),
            "t": np.zeros(b, dtype=np.int64),
            "track": np.zeros((b, c, NUM_TRACK)),
            "episode": np.zeros((b, c, M.NUM_CHANNELS, 3)),
            "contact": np.zeros((b, c, n), dtype=np.int8),
        }
        self._kernel_args: tuple | None = None
        self.scenario_index = np.full(b, -1, dtype=np.int64)
        self.compiled: list[CompiledScene | None] = [None] * b
        self._key: list[tuple | None] = [None] * b
        self.expert = np.zeros((b, c), dtype=np.bool_)
        self.active = np.ones(b, dtype=np.bool_)
        term = config.termination
        flags = [term.at_fault_collision, term.any_collision, term.offroad, term.route_complete, term.at_cut]
        ri = np.zeros(0, dtype=np.int64) if reward_index is None else np.asarray(reward_index, dtype=np.int64)
        rs = np.zeros(0) if reward_scale is None else np.asarray(reward_scale, dtype=np.float64)
        # Per-scene agent mode: the config's, switchable per scene (`agent_mode[b] = MODE_IDM`).
        self.agent_mode = np.full(b, engine.MODE_IDM if config.agents.mode == "idm" else engine.MODE_REPLAY)
        # Per-scene episode end: the horizon, or the last step of a scene whose log is shorter.
        self.episode_steps = np.full(b, config.horizon, dtype=np.int64)
        self._warned_short_log = False
        self._fitting: weakref.WeakSet[CompiledScene] = weakref.WeakSet()  # scenes the buffers hold
        self.params = (
            config.dynamics.to_array(),
            config.agents.to_array(),
            obs_params(config.obs, config.dynamics.max_steer, config.horizon),
            np.array(flags, dtype=np.bool_),
            ri,
            rs,
            self.agent_mode,
            self.dt,
            self.episode_steps,
        )
        self.out = engine.empty_out(b, c, n, self.obs_dim, ri.shape[0], config.obs.num_agents)
        parallel = num_scenes >= engine.PARALLEL_MIN_SCENES
        self._step_kernel = engine.step_batch if parallel else engine.step_batch_serial
        self._reset_kernel = engine.reset_batch if parallel else engine.reset_batch_serial
        self.obs, self.metrics, self.reward_terms, self.reward, self.terminated, self.truncated = self.out[:6]
        self._init_controller(config, b, c)

    def _init_controller(self, config: EnvConfig, b: int, c: int) -> None:
        """Action layout and the trajectory controller's buffers: `action_dim` (A of the (B, C, A) actions
        `step` takes) and `ctrl_flags` (B, C), the controller's FLAG_* bits of the last step."""
        traj = config.trajectory
        kind = engine.ACTION_TRAJECTORY if config.action_type == "trajectory" else engine.ACTION_CONTROL
        self.action_dim = traj.action_dim if kind == engine.ACTION_TRAJECTORY else 2
        cp = controller.controller_params(traj, config.controller, self.dt)
        rows = controller.work_shape(traj.num_poses, traj.steps(self.dt), int(cp[controller.C_PREVIEW]))
        shape = (b, c, *rows) if kind == engine.ACTION_TRAJECTORY else (b, c, 1, controller.WORK_COLS)
        work = np.zeros(shape)
        self.ctrl_flags = np.zeros((b, c), dtype=np.int64)
        self.ctrl = (kind, cp, work, self.ctrl_flags)

    # ------------------------------------------------------------------------------------- scenes

    def scenario(self, index: int) -> Scenario:
        src = self._source
        return src(index) if callable(src) else src[index]

    def compile(self, index: int, controlled: tuple[int, ...] | None = None) -> CompiledScene:
        """The compiled scene of scenario `index` (cached).

        Scenes of a named suite (a `MappedSuite`) are cached once per process, shared by every env in
        it (a compiled scene is read-only, about 0.7 MB); other sources get this sim's own cache.
        """
        if isinstance(self._source, MappedSuite):
            cache, cache_size = _SHARED_COMPILED, SHARED_CACHE_SIZE
            key = (
                os.fspath(self._source.path),
                self.config.horizon,
                self.config.max_agents,
                index,
                controlled,
            )
        else:
            cache, cache_size, key = self._cache, self._cache_size, (index, controlled)
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        s = self.scenario(index)
        if s.dt != self.dt:
            raise ValueError(f"scenario {s.scenario_id} has dt={s.dt} s; AlpaGym steps at {self.dt} s")
        cs = compile_scene(s, self.config.horizon, self.config.max_agents, controlled)
        cache[key] = cs
        if len(cache) > cache_size:
            cache.popitem(last=False)
        return cs

    def _grow(self, group: dict, name: str, sizes: dict[int, int]) -> np.ndarray:
        grown = _fit(group[name], sizes)
        if grown is not group[name]:
            group[name] = grown
            self._kernel_args = None  # a buffer was reallocated: rebuild the kernel's argument tuples
        return grown

    def load(self, b: int, index: int, controlled: tuple[int, ...] | None = None) -> None:
        """Points scene slot `b` at scenario `index` (does not reset its state).

        No kernel writes the scene and route arrays, so a scene in the bank is shared, not copied: a
        slot that already holds the scene is left as it is (evaluation repeats, a fixed benchmark batch),
        and a scene that another slot holds or that a slot left recently (one of the `spare_scenes`)
        loads by pointing the slot at its row. Otherwise the scene is copied into the row idle longest.
        """
        key = (index, controlled)
        if self._key[b] == key and self.compiled[b] is not None:
            return
        k = self._rows.find(key)
        if k is None:
            cs = self.compile(index, controlled)
            if len(cs.routes) != self.num_controlled:
                raise ValueError(f"scene needs {self.num_controlled} controlled agents, got {len(cs.routes)}")
            if cs not in self._fitting:
                self._make_room(cs)
            k = self._rows.assign(b, key)
            self._write_row(k, cs)
        else:
            self._rows.assign(b, key)
            cs = self._row_scene[k]
        self.scenario_index[b] = index
        self.compiled[b] = cs
        self.episode_steps[b] = cs.steps
        if cs.steps < self.config.horizon and not self._warned_short_log:
            self._warned_short_log = True
            warnings.warn(
                f"scenario {cs.scenario.scenario_id!r} logs {cs.steps} steps, fewer than horizon="
                f"{self.config.horizon}: its episodes are truncated where the log ends (not padded); "
                "other scenes shorter than the horizon are truncated the same way without a warning",
                stacklevel=2,
            )
        self._key[b] = key

    def _write_row(self, k: int, cs: CompiledScene) -> None:
        """Copies compiled scene `cs` into bank row `k`."""
        sc, rt, n = self.scene, self.routes, cs.num_agents
        # Agent slots n.. keep stale data: every kernel reads only the first n_agents[k] slots.
        sc["log"][k, :, :n], sc["log_valid"][k, :, :n], sc["log_s"][k, :, :n] = cs.log, cs.log_valid, cs.log_s
        sc["size"][k, :n] = cs.size
        sc["n_agents"][k] = n
        sc["edge_grid"][k] = cs.edge_grid[0]
        sc["lights"][k] = 0
        for name, arr in _scene_arrays(cs):
            sc[name][k, : arr.shape[0]] = arr
        for c, r in enumerate(cs.routes):
            for name, arr in _route_arrays(r):
                rt[name][k, c, : arr.shape[0]] = arr
            rt["n_route"][k, c] = r.route.shape[0]
            rt["n_bins"][k, c] = r.edge_bins.shape[0] - 1
            rt["n_stops"][k, c] = r.stops.shape[0]
            rt["n_lane_route"][k, c] = r.lane_route.shape[0]
            rt["n_lane_stops"][k, c] = r.lane_stops.shape[0]
            rt["gt"][k, c] = r.s_start, r.log_length
        self._row_scene[k] = cs

    def _make_room(self, cs: CompiledScene) -> None:
        """Grows the scene and route buffers that are too small for `cs` (they never shrink, so a
        scene that fits once always fits: `load` checks each compiled scene once)."""
        for name, arr in _scene_arrays(cs):
            self._grow(self.scene, name, {1: arr.shape[0]})
        for r in cs.routes:
            for name, arr in _route_arrays(r):
                self._grow(self.routes, name, {2: arr.shape[0]})
        self._fitting.add(cs)

    def _tuples(self):
        if self._kernel_args is None:
            self._kernel_args = self._build_tuples()
        return self._kernel_args

    def _build_tuples(self):
        return (
            (self.row, *(self.scene[k] for k in SCENE_FIELDS)),
            tuple(self.routes[k] for k in ROUTE_FIELDS),
            tuple(self.state[k] for k in STATE_FIELDS),
        )

    # ---------------------------------------------------------------------------------- stepping

    def reset(
        self,
        indices: Sequence[int],
        scenario_ids: Sequence[int],
        controlled: Sequence[tuple[int, ...] | None] | None = None,
    ) -> None:
        """Loads `scenario_ids[i]` into scene `indices[i]` and puts it at step 0.

        Args:
            indices: Scene slots to reset.
            scenario_ids: Scenario index for each slot.
            controlled: For each slot, the scenario agent indices the policy drives (ego first);
                None (or a None entry) drives the ego alone.
        """
        mask = np.zeros(self.num_scenes, dtype=np.bool_)
        controlled = [None] * len(indices) if controlled is None else list(controlled)
        for b, sid, ctrl in zip(indices, scenario_ids, controlled, strict=True):
            self.load(int(b), int(sid), None if ctrl is None else tuple(int(i) for i in ctrl))
            mask[b] = True
        self.expert[mask] = False
        self.ctrl_flags[mask] = 0
        scene, routes, state = self._tuples()
        self._reset_kernel(mask, self.num_controlled, scene, routes, state, self.params, self.out)

    def step(self, actions: np.ndarray) -> None:
        """Advances the active scenes by one step; results are in `obs`, `reward`, `metrics`, ...

        Args:
            actions: (B, C, A) normalised actions; taken as float64 (one compiled kernel for every caller:
                float32 actions would compile, and run, a second one).
        """
        scene, routes, state = self._tuples()
        self._step_kernel(
            np.ascontiguousarray(actions, dtype=np.float64),
            self.active,
            self.expert,
            scene,
            routes,
            state,
            self.params,
            self.out,
            self.ctrl,
        )

    # --------------------------------------------------------------------------------- snapshots

    def fingerprint(self, index: int, controlled: tuple[int, ...] | None = None) -> dict[str, str]:
        """What a snapshot of scenario `index` is only valid with: ``scene`` (a digest of the scene's
        content, so the same index of another suite differs) and ``config`` (of the `EnvConfig` and the
        number of controlled slots, which decide the state's layout and meaning)."""
        key = (index, controlled)
        digest = self._scene_digest.get(key)
        if digest is None:
            s = self.scenario(index)
            h = hashlib.blake2b(digest_size=16)
            h.update(repr((s.scenario_id, s.ego_index, s.dt, controlled)).encode())
            for name in ARRAY_FIELDS:
                h.update(np.ascontiguousarray(getattr(s, name)).data)
            digest = self._scene_digest[key] = h.hexdigest()
        return {"scene": digest, "config": self._config_digest}

    def get_state(self, b: int) -> dict:
        """A deep copy of scene `b`'s dynamic state (enough to resume it exactly), with the
        `fingerprint` of its scene and config."""
        snap = {k: v[b].copy() for k, v in self.state.items()}
        snap["scene_key"] = self._key[b]
        snap["scenario_id"] = self.compiled[b].scenario.scenario_id
        snap["fingerprint"] = self.fingerprint(*self._key[b])
        snap["expert"] = self.expert[b].copy()
        snap["obs"] = self.obs[b].copy()
        return snap

    def check_state(self, snap: dict) -> None:
        """Raises `ValueError` unless `snap` was taken by `get_state` of an env with this config on the
        same scene (its `fingerprint` matches)."""
        missing = sorted({"scene_key", "fingerprint", "scenario_id", *self.state} - set(snap))
        if missing:
            raise ValueError(f"not a snapshot from get_state: missing {missing}")
        index, controlled = snap["scene_key"]
        if not 0 <= int(index) < self.num_scenarios:
            raise ValueError(
                f"snapshot of scene {snap['scenario_id']!r} (index {index}) does not fit this env's "
                f"{self.num_scenarios} scenes"
            )
        here = self.fingerprint(int(index), controlled)
        there = snap["fingerprint"]
        if there.get("config") != here["config"]:
            raise ValueError(
                f"snapshot of scene {snap['scenario_id']!r} was taken under another env config "
                "(horizon, max_agents, dynamics, ... or number of controlled agents); it cannot be restored"
            )
        if there.get("scene") != here["scene"]:
            ours = self.scenario(int(index)).scenario_id
            raise ValueError(
                f"snapshot of scene {snap['scenario_id']!r} does not match this env's scene {index} "
                f"({ours!r}, another suite or scene content); it cannot be restored"
            )

    def set_state(self, b: int, snap: dict) -> None:
        """Restores a snapshot from `get_state` into scene `b` (loading its scenario if needed).

        Raises:
            ValueError: The snapshot's fingerprint does not match (`check_state`).
        """
        self.check_state(snap)
        if self.compiled[b] is None or self._key[b] != snap["scene_key"]:
            self.load(b, *snap["scene_key"])
        for k, v in self.state.items():
            v[b] = snap[k]
        self.expert[b] = snap["expert"]
        self.obs[b] = snap["obs"]

    def episode_metrics(self, b: int, c: int = 0) -> dict[str, float]:
        """The named closed-loop metrics of scene `b`'s current episode for controlled slot `c`."""
        out = np.zeros((len(M.EPISODE_METRICS), self.num_scenes))
        self.episode_metric_table([b], out, c)
        return dict(zip(M.EPISODE_METRICS, out[:, b].tolist(), strict=True))

    def episode_metric_table(self, ids, out: np.ndarray, c: int = 0) -> None:
        """Writes the closed-loop metrics of scenes `ids`' current episodes (controlled slot `c`) into
        their columns of `out` (>= len(M.EPISODE_METRICS), num_scenes), in `M.EPISODE_METRICS` order."""
        M.episode_metric_table(
            self.state["episode"][:, c],
            self.state["t"],
            self.state["track"][:, c, TR_CUT_STEPS],
            self.routes["gt"][self.row, c, 1],
            np.asarray(ids, dtype=np.int64),
            out,
        )
