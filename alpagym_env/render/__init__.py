"""Top-down rendering: Numba raster kernels, the `TopDownRenderer`, and video writing.

Example::

    renderer = TopDownRenderer(RenderConfig(width=400, height=400))
    renderer.set_scenario(scenario)
    rgb = renderer.frame(xy, yaw, length, width, valid, agent_type, ego_slot, light_state)
    write_video("episode.gif", frames, fps=10)
"""

from alpagym_env.render.topdown import RenderConfig, TopDownRenderer
from alpagym_env.render.video import write_video

__all__ = ["RenderConfig", "TopDownRenderer", "write_video"]
