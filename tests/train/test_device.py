"""``learner.device=auto|cpu|cuda``: config checks, what ``auto`` picks, ``cuda`` refused at start without a
GPU, and the learner's batches as tensors on its device. Nothing here needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alpagym_train.device import resolve_device  # noqa: E402
from alpagym_train.exit_codes import ExitCode  # noqa: E402
from alpagym_train.grpo.checkpoint import on_cpu  # noqa: E402
from alpagym_train.grpo.config import compose, from_plain  # noqa: E402
from alpagym_train.grpo.learner import batch_on, run_learner  # noqa: E402
from alpagym_train.grpo.preflight import preflight  # noqa: E402
from alpagym_train.policy import GaussianPolicy, PolicyConfig, save  # noqa: E402
from tests.train.conftest import SMOKE_REWARD  # noqa: E402

NO_GPU = "learner.device=cuda, but torch.cuda.is_available\\(\\) is False here"


def test_device_is_checked_by_the_config():
    assert compose([]).learner.device == "auto"
    assert compose(["learner.device=cpu"]).learner.device == "cpu"
    for bad in ("gpu", "CUDA", "cuda:0", ""):
        with pytest.raises(ValueError, match=f"learner.device must be one of auto, cpu, cuda, got '{bad}'"):
            from_plain({"learner": {"device": bad}})
    with pytest.raises(ValueError, match="learner.device must be one of auto, cpu, cuda, got 'tpu'"):
        compose(["learner.device=tpu"])


def test_auto_picks_cuda_only_when_it_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=NO_GPU):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda") == torch.device("cuda")


def test_auto_is_cpu_on_this_machine_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=NO_GPU):
        resolve_device("cuda")


def test_cuda_without_a_gpu_fails_at_start_naming_the_key(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from alpagym_train.rollout import make_group_env

    obs_dim = make_group_env(1, 1, horizon=25).single_observation_space.shape[0]
    init = save(tmp_path / "init.safetensors", GaussianPolicy(PolicyConfig(obs_dim, 2, (8,))), {})
    values = {
        "env": {"suite": "smoke", "horizon": 25},
        "reward": {"terms": SMOKE_REWARD},
        "learner": {"init": str(init), "device": "cuda"},
        "run_dir": str(tmp_path / "run"),
    }
    cfg = from_plain(values)
    with pytest.raises(ValueError, match=NO_GPU):
        preflight(cfg)
    # The learner process refuses before it touches Redis (the URL leads nowhere).
    assert run_learner(cfg, "redis://127.0.0.1:1/0", "device-test") == ExitCode.CONFIG
    assert "learner.device=cuda, but torch.cuda.is_available() is False" in capsys.readouterr().err
    preflight(from_plain({**values, "learner": {**values["learner"], "device": "auto"}}))  # auto: CPU here


def test_batches_reach_the_updater_as_tensors_on_its_device(smoke_groups):
    _, batches = smoke_groups
    batch = batches[0]
    on = batch_on(batch, torch.device("cpu"))
    for name in ("obs", "u", "logp", "rewards", "mask", "scene_score", "scenario_ids", "terminated"):
        tensor = getattr(on, name)
        assert isinstance(tensor, torch.Tensor) and tensor.device == torch.device("cpu")
        assert np.shares_memory(tensor.numpy(), getattr(batch, name))  # no copy on the CPU
    assert on.policy_version == batch.policy_version and on.steps == batch.steps


def test_checkpointed_state_is_cpu_tensors_in_the_same_structure():
    state = {"optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
                           "param_groups": [{"lr": 1e-3, "params": [0]}]},
             "rng": (torch.zeros(2, dtype=torch.uint8),), "update": 4, "best_state": None}  # fmt: skip
    out = on_cpu(state)
    assert out["optimizer"]["param_groups"] == state["optimizer"]["param_groups"] and out["update"] == 4
    assert torch.equal(out["optimizer"]["state"][0]["exp_avg"], torch.ones(2)) and isinstance(
        out["rng"], tuple
    )
    assert out["best_state"] is None
