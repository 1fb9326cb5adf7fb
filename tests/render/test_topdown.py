"""Top-down renderer: frame layout, colours of roads, agents and lights, cropping, whole-scene view, video."""

from __future__ import annotations

import numpy as np
import pytest

from alpagym_env.render import RenderConfig, TopDownRenderer, write_video
from alpagym_env.scenarios.schema import AGENT_CYCLIST, AGENT_VEHICLE, LIGHT_GREEN, LIGHT_RED, make_scenario

CFG = RenderConfig()


def _scenario(lanes=None, offsets=None, successors=None):
    """Straight two-lane road along +x, 200 m long, lanes at y = 0 and 3.5 m, a stop line at x = 150 m."""
    t = 3
    traj = np.zeros((3, t, 5))
    traj[:, :, 0] = np.array([20.0, 40.0, 60.0])[:, None] + np.arange(t) * 1.0
    traj[1, :, 1] = 3.5
    if lanes is None:
        lanes = [[0, 0], [100, 0], [200, 0], [0, 3.5], [100, 3.5], [200, 3.5]]
        offsets, successors = [0, 3, 6], -np.ones((2, 4))
    num_lanes = len(offsets) - 1
    return make_scenario(
        scenario_id="render-test", family="test", source="test", dt=0.1,
        lane_xy=lanes, lane_offsets=offsets, lane_width=np.full(num_lanes, 3.5),
        lane_successors=successors, lane_speed_limit=np.full(num_lanes, 15.0),
        edge_xy=[[0, -1.75], [200, -1.75], [200, 5.25], [0, 5.25]], edge_offsets=[0, 2, 4],
        stop_lines=[[150, -1.75, 150, 5.25]], stop_light=[0], light_states=np.full((1, t), LIGHT_RED),
        traj=traj, valid=np.ones((3, t), bool), length=[4.5, 4.5, 1.8], width=[2.0, 2.0, 0.6],
        agent_type=[AGENT_VEHICLE, AGENT_VEHICLE, AGENT_CYCLIST], ego_index=0, route_xy=[[0, 0], [200, 0]],
    )  # fmt: skip


@pytest.fixture(scope="module")
def scene():
    return _scenario()


def _render(renderer, scenario, xy=None, light=LIGHT_RED, **kw):
    xy = scenario.traj[:, 0, :2] if xy is None else np.asarray(xy, float)
    n = len(xy)
    return renderer.frame(
        xy, np.zeros(n), scenario.length[:n], scenario.width[:n], np.ones(n, bool),
        scenario.agent_type[:n], 0, np.array([light], np.int8), **kw,
    )  # fmt: skip


def _pixel(renderer, frame, x, y):
    col, row = np.floor(renderer.world_to_pixel([[x, y]])[0]).astype(int)
    return tuple(frame[row, col])


def _has(frame, color):
    return bool(np.any(np.all(frame == np.array(color, np.uint8), axis=-1)))


def test_frame_is_fresh_uint8_of_configured_shape(scene):
    r = TopDownRenderer(RenderConfig(width=320, height=240))
    r.set_scenario(scene)
    a, b = _render(r, scene), _render(r, scene)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    assert a is not b and np.array_equal(a, b)
    a[:] = 0
    assert np.array_equal(_render(r, scene), b)


def test_ego_is_at_the_image_centre_and_y_points_up(scene):
    r = TopDownRenderer(CFG)
    r.set_scenario(scene)
    f = _render(r, scene)
    assert tuple(f[CFG.height // 2, CFG.width // 2]) == CFG.ego
    # The other lane (y = +3.5 m) is above the ego in the image, its agent at x = 40 m to the right.
    col, row = r.world_to_pixel(scene.traj[1, 0, :2])[0]
    assert row < CFG.height // 2 and col > CFG.width // 2
    assert _pixel(r, f, *scene.traj[1, 0, :2]) == CFG.vehicle


def test_stop_line_takes_its_light_colour(scene):
    r = TopDownRenderer(CFG)
    r.set_scenario(scene)
    xy = scene.traj[:, 0, :2].copy()
    xy[0] = [140.0, 0.0]  # bring the ego (and the view) to the stop line
    red = _render(r, scene, xy, LIGHT_RED)
    assert _pixel(r, red, 150.0, 1.75) == CFG.light_red
    green = _render(r, scene, xy, LIGHT_GREEN)
    assert _pixel(r, green, 150.0, 1.75) == CFG.light_green
    assert not _has(green, CFG.light_red)
    # A light index the frame does not supply is drawn as unknown, not an error.
    unknown = r.frame(xy, np.zeros(3), scene.length, scene.width, np.ones(3, bool), scene.agent_type, 0, [])
    assert _pixel(r, unknown, 150.0, 1.75) == CFG.light_unknown


def test_off_screen_invalid_and_nan_agents_do_not_crash(scene):
    r = TopDownRenderer(CFG)
    r.set_scenario(scene)
    xy = np.array([[20.0, 0.0], [1e7, -1e7], [np.nan, 3.0]])
    f = r.frame(xy, np.zeros(3), scene.length, scene.width, [True, True, True], scene.agent_type, 0, [1])
    assert tuple(f[CFG.height // 2, CFG.width // 2]) == CFG.ego
    # The ego far outside the static layer: all background, no crash.
    f = r.frame([[-1e5, 1e5]], [0.0], [4.5], [2.0], [True], [0], 0, [1])
    assert tuple(f[0, 0]) == CFG.background and tuple(f[CFG.height // 2, CFG.width // 2]) == CFG.ego


def test_road_is_road_coloured_and_off_road_is_background(scene):
    r = TopDownRenderer(CFG)
    r.set_scenario(scene)
    f = _render(r, scene)
    # Between the lane centres (no line there), along the visible stretch of road, away from agents.
    for x in (2.0, 10.0, 30.0, 50.0, 66.0):
        assert _pixel(r, f, x, 1.75) == CFG.road, x
    assert _pixel(r, f, 30.0, -1.75) == CFG.road_edge
    assert _pixel(r, f, 30.0, 20.0) == CFG.background
    assert _pixel(r, f, 30.0, -20.0) == CFG.background
    assert _has(f, CFG.lane_line) and _has(f, CFG.route)


def test_curved_lanes_have_no_gaps():
    # A quarter circle of radius 30 m in 8 coarse segments, then a successor lane heading on.
    th = np.linspace(0, np.pi / 2, 9)
    arc = np.stack([30 * np.cos(th), 30 * np.sin(th)], 1)
    lanes = np.concatenate([arc, [[0, 30], [-50, 30]]])
    successors = -np.ones((2, 4))
    successors[0, 0] = 1
    s = _scenario(lanes, [0, 9, 11], successors)
    r = TopDownRenderer(RenderConfig(metres_per_pixel=0.2))
    r.set_scenario(s)
    f = _render(r, s)
    off_road = 0
    for a in np.linspace(0, np.pi / 2, 400):
        for radius in (28.6, 31.4):  # 1.4 m each side of the centre, inside the 3.5 m lane
            off_road += _pixel(r, f, radius * np.cos(a), radius * np.sin(a)) == CFG.background
    assert off_road == 0


def test_highlighted_agent_shows_the_collision_colour(scene):
    r = TopDownRenderer(CFG)
    r.set_scenario(scene)
    assert not _has(_render(r, scene), CFG.collision)
    f = _render(r, scene, highlight=np.array([False, True, False]))
    assert _has(f, CFG.collision)
    assert _pixel(r, f, *scene.traj[1, 0, :2]) == CFG.vehicle  # the halo does not hide the agent
    assert _pixel(r, f, scene.traj[1, 0, 0] + 2.25 + 0.25, 3.5) == CFG.collision


def test_whole_scene_view_contains_every_agent(scene):
    cfg = RenderConfig(ego_centred=False)
    r = TopDownRenderer(cfg)
    r.set_scenario(scene)
    f = _render(r, scene)
    assert r.metres_per_pixel > cfg.metres_per_pixel  # 200 m fitted into 400 px
    assert _pixel(r, f, *scene.traj[0, 0, :2]) == cfg.ego
    assert _pixel(r, f, *scene.traj[1, 0, :2]) == cfg.vehicle
    assert _pixel(r, f, *scene.traj[2, 0, :2]) == cfg.cyclist
    assert _pixel(r, f, 150.0, 1.75) == cfg.light_red
    assert _has(f, cfg.road) and _has(f, cfg.background)


def test_bad_input_raises_clearly(scene):
    with pytest.raises(ValueError, match="metres_per_pixel"):
        RenderConfig(metres_per_pixel=0.0)
    with pytest.raises(ValueError, match="colour 'ego'"):
        RenderConfig(ego=(0, 0, 300))
    with pytest.raises(ValueError, match="larger metres_per_pixel"):
        TopDownRenderer(RenderConfig(width=100, height=100, max_static_pixels=20_000)).set_scenario(scene)
    r = TopDownRenderer(CFG)
    with pytest.raises(RuntimeError, match="set_scenario"):
        _render(r, scene)
    r.set_scenario(scene)
    sizes = (scene.length, scene.width, np.ones(3, bool), scene.agent_type)
    with pytest.raises(ValueError, match="yaw"):
        r.frame(np.zeros((3, 2)), np.zeros(2), *sizes, 0, [])
    with pytest.raises(ValueError, match="ego_slot"):
        r.frame(np.zeros((3, 2)), np.zeros(3), *sizes, 3, [])


def test_write_video_gif_round_trip(scene, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    r = TopDownRenderer(RenderConfig(width=96, height=64, metres_per_pixel=0.5))
    r.set_scenario(scene)
    frames = []
    for k in range(5):
        xy = scene.traj[:, 0, :2] + [[3.0 * k, 0.0]]
        frames.append(_render(r, scene, xy))
    path = tmp_path / "episode.gif"
    write_video(path, frames, fps=10)
    back = iio.imread(path, index=None)
    assert back.shape[0] == 5 and back.shape[1:3] == (64, 96)
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "episode.xyz", frames)


def test_write_video_mp4_without_ffmpeg_says_what_to_install(scene, tmp_path, monkeypatch):
    pytest.importorskip("imageio")
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match="pip install imageio-ffmpeg"):
        write_video(tmp_path / "episode.mp4", [np.zeros((16, 16, 3), np.uint8)])
