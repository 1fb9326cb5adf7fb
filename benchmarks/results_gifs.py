"""Side-by-side GIFs of `benchmarks/results.py`: BC and BC + GRPO on the same test scene.

Both episodes are replayed from their recorded actions and rendered by the evaluation's own video code
(`alpagym_env.evaluation.videos.episode_frames`, the top-down renderer); the two frame sequences are
put next to each other (BC left), the shorter one holding its last frame, and written with imageio
(`alpagym_env.render.write_video`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alpagym_env.config import EnvConfig
from alpagym_env.evaluation.runner import EpisodeResult
from alpagym_env.evaluation.videos import episode_frames
from alpagym_env.render import RenderConfig, write_video
from alpagym_env.scenarios.schema import Scenario

# Smaller than the renderer's default frame, so a 20 s episode pair stays a few MB of GIF.
GIF_RENDER = RenderConfig(width=256, height=256, metres_per_pixel=0.35)
GAP = 4  # pixels of background between the two views


def pick_scenes(
    left: Sequence[EpisodeResult], right: Sequence[EpisodeResult]
) -> list[tuple[str, EpisodeResult, EpisodeResult]]:
    """The scenes to show, labelled, each once: where `right` gained most over `left` (scene score),
    where it lost most, and where `right` scores worst.

    Args:
        left, right: The two policies' episodes of the same plan (matched by scene and repeat).
    """
    pairs = {(e.spec.scene, e.spec.repeat): [e] for e in left}
    for e in right:
        pairs.get((e.spec.scene, e.spec.repeat), []).append(e)
    matched = [(p[0], p[1]) for p in pairs.values() if len(p) == 2]
    if not matched:
        return []

    def gain(p: tuple[EpisodeResult, EpisodeResult]) -> float:
        return p[1].metrics["scene_score"] - p[0].metrics["scene_score"]

    picks = {
        "gained_most": max(matched, key=gain),
        "lost_most": min(matched, key=gain),
        "grpo_worst": min(matched, key=lambda p: p[1].metrics["scene_score"]),
    }
    out, seen = [], set()
    for label, (a, b) in picks.items():
        if (a.spec.scene, a.spec.repeat) not in seen:
            seen.add((a.spec.scene, a.spec.repeat))
            out.append((label, a, b))
    return out


def side_by_side(left: Sequence[np.ndarray], right: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(H, W, 3) frame sequences joined horizontally; the shorter one holds its last frame."""
    n = max(len(left), len(right))
    gap = np.zeros((left[0].shape[0], GAP, 3), dtype=np.uint8)
    return [
        np.concatenate([left[min(i, len(left) - 1)], gap, right[min(i, len(right) - 1)]], axis=1)
        for i in range(n)
    ]


def write_pair_gifs(
    out: Path,
    names: tuple[str, str],
    episodes: tuple[Sequence[EpisodeResult], Sequence[EpisodeResult]],
    scenarios: Sequence[Scenario],
    configs: tuple[EnvConfig, EnvConfig],
) -> list[Path]:
    """Writes ``{out}/bc_vs_grpo_{label}_{scene id}.gif`` for each `pick_scenes` scene; returns the paths.

    Args:
        out: Directory of the GIFs.
        names: The two policies' labels (overlaid on their halves).
        episodes: Their test episodes.
        scenarios: The scenes the episodes index (``spec.scene``).
        configs: The env configuration each policy was evaluated with (`policy_config`).
    """
    paths = []
    for label, a, b in pick_scenes(*episodes):
        halves = []
        for name, episode, config in zip(names, (a, b), configs, strict=True):
            frames, fps, _ = episode_frames(
                config, scenarios[episode.spec.scene], episode, name, False, GIF_RENDER
            )
            halves.append(frames)
        path = out / f"bc_vs_grpo_{label}_{a.scenario_id}.gif"
        write_video(path, side_by_side(*halves), fps=fps)
        paths.append(path)
    return paths
