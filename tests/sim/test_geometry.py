"""Known-answer tests of the geometry kernels (boxes, road edges, polylines, rays)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alpagym_env.sim import geometry as g

SQRT2 = math.sqrt(2.0)


def _closed_polygon(points):
    """(E, 4) edges of a closed polygon, in the given vertex order."""
    p = np.asarray(points, dtype=np.float64)
    return np.concatenate([p, np.roll(p, -1, axis=0)], axis=1)


@pytest.mark.parametrize(
    ("a", "expected"),
    [
        (0.0, 0.0),
        (math.pi, math.pi),
        (-math.pi, math.pi),
        (3 * math.pi, math.pi),
        (-1.5 * math.pi, 0.5 * math.pi),
    ],
)
def test_wrap_angle(a, expected):
    assert g.wrap_angle(a) == pytest.approx(expected, abs=1e-12)


def test_wrap_angle_returns_an_angle_in_range_as_it_is():
    for a in (1e-17, -0.1, 3.0, -math.pi + 1e-15, math.pi):
        assert g.wrap_angle(a) == a


def test_norm_is_hypot_to_rounding():
    rng = np.random.default_rng(0)
    for x, y in rng.normal(0.0, 50.0, (200, 2)):
        assert g.norm(x, y) == pytest.approx(math.hypot(x, y), rel=4e-16)
    assert g.norm(0.0, 0.0) == 0.0
    assert g.norm(-3.0, 4.0) == 5.0


def test_box_corners_ccw_from_front_left():
    out = np.zeros((4, 2))
    g.box_corners(1.0, 2.0, 0.5 * math.pi, 4.0, 2.0, out)  # heading +y
    np.testing.assert_allclose(out, [[0.0, 4.0], [0.0, 0.0], [2.0, 0.0], [2.0, 4.0]], atol=1e-12)
    x, y = out[:, 0], out[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) == pytest.approx(8.0)  # CCW area


@pytest.mark.parametrize(
    ("other", "overlap"),
    [
        ((3.9, 0.0, 0.0, 4.0, 2.0), True),  # axis-aligned, 0.1 m overlap
        ((4.0, 0.0, 0.0, 4.0, 2.0), False),  # exactly touching faces
        ((4.1, 0.0, 0.0, 4.0, 2.0), False),
        ((0.0, 2.0, 0.0, 4.0, 2.0), False),  # touching sides
        (
            (2.0 + SQRT2 - 0.01, 0.0, 0.25 * math.pi, 2.0, 2.0),
            True,
        ),  # 45 deg diamond corner in the front face
        ((2.0 + SQRT2, 0.0, 0.25 * math.pi, 2.0, 2.0), False),  # diamond corner touching the front face
        ((2.0 + SQRT2 + 0.01, 0.0, 0.25 * math.pi, 2.0, 2.0), False),
    ],
)
def test_boxes_overlap_axis_aligned_and_rotated(other, overlap):
    box = (0.0, 0.0, 0.0, 4.0, 2.0)
    assert g.boxes_overlap(*box, *other) is overlap
    assert g.boxes_overlap(*other, *box) is overlap


def test_boxes_overlap_sat_separates_close_parallel_diagonal_boxes():
    # two 6 x 1 boxes at 45 deg, 1.2 m apart across their length: bounding circles overlap, SAT separates
    c, s = math.cos(0.25 * math.pi), math.sin(0.25 * math.pi)
    args = (0.0, 0.0, 0.25 * math.pi, 6.0, 1.0)
    assert not g.boxes_overlap(*args, -1.2 * s, 1.2 * c, 0.25 * math.pi, 6.0, 1.0)
    assert g.boxes_overlap(*args, -0.9 * s, 0.9 * c, 0.25 * math.pi, 6.0, 1.0)


EGO = (0.0, 0.0, 0.0, 4.8, 2.0)


@pytest.mark.parametrize(
    ("other", "kind_ego", "kind_other"),
    [
        ((0.0, 1.0 + 2.4 - 0.3, -0.5 * math.pi, 4.8, 2.0), g.COLLISION_LATERAL, g.COLLISION_FRONT),  # T-bone
        ((-4.8 + 0.3, 0.1, 0.0, 4.8, 2.0), g.COLLISION_REAR, g.COLLISION_FRONT),  # ego leads, is rear-ended
        ((4.5, 0.3, math.pi, 4.8, 2.0), g.COLLISION_FRONT, g.COLLISION_FRONT),  # head-on
        ((1.0, 1.8, 0.0, 4.8, 2.0), g.COLLISION_LATERAL, g.COLLISION_LATERAL),  # side-swipe
        (
            (0.0, 0.0, 0.5 * math.pi, 6.0, 0.5),
            g.COLLISION_LATERAL,
            g.COLLISION_LATERAL,
        ),  # crossing, no corner in
        ((6.0, 0.0, 0.0, 4.8, 2.0), g.COLLISION_NONE, g.COLLISION_NONE),
    ],
)
def test_collision_kind(other, kind_ego, kind_other):
    assert g.collision_kind(*EGO, *other) == kind_ego
    assert g.collision_kind(*other, *EGO) == kind_other


def test_point_segment_distance():
    assert g.point_segment_distance(1.0, 1.0, 0.0, 0.0, 2.0, 0.0) == pytest.approx((1.0, 0.5, 1.0))
    assert g.point_segment_distance(3.0, -1.0, 0.0, 0.0, 2.0, 0.0) == pytest.approx((SQRT2, 1.0, -1.0))
    assert g.point_segment_distance(-3.0, 4.0, 0.0, 0.0, 2.0, 0.0) == pytest.approx((5.0, 0.0, 4.0))
    assert g.point_segment_distance(3.0, 4.0, 0.0, 0.0, 0.0, 0.0) == pytest.approx((5.0, 0.0, 0.0))


# A straight road y in [-2, 2]: right edge along +x, left edge along -x (drivable area on each one's left),
# plus a garbage row past n that must be ignored.
ROAD = np.array([[-50.0, -2.0, 50.0, -2.0], [50.0, 2.0, -50.0, 2.0], [0.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize(
    ("px", "py", "expected"), [(0.0, 0.0, -2.0), (0.0, 1.5, -0.5), (0.0, 3.0, 1.0), (5.0, -2.5, 0.5)]
)
def test_signed_distance_straight_road(px, py, expected):
    assert g.signed_distance_to_edges(px, py, ROAD, 2) == pytest.approx(expected)


def test_signed_distance_no_edges_is_drivable():
    assert g.signed_distance_to_edges(0.0, 0.0, ROAD, 0) == -1e9
    assert g.box_offroad_distance(0.0, 0.0, 0.0, 4.0, 2.0, ROAD, 0) == -1e9


SQUARE = _closed_polygon([(0, 0), (10, 0), (10, 10), (0, 10)])  # convex, CCW: drivable inside
L_SHAPE = _closed_polygon([(0, 0), (20, 0), (20, 10), (10, 10), (10, 20), (0, 20)])  # concave at (10, 10)


@pytest.mark.parametrize(
    ("edges", "px", "py", "expected"),
    [
        (SQUARE, 11.0, -1.0, SQRT2),  # outside a convex corner, nearest point the vertex
        (SQUARE, 10.5, -0.2, math.hypot(0.5, 0.2)),
        (SQUARE, 9.0, 1.0, -1.0),
        (SQUARE, 10.0, 0.0, 0.0),  # on the vertex
        (L_SHAPE, 11.0, 12.0, 1.0),  # in the notch of the concave corner
        (L_SHAPE, 9.0, 9.0, -SQRT2),  # inside, nearest point the concave vertex
        (L_SHAPE, 10.5, 10.2, 0.2),
        (L_SHAPE, 9.8, 10.5, -0.2),
    ],
)
def test_signed_distance_convex_and_concave_corners(edges, px, py, expected):
    assert g.signed_distance_to_edges(px, py, edges, len(edges)) == pytest.approx(expected)


def test_signed_distance_sharp_vertex_uses_pseudo_normal():
    # Triangle with a 11 deg tip at (10, 0). Just beyond the tip, the nearest point is the tip for both
    # edges; the first edge alone would call the point inside (it is left of y = 0).
    tri = _closed_polygon([(0, 0), (10, 0), (0, 2)])
    d = math.hypot(0.5, 0.1)
    assert g.signed_distance_to_edges(10.5, 0.1, tri, 3) == pytest.approx(d)
    # Reversed edges: drivable outside the triangle, the tip is a concave vertex of the drivable area.
    rev = _closed_polygon([(0, 0), (0, 2), (10, 0)])
    assert g.signed_distance_to_edges(10.5, 0.1, rev, 3) == pytest.approx(-d)


def test_signed_distance_open_polyline_ends():
    edge = np.array([[0.0, 0.0, 10.0, 0.0]])  # drivable for y > 0
    assert g.signed_distance_to_edges(12.0, 1.0, edge, 1) == pytest.approx(-math.hypot(2.0, 1.0))
    assert g.signed_distance_to_edges(12.0, -1.0, edge, 1) == pytest.approx(math.hypot(2.0, 1.0))
    assert g.signed_distance_to_edges(12.0, 0.0, edge, 1) == pytest.approx(-2.0)  # on the extension: inside


def test_box_offroad_distance_straight_road():
    assert g.box_offroad_distance(0.0, 0.0, 0.0, 4.0, 2.0, ROAD, 2) == pytest.approx(-1.0)
    assert g.box_offroad_distance(0.0, 1.5, 0.0, 4.0, 2.0, ROAD, 2) == pytest.approx(0.5)
    assert g.box_offroad_distance(0.0, 0.0, 0.5 * math.pi, 4.0, 2.0, ROAD, 2) == pytest.approx(0.0, abs=1e-12)


def test_box_offroad_distance_matches_corners_with_broad_phase():
    # a ring road of 64 + 64 segments: outer circle CCW (drivable inside), inner circle CW (drivable outside)
    a = np.linspace(0.0, 2.0 * math.pi, 65)[:-1]
    outer = _closed_polygon(np.stack([30 * np.cos(a), 30 * np.sin(a)], axis=1))
    inner = _closed_polygon(np.stack([20 * np.cos(a), 20 * np.sin(a)], axis=1)[::-1])
    seg = np.concatenate([outer, inner])
    rng = np.random.default_rng(0)
    corners = np.zeros((4, 2))
    for _ in range(200):
        x, y = rng.uniform(-35.0, 35.0, size=2)
        yaw = rng.uniform(-math.pi, math.pi)
        g.box_corners(x, y, yaw, 4.8, 2.0, corners)
        want = max(g.signed_distance_to_edges(cx, cy, seg, len(seg)) for cx, cy in corners)
        assert g.box_offroad_distance(x, y, yaw, 4.8, 2.0, seg, len(seg)) == pytest.approx(want, abs=1e-12)


L_PATH = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [9.0, 9.0]])  # last row unused (n = 3)


def _arclength(xy, n):
    s = np.zeros(len(xy))
    g.polyline_arclength(xy, n, s)
    return s


def test_polyline_arclength():
    np.testing.assert_allclose(_arclength(L_PATH, 3)[:3], [0.0, 3.0, 7.0])


@pytest.mark.parametrize(
    ("px", "py", "start", "stop", "expected"),
    [
        (1.0, 1.0, 0, 3, (1.0, 1.0, 0)),
        (4.0, 2.0, 0, 3, (5.0, -1.0, 1)),  # right of the second segment
        (4.0, -1.0, 0, 3, (3.0, -SQRT2, 0)),  # outside the corner: nearest point the vertex
        (-2.0, 0.5, 0, 3, (-2.0, 0.5, 0)),  # extrapolated before the start
        (3.0, 6.0, -5, 99, (9.0, 0.0, 1)),  # extrapolated past the end; window clamped
        (4.0, 2.0, 0, 1, (3.0, math.hypot(1.0, 2.0), 0)),  # window of segment 0 only: no extrapolation
    ],
)
def test_project_to_polyline(px, py, start, stop, expected):
    s = _arclength(L_PATH, 3)
    assert g.project_to_polyline(px, py, L_PATH, s, 3, start, stop) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("s_query", "expected"),
    [
        (1.0, (1.0, 0.0, 0.0)),
        (3.0, (3.0, 0.0, 0.5 * math.pi)),
        (5.0, (3.0, 2.0, 0.5 * math.pi)),
        (-1.0, (-1.0, 0.0, 0.0)),
        (9.0, (3.0, 6.0, 0.5 * math.pi)),
    ],
)
def test_polyline_pose_at_with_duplicate_vertices(s_query, expected):
    for xy in (L_PATH[:3], np.repeat(L_PATH[:3], 2, axis=0)):  # repeats make zero-length segments
        s = _arclength(xy, len(xy))
        assert g.polyline_pose_at(xy, s, len(xy), s_query) == pytest.approx(expected)


def test_segments_intersect():
    assert g.segments_intersect(0, 0, 2, 2, 0, 2, 2, 0)  # X
    assert g.segments_intersect(0, 0, 2, 0, 1, 0, 1, 5)  # T: an endpoint on the other segment
    assert g.segments_intersect(0, 0, 2, 0, 1, 0, 3, 0)  # collinear overlap
    assert not g.segments_intersect(0, 0, 2, 0, 3, 0, 4, 0)  # collinear, disjoint
    assert not g.segments_intersect(0, 0, 2, 0, 0, 1, 2, 1)  # parallel
    assert not g.segments_intersect(0, 0, 2, 0, 1, 0.01, 1, 5)  # near miss


@pytest.mark.parametrize(
    ("ray", "segment", "expected"),
    [
        ((0, 0, 1, 0), (5, -1, 5, 1), 5.0),
        ((0, 0, 1, 0), (-5, -1, -5, 1), 50.0),  # behind the origin
        ((0, 0, 1, 0), (5, 1, 5, 2), 50.0),  # misses
        ((0, 0, 1, 0), (60, -1, 60, 1), 50.0),  # beyond max_range
        ((0, 0, 1, 0), (4, 0, 3, 0), 3.0),  # collinear: the nearer end
        ((0, 0, 1, 0), (-1, 0, 3, 0), 0.0),  # collinear, holding the origin
        ((0, 0, 1 / SQRT2, 1 / SQRT2), (5, 0, 5, 10), 5.0 * SQRT2),
    ],
)
def test_ray_segment_distance(ray, segment, expected):
    assert g.ray_segment_distance(*map(float, ray), *map(float, segment), 50.0) == pytest.approx(expected)
