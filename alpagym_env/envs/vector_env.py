"""`gym.make_vec("AlpaDrive-v0", num_envs=N)`: the native batched vector env.

The same `BatchedSim` as the single env with B = num_envs: one kernel call steps every sub-env, so
there is no per-env Python loop, subprocess or copy. Sub-env i behaves bit for bit like a single
`AlpaDrive-v0` reset with seed ``seed + i`` (the Gymnasium convention), through autoresets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.drive_env import (
    action_space,
    check_actions,
    check_render_mode,
    observation_space,
    scenario_source,
    split_obs,
)
from alpagym_env.envs.infos import INFO_KEY, mask_keys, masked_info, reward_info_key
from alpagym_env.envs.outcome import (
    DONE,
    FIRST_MASK,
    TABLE_KEYS,
    TERMINATED,
    TRUNCATED,
    empty_outcome,
    settle,
)
from alpagym_env.envs.view import SceneView
from alpagym_env.rewards import Reward, resolve
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.sim.controller import INFEASIBLE

RESET_OPTIONS = ("reset_mask", "scenario_ids", "states")


class AlpaDriveVectorEnv(VectorEnv):
    """`num_envs` AlpaDrive scenes stepped together by the batched engine.

    Takes every keyword argument of `AlpaDriveEnv` plus `num_envs`, `autoreset_mode`
    (`AutoresetMode.NEXT_STEP`, the default, `SAME_STEP` or `DISABLED`; also the `autoreset_mode`
    attribute) and `spare_scenes` (`BatchedSim`'s: scenes kept loaded beyond the num_envs in use, so that
    drawing one again copies nothing; default min(num_envs - 1, 64), about 0.8 MB each, and as many as
    the suite has keep every scene loaded). Finished sub-envs keep their last observation and
    ``info["alpagym"]`` (`alpagym_env.envs.infos`): with NEXT_STEP they are returned on the finishing
    step and the sub-env resets on the next call (its action ignored); with SAME_STEP they are in
    ``info["final_obs"]`` / ``info["final_info"]`` and the reset observation is returned at once; with
    DISABLED the sub-env stays frozen (not stepped, reward 0) until a reset names it in ``reset_mask``
    (what group rollouts use: each member runs to its own end, nothing is simulated after it).

    Reset options: ``reset_mask`` (num_envs,) bool resets only those sub-envs; ``scenario_ids``
    chooses each reset sub-env's scenario index; ``states`` restores snapshots from `get_state` (one
    snapshot for all, or one per reset sub-env), e.g. the G members of a GRPO group from one state.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        reward: str | Sequence | Callable | Reward | None = None,
        scenarios: Sequence[Scenario] | None = None,
        render_config: Any = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        spare_scenes: int | None = None,
        **kwargs: Any,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED):
            raise ValueError(f"autoreset_mode must be NEXT_STEP, SAME_STEP or DISABLED, got {mode}")
        check_render_mode(render_mode)
        self.num_envs = int(num_envs)
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.render_mode = render_mode
        self.config = EnvConfig.from_kwargs(**kwargs)
        self.reward_spec = resolve(reward)
        self._scenarios = scenario_source(self.config, scenarios)
        index, scale = self.reward_spec.kernel_arrays()
        self.sim = BatchedSim(
            self.config,
            self.num_envs,
            self._scenarios,
            len(self._scenarios),
            1,
            index,
            scale,
            spare_scenes=spare_scenes,
        )
        self.single_action_space = action_space(self.config)
        self.single_observation_space = observation_space(self.config, self.sim.obs_dim)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._term_info_keys = tuple(reward_info_key(t.key) for t in self.reward_spec.metric_terms)
        keys = [*self._term_info_keys, "t", "scenario_index"]
        if self.config.action_type == "trajectory":
            keys += ["trajectory_infeasible", "trajectory_flags"]
        self._step_info_keys = tuple(keys)
        self._step_mask_keys = mask_keys(self._step_info_keys)
        self._table_mask_keys = mask_keys(TABLE_KEYS)
        terminal = self.reward_spec.terminal_terms
        self._terminal_rows = tuple((t, reward_info_key(t.key), TABLE_KEYS.index(t.name)) for t in terminal)
        self._terminal_index = np.array([row for *_, row in self._terminal_rows], dtype=np.int64)
        self._terminal_scale = np.array([t.scale for t in terminal], dtype=np.float64)
        self._final_keys = (INFO_KEY, *(key for _, key, _ in self._terminal_rows))
        self._final_mask_keys = mask_keys(self._final_keys)
        self._num_final = len(TABLE_KEYS) + len(self._final_keys)  # info keys only finished sub-envs hold
        self._all_reset = False  # every sub-env was reset once: step() may run
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._needs_reset = np.zeros(self.num_envs, dtype=np.bool_)
        self._every = np.ones(self.num_envs, dtype=np.bool_)
        self._ep_return = np.zeros(self.num_envs)
        self._actions = np.zeros((self.num_envs, 1, self.sim.action_dim))
        self._render_config = render_config
        self._views: list[SceneView | None] = [None] * self.num_envs

    # ------------------------------------------------------------------------------------- reset

    def _obs(self):
        flat = self.sim.obs[:, 0].copy()
        return flat if self.config.obs_type == "flat" else split_obs(self.config, flat)

    def _reset_envs(self, ids: np.ndarray, scenario_ids=None, states=None) -> None:
        """Resets sub-envs `ids` to drawn or chosen scenes, or to snapshots."""
        if states is not None:
            snaps = [states] * len(ids) if isinstance(states, dict) else list(states)
            if len(snaps) != len(ids):
                raise ValueError(f"states holds {len(snaps)} snapshots for {len(ids)} sub-envs to reset")
            for b, snap in zip(ids, snaps, strict=True):
                self.sim.set_state(int(b), snap)
                self._ep_return[b] = float(snap["episode_return"])
        else:
            if scenario_ids is None:
                scenario_ids = [int(self._rng(b).integers(self.sim.num_scenarios)) for b in ids]
            else:
                scenario_ids = self._check_scenario_ids(scenario_ids, len(ids))
            self.sim.reset(ids, scenario_ids)
            self._ep_return[ids] = 0.0
        self._needs_reset[ids] = False

    def _check_scenario_ids(self, scenario_ids, count: int) -> list[int]:
        """`scenario_ids` as ints, one for each of `count` sub-envs, each a scene of the suite."""
        scenario_ids = [int(s) for s in scenario_ids]
        if len(scenario_ids) != count:
            raise ValueError(f"scenario_ids holds {len(scenario_ids)} ids for {count} sub-envs to reset")
        bad = [s for s in scenario_ids if not 0 <= s < self.sim.num_scenarios]
        if bad:
            raise ValueError(f"scenario_ids {bad} are outside 0..{self.sim.num_scenarios - 1}")
        return scenario_ids

    def _rng(self, b: int) -> np.random.Generator:
        if self._rngs[b] is None:
            self._rngs[b], _ = seeding.np_random()
        return self._rngs[b]

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; known: {list(RESET_OPTIONS)}")
        mask = options.get("reset_mask")
        mask = np.ones(self.num_envs, dtype=np.bool_) if mask is None else np.asarray(mask, dtype=np.bool_)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask has shape {mask.shape}, expected ({self.num_envs},)")
        ids = np.flatnonzero(mask)
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} sub-envs")
            for b in ids:
                if seeds[b] is not None:
                    self._rngs[b], _ = seeding.np_random(int(seeds[b]))
        self._reset_envs(ids, options.get("scenario_ids"), options.get("states"))
        return self._obs(), self._step_infos(mask)

    # -------------------------------------------------------------------------------------- step

    def step(self, actions):
        if not self._all_reset:
            never = np.flatnonzero(self.sim.scenario_index < 0).tolist()
            if never:
                raise RuntimeError(f"call reset() before step(): sub-envs {never} were never reset")
            self._all_reset = True
        sim = self.sim
        check_actions(actions, (self.num_envs, *self.single_action_space.shape), out=self._actions[:, 0])
        # Finished sub-envs are not stepped: with NEXT_STEP they reset now, with DISABLED they stay frozen
        # (reward 0) until a reset names them in reset_mask.
        np.logical_not(self._needs_reset, out=sim.active)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            shown = sim.active  # sub-envs with an info: those stepped
        else:
            shown = self._every  # and those reset by this call
            resetting = np.flatnonzero(self._needs_reset)
            if resetting.size:
                self._reset_envs(resetting)
        sim.step(self._actions)
        values, ints, flags, finished = self._settle(shown)
        rewards, terminated, truncated, done = values[0], flags[TERMINATED], flags[TRUNCATED], flags[DONE]
        num_shown, first_term = len(self._step_info_keys), 1 + len(TABLE_KEYS)
        masks = flags[FIRST_MASK:]  # the step infos', then the table's, then the other final keys'
        infos = self._info_dict(values[first_term:], ints, masks[:num_shown])
        obs = self._obs()
        if not finished:
            return obs, rewards, terminated, truncated, infos
        # What the finished sub-envs add: their episode's metrics and the terminal reward terms.
        table = values[1:first_term]
        ep = dict(zip(TABLE_KEYS, table, strict=True))
        final = [ep, *(term.scale * table[row] for term, _, row in self._terminal_rows)]
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            obs, infos = self._reset_same_step(obs, infos, final, done)
        else:
            table_masks = num_shown + len(TABLE_KEYS)
            ep.update(zip(self._table_mask_keys, masks[num_shown:table_masks], strict=True))
            infos.update(zip(self._final_keys, final, strict=True))
            infos.update(zip(self._final_mask_keys, masks[table_masks:], strict=True))
            self._needs_reset |= done
        return obs, rewards, terminated, truncated, infos

    def _settle(self, shown: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """`outcome.settle` of the step just taken, into new arrays: values, ints, flags (its layout) and
        how many sub-envs finished."""
        sim = self.sim
        if self.reward_spec.fn is not None:
            reward = np.asarray(self.reward_spec.fn(self.step_metrics()), dtype=np.float64)[:, None]
        else:
            reward = sim.reward
        num_shown = len(self._step_info_keys)
        num_terms = len(self._term_info_keys)
        values, ints, flags = empty_outcome(self.num_envs, num_terms, num_shown, self._num_final)
        finished = settle(
            sim.active,
            shown,
            sim.terminated,
            sim.truncated,
            reward,
            sim.reward_terms,
            sim.state["t"],
            sim.scenario_index,
            sim.state["episode"],
            sim.state["track"],
            sim.routes["gt"],
            sim.row,
            self._terminal_index,
            self._terminal_scale,
            self._ep_return,
            num_shown,
            values,
            ints,
            flags,
        )
        return values, ints, flags, finished

    def _reset_same_step(self, obs, infos: dict, final: list, done: np.ndarray) -> tuple[Any, dict]:
        """SAME_STEP: resets the finished sub-envs at once; their last observation and infos (`infos`,
        and `final`: the values of the keys only finished sub-envs hold) go to ``final_obs`` and
        ``final_info``."""
        held = {k: np.where(done, v, np.zeros_like(v)) for k, v in infos.items() if k[0] != "_"}
        final_info = {**held, **dict(zip(self._final_keys, final, strict=True))}
        done_ids = np.flatnonzero(done)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for b in done_ids:
            final_obs[b] = _take(obs, b)
        self._reset_envs(done_ids)
        infos = self._step_infos(self._every)
        infos.update(masked_info({"final_obs": final_obs, "final_info": final_info}, done))
        return self._obs(), infos

    def _step_infos(self, shown: np.ndarray) -> dict[str, Any]:
        """The last step's infos (`alpagym_env.envs.infos.step_info`) of sub-envs where `shown` is set."""
        sim = self.sim
        masks = np.empty((len(self._step_info_keys), self.num_envs), dtype=np.bool_)
        masks[:] = shown
        ints = (sim.state["t"].copy(), sim.scenario_index.copy())
        return self._info_dict(sim.reward_terms[:, 0].T.copy(), ints, masks)

    def _info_dict(self, terms, ints, masks: np.ndarray) -> dict[str, Any]:
        """The step infos from new arrays: terms (Kr, num_envs) the reward terms, ints t and
        scenario_index (num_envs,) each, masks (len(step info keys), num_envs) bool."""
        values = [*terms, *ints]
        if self.config.action_type == "trajectory":
            flags = self.sim.ctrl_flags[:, 0].astype(np.int64)
            values += [(flags & INFEASIBLE) != 0, flags]
        infos = dict(zip(self._step_info_keys, values, strict=True))
        infos.update(zip(self._step_mask_keys, masks, strict=True))
        return infos

    def step_metrics(self) -> dict[str, np.ndarray]:
        """The last step's metric channels by name, (num_envs,) arrays."""
        from alpagym_env import metrics as M

        m = self.sim.metrics[:, 0]
        return {name: m[:, M.channel(name).index].copy() for name in M.channel_names()}

    # --------------------------------------------------------------------------------- snapshots

    def get_state(self, index: int) -> dict[str, Any]:
        """A deep copy of sub-env `index`'s state, in the single env's snapshot format."""
        snap = self.sim.get_state(index)
        snap["episode_return"] = float(self._ep_return[index])
        return snap

    def set_state(self, index: int, state: dict[str, Any]) -> None:
        self._reset_envs(np.array([index]), states=[state])

    # --------------------------------------------------------------------------------- rendering

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One top-down frame per sub-env (`render_mode="rgb_array"`)."""
        if self.render_mode is None:
            return None
        for b, view in enumerate(self._views):
            if view is None:
                self._views[b] = SceneView(self._render_config)
        return tuple(view.frame(self.sim, b) for b, view in enumerate(self._views))


def _take(value: Any, b: int) -> Any:
    """Element `b` of a batched observation or info value (dicts recursively)."""
    if isinstance(value, dict):
        return {k: _take(v, b) for k, v in value.items() if not k.startswith("_")}
    item = value[b]
    return item.item() if isinstance(item, np.generic) else item
