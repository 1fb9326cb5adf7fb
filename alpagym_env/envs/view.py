"""`SceneView`: top-down frames of one scene slot of a `BatchedSim`."""

from __future__ import annotations

from typing import Any

import numpy as np

from alpagym_env import metrics as M


class SceneView:
    """Draws scene `b` of an engine, rebuilding the renderer's static layer when the scene changes.

    Args:
        render_config: A `alpagym_env.render.RenderConfig` (default one when None).
    """

    def __init__(self, render_config: Any = None) -> None:
        from alpagym_env.render import RenderConfig, TopDownRenderer

        self.renderer = TopDownRenderer(render_config or RenderConfig())
        self._scene = None

    def frame(self, sim, b: int) -> np.ndarray:
        """(H, W, 3) uint8 frame of scene `b` of `sim`; the ego is highlighted while it collides."""
        cs = sim.compiled[b]
        if cs is not self._scene:
            self.renderer.set_scenario(cs.scenario)
            self._scene = cs
        n = cs.num_agents
        agent = sim.state["agent"][b, :n]
        size = cs.size
        t = int(sim.state["t"][b])
        hit = np.zeros(n, dtype=bool)
        hit[: sim.num_controlled] = sim.metrics[b, :, M.COLLISION_ANY] > 0
        return self.renderer.frame(
            agent[:, :2],
            agent[:, 2],
            size[:, 0],
            size[:, 1],
            sim.state["valid"][b, :n],
            cs.kind,
            0,
            cs.lights[:, min(t, cs.lights.shape[1] - 1)],
            highlight=hit,
        )
