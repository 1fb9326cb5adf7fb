"""`python -m alpagym_env.render_scenario`: draws one scene's logs top-down to a PNG or an animated GIF/MP4.

Examples::

    python -m alpagym_env.render_scenario --family intersection --seed 3 --out scene.png
    python -m alpagym_env.render_scenario --suite test --index 7 --out scene.gif --view ego
    python -m alpagym_env.render_scenario --file waymo_scene.json --out scene.gif

A PNG shows step ``--step`` (default 0); a video plays every logged step (every agent, the ego included,
replays its log). ``--view scene`` (default) fits the whole scene, ``--view ego`` follows the ego.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from alpagym_env.render import RenderConfig, TopDownRenderer, write_video
from alpagym_env.scenarios.schema import Scenario


def render_log_frame(renderer: TopDownRenderer, s: Scenario, t: int) -> np.ndarray:
    """The frame of scenario `s` at log step `t` (agents at their logged poses, invalid ones hidden)."""
    t = min(max(t, 0), s.num_steps - 1)
    order = np.r_[s.ego_index, np.delete(np.arange(s.num_agents), s.ego_index)]
    traj = s.traj[order, t]
    lights = s.light_states[:, t] if s.num_lights else np.zeros(0, dtype=np.int8)
    return renderer.frame(
        traj[:, :2],
        traj[:, 2],
        s.length[order],
        s.width[order],
        s.valid[order, t],
        s.agent_type[order],
        0,
        lights,
    )


def load_one(args: argparse.Namespace) -> Scenario:
    """The scene selected by --file, --family/--seed or --suite/--index."""
    if args.file:
        if args.file.endswith(".npz"):
            from alpagym_env.scenarios.schema import load_scenario

            return load_scenario(args.file)
        from alpagym_env.scenarios.importers import load_file

        return load_file(args.file)
    if args.family:
        from alpagym_env.scenarios import generate

        return generate(args.family, args.seed)
    from alpagym_env.evaluation import load_scenarios

    scenes = load_scenarios(args.suite)
    if not 0 <= args.index < len(scenes):
        raise ValueError(f"--index {args.index} is outside 0..{len(scenes) - 1} of suite {args.suite!r}")
    return scenes[args.index]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m alpagym_env.render_scenario", description=__doc__.splitlines()[0]
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="a scenario .npz, ScenarioNet .pkl or GPUDrive .json")
    src.add_argument("--family", help="a procedural family (with --seed)")
    src.add_argument("--suite", help="a suite name or file (with --index)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--out", required=True, help="output .png, .gif or .mp4")
    p.add_argument("--view", choices=("scene", "ego"), default="scene")
    p.add_argument("--size", type=int, default=600, help="frame width and height, pixels")
    p.add_argument("--step", type=int, default=0, help="log step drawn in a PNG")
    p.add_argument("--fps", type=float, default=10.0)
    args = p.parse_args(argv)
    try:
        s = load_one(args)
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    renderer = TopDownRenderer(
        RenderConfig(width=args.size, height=args.size, ego_centred=args.view == "ego")
    )
    renderer.set_scenario(s)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.out.lower().endswith(".png"):
        import imageio.v3 as iio

        iio.imwrite(args.out, render_log_frame(renderer, s, args.step))
    else:
        write_video(args.out, [render_log_frame(renderer, s, t) for t in range(s.num_steps)], fps=args.fps)
    print(f"{s.scenario_id} ({s.family}, {s.num_agents} agents, {s.num_steps} steps) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
