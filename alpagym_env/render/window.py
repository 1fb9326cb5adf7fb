"""`render_mode="human"`: top-down frames shown in a pygame window (the optional ``render`` extra).

As highway-env does: the window opens at the first frame, each frame is blitted and the display
flipped, events are pumped so the window stays responsive, and the clock holds the env's frame rate.
Headless machines (CI) can set ``SDL_VIDEODRIVER=dummy``.
"""

from __future__ import annotations

import numpy as np


class Window:
    """A pygame window that shows (H, W, 3) uint8 RGB frames at `fps`.

    Raises:
        ImportError: pygame is not installed; the message names the ``render`` extra.
    """

    def __init__(self, title: str = "AlpaDrive", fps: float = 10) -> None:
        try:
            import pygame
        except ImportError as e:
            raise ImportError(
                "render_mode='human' needs pygame: pip install 'alpagym[render]' (or pip install pygame)"
            ) from e
        self._pg = pygame
        self.title, self.fps = title, fps
        self._screen = None
        self._clock = None

    def show(self, frame: np.ndarray) -> None:
        """Shows one frame, opening (or resizing) the window to its size."""
        pg = self._pg
        h, w = frame.shape[:2]
        if self._screen is None or self._screen.get_size() != (w, h):
            pg.display.init()
            pg.display.set_caption(self.title)
            self._screen = pg.display.set_mode((w, h))
            self._clock = pg.time.Clock()
        pg.event.pump()
        pg.surfarray.blit_array(self._screen, np.ascontiguousarray(frame.swapaxes(0, 1)))
        pg.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        if self._screen is not None:
            self._pg.display.quit()
            self._screen = None
