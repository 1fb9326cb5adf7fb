"""Top-down videos of evaluated episodes with their metrics overlaid.

An episode is replayed exactly from its recorded actions (`runner.replay_states`), rendered with
`alpagym_env.render.TopDownRenderer`, and written as MP4 when ``imageio-ffmpeg`` is installed, else GIF.
The overlay (Pillow's built-in font, skipped without Pillow) shows the policy, scene, time, live
events and the episode's final score.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import numpy as np

from alpagym_env import metrics as M
from alpagym_env.config import EnvConfig
from alpagym_env.evaluation.runner import EpisodeResult, replay_states
from alpagym_env.render import RenderConfig, TopDownRenderer, write_video
from alpagym_env.scenarios.schema import Scenario


def video_suffix() -> str:
    """``.mp4`` when imageio-ffmpeg is importable, else ``.gif``."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return ".gif"
    return ".mp4"


def pick_episodes(results: Sequence[EpisodeResult], k: int) -> list[tuple[str, EpisodeResult]]:
    """The `k` worst and `k` best episodes by scene score (then EPDMS, then scene id), labelled.

    An episode in both lists is kept once, as ``worst``.
    """
    if k <= 0 or not results:
        return []

    def key(r: EpisodeResult):
        return (r.metrics["scene_score"], r.metrics.get("epdms", 0.0), r.scenario_id, r.spec.repeat)

    ranked = sorted(results, key=key)
    worst = ranked[:k]
    best = [r for r in reversed(ranked[-k:]) if all(r is not w for w in worst)]
    return [(f"worst{i}", r) for i, r in enumerate(worst)] + [(f"best{i}", r) for i, r in enumerate(best)]


def overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """`frame` with `lines` of text in a dark box at its top-left corner (unchanged without Pillow)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return frame
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img, "RGBA")
    font = ImageFont.load_default()
    height = 12
    width = max(draw.textbbox((0, 0), line, font=font)[2] for line in lines) + 8
    draw.rectangle((0, 0, width, height * len(lines) + 6), fill=(0, 0, 0, 160))
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * height), line, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def _events(m: np.ndarray) -> str:
    names = [
        (M.COLLISION_AT_FAULT, "AT-FAULT COLLISION"),
        (M.COLLISION_REAR, "rear-ended"),
        (M.OFFROAD, "OFF-ROAD"),
        (M.RAN_RED_LIGHT, "RED LIGHT"),
        (M.WRONG_WAY, "wrong way"),
        (M.TTC_VIOLATION, "ttc<0.9s"),
    ]
    return " ".join(label for idx, label in names if m[idx] > 0)


def episode_frames(
    config: EnvConfig,
    scenario: Scenario,
    result: EpisodeResult,
    policy_name: str,
    follows_log: bool,
    render_config: RenderConfig | None = None,
) -> tuple[list[np.ndarray], float, bool]:
    """Replays `result` and renders it with the metrics overlaid.

    Returns:
        The frames, one (H, W, 3) uint8 per step plus the start; the frames per second of real time (the
        engine's step rate); and whether the replay reproduced the recorded scene score (it should, bit
        for bit).
    """
    sim, states = replay_states(config, scenario, result.actions, follows_log)
    cs = sim.compiled[0]
    renderer = TopDownRenderer(render_config or RenderConfig())
    renderer.set_scenario(cs.scenario)
    n = cs.num_agents
    m = result.metrics
    summary = (
        f"score {m['scene_score']:.2f}  epdms {m.get('epdms', math.nan):.2f}  progress {m['progress']:.2f}"
    )
    frames = []
    for st in states:
        t = st["t"]
        hit = np.zeros(n, dtype=bool)
        hit[0] = st["metrics"][M.COLLISION_ANY] > 0
        agent = st["agent"][:n]
        rgb = renderer.frame(
            agent[:, :2], agent[:, 2], cs.size[:, 0], cs.size[:, 1], st["valid"][:n], cs.kind, 0,
            cs.lights[:, min(t, cs.lights.shape[1] - 1)], highlight=hit,
        )  # fmt: skip
        speed = float(np.hypot(st["agent"][0, 3], st["agent"][0, 4]))
        lines = [
            f"{policy_name} | {result.scenario_id}",
            f"t {t * sim.dt:5.1f} s  v {speed:5.1f} m/s",
            summary,
        ]
        ev = _events(st["metrics"]) if t > 0 else ""
        frames.append(overlay(rgb, lines + ([ev] if ev else [])))
    return frames, 1.0 / sim.dt, sim.episode_metrics(0)["scene_score"] == m["scene_score"]


def write_videos(
    out_dir: str | os.PathLike,
    policy_name: str,
    results: Sequence[EpisodeResult],
    scenarios: Sequence[Scenario],
    config: EnvConfig,
    k: int,
    follows_log: bool,
) -> list[str]:
    """Writes the `k` worst and `k` best episodes of one policy; returns the file paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", policy_name)
    for label, r in pick_episodes(results, k):
        path = os.path.join(out_dir, f"{safe}_{label}_{r.scenario_id}{video_suffix()}")
        frames, fps, reproduced = episode_frames(config, scenarios[r.spec.scene], r, policy_name, follows_log)
        if not reproduced:
            print(f"warning: replay of {r.scenario_id} did not reproduce its score; the video may differ")
        write_video(path, frames, fps=round(fps))
        paths.append(path)
    return paths
