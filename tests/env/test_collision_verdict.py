"""One collision verdict: decided at a pair's first contact, read by reward, termination and metrics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import alpagym_env  # noqa: F401  (registers AlpaDrive-v0)
from alpagym_env.envs.vector_env import AlpaDriveVectorEnv
from alpagym_env.policies import ConstantVelocityPolicy, RulePolicy
from alpagym_env.scenarios import load_suite
from alpagym_env.sim.dynamics import YAW, X
from alpagym_env.sim.measure import CONTACT_FRONT, collision_side
from tests.conftest import straight_road

AT_FAULT = "metric/collision_at_fault"


def make(**kwargs):
    kwargs.setdefault("agents", "replay")
    return gym.make("AlpaDrive-v0", **kwargs).unwrapped


def rear_ended_scene():
    """The ego (x = 40 m, 10 m/s) brakes; a replayed car 15 m behind at 15 m/s drives on through it."""
    return straight_road(speeds=(10.0, 15.0), starts=((40.0, 0.0), (25.0, 0.0)))


def fresh_side(env) -> int:
    """The side a per-step classification (the old rule) would give the ego's contact with slot 1."""
    a, size = env.sim.state["agent"][0], env.sim.compiled[0].size
    return collision_side(*a[0, X : YAW + 1], *size[0], *a[1, X : YAW + 1], *size[1])


def test_a_car_driving_through_the_braking_ego_stays_a_rear_collision():
    env = make(scenarios=[rear_ended_scene()], termination={"at_cut": False})
    env.reset(seed=0)
    contact_steps, touched_front = 0, False
    for _ in range(80):
        _, _, te, tr, info = env.step(np.array([-1.0, 0.0]))
        m = env.step_metrics()
        assert not te
        assert m["collision_at_fault"] == 0.0 and m["collision_front"] == 0.0
        assert info["reward/" + AT_FAULT] == 0.0
        if m["collision_any"]:
            contact_steps += 1
            assert m["collision_rear"] == 1.0
            touched_front |= fresh_side(env) == CONTACT_FRONT
    # The follower passed through the ego and reached its front bumper while still in contact: judged
    # afresh every step, that step was a front, at-fault collision.
    assert contact_steps >= 3 and touched_front
    ep = env.sim.episode_metrics(0)
    assert ep["collision_rear"] == 1.0 and ep["collision_at_fault"] == 0.0


def test_being_rear_ended_ends_the_episode_at_the_cut_without_the_at_fault_penalty():
    env = make(scenarios=[rear_ended_scene()])
    env.reset(seed=0)
    for _ in range(80):
        _, _, te, tr, info = env.step(np.array([-1.0, 0.0]))
        if te or tr:
            break
    m = env.step_metrics()
    assert te and m["collision_rear"] == 1.0 and m["collision_at_fault"] == 0.0
    assert info["reward/" + AT_FAULT] == 0.0
    ep = env.sim.episode_metrics(0)
    assert ep["collision_at_fault"] == 0.0 and ep["cut_step"] == ep["steps"]


def test_a_snapshot_taken_during_a_contact_keeps_its_verdict():
    env = make(scenarios=[rear_ended_scene()], termination={"at_cut": False})
    env.reset(seed=0)
    while not env.step_metrics()["collision_any"]:
        env.step(np.array([-1.0, 0.0]))
    snap = env.get_state()
    assert snap["contact"][0, 1] != 0

    def run():
        out = []
        for _ in range(8):
            obs, r, te, tr, _ = env.step(np.array([-1.0, 0.0]))
            out.append(np.concatenate([obs, env.sim.metrics[0, 0], [r, te, tr]]))
        return np.stack(out)

    first = run()
    env.reset(options={"state": snap})
    np.testing.assert_array_equal(run(), first)


class AlwaysBrake:
    def __call__(self, obs):
        return np.tile(np.array([-1.0, 0.0], dtype=np.float32), (len(obs), 1))


@pytest.fixture(scope="module")
def scenes():
    return load_suite("smoke") + load_suite("val", size=24)


@pytest.mark.parametrize("policy", [RulePolicy(), ConstantVelocityPolicy(), AlwaysBrake()], ids=type)
def test_episodes_ended_at_fault_match_the_metrics_and_nothing_is_earned_after_the_cut(scenes, policy):
    n = len(scenes)
    env = AlpaDriveVectorEnv(num_envs=n, scenarios=scenes, agents="replay", autoreset_mode="Disabled")
    sim = env.sim
    obs, _ = env.reset(options={"scenario_ids": np.arange(n)})
    done = np.zeros(n, dtype=bool)
    ended_at_fault = np.zeros(n, dtype=bool)
    charged = np.zeros(n, dtype=bool)
    while not done.all():
        obs, _, te, tr, info = env.step(policy(obs))
        charged |= ~done & (info["reward/" + AT_FAULT] != 0.0)
        ended_at_fault |= te & (env.step_metrics()["collision_at_fault"] > 0)
        done |= te | tr
    eps = [sim.episode_metrics(b) for b in range(n)]
    at_fault = np.array([e["collision_at_fault"] > 0 for e in eps])
    np.testing.assert_array_equal(ended_at_fault, at_fault)
    np.testing.assert_array_equal(charged, at_fault)
    # Every episode ends on the step of its cut (or runs uncut to its end): nothing after it counts.
    assert all(e["cut_step"] == e["steps"] for e in eps)
    if isinstance(policy, AlwaysBrake):
        rear = np.array([e["collision_rear"] > 0 for e in eps])
        assert rear.any() and not (rear & ended_at_fault).any()
