"""Scoring trained checkpoints beside the reference policies, with the evaluation CLI's code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def compare_on_suite(
    checkpoints: Mapping[str, str],
    references: Sequence[str] = ("idm", "expert"),
    suite: str = "test",
    episodes: int | None = None,
    seed: int = 0,
):
    """Drives each checkpoint and reference policy closed-loop on `suite` and returns the overall rows.

    Args:
        checkpoints: Display name -> checkpoint path (`.safetensors`, or an SB3 `.zip`: any SPEC a
            registered policy loader reads).
        references: Built-in policy SPECs to score beside them.
        suite: Suite name or file (`alpagym_env.evaluation.load_scenarios`).
        episodes: Cap on the scenes (round-robin over families); None for all.
        seed: Evaluation seed.

    Returns:
        One `Row` (family ``"all"``) per policy, in the order given.
    """
    from alpagym_env.evaluation import eval_config, evaluate, load_policy, load_scenarios, summarize

    config = eval_config()
    policies = {name: load_policy(path, config) for name, path in checkpoints.items()}
    policies |= {name: load_policy(name, config) for name in references}
    results = evaluate(policies, load_scenarios(suite), config, seed=seed, max_episodes=episodes)
    return [r for r in summarize(results) if r.family == "all"]
