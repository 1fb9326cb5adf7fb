"""`AlpaDrive-v0`: the single-agent Gymnasium env, `BatchedSim` with one scene."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from numba import njit

from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.envs.infos import INFO_KEY, episode_info, reward_info_key, step_info
from alpagym_env.envs.view import SceneView
from alpagym_env.rewards import Reward, resolve
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.sim.observation import OBS_BOUND, obs_layout


def check_actions(actions: np.ndarray, shape: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """Validates a batch of normalised actions: float64 array of `shape`, finite, clipped to [-1, 1].

    Args:
        actions: The actions as given.
        shape: Their expected shape.
        out: Optional float64 array of `shape` (a view is fine) that receives the checked actions, so
            that a caller with a buffer of its own copies them once.

    Returns:
        The checked actions (`out` when given).

    Raises:
        ValueError: naming the wrong shape or the non-finite entries.
    """
    a = np.asarray(actions, dtype=None if out is not None else np.float64)
    if a.shape != shape:
        raise ValueError(f"action has shape {np.shape(actions)}, expected {shape}")
    if out is not None:
        if a.dtype in (np.float32, np.float64) and out.flags.c_contiguous:
            if _copy_in_range(a.reshape(-1), out.reshape(-1)):  # one pass: copy and range check
                return out
        else:
            np.copyto(out, a, casting="same_kind")
        a = out
    elif a.min() >= -1.0 and a.max() <= 1.0:  # NaN propagates: in range means finite
        return a
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a)).tolist()
        raise ValueError(f"action contains NaN or inf at {bad}: {np.asarray(actions).tolist()}")
    return np.clip(a, -1.0, 1.0, out=out)


@njit(cache=True)
def _copy_in_range(src, dst):
    """Copies `src` into `dst` ((n,) float32 or float64 into (n,) float64); True when every entry is in
    [-1, 1] (a NaN is not)."""
    ok = True
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = v
        if not (v >= -1.0 and v <= 1.0):
            ok = False
    return ok


def scenario_source(config: EnvConfig, scenarios: Sequence[Scenario] | None) -> Sequence[Scenario]:
    """The scenes an env samples from: `scenarios` if given, else the configured suite: a name (shared,
    memory-mapped: `alpagym_env.scenarios.mapped`) or a path to converted scenes."""
    from alpagym_env.scenarios.mapped import MappedSuite

    if isinstance(scenarios, MappedSuite):
        return scenarios
    if scenarios is not None:
        scenarios = list(scenarios)
        if not scenarios or not all(isinstance(s, Scenario) for s in scenarios):
            raise ValueError("scenarios must be a non-empty sequence of Scenario objects")
        return scenarios
    from alpagym_env.scenarios import load_suite

    return load_suite(config.suite)


RENDER_MODES = ("rgb_array",)


def check_render_mode(render_mode: str | None, modes: Sequence[str] = RENDER_MODES) -> None:
    """Raises a `ValueError` naming the render modes when `render_mode` is not one of `modes` (or None)."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be one of {list(modes)} or None, got {render_mode!r}")


def action_space(config: EnvConfig) -> spaces.Box:
    """The single-env action space of `config.action_type`: (2,) for control, (H * 3,) or (H * 2,) for
    trajectory actions (`TrajectoryConfig.action_dim`)."""
    dim = config.trajectory.action_dim if config.action_type == "trajectory" else 2
    return spaces.Box(-1.0, 1.0, (dim,), np.float32)


def split_obs(config: EnvConfig, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Flat observations (..., D) as the dict observation's parts, (..., *part_shape) each."""
    layout = obs_layout(config.obs.num_agents, config.obs.route_points)
    lead = flat.shape[:-1]
    return {k: flat[..., sl].reshape(*lead, *shape) for k, (sl, shape) in layout.items()}


def observation_space(config: EnvConfig, dim: int) -> spaces.Space:
    if config.obs_type == "flat":
        return spaces.Box(-OBS_BOUND, OBS_BOUND, (dim,), np.float32)
    layout = obs_layout(config.obs.num_agents, config.obs.route_points)
    # An OrderedDict keeps the flat layout's order (Gymnasium sorts a plain dict's keys), so
    # `FlattenObservation` of the dict observation equals the flat observation.
    return spaces.Dict(
        OrderedDict(
            (k, spaces.Box(-OBS_BOUND, OBS_BOUND, shape, np.float32)) for k, (_, shape) in layout.items()
        )
    )


class AlpaDriveEnv(gym.Env):
    """Closed-loop driving of the ego vehicle through procedural or imported scenes.

    ## Description
    The policy drives the ego vehicle of a scene for 20 s at 10 Hz among agents that replay their
    logs (as the AlpaSim challenge) or react with IDM car-following. Every scene comes with the
    ego's expert log, so closed-loop metrics compare the policy with what the expert did.

    ## Action Space
    ``action_type="control"``: ``Box(-1, 1, (2,), float32)``: ``[acceleration, steering]``.
    Acceleration +1 is `DynamicsConfig.max_acc` (3 m/s^2) and -1 is `max_brake` (6 m/s^2 of braking);
    steering +-1 is `max_steer` (0.5 rad of front-wheel angle, positive turns left). Commands pass
    through first-order actuator lags (0.1 s) into a dynamic bicycle.
    ``action_type="trajectory"``: ``Box(-1, 1, (H * 3,), float32)``: H future ego-frame poses (default 8
    at 0.5 s, `TrajectoryConfig`) as ``[x / 160 m, y / 40 m, heading / pi]`` each, tracked every step
    by a time-varying LQ controller on the same vehicle (`alpagym_env.sim.controller`);
    ``info["trajectory_infeasible"]`` flags plans beyond the vehicle's limits. Out-of-range values are
    clipped; NaN, inf or a wrong shape raise `ValueError`.

    ## Observation Space
    ``obs_type="flat"`` (default): a float32 vector in the ego frame whose layout is documented in
    `alpagym_env.sim.observation` (ego state, lane-route waypoints with free road widths, the speed
    limit and its next change, lane slots with the leader and follower in the ego's and the adjacent
    lanes, the K nearest other agents, the next traffic light); 177 values with the defaults. The
    route is the map's lane centre lines the log traverses, never the logged path, and nothing in the
    observation is computable from the log's future. ``obs_type="dict"`` gives the same values as a
    `Dict` of ``ego``, ``route``, ``limit``, ``lanes``, ``agents`` and ``light``.

    ## Rewards
    A list of ``{kind, name, scale}`` terms or a preset name (`alpagym_env.rewards`); default
    ``progress_safety``: +1 x route progress (fraction of the logged path per step), -10 x at-fault
    collision, -5 x off-road, -5 x running a red light, -0.01 x distance to the logged position (m).
    A collision's side, and so its fault, is decided at the first contact of a pair and held while
    the contact lasts: being rear-ended is never at fault. Each term's value is in
    ``info["reward/{kind}/{name}"]``. A callable ``reward(metrics) -> float`` may replace the terms; it gets
    the step's metric channels by name.

    ## Starting State
    A scene drawn uniformly from the suite with the env's RNG (or ``options={"scenario_index": i}``),
    with every agent at its logged state of step 0; ``options={"state": snapshot}`` resumes a snapshot
    taken by `get_state`.

    ## Episode End
    Terminated at the AlpaSim cut (the first collision of any side, off-road, or the ego 4 m from its
    logged path), so nothing is earned or charged after the last state the scorer judges, and on
    reaching the end of the route; ``termination={"at_cut": False}`` drives on after the cut until an
    at-fault collision or off-road (`TerminationConfig`). The reward, the termination and the episode
    metrics read one collision verdict. Truncated after ``horizon`` steps (200), or where the scene's
    log ends if that is sooner (real logs last 9-20 s; the env warns once). At the end,
    ``info["alpagym"]`` holds the episode's closed-loop metrics (`alpagym_env.metrics`), the AlpaSim
    scene score, the return ``r`` and length ``l``, as floats; ``info["episode"]`` is left to
    Gymnasium's `RecordEpisodeStatistics` and SB3's `Monitor`. Every info is flat and numeric
    (`alpagym_env.envs.infos`).

    ## Arguments
    ``suite`` (``"train"``; a name or a path to a converted ``.npz`` suite or a directory of scene
    ``.npz`` files, `python -m alpagym_env.scenarios.convert`), ``scenarios`` (a list of `Scenario`
    instead of a suite), ``horizon``,
    ``action_type``, ``obs_type``, ``reward``, ``agents`` (``"replay"`` or ``"idm"`` or a dict of
    `AgentsConfig`), ``dynamics``, ``obs``, ``termination``, ``trajectory``, ``controller``,
    ``max_agents``, ``render_mode`` (``"rgb_array"``, or ``"human"``: a pygame window, the ``render``
    extra), ``render_config``. Unknown arguments raise `TypeError`.

    ## Version History
    - v0: initial release.
    - v0 (unreleased changes, same id until the first release):
      collisions are judged once per contact (the side of the first touch, held while the boxes
      overlap), so a replayed car that rear-ends the ego and drives through it no longer counts as
      a front, at-fault collision; the episode ends at the AlpaSim cut by default
      (`TerminationConfig.at_cut`), so reward, termination and metrics agree; ``ran_red_light``
      uses the front bumper and only stop lines of the route's own lane, never flags a bumper
      already past the line at the start, and costs -5 in ``progress_safety``; episode metrics gain
      ``scene_score_strict`` (0 after a red-light violation). The ego's tyres have a grip limit
      (Fiala tyres within ``DynamicsConfig.mu`` times each axle's load, default 0.9: dry asphalt;
      understeer and stability control past the limit), so combined acceleration stays within
      mu * g (full steering at 30 m/s: 0.77 g, was 5.3 g); the trajectory controller's lateral
      limit follows from it. Reactive (``agents="idm"``) vehicles keep to their log's timing while
      nothing off its log is in their way. The observation has a lane-level
      route from map lane centres (the log path stays the metrics' reference), lane slots (leader
      and follower in the ego's and adjacent lanes), the speed limit and its next change; entry 8
      (progress over the logged path length) is now the offset from the centre of the ego's lane:
      126 -> 177 values with the defaults, so policies must be retrained. The procedural suites add
      the ``congestion`` family (stop-and-go), and more urban and intersection egos turn.
      Infos are flat and numeric so every wrapper can batch them: the episode's metrics moved from
      ``info["episode"]`` to ``info["alpagym"]`` (``alpagym/{metric}`` keys in the PettingZoo env),
      ``info["reward_terms"][key]`` became ``info["reward/" + key]``, ``scenario_id`` became
      ``scenario_index`` (the id is `AlpaDriveEnv.scenario_id`), ``trajectory_limits`` became the
      ``trajectory_flags`` bit mask. Unknown arguments raise `TypeError`, every config value is
      type-checked, snapshots refuse to load into another scene or config.
      Episodes on a scene whose log is shorter than ``horizon`` are truncated where the log ends
      instead of running on past it with every logged agent held at its last pose.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 10}

    def __init__(
        self,
        render_mode: str | None = None,
        reward: str | Sequence | Callable | Reward | None = None,
        scenarios: Sequence[Scenario] | None = None,
        render_config: Any = None,
        **kwargs: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.config = EnvConfig.from_kwargs(**kwargs)
        self.render_mode = render_mode
        self._window = None
        self.reward_spec = resolve(reward)
        self._scenarios = scenario_source(self.config, scenarios)
        index, scale = self.reward_spec.kernel_arrays()
        self.sim = BatchedSim(self.config, 1, self._scenarios, len(self._scenarios), 1, index, scale)
        self.action_space = action_space(self.config)
        self.observation_space = observation_space(self.config, self.sim.obs_dim)
        self._term_keys = tuple(t.key for t in self.reward_spec.metric_terms)
        self._actions = np.zeros((1, 1, self.sim.action_dim))
        self._ep_return = 0.0
        self._view: SceneView | None = None
        self._render_config = render_config

    # ----------------------------------------------------------------------------------- gym API

    def _obs(self) -> np.ndarray | dict[str, np.ndarray]:
        flat = self.sim.obs[0, 0].copy()
        return flat if self.config.obs_type == "flat" else split_obs(self.config, flat)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"scenario_index", "state"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; known: ['scenario_index', 'state']")
        if "state" in options:
            self.set_state(options["state"])
            return self._obs(), self._info(done=False)
        if "scenario_index" in options:
            index = int(options["scenario_index"])
            if not 0 <= index < self.sim.num_scenarios:
                raise ValueError(f"scenario_index {index} is outside 0..{self.sim.num_scenarios - 1}")
        else:
            index = int(self.np_random.integers(self.sim.num_scenarios))
        self.sim.reset([0], [index])
        self._ep_return = 0.0
        if self.render_mode == "human":
            self.render()
        return self._obs(), self._info(done=False)

    def step(self, action):
        if self.sim.scenario_index[0] < 0:
            raise RuntimeError("call reset() before step()")
        self._actions[0, 0] = check_actions(action, (self.sim.action_dim,))
        self.sim.step(self._actions)
        sim = self.sim
        terminated = bool(sim.terminated[0, 0])
        truncated = bool(sim.truncated[0]) and not terminated
        done = terminated or truncated
        if self.reward_spec.fn is not None:
            reward = float(self.reward_spec.fn(self.step_metrics()))
        else:
            reward = float(sim.reward[0, 0])
        info = self._info(done)
        if done and self.reward_spec.terminal_terms:
            ep = info[INFO_KEY]
            for term in self.reward_spec.terminal_terms:
                value = term.scale * ep[term.name]
                info[reward_info_key(term.key)] = value
                reward += value
        self._ep_return += reward
        if done:
            info[INFO_KEY]["r"] = self._ep_return
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, terminated, truncated, info

    def _info(self, done: bool) -> dict[str, Any]:
        info = step_info(self.sim, 0, 0, self._term_keys)
        if done:
            info[INFO_KEY] = episode_info(self.sim, 0)
        return info

    @property
    def scenario_id(self) -> str | None:
        """The current scene's id (None before the first reset)."""
        cs = self.sim.compiled[0]
        return None if cs is None else cs.scenario.scenario_id

    def step_metrics(self) -> dict[str, float]:
        """The metric channels of the last step by name (`alpagym_env.metrics`)."""
        m = self.sim.metrics[0, 0]
        return {name: float(m[M.channel(name).index]) for name in M.channel_names()}

    # ---------------------------------------------------------------------------------- snapshots

    def get_state(self) -> dict[str, Any]:
        """A deep copy of the whole simulation state; `set_state` resumes it bit for bit."""
        snap = self.sim.get_state(0)
        snap["episode_return"] = self._ep_return
        return snap

    def set_state(self, state: dict[str, Any]) -> None:
        self.sim.set_state(0, state)
        self._ep_return = float(state["episode_return"])

    # ---------------------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        """What rebuilds this env: its arguments (a named suite goes by its path, not its data), the
        RNG and a snapshot of the running episode; kilobytes instead of the sim's buffers."""
        config = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}
        started = self.sim.scenario_index[0] >= 0
        return {
            "args": {
                "render_mode": self.render_mode,
                "reward": self.reward_spec,
                "scenarios": self._scenarios,
                "render_config": self._render_config,
                **config,
            },
            "rng": None if self._np_random is None else self._np_random.bit_generator.state,
            "snapshot": self.get_state() if started else None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["args"])
        if state["rng"] is not None:
            self._np_random, _ = seeding.np_random()
            self._np_random.bit_generator.state = state["rng"]
        if state["snapshot"] is not None:
            self.set_state(state["snapshot"])

    # ---------------------------------------------------------------------------------- rendering

    def render(self):
        """The top-down frame, (H, W, 3) uint8 (``"rgb_array"``), or None after showing it in a pygame
        window (``"human"``, called by `reset` and `step` as Gymnasium expects)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._view is None:
            self._view = SceneView(self._render_config)
        frame = self._view.frame(self.sim, 0)
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            from alpagym_env.render.window import Window

            self._window = Window("AlpaDrive-v0", self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
