"""`render_mode="human"` (a pygame window, run headless here) and Gymnasium's `RecordVideo`."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401
from tests.conftest import straight_road


def test_human_render_shows_each_frame_in_a_pygame_window(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    human = gym.make("AlpaDrive-v0", render_mode="human", scenarios=[straight_road()], horizon=5)
    frames = gym.make("AlpaDrive-v0", render_mode="rgb_array", scenarios=[straight_road()], horizon=5)
    assert "human" in human.metadata["render_modes"]
    human.reset(seed=0)
    frames.reset(seed=0)
    for _ in range(2):
        human.step(np.zeros(2, np.float32))
        frames.step(np.zeros(2, np.float32))
    assert human.render() is None
    shown = pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)
    np.testing.assert_array_equal(shown, frames.render())
    human.close()
    assert not pygame.display.get_init()


def test_record_video_writes_an_mp4(tmp_path):
    env = gym.make("AlpaDrive-v0", render_mode="rgb_array", scenarios=[straight_road()], horizon=8)
    env = gym.wrappers.RecordVideo(
        env, str(tmp_path / "videos"), episode_trigger=lambda episode: True, disable_logger=True
    )
    env.reset(seed=0)
    done = False
    while not done:
        _, _, te, tr, _ = env.step(np.zeros(2, np.float32))
        done = te or tr
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
