"""Road building blocks: curvature integration, resampling, connectors, offsets and the network fields."""

from __future__ import annotations

import numpy as np
import pytest

from alpagym_env.scenarios.road import (
    LANE_DS,
    Piece,
    RoadNetwork,
    arclength,
    connector,
    frenet,
    headings,
    integrate,
    offset,
    resample,
)
from alpagym_env.sim.geometry import signed_distance_to_edges


def test_integrate_arc_and_straight():
    radius = 100.0
    xy, h, s = integrate(0.0, 0.0, 0.0, [Piece(50.0), Piece(np.pi / 2 * radius, 1 / radius, 1 / radius)])
    assert s[-1] == pytest.approx(50.0 + np.pi / 2 * radius)
    assert h[-1] == pytest.approx(np.pi / 2, abs=1e-3)
    assert xy[-1] == pytest.approx([50.0 + radius, radius], abs=0.05)
    assert np.diff(s)[:-1].max() == pytest.approx(LANE_DS) and np.diff(s)[-1] <= 1.25 * LANE_DS


def test_clothoid_curvature_ramps_linearly():
    k = 0.01
    xy, h, s = integrate(0.0, 0.0, 0.0, [Piece(80.0, 0.0, k)], ds=0.5)
    assert h[-1] == pytest.approx(0.5 * k * 80.0, abs=1e-6)  # integral of a linear ramp
    curvature = np.gradient(h, s)
    assert curvature[0] == pytest.approx(0.0, abs=1e-3) and curvature[-1] == pytest.approx(k, abs=1e-3)


def test_resample_uniform_and_keeps_ends():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [3.0, 10.3]])
    out = resample(xy, 1.0)
    gaps = np.hypot(*np.diff(out, axis=0).T)
    assert gaps.max() <= 1.0 and gaps.min() > 0.85  # uniform in arc length; one chord cuts the corner
    assert np.allclose(out[0], xy[0]) and np.allclose(out[-1], xy[-1])
    assert arclength(out)[-1] == pytest.approx(11.3, abs=0.1)


def test_connector_hits_poses_with_zero_end_curvature():
    xy = connector((0.0, 0.0), np.pi / 2, (-12.0, 12.0), np.pi, ds=0.5)
    assert np.allclose(xy[0], [0, 0]) and np.allclose(xy[-1], [-12, 12])
    h = headings(xy)
    assert h[0] == pytest.approx(np.pi / 2, abs=0.02) and h[-1] == pytest.approx(np.pi, abs=0.02)
    k = np.abs(np.diff(h)) / np.hypot(*np.diff(xy, axis=0).T)
    assert max(k[0], k[-1]) < 0.3 * k.max() and k.max() < 0.25  # clothoid-like: curvature ramps from 0


def test_offset_and_frenet_agree_on_a_straight():
    ref = np.stack([np.arange(0.0, 101.0), np.zeros(101)], axis=1)
    left = offset(ref, 2.0)
    assert np.allclose(left[:, 1], 2.0)
    pts = frenet(ref, headings(ref), arclength(ref), [10.0, 50.0], [-3.0, 1.0])
    assert np.allclose(pts, [[10.0, -3.0], [50.0, 1.0]])


def test_network_fields_and_edge_direction():
    net = RoadNetwork()
    xs = np.arange(0.0, 101.0)
    lane = np.stack([xs, np.zeros_like(xs)], axis=1)
    a = net.add_lane(lane, 3.5, 20.0)
    b = net.add_lane(lane + [100.0, 0.0], 3.5, 20.0)
    net.link(a, b)
    net.add_edge(offset(lane, -2.0))  # right edge, along travel: road on its left
    net.add_edge(offset(lane, 2.0)[::-1])  # left edge, reversed
    net.add_stop_line(a, 0)
    f = net.fields()
    assert f["lane_offsets"].tolist() == [0, 101, 202]
    assert f["lane_successors"][a].tolist() == [b, -1, -1, -1]
    assert f["stop_lines"].shape == (1, 4) and f["stop_light"].tolist() == [0]
    seg = np.concatenate([np.concatenate([e[:-1], e[1:]], axis=1) for e in net.edges])
    assert signed_distance_to_edges(50.0, 0.0, seg, len(seg)) < 0.0  # lane centre is drivable
    assert signed_distance_to_edges(50.0, 5.0, seg, len(seg)) > 0.0
    for _ in range(4):
        net.link(b, a)
    with pytest.raises(ValueError, match="4 successors"):
        net.link(b, a)
