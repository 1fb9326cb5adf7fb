"""Expert (observation, action) pairs for behaviour cloning, from the scenes' logs, for both action types.

`expert_dataset` drives every scene's ego closed-loop in the engine with the expert's own actions, so each
observation is exactly what the env produces for that state (steering, lateral velocity and actuator lags
included) and each action is the one the expert takes there:

- ``"control"``: the commands of the tracking controller (`alpagym_env.sim.controller.track`) following
  the logged future at full resolution (`LABEL_TRAJECTORY`: every 0.1 s pose for 4 s), normalised as the
  env's control actions (accel / max_acc or max_brake, steer / max_steer). That is an inverse of the
  dynamics solved over a 4 s window with the actuator lags, the steering-rate limit and the grip: it
  starts unwinding the steering before a turn ends where the rate limit needs it, where the one-step
  `dynamic_inverse` (which it replaced for labels) overshot into full-left / full-right chatter in tight
  intersection turns. Replayed open loop from the initial state the labels reproduce the rollout bit for
  bit, which follows the log within the controller's tracking error (measured on the 200 `val` scenes:
  every scene scores 1, at most 0.24 m from its log; no steering label at +-1).
- ``"trajectory"``: the logged poses at t + spacing, ..., t + H * spacing in the ego's frame at t (past
  the end of the scenario's log: constant speed along the last logged heading), tracked by the
  controller, normalised as the env's trajectory actions.

Teleporting the ego along its log (`BatchedSim.expert`) would zero the steering, lateral-velocity and
lag features of the observation, which a policy never sees when it drives; driving the log avoids that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from alpagym_env.config import EnvConfig, TrajectoryConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios.schema import Scenario
from alpagym_env.sim.controller import (
    C_POSES,
    C_PREVIEW,
    C_STEPS,
    C_X_SCALE,
    C_Y_SCALE,
    controller_params,
    track,
    work_shape,
)
from alpagym_env.sim.dynamics import P_MAX_ACC, P_MAX_BRAKE, P_MAX_STEER, YAW, X, Y

# The logged future the control labels' controller tracks: every 0.1 s pose for 4 s, in ranges that
# never clip (40 m/s x 4 s = 160 m ahead).
LABEL_TRAJECTORY = TrajectoryConfig(num_poses=40, spacing=0.1, x_scale=200.0, y_scale=200.0)


@dataclass(frozen=True)
class ExpertDataset:
    """Behaviour-cloning data: M expert transitions in episode order.

    Attributes:
        observations: (M, D) float32 flat observations, as the env returns them.
        actions: (M, A) float32 normalised actions in [-1, 1] of `action_type`.
        episode: (M,) int64 index of each row's scene in the input (and in `scenario_ids`).
        step: (M,) int64 step of each observation within its episode (0 = after reset).
        scenario_ids: One id per input scene.
        action_type: ``"control"`` or ``"trajectory"``.
        config: The env configuration the rollouts used (pass the same arguments to the env).
    """

    observations: np.ndarray
    actions: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    scenario_ids: tuple[str, ...]
    action_type: str
    config: EnvConfig

    def __len__(self) -> int:
        return int(self.actions.shape[0])


@njit(cache=True)
def _control_labels(agent, future, t, active, p, cp, dt, plan, work, out):
    """The controller's commands along each active ego's logged future, normalised, into out (B, 2).

    cp: (NUM_CTRL_PARAMS,) of `LABEL_TRAJECTORY`; plan (B, A) and work (B, rows, WORK_COLS): scratch.
    """
    h, m, x_scale, y_scale = int(cp[C_POSES]), int(cp[C_STEPS]), cp[C_X_SCALE], cp[C_Y_SCALE]
    _trajectory_labels(agent, future, t, active, h, m, x_scale, y_scale, True, plan)
    for b in range(agent.shape[0]):
        if not active[b]:
            continue
        a, s, _ = track(agent[b, 0], plan[b], p, cp, dt, work[b])
        out[b, 0] = a / p[P_MAX_ACC] if a >= 0.0 else a / p[P_MAX_BRAKE]
        out[b, 1] = s / p[P_MAX_STEER]


@njit(cache=True)
def _trajectory_labels(agent, future, t, active, h, m, x_scale, y_scale, with_heading, out):
    """Each active ego's logged future poses in its current frame, normalised, into out (B, A)."""
    stride = 3 if with_heading else 2
    for b in range(agent.shape[0]):
        if not active[b]:
            continue
        x, y, yaw = agent[b, 0, X], agent[b, 0, Y], agent[b, 0, YAW]
        c, s = math.cos(yaw), math.sin(yaw)
        for j in range(h):
            pose = future[b, t[b] + m * (j + 1)]
            dx, dy = pose[0] - x, pose[1] - y
            out[b, stride * j] = min(max((dx * c + dy * s) / x_scale, -1.0), 1.0)
            out[b, stride * j + 1] = min(max((-dx * s + dy * c) / y_scale, -1.0), 1.0)
            if with_heading:
                dh = (pose[2] - yaw + math.pi) % (2.0 * math.pi) - math.pi
                out[b, stride * j + 2] = dh / math.pi


def future_log(s: Scenario, agent: int, steps: int) -> np.ndarray:
    """(steps, 3) ``[x, y, heading]`` of `agent`'s log: invalid steps hold the last valid pose, and past
    the last valid step the agent goes on at its last speed along its last heading."""
    valid = np.flatnonzero(s.valid[agent])
    if valid.size == 0:
        raise ValueError(f"scenario {s.scenario_id}: agent {agent} has no valid log step")
    n = min(steps, int(valid[-1]) + 1)
    held = valid[np.maximum(np.searchsorted(valid, np.arange(n), side="right") - 1, 0)]
    out = np.zeros((steps, 3))
    out[:n] = s.traj[agent, held, :3]
    last = s.traj[agent, valid[-1]]
    v = max(last[3] * np.cos(last[2]) + last[4] * np.sin(last[2]), 0.0)
    ahead = v * s.dt * np.arange(1, steps - n + 1)
    out[n:, 0] = last[0] + ahead * np.cos(last[2])
    out[n:, 1] = last[1] + ahead * np.sin(last[2])
    out[n:, 2] = last[2]
    return out


def expert_dataset(
    suite_or_scenarios: str | Sequence[Scenario],
    action_type: str = "control",
    *,
    num_envs: int = 32,
    perturb: float = 0.0,
    perturb_hold: int = 10,
    seed: int = 0,
    **env_kwargs,
) -> ExpertDataset:
    """Expert observations and actions of every scene's ego, from closed-loop rollouts of its log.

    Args:
        suite_or_scenarios: A suite name (`alpagym_env.scenarios.load_suite`) or a list of `Scenario`.
        action_type: ``"control"`` or ``"trajectory"``.
        num_envs: Scenes rolled out together by one `BatchedSim`.
        perturb: Std of Gaussian noise added to the normalised actions the ego executes (0: none).
            The labels stay the expert's (the controller's commands back onto the log from wherever
            the ego is), so a perturbed rollout shows recoveries from states a policy's own small
            errors lead to, which clean logs never visit (DART; ChauffeurNet's perturbations).
        perturb_hold: Steps each noise sample is held, so the errors add up to real deviations
            (10: 1 s) rather than averaging out step to step.
        seed: Seed of the noise.
        **env_kwargs: Env arguments (`EnvConfig` fields: ``horizon``, ``obs``, ``trajectory``, ...), so
            the observations match an env built with the same arguments.

    Returns:
        An `ExpertDataset`; episodes end where the env's would (termination or the horizon).
    """
    if isinstance(suite_or_scenarios, str):
        from alpagym_env.scenarios import load_suite

        scenarios = list(load_suite(suite_or_scenarios))
    else:
        scenarios = list(suite_or_scenarios)
    if not scenarios or not all(isinstance(s, Scenario) for s in scenarios):
        raise ValueError("expert_dataset needs a suite name or a non-empty list of Scenario objects")
    config = EnvConfig.from_kwargs(action_type=action_type, **env_kwargs)
    b = max(1, min(int(num_envs), len(scenarios)))
    sim = BatchedSim(config, b, scenarios, len(scenarios))
    traj, dyn_p = config.trajectory, sim.params[0]
    m, h = traj.steps(sim.dt), traj.num_poses
    label_cp = controller_params(LABEL_TRAJECTORY, config.controller, sim.dt)
    lh, lm = LABEL_TRAJECTORY.num_poses, LABEL_TRAJECTORY.steps(sim.dt)
    plan = np.zeros((b, LABEL_TRAJECTORY.action_dim))
    work = np.zeros((b, *work_shape(lh, lm, int(label_cp[C_PREVIEW]))))
    future = np.zeros((b, config.horizon + 1 + max(h * m, lh * lm), 3))
    labels = np.zeros((b, sim.action_dim))
    actions = np.zeros((b, 1, sim.action_dim))
    rows: list[tuple[np.ndarray, ...]] = []
    rng = np.random.default_rng(seed)
    noise = np.zeros((b, sim.action_dim))
    for first in range(0, len(scenarios), b):
        ids = list(range(first, min(first + b, len(scenarios))))
        sim.reset(range(len(ids)), ids)
        sim.active[:] = False
        sim.active[: len(ids)] = True
        for k, i in enumerate(ids):
            future[k] = future_log(scenarios[i], int(sim.compiled[k].order[0]), future.shape[1])
        agent, t = sim.state["agent"], sim.state["t"]
        for step in range(config.horizon):
            live = np.flatnonzero(sim.active)
            if live.size == 0:
                break
            if action_type == "control":
                _control_labels(agent, future, t, sim.active, dyn_p, label_cp, sim.dt, plan, work, labels)
            else:
                with_heading = traj.heading == "given"
                _trajectory_labels(
                    agent, future, t, sim.active, h, m, traj.x_scale, traj.y_scale, with_heading, labels
                )
            act32 = labels[live].astype(np.float32)
            rows.append((sim.obs[live, 0].copy(), act32, np.asarray(ids)[live], t[live].copy()))
            actions[live, 0] = act32  # the env steps with exactly the stored float32 actions
            if perturb > 0.0:
                if step % max(1, int(perturb_hold)) == 0:
                    noise[:] = rng.normal(0.0, perturb, noise.shape)
                actions[live, 0] = np.clip(act32 + noise[live], -1.0, 1.0)
            sim.step(actions)
            sim.active &= ~(sim.terminated[:, 0] | sim.truncated)
    obs, act, ep, step = (np.concatenate(x) for x in zip(*rows, strict=True))
    order = np.lexsort((step, ep))
    return ExpertDataset(
        observations=obs[order],
        actions=act[order],
        episode=ep[order].astype(np.int64),
        step=step[order].astype(np.int64),
        scenario_ids=tuple(s.scenario_id for s in scenarios),
        action_type=action_type,
        config=config,
    )
