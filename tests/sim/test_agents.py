"""Reactive (IDM) agents: exactly their logs when nothing is in the way, braking when something is."""

import numpy as np
import pytest

from alpagym_env.evaluation import eval_config, evaluate
from alpagym_env.scenarios import generate, load_suite


@pytest.fixture(scope="module")
def scenes():
    # The smoke suite, plus a test scene where an IDM car used to fall 9.5 m behind its log and be hit
    # by the replayed ego.
    return [*load_suite("smoke"), generate("intersection", 2000010)]


def _agent_states(scenes, mode):
    from alpagym_env.envs.batched_sim import BatchedSim

    config = eval_config(agents=mode, horizon=120)
    sim = BatchedSim(config, len(scenes), scenes, len(scenes), 1, None, None)
    sim.reset(list(range(len(scenes))), list(range(len(scenes))))
    sim.expert[:] = True
    out = []
    for _ in range(120):
        sim.step(np.zeros((len(scenes), 1, sim.action_dim)))
        out.append(sim.state["agent"][:, :, :3].copy() * sim.state["valid"][:, :, None])
    return np.stack(out)


def test_unobstructed_reactive_agents_are_their_logs(scenes):
    replay, idm = _agent_states(scenes, "replay"), _agent_states(scenes, "idm")
    np.testing.assert_allclose(idm, replay, atol=1e-9)


def test_log_replay_of_the_ego_scores_one_with_reactive_agents(scenes):
    res = evaluate(["expert"], scenes, eval_config(agents="idm"))["expert"]
    assert [r.metrics["scene_score"] for r in res] == [1.0] * len(scenes)


def test_reactive_agents_brake_behind_an_ego_that_stops(scenes):
    def brake(obs):
        return np.tile(np.array([-1.0, 0.0], dtype=np.float32), (len(obs), 1))

    rear = {
        mode: sum(
            r.metrics["collision_rear"] > 0
            for r in evaluate({"b": brake}, scenes, eval_config(agents=mode))["b"]
        )
        for mode in ("replay", "idm")
    }
    assert rear["replay"] >= 6  # replayed followers drive into an ego that brakes where the log did not
    assert rear["idm"] <= 1
