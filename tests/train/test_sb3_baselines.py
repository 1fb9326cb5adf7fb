"""SB3 baselines: PPO and SAC train on the batched env, write the run layout, and the saved `.zip` is
evaluated through `alpagym_env.evaluation.load_policy`; the config is strict."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from omegaconf import OmegaConf  # noqa: E402
from omegaconf.errors import ConfigKeyError  # noqa: E402

from alpagym_env.config import ConfigError  # noqa: E402
from alpagym_env.evaluate import main as evaluate_main  # noqa: E402
from alpagym_env.evaluation import eval_config, evaluate, load_policy  # noqa: E402
from alpagym_env.scenarios import load_suite  # noqa: E402
from alpagym_train.baselines.sb3 import (  # noqa: E402
    SB3Config,
    SB3Policy,
    read_sb3_meta,
    sb3_config,
    train_sb3,
)
from alpagym_train.rundir import read_metrics  # noqa: E402

# Tiny budgets: a few hundred env steps on the smoke suite, small networks, short episodes.
TINY = {
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "policy_kwargs": {"net_arch": [32]}},
    "sac": {
        "buffer_size": 2_048,
        "learning_starts": 128,
        "batch_size": 64,
        "gradient_steps": 1,
        "policy_kwargs": {"net_arch": [32]},
    },
}


def tiny_config(algo: str, run_dir, **overrides):
    """A run of a few hundred env steps of `algo` on the smoke suite (`overrides` on top)."""
    settings = {
        "algo": algo,
        "total_timesteps": 512,
        "num_envs": 4,
        "env": {"horizon": 30},
        "suite": "smoke",
        "eval_suite": "smoke",
        "eval_episodes": 4,
        "eval_references": ["idm"],
        "algo_kwargs": TINY[algo],
        "checkpoint_every": 256,
        "log_every": 128,
        "run_dir": str(run_dir),
        "progress": False,
    }
    return sb3_config(**(settings | overrides))


@pytest.fixture(scope="module", params=["ppo", "sac"])
def run(request, tmp_path_factory):
    algo = request.param
    run_dir = tmp_path_factory.mktemp(f"sb3_{algo}")
    cfg = tiny_config(algo, run_dir)
    model, summary = train_sb3(cfg)
    return cfg, model, summary, run_dir


def test_training_writes_the_run_layout(run):
    cfg, model, summary, run_dir = run
    name = f"sb3_{cfg.algo}"
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.algo == cfg.algo and saved.env == {"reward": "scene_score", "horizon": 30}
    assert saved.sb3_kwargs.batch_size == 64 and saved.sb3_kwargs.learning_rate == 3e-4  # default kept
    records = read_metrics(run_dir)
    training = [r for r in records if "env_steps" in r]
    assert [r["env_steps"] for r in training] == [128, 256, 384, 512]
    assert all(r["env_steps_per_s"] > 0 and r["episodes"] > 0 for r in training[1:])
    assert "ep_rew_mean" in training[-1] and "ep_scene_score" in training[-1]
    assert 0.0 <= records[-1][f"eval/{name}/scene_score"] <= 1.0 and "eval/idm/episodes" in records[-1]
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))  # RunLogger's scalars
    assert list((run_dir / "tb").glob(f"{cfg.algo.upper()}_1/events.out.tfevents.*"))  # SB3's
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        f"{cfg.algo}_256_steps.zip",
        f"{cfg.algo}_512_steps.zip",
    ]
    assert (run_dir / "policy.zip").is_file()
    table = (run_dir / "eval.md").read_text()
    assert f"| {name} | all | 4 |" in table and "| idm | all | 4 |" in table
    assert (run_dir / "eval.csv").read_text().count("\n") == 3  # header + two rows
    assert summary["env_steps"] == model.num_timesteps == 512
    assert summary["eval"][name]["episodes"] == 4 and summary["policy"] == str(run_dir / "policy.zip")


def test_the_saved_zip_loads_through_load_policy_and_drives_an_evaluation(run):
    cfg, model, _, run_dir = run
    config = eval_config(horizon=30)
    for path in (run_dir / "policy.zip", run_dir / "checkpoints" / f"{cfg.algo}_256_steps.zip"):
        policy = load_policy(str(path), config)
        assert isinstance(policy, SB3Policy) and policy.action_type == "control"
    obs = np.random.default_rng(0).normal(size=(5, policy.obs_dim)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    final = load_policy(str(run_dir / "policy.zip"), config)
    np.testing.assert_allclose(final(obs), expected, atol=1e-6)
    assert final(obs).shape == (5, 2) and final(obs).dtype == np.float32
    results = evaluate({"sb3": final}, load_suite("smoke"), config, max_episodes=2)
    assert len(results["sb3"]) == 2 and all(0.0 <= r.metrics["scene_score"] <= 1.0 for r in results["sb3"])
    with pytest.raises(ValueError, match="observation has 7 values"):
        final(np.zeros((1, 7), np.float32))


def test_the_loader_rejects_other_zips_and_other_observation_layouts(run, tmp_path):
    cfg, model, _, run_dir = run
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "not a model")
    with pytest.raises(ValueError, match="not a stable-baselines3 model zip"):
        load_policy(str(tmp_path / "other.zip"), eval_config())
    with pytest.raises(ValueError, match="no such file"):
        load_policy(str(tmp_path / "missing.zip"), eval_config())
    meta = model.alpagym
    try:
        del model.alpagym
        model.save(tmp_path / "plain.zip")
    finally:
        model.alpagym = meta
    with pytest.raises(ValueError, match="without AlpaGym metadata"):
        read_sb3_meta(tmp_path / "plain.zip")
    # A plain zip loads given the env arguments it was trained with, and is checked against them.
    plain = load_policy(str(tmp_path / "plain.zip"), eval_config(horizon=30))
    assert plain(np.zeros((3, plain.obs_dim), np.float32)).shape == (3, 2)
    with pytest.raises(ValueError, match="observations of shape .* pass the env arguments"):
        load_policy(str(tmp_path / "plain.zip"), eval_config(obs={"num_agents": 4}))
    with pytest.raises(ValueError, match="actions of shape"):
        load_policy(str(tmp_path / "plain.zip"), eval_config(action_type="trajectory"))
    plain_args = ["--policy", str(tmp_path / "plain.zip"), "--suite", "smoke", "--episodes", "2"]
    assert evaluate_main([*plain_args, "--env", "horizon=30", "--no-progress"]) == 0
    assert evaluate_main([*plain_args, "--env", 'obs={"num_agents": 4}', "--no-progress"]) == 2
    with pytest.raises(ValueError, match="trained on 'flat' observations"):
        load_policy(str(run_dir / "policy.zip"), eval_config(obs={"num_agents": 4}))


def test_unknown_keys_algos_and_bad_values_raise_clear_errors():
    with pytest.raises(ConfigKeyError, match="bogus"):
        sb3_config(bogus=1)
    with pytest.raises(ConfigError, match=r"algo must be one of \['ppo', 'sac'\], got 'dqn'"):
        sb3_config(algo="dqn")
    with pytest.raises(ConfigError, match="total_timesteps must be >= 1"):
        sb3_config(total_timesteps=0)
    with pytest.raises(ConfigError, match="max_seconds must be > 0 or None, got 0"):
        sb3_config(max_seconds=0)
    with pytest.raises(ConfigError, match=r"algo_kwargs may not set \['seed'\]"):
        sb3_config(algo_kwargs={"seed": 3})
    with pytest.raises(ConfigError, match="unresolved interpolation"):
        SB3Config()
    assert sb3_config(algo="sac").run_dir == "runs/sb3_sac"


def test_max_seconds_stops_training_at_the_wall_clock_budget(tmp_path):
    overrides = {"total_timesteps": 10**7, "max_seconds": 1.5, "eval_episodes": 1, "eval_references": []}
    cfg = tiny_config("ppo", tmp_path / "run", checkpoint_every=0, **overrides)
    _, summary = train_sb3(cfg)
    assert 0 < summary["env_steps"] < 10**7
    assert 1.5 <= summary["train_seconds"] < 10  # stopped at the first step past the budget
    assert summary["last_record"]["env_steps"] == summary["env_steps"]


@pytest.mark.parametrize(
    ("override", "says"),
    [("bogus=1", "Key 'bogus' not in 'SB3ConfigSchema'"), ("algo=dqn", "algo must be one of")],
)
def test_the_cli_is_strict(tmp_path, override, says):
    cmd = [sys.executable, "-m", "alpagym_train.baselines.sb3", override, f"run_dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0 and says in out.stderr + out.stdout
