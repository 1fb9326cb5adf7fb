"""Closed-loop evaluation: run policies on a scenario suite, score them, build the leaderboard.

Example::

    from alpagym_env.evaluation import evaluate, load_scenarios, summarize, to_markdown

    scenes = load_scenarios("test")
    results = evaluate(["expert", "idm"], scenes, seed=0)
    print(to_markdown(summarize(results)))

- `evaluate`: every episode of the plan through one batched engine; returns `EpisodeResult`s per policy.
- `load_policy` / `register_policy_loader`: policy SPECs (built-ins, ``module:callable``, checkpoints).
- `subscores`: trace-based metrics (EPDMS-style sub-scores, nuPlan comfort, minADE, min TTC).
- `leaderboard`: mean and 95 % CI per family, Markdown / CSV / JSON.
- `videos`: the worst and best episodes as top-down videos with the metrics overlaid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from alpagym_env.config import AgentsConfig, EnvConfig, TrajectoryConfig
from alpagym_env.evaluation.leaderboard import Row, mean_ci, summarize, to_markdown
from alpagym_env.evaluation.policy_spec import load_policy, register_policy_loader, unregister_policy_loader
from alpagym_env.evaluation.runner import EpisodeResult, EpisodeSpec, episode_plan, run_episodes
from alpagym_env.scenarios.schema import Scenario

__all__ = [
    "EpisodeResult",
    "EpisodeSpec",
    "Row",
    "eval_config",
    "evaluate",
    "load_policy",
    "load_scenarios",
    "mean_ci",
    "policy_config",
    "register_policy_loader",
    "summarize",
    "to_markdown",
    "unregister_policy_loader",
]


def eval_config(agents: str = "replay", horizon: int = 200, **kwargs) -> EnvConfig:
    """The env configuration of an evaluation; arguments as `EnvConfig.from_kwargs`. Episodes end at the
    AlpaSim cut (`TerminationConfig.at_cut`, the default), after which the scorer ignores everything."""
    return EnvConfig.from_kwargs(agents=AgentsConfig(mode=agents), horizon=horizon, **kwargs)


def policy_config(policy: Callable, config: EnvConfig) -> EnvConfig:
    """`config` with the policy's own ``action_type`` (and ``trajectory`` layout) when it declares them,
    e.g. a checkpoint of a trajectory policy."""
    changes = {k: getattr(policy, k) for k in ("action_type", "trajectory") if hasattr(policy, k)}
    if isinstance(changes.get("trajectory"), Mapping):
        changes["trajectory"] = TrajectoryConfig(**changes["trajectory"])
    return config.replace(**changes) if changes else config


def load_scenarios(suite: str) -> list[Scenario]:
    """A named suite (``train``, ``val``, ``test``, ``smoke``), a packed suite ``.npz``, one scenario
    ``.npz``, or a directory of scenario ``.npz`` files (sorted by name)."""
    from alpagym_env.scenarios import load_suite

    try:
        return load_suite(suite)
    except (KeyError, FileNotFoundError) as e:
        raise ValueError(str(e).strip("'\"")) from None


def evaluate(
    policies: Sequence[str] | Mapping[str, Callable],
    scenarios: Sequence[Scenario],
    config: EnvConfig | None = None,
    seed: int = 0,
    repeats: int = 1,
    max_episodes: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, list[EpisodeResult]]:
    """Runs each policy closed-loop on the episode plan (`episode_plan`) and returns results by name.

    Args:
        policies: SPEC strings (`load_policy`) or a mapping of names to policy callables; a policy with
            an ``action_type`` attribute (and optionally ``trajectory``) runs with that action type.
        scenarios: The scenes.
        config: Env configuration; default `eval_config()` (log-replay agents, 200 steps).
        seed: Seeds the policies and the episode plan; the same seed gives identical results.
        repeats: Episodes per scene.
        max_episodes: Cap on the scenes, taken round-robin over families.
        batch_size: Scenes stepped together.
        progress: Show a tqdm progress bar.
    """
    config = config or eval_config()
    named = (
        dict(policies)
        if isinstance(policies, Mapping)
        else {p: load_policy(p, config, seed) for p in policies}
    )
    plan = episode_plan(scenarios, seed, repeats, max_episodes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan) * len(named), unit="ep", dynamic_ncols=True)
    out = {}
    for name, policy in named.items():
        if bar is not None:
            bar.set_description(name)
        cfg = policy_config(policy, config)
        out[name] = run_episodes(policy, scenarios, plan, cfg, batch_size, bar.update if bar else None)
    if bar is not None:
        bar.close()
    return out
