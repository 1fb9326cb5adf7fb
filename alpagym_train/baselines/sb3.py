"""`python -m alpagym_train.baselines.sb3 algo=ppo|sac`: SB3 PPO or SAC on `AlpaDrive-v0`, scored closed-loop.

The model trains on `AlpaDriveSB3VecEnv` (the native batched engine, no subprocesses) over the first
`train_scenes` scenes of `suite`. Then it is scored on `eval_suite` by the same evaluation code as every
other policy (`alpagym_train.report.compare_on_suite`). The run directory has the layout every trainer
writes (`alpagym_train.rundir`)::

    {run_dir}/config.yaml         the resolved config, with the SB3 arguments used (``sb3_kwargs``)
    {run_dir}/metrics.jsonl       a training record every `log_every` env steps, then the evaluation
    {run_dir}/tb/                 the RunLogger scalars, plus SB3's own under ``tb/{PPO,SAC}_1/``
    {run_dir}/checkpoints/        ``{algo}_{steps}_steps.zip`` every `checkpoint_every` env steps
    {run_dir}/policy.zip          the final model
    {run_dir}/eval.md, eval.csv   leaderboard rows for the model and the reference policies

Episode statistics come from the env's infos: SB3's ``info["episode"]`` (the return ``r`` and the
length ``l``) and the env's own ``info["alpagym"]`` (the closed-loop metrics, ``scene_score`` in the
training records), which a `VecMonitor` on top would leave alone.

Every saved model, checkpoints included, carries the env settings it was trained with. They are in the
SB3 model's ``alpagym`` attribute, which SB3 stores in the zip's JSON ``data``. `load_sb3_policy`, the
``.zip`` loader of `alpagym_env.evaluation.load_policy`, uses them to drive the model with the same
observation layout and action type.

Configuration is a Hydra structured config (`SB3Config`, strict: unknown keys raise), e.g.
``python -m alpagym_train.baselines.sb3 algo=sac total_timesteps=100000 train_scenes=200``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zipfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from tqdm import tqdm

from alpagym_env.config import ConfigError, EnvConfig, ObsConfig
from alpagym_env.envs.drive_env import action_space
from alpagym_env.envs.infos import INFO_KEY
from alpagym_env.envs.sb3 import AlpaDriveSB3VecEnv
from alpagym_env.evaluation import load_scenarios, policy_config
from alpagym_env.evaluation.leaderboard import MAIN_COLUMNS, to_markdown, write_csv
from alpagym_env.sim.observation import obs_size
from alpagym_train.hydra_schema import schema_of, to_plain
from alpagym_train.report import compare_on_suite
from alpagym_train.rundir import RunLogger
from alpagym_train.threads import pin_compute_threads

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    # 8 envs x 256 steps = 2048 transitions (about 10 episodes of 200 steps) per update, 8 minibatches.
    "ppo": {
        "learning_rate": 3e-4,
        "n_steps": 256,
        "batch_size": 256,
        "n_epochs": 10,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "ent_coef": 0.0,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
    # One vec-env step (num_envs transitions) between updates, and `gradient_steps` per update: 2 keeps
    # it near SB3's speed with 1 env while the replay ratio stays 2 / num_envs. 200k transitions of
    # 2 x 177 float32 observations take about 0.2 GB.
    "sac": {
        "learning_rate": 3e-4,
        "buffer_size": 200_000,
        "learning_starts": 2_000,
        "batch_size": 256,
        "train_freq": 1,
        "gradient_steps": 2,
        "gamma": 0.99,
        "tau": 0.005,
        "policy_kwargs": {"net_arch": [256, 256]},
    },
}
# Arguments `train_sb3` sets itself; in algo_kwargs they would clash.
RESERVED_KWARGS = ("policy", "env", "seed", "device", "verbose", "tensorboard_log")
META_ATTR = "alpagym"
META_FORMAT = "alpagym.sb3"
META_VERSION = 1


@dataclass(frozen=True)
class SB3Config:
    """Settings of an SB3 baseline run.

    Attributes:
        algo: ``"ppo"`` or ``"sac"``.
        total_timesteps: Env steps (transitions over all sub-envs) to train for.
        max_seconds: A wall-clock budget: training also stops at the first env step after this many
            seconds of `learn` (None: `total_timesteps` alone ends it).
        num_envs: Sub-envs stepped together by the batched engine.
        env: Env arguments (`AlpaDriveEnv`'s: ``reward``, ``horizon``, ``action_type``, ``agents``, ...).
        suite: Training suite (a name or a file, `alpagym_env.evaluation.load_scenarios`).
        train_scenes: Train on the first N scenes of `suite` only (None: all).
        algo_kwargs: SB3 constructor arguments. They override `ALGO_DEFAULTS` one top-level key at a time.
        seed: Seed of SB3 (torch, action noise, env resets) and of the evaluation.
        eval_suite: Suite the final model is scored on.
        eval_episodes: Cap on the evaluation scenes, round-robin over families (None: all).
        eval_references: Built-in policies scored beside the model (``idm``, ``expert``, ...).
        checkpoint_every: Env steps between checkpoints (0: none).
        log_every: Env steps between training records in ``metrics.jsonl``.
        torch_threads: Torch CPU threads. The networks are small, and one thread leaves the cores to
            the simulator's Numba kernels: two thread pools spinning on the same cores slow both down.
        run_dir: The run directory. The default ``runs/sb3_${algo}`` is resolved by OmegaConf, so
            build configs through Hydra or `sb3_config`.
        progress: Show a progress bar.
    """

    algo: str = "ppo"
    total_timesteps: int = 200_000
    max_seconds: float | None = None
    num_envs: int = 8
    env: dict[str, Any] = field(default_factory=lambda: {"reward": "scene_score"})
    suite: str = "train"
    train_scenes: int | None = None
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    eval_suite: str = "test"
    eval_episodes: int | None = None
    eval_references: list[str] = field(default_factory=lambda: ["idm", "expert"])
    checkpoint_every: int = 50_000
    log_every: int = 10_000
    torch_threads: int = 1
    run_dir: str = "runs/sb3_${algo}"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ConfigError(f"algo must be one of {list(ALGOS)}, got {self.algo!r}")
        positive = ("total_timesteps", "num_envs", "log_every", "torch_threads")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_scenes", "eval_episodes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {getattr(self, name)}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"max_seconds must be > 0 or None, got {self.max_seconds}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        clash = sorted(set(self.algo_kwargs) & set(RESERVED_KWARGS))
        if clash:
            raise ConfigError(f"algo_kwargs may not set {clash}: the run sets them (seed: the config's seed)")
        if {"suite", "scenarios"} & set(self.env):
            raise ConfigError("set the training scenes with suite= and train_scenes=, not in env")
        if "${" in self.run_dir:
            raise ConfigError(
                f"run_dir {self.run_dir!r} holds an unresolved interpolation; "
                "build the config with sb3_config(...) or pass run_dir"
            )

    def sb3_kwargs(self) -> dict[str, Any]:
        """The SB3 constructor arguments: `ALGO_DEFAULTS` of the algorithm, overridden by `algo_kwargs`."""
        return {**ALGO_DEFAULTS[self.algo], **self.algo_kwargs}


def sb3_config(**overrides: Any) -> SB3Config:
    """An `SB3Config` with `overrides` merged as Hydra merges the command line.

    Unknown keys and ill-typed values raise, ``${algo}`` in `run_dir` resolves, and the ``env`` and
    ``algo_kwargs`` dicts are merged into the defaults key by key.
    """
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(OmegaConf.structured(schema_of(SB3Config)), overrides)
    return SB3Config(**to_plain(merged))


class _RunLogCallback(BaseCallback):
    """Every `every` env steps: env steps, wall seconds, env steps/s and episode means to `run`.

    Args:
        run: The run's logger.
        every: Env steps between records (a last record is written at the end of training).
        progress: Show a tqdm bar over `total` env steps.
        total: Env steps of the run.
    """

    def __init__(self, run: RunLogger, every: int, progress: bool, total: int) -> None:
        super().__init__()
        self.run, self.every, self.progress, self.total = run, every, progress, total
        self.episodes = 0
        self.last_record: dict[str, Any] = {}
        self.scene_scores: deque[float] = deque(maxlen=100)

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._logged_at = self.num_timesteps
        self._bar = tqdm(
            total=self.total, desc=type(self.model).__name__, unit="step", disable=not self.progress
        )

    def _on_step(self) -> bool:
        self.episodes += int(np.sum(self.locals["dones"]))
        for info in self.locals["infos"]:
            if INFO_KEY in info:
                self.scene_scores.append(float(info[INFO_KEY]["scene_score"]))
        self._bar.update(self.num_timesteps - self._bar.n)
        if self.num_timesteps - self._logged_at >= self.every:
            self._record()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self._logged_at:
            self._record()
        self._bar.close()

    def _record(self) -> None:
        seconds = time.perf_counter() - self._t0
        rec: dict[str, Any] = {
            "env_steps": self.num_timesteps,
            "seconds": seconds,
            "env_steps_per_s": self.num_timesteps / max(seconds, 1e-9),
            "episodes": self.episodes,
        }
        # SB3 keeps the last `stats_window_size` (100) episodes' info["episode"] dicts.
        recent = list(self.model.ep_info_buffer)
        for key, name in (("r", "ep_rew_mean"), ("l", "ep_len_mean")):
            values = [float(ep[key]) for ep in recent if key in ep]
            if values:
                rec[name] = float(np.mean(values))
        if self.scene_scores:
            rec["ep_scene_score"] = float(np.mean(self.scene_scores))
        self.run.log(self.num_timesteps, rec)
        self.last_record = rec
        self._logged_at = self.num_timesteps
        if "ep_rew_mean" in rec:
            self._bar.set_postfix(ep_rew=f"{rec['ep_rew_mean']:.2f}", steps_s=f"{rec['env_steps_per_s']:.0f}")


class WallClockStop(BaseCallback):
    """Stops training (`_on_step` returns False) at the first env step after `seconds` of training.

    Args:
        seconds: The wall-clock budget, counted from the start of `learn`.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self._t0 < self.seconds


def train_sb3(cfg: SB3Config, callbacks: Sequence[BaseCallback] = ()) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """Trains the SB3 model, saves it and scores it closed-loop on the evaluation suite.

    Args:
        cfg: The run's settings.
        callbacks: More SB3 callbacks to train with (after the run's logger and checkpoints).

    Returns:
        The trained model and a summary: env steps, training seconds and env steps/s, episodes, the
        last training record, the model's path, and per evaluated policy its episodes and the means of
        the leaderboard's main columns (``summary["eval"][f"sb3_{algo}"]["scene_score"]``).
    """
    pin_compute_threads(cfg.torch_threads)
    scenes = load_scenarios(cfg.suite)[: cfg.train_scenes]
    env = AlpaDriveSB3VecEnv(cfg.num_envs, scenarios=scenes, **cfg.env)
    try:
        if env.venv.config.obs_type != "flat":
            raise ConfigError(f"SB3 baselines need obs_type='flat', got {env.venv.config.obs_type!r}")
        kwargs = cfg.sb3_kwargs()
        with RunLogger(cfg.run_dir, {**dataclasses.asdict(cfg), "sb3_kwargs": kwargs}) as run:
            model = ALGOS[cfg.algo](
                "MlpPolicy",
                env,
                seed=cfg.seed,
                device="cpu",
                verbose=0,
                tensorboard_log=str(run.run_dir / "tb"),
                **kwargs,
            )
            setattr(model, META_ATTR, _meta(cfg, env.venv.config, env.observation_space.shape[0]))
            logger = _RunLogCallback(run, cfg.log_every, cfg.progress, cfg.total_timesteps)
            every_cb: list[BaseCallback] = [logger]
            if cfg.checkpoint_every:
                every = max(cfg.checkpoint_every // cfg.num_envs, 1)  # SB3 counts vec-env steps
                every_cb.append(CheckpointCallback(every, str(run.checkpoints), name_prefix=cfg.algo))
            every_cb += callbacks
            if cfg.max_seconds is not None:
                every_cb.append(WallClockStop(cfg.max_seconds))
            t0 = time.perf_counter()
            model.learn(cfg.total_timesteps, callback=CallbackList(every_cb))
            train_seconds = time.perf_counter() - t0
            policy_path = run.run_dir / "policy.zip"
            model.save(policy_path)
            t0 = time.perf_counter()
            evaluation = _score(run, cfg, policy_path, model.num_timesteps)
            eval_seconds = time.perf_counter() - t0
    finally:
        env.close()
    summary = {
        "algo": cfg.algo,
        "env_steps": int(model.num_timesteps),
        "train_seconds": train_seconds,
        "env_steps_per_s": model.num_timesteps / train_seconds,
        "episodes": logger.episodes,
        "last_record": logger.last_record,
        "policy": str(policy_path),
        "eval_suite": cfg.eval_suite,
        "eval_seconds": eval_seconds,
        "eval": evaluation,
    }
    return model, summary


def _score(run: RunLogger, cfg: SB3Config, policy_path: Path, step: int) -> dict[str, dict[str, float]]:
    """Scores the saved model beside the references; writes ``eval.md``, ``eval.csv`` and a JSONL record.

    Returns:
        Per policy name (``sb3_{algo}``, then the references): its episodes and the means of the
        leaderboard's main columns.
    """
    rows = compare_on_suite(
        {f"sb3_{cfg.algo}": str(policy_path)},
        cfg.eval_references,
        cfg.eval_suite,
        cfg.eval_episodes,
        cfg.seed,
    )
    (run.run_dir / "eval.md").write_text(to_markdown(rows))
    write_csv(rows, run.run_dir / "eval.csv")
    evaluation = {
        r.policy: {"episodes": r.episodes} | {c: r.metrics[c][0] for c in MAIN_COLUMNS if c in r.metrics}
        for r in rows
    }
    # n/a metrics (nan, e.g. minADE of a control policy) stay out of the JSONL: strict JSON.
    record = {f"eval/{p}/{k}": v for p, stats in evaluation.items() for k, v in stats.items()}
    run.log(step, {k: v for k, v in record.items() if math.isfinite(v)})
    return evaluation


def _meta(cfg: SB3Config, config: EnvConfig, obs_dim: int) -> dict[str, Any]:
    """What evaluation needs to drive the model as it was trained (JSON-safe, so SB3 stores it as is)."""
    return {
        "format": META_FORMAT,
        "version": META_VERSION,
        "algo": cfg.algo,
        "trained_by": "alpagym_train.baselines.sb3",
        "env_kwargs": json.loads(json.dumps(cfg.env, default=str)),
        "action_type": config.action_type,
        "obs_type": config.obs_type,
        "obs": dataclasses.asdict(config.obs),
        "trajectory": dataclasses.asdict(config.trajectory),
        "obs_dim": int(obs_dim),
    }


def read_sb3_meta(path: str | Path, config: EnvConfig | None = None) -> dict[str, Any]:
    """The AlpaGym metadata of a model zip, read from its JSON (nothing unpickled).

    A zip written by `train_sb3` carries its own. A plain ``model.save(...)`` zip of SB3 PPO or SAC gets
    metadata from `config`, the env arguments it was trained with (``python -m alpagym_env.evaluate
    --env key=value ...``); `load_sb3_policy` then checks the model's observation size against them.

    Raises:
        ValueError: When the file is missing, not an SB3 model zip, or a model without our metadata
            and no `config`, or of an algorithm other than PPO and SAC.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a stable-baselines3 model zip ({e})") from None
    meta = data.get(META_ATTR)
    if meta is None and config is not None:
        return _plain_meta(path, data, config)
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise ValueError(
            f"{path}: an SB3 model without AlpaGym metadata (attribute {META_ATTR!r}); "
            "train it with python -m alpagym_train.baselines.sb3, or give the env arguments it was "
            "trained with"
        )
    if meta.get("version") != META_VERSION:
        raise ValueError(f"{path}: metadata version is {meta.get('version')!r}, expected {META_VERSION}")
    if meta.get("algo") not in ALGOS:
        raise ValueError(f"{path}: metadata algo is {meta.get('algo')!r}, expected one of {list(ALGOS)}")
    return meta


def _plain_meta(path: str | Path, data: dict[str, Any], config: EnvConfig) -> dict[str, Any]:
    """Metadata of a plain SB3 zip: the algorithm from its saved hyperparameters, the rest from `config`."""
    if "clip_range" in data and "n_epochs" in data:
        algo = "ppo"
    elif "target_entropy" in data and "tau" in data:
        algo = "sac"
    else:
        raise ValueError(f"{path}: an SB3 model of neither PPO nor SAC; evaluate takes those two")
    return {
        "format": META_FORMAT,
        "version": META_VERSION,
        "algo": algo,
        "trained_by": "plain stable-baselines3 zip",
        "action_type": config.action_type,
        "obs_type": config.obs_type,
        "obs": dataclasses.asdict(config.obs),
        "trajectory": dataclasses.asdict(config.trajectory),
        "obs_dim": obs_size(config.obs.num_agents, config.obs.route_points),
    }


class SB3Policy:
    """The deterministic action of an SB3 model, as a batched evaluation policy.

    Args:
        model: The trained SB3 model.
        meta: Its metadata (`read_sb3_meta`).

    Attributes:
        action_type: The env action type the model outputs (the evaluator runs the env with it).
        trajectory: The trained trajectory-action layout (`TrajectoryConfig` fields).
        obs_dim: D, the observation size the model expects.
    """

    def __init__(self, model: BaseAlgorithm, meta: dict[str, Any]) -> None:
        self.model, self.meta = model, meta
        self.action_type: str = meta["action_type"]
        self.trajectory: dict[str, Any] = meta["trajectory"]
        self.obs_dim = int(meta["obs_dim"])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """(B, D) or (D,) float32 observations -> float32 actions in [-1, 1], (B, A) or (A,)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.shape[-1] != self.obs_dim:
            raise ValueError(f"observation has {x.shape[-1]} values, the model expects {self.obs_dim}")
        actions, _ = self.model.predict(x, deterministic=True)
        return np.asarray(actions, dtype=np.float32)


def load_sb3_policy(spec: str, config: EnvConfig) -> SB3Policy:
    """Evaluation loader for ``.zip`` models of `train_sb3` (registered by `alpagym_train.inference`).

    Args:
        spec: Path of the model zip.
        config: The evaluation env's configuration; its observation layout must be the trained one.

    Raises:
        ValueError: When the zip is not such a model, or its observations differ from the env's.
    """
    meta = read_sb3_meta(spec, config)
    trained = ObsConfig(**meta["obs"])
    if meta["obs_type"] != config.obs_type or trained != config.obs:
        raise ValueError(
            f"{spec}: trained on {meta['obs_type']!r} observations {trained}, "
            f"the evaluation env has {config.obs_type!r} {config.obs}"
        )
    if config.obs_type != "flat":
        raise ValueError(f"{spec}: evaluation drives SB3 models on flat observations (obs_type='flat')")
    model = ALGOS[meta["algo"]].load(spec, device="cpu")
    dims = {
        "observation": (model.observation_space.shape, (meta["obs_dim"],)),
        "action": (
            model.action_space.shape,
            action_space(policy_config(SB3Policy(model, meta), config)).shape,
        ),
    }
    for what, (theirs, ours) in dims.items():
        if tuple(theirs) != tuple(ours):
            raise ValueError(
                f"{spec}: the model takes {what}s of shape {tuple(theirs)}, the env arguments given make "
                f"{tuple(ours)}; pass the env arguments it was trained with"
            )
    return SB3Policy(model, meta)


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="sb3_schema", node=schema_of(SB3Config))

    @hydra.main(config_path="../conf", config_name="sb3", version_base="1.3")
    def run(cfg) -> None:
        conf = SB3Config(**to_plain(cfg))
        _, s = train_sb3(conf)
        print(
            f"{conf.algo}: {s['env_steps']} env steps in {s['train_seconds']:.1f} s "
            f"({s['env_steps_per_s']:.0f} env steps/s, {s['episodes']} episodes), "
            f"evaluated on {conf.eval_suite} in {s['eval_seconds']:.1f} s -> {conf.run_dir}"
        )
        print((Path(conf.run_dir) / "eval.md").read_text(), end="")

    run()


if __name__ == "__main__":
    main()
