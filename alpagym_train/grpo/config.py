"""The structured (strict) configuration of `python -m alpagym_train.grpo`.

`GRPORunConfig` is the Hydra schema: an unknown key anywhere raises, and so does a value of the wrong
type. Its ``env`` and ``algorithm`` sections are derived from `alpagym_env.config.EnvConfig` and
`alpagym_train.algorithm.GRPOConfig` (`alpagym_train.hydra_schema.schema_of`), so every env and GRPO
field can be set from the command line (``env.horizon=100``, ``algorithm.lr=3e-5``) and is checked by
those classes when the run starts. Presets live in the config groups ``env``, ``reward``, ``algorithm``
and ``topology`` under ``alpagym_train/conf/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpagym_env.config import EnvConfig
from alpagym_train.algorithm import GRPOConfig
from alpagym_train.device import check_device_name
from alpagym_train.hydra_schema import schema_of

ROLES = ("all", "learner", "actor")
EnvSchema = schema_of(EnvConfig)
AlgorithmSchema = schema_of(GRPOConfig)


@dataclass
class RewardTermConf:
    """One reward term, ``{kind, name, scale}`` (see `alpagym_env.rewards`)."""

    kind: str = "metric"
    name: str = "progress_delta"
    scale: float = 1.0


@dataclass
class RewardConf:
    """The reward the actors' envs compute: a list of terms."""

    terms: list[RewardTermConf] = field(default_factory=list)


@dataclass
class RedisConf:
    """Where the run's shared state lives.

    Attributes:
        url: ``redis://[:password@]host:port/db`` of a shared server; None with ``role=all`` starts a
            private redis-server on a free 127.0.0.1 port for the run's lifetime.
        run_id: Namespace of the run's keys; empty: a fresh unique id (learner, recorded in the run
            directory; resume reuses it), or the one live run found on the server (actor).
        keep_versions: Weight versions kept in Redis.
        timeout_s: Longest Redis stall ridden out (with backoff) before a process gives up.
        secret_file: File (mode 0600) holding the run secret in hex, which signs weights and rollouts;
            None: the ALPAGYM_RUN_SECRET environment variable, else the run directory's run_secret.
    """

    url: str | None = None
    run_id: str = ""
    keep_versions: int = 3
    timeout_s: float = 30.0
    secret_file: str | None = None


@dataclass
class ActorsConf:
    """The actor processes.

    Attributes:
        num: Actor processes started by ``role=all`` (``role=actor`` starts one).
        groups_per_push: Finished groups each actor pushes as one stream entry (1: each group as soon
            as it finishes, the freshest).
        num_envs: Sub-envs each actor steps at once (0: ``groups_per_push * learner.group_size``). A
            sub-env whose rollout ends starts the next group member at once, so the number need not
            be a multiple of the group size. More sub-envs share the per-step costs (the policy's
            forward pass, the Python around the kernel) among more env-steps, but keep more groups
            in flight, and so older: about ``num_envs / group_size`` per actor.
        max_queue: Back-pressure: an actor waits while more stream entries than this wait unread.
        heartbeat_ttl_s: An actor whose heartbeat is older than this counts as dead.
        idle_timeout_s: An actor exits when no new weights appear for this long (a learner gone for good).
        max_restarts: Restarts of dead actors the supervisor allows per `restart_window_s`.
        restart_window_s: The window of the restart budget, s (a crash loop waits for the window).
        numba_threads: Simulator threads per actor; 0: the machine's cores shared among the local actors
            and the learner.
        warm_scenes: Training scenes (the first N) each actor compiles before its first group, so that
            no group waits for its scene's first compilation (about 25 ms a scene; -1: every training
            scene, 0: each on first use). It shifts the time to start-up and holds about 0.7 MB a scene.
        seed: Base seed; actor i samples scenes and noise from seed + 1000 * (i + 1) + restart.
    """

    num: int = 2
    groups_per_push: int = 1
    num_envs: int = 16
    max_queue: int = 4
    heartbeat_ttl_s: float = 15.0
    idle_timeout_s: float = 300.0
    max_restarts: int = 10
    restart_window_s: float = 60.0
    numba_threads: int = 0
    warm_scenes: int = 0
    seed: int = 0


@dataclass
class LearnerConf:
    """The learner process.

    Attributes:
        init: Checkpoint to start from (the BC policy, `python -m alpagym_train.bc`).
        updates: GRPO updates (the run ends after this many).
        max_env_steps: An env-step budget: the run also ends after the update that reaches this many
            closed-loop env steps (None: `updates` alone ends it).
        max_seconds: A wall-clock budget: the run also ends after the update that passes this many
            seconds, counted from the start of the first update (process start-up excluded; the
            seconds so far are each update's ``seconds`` in ``metrics.jsonl``). None: no limit.
        groups_per_update: Groups (scenes) per update, N.
        group_size: Rollouts per group, G.
        min_actors: Wait until this many actors are alive before the first update (e.g. the machines
            of a multi-machine run).
        max_policy_lag: Groups rolled out by weights more than this many versions old are dropped.
        actor_timeout_s: With no live actor and no group arriving for this long, the learner
            checkpoints and exits (status NO_ACTORS).
        log_std: Exploration noise set before training (None keeps the checkpoint's). Small noise keeps
            group members near the policy, so their differences measure its choices: at -2 every
            member of a group crashes whatever the mean does; at -4 PPO's clip lets each update move
            the mean very little. From BC checkpoints, -3 learned fastest.
        train_scenes: Use the first scenes of the env's suite only (None: all).
        val_suite: Validation suite.
        val_scenes: Validation scenes scored every `eval_every` updates.
        eval_every: Updates between validation scores (0: start and end only).
        keep_best: The final policy is the one with the best validation score.
        checkpoint_every: Updates between checkpoints (0: only at the end).
        torch_threads: Torch CPU threads of the learner and actors.
        device: Where the learner trains: ``auto`` (cuda when available, else cpu), ``cpu`` or ``cuda``
            (refused at start without a GPU). Its policy, PPO critic, optimiser and batches live there;
            the weights it publishes and its checkpoints are CPU tensors, and actors always run on CPU.
        seed: Seed of minibatches and torch.
    """

    init: str = "runs/bc/policy.safetensors"
    updates: int = 40
    max_env_steps: int | None = None
    max_seconds: float | None = None
    groups_per_update: int = 16
    group_size: int = 8
    min_actors: int = 0
    max_policy_lag: int = 2
    actor_timeout_s: float = 120.0
    log_std: float | None = -3.0
    train_scenes: int | None = None
    val_suite: str = "val"
    val_scenes: int = 40
    eval_every: int = 10
    keep_best: bool = True
    checkpoint_every: int = 10
    torch_threads: int = 1
    device: str = "auto"
    seed: int = 0


@dataclass
class GRPORunConfig:
    """The whole run.

    Attributes:
        role: ``all`` (Redis if needed, a learner and ``actors.num`` actors, supervised), ``learner`` or
            ``actor`` (one process joining ``redis.url``).
        run_dir: Where the config, logs, TensorBoard scalars and checkpoints go.
        resume: A checkpoint directory, or a run directory (its latest checkpoint), to continue from.
        progress: Show a progress bar.
        env: Env settings (`EnvConfig` fields; ``env.suite`` is the training suite).
        reward: Reward terms.
        algorithm: GRPO hyper-parameters (`GRPOConfig` fields; ``algorithm=ppo`` / ``algorithm.method=ppo``
            trains PPO with a learned critic on the same rollouts).
    """

    role: str = "all"
    run_dir: str = "runs/grpo"
    resume: str | None = None
    progress: bool = True
    env: EnvSchema = field(default_factory=EnvSchema)
    reward: RewardConf = field(default_factory=RewardConf)
    algorithm: AlgorithmSchema = field(default_factory=AlgorithmSchema)
    learner: LearnerConf = field(default_factory=LearnerConf)
    actors: ActorsConf = field(default_factory=ActorsConf)
    redis: RedisConf = field(default_factory=RedisConf)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        non_negative = {
            "actors.num": self.actors.num,
            "actors.max_queue": self.actors.max_queue,
            "actors.numba_threads": self.actors.numba_threads,
            "actors.num_envs": self.actors.num_envs,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.actors.warm_scenes < -1:
            raise ValueError(f"actors.warm_scenes must be >= -1 (-1: all), got {self.actors.warm_scenes}")
        positive = {
            "actors.groups_per_push": self.actors.groups_per_push,
            "learner.updates": self.learner.updates,
            "learner.groups_per_update": self.learner.groups_per_update,
            "learner.group_size": self.learner.group_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.learner.group_size < 2:
            raise ValueError(
                f"learner.group_size must be >= 2 (group-relative advantages), got {self.learner.group_size}"
            )
        positive_s = {
            "learner.actor_timeout_s": self.learner.actor_timeout_s,
            "redis.timeout_s": self.redis.timeout_s,
            "actors.restart_window_s": self.actors.restart_window_s,
        }
        for name, value in positive_s.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.learner.max_policy_lag < 0:
            raise ValueError(f"learner.max_policy_lag must be >= 0, got {self.learner.max_policy_lag}")
        if self.learner.max_seconds is not None and not self.learner.max_seconds > 0:
            raise ValueError(f"learner.max_seconds must be > 0 or null, got {self.learner.max_seconds}")
        check_device_name(self.learner.device, "learner.device")

    def env_config(self) -> EnvConfig:
        """The frozen, checked `EnvConfig`."""
        return EnvConfig.from_kwargs(**_plain(self.env))

    def grpo_config(self) -> GRPOConfig:
        """The frozen, checked `GRPOConfig`.

        Raises:
            ValueError: A field is out of range (the message names it under ``algorithm.``).
        """
        try:
            return GRPOConfig(**_plain(self.algorithm))
        except ValueError as e:
            raise ValueError(f"algorithm: {e}") from e

    def reward_terms(self) -> list[dict[str, Any]]:
        """The reward as ``[{kind, name, scale}, ...]`` (checked by `alpagym_env.rewards.resolve`)."""
        from alpagym_env.rewards import resolve

        terms = [dataclasses.asdict(t) if dataclasses.is_dataclass(t) else dict(t) for t in self.reward.terms]
        if not terms:
            raise ValueError("reward.terms is empty: pick a preset (reward=metrics) or list terms")
        resolve(terms)
        return terms

    def plain(self) -> dict[str, Any]:
        """The whole config as plain dicts and lists (for config.yaml and checkpoints)."""
        return _plain(self)


def _plain(x: Any) -> Any:
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def register() -> None:
    """Stores the schema in Hydra's ConfigStore as ``grpo_schema`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="grpo_schema", node=GRPORunConfig)


def from_plain(values: dict[str, Any]) -> GRPORunConfig:
    """A checked `GRPORunConfig` from plain values (e.g. `GRPORunConfig.plain` sent to a child process)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GRPORunConfig), values))


def compose(overrides: list[str] | tuple[str, ...] = ()) -> GRPORunConfig:
    """The config `python -m alpagym_train.grpo *overrides` would run, built in-process (Hydra compose).

    Example:
        >>> cfg = compose(["learner.updates=10", "topology=single", "env=short"])  # doctest: +SKIP
        >>> from alpagym_train.grpo.launch import run_all; run_all(cfg)  # doctest: +SKIP
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    register()
    GlobalHydra.instance().clear()
    conf_dir = str(Path(__file__).resolve().parent.parent / "conf")
    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = hydra_compose("grpo", overrides=list(overrides))
    return from_plain(OmegaConf.to_container(cfg, resolve=True))  # the bare schema: `+key=` raises
