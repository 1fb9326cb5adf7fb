"""Planar geometry kernels: oriented boxes, road-edge signed distance, polylines, rays.

World frame: x/y in metres, headings in radians counter-clockwise from +x. A box is an oriented rectangle
given by its centre (x, y), heading yaw, length along the heading and width across it. Every function is a
pure `@njit(cache=True)` kernel that allocates nothing.
"""

from __future__ import annotations

import math

from numba import njit

COLLISION_NONE = 0
COLLISION_FRONT = 1
COLLISION_REAR = 2
COLLISION_LATERAL = 3

# Overlaps thinner than this (metres) count as touching, so exactly touching rotated boxes stay apart
# despite rounding.
OVERLAP_EPS = 1e-9
# Distances within this (metres) of the best count as ties: the nearest point is a vertex shared by
# several road-edge segments.
TIE_EPS = 1e-9
NO_EDGE_DISTANCE = -1e9


@njit(cache=True)
def norm(x, y):
    """Length of the vector (x, y): ``math.hypot`` without its guard against overflow and underflow,
    which metres and metres per second never need. glibc's hypot took about a tenth of a step's time."""
    return math.sqrt(x * x + y * y)


@njit(cache=True)
def wrap_angle(a):
    """Wraps an angle to (-pi, pi], radians (one in that range is returned as it is)."""
    if -math.pi < a <= math.pi:  # nearly every call: the difference of two wrapped headings or less
        return a
    r = (a + math.pi) % (2.0 * math.pi) - math.pi
    if r <= -math.pi:
        r += 2.0 * math.pi
    return r


@njit(cache=True)
def _corner(x, y, c, s, half_l, half_w, i):
    """Corner i of a box (0 front-left, 1 rear-left, 2 rear-right, 3 front-right) as (x, y)."""
    u = half_l if (i == 0 or i == 3) else -half_l
    v = half_w if i < 2 else -half_w
    return x + u * c - v * s, y + u * s + v * c


@njit(cache=True)
def box_corners(x, y, yaw, length, width, out):
    """Writes the 4 corners of a box, counter-clockwise from front-left.

    Args:
        x, y: Centre, metres. yaw: Heading, radians. length, width: Size, metres.
        out: (4, 2) float64 output, rows front-left, rear-left, rear-right, front-right (CCW).
    """
    c, s = math.cos(yaw), math.sin(yaw)
    for i in range(4):
        out[i, 0], out[i, 1] = _corner(x, y, c, s, 0.5 * length, 0.5 * width, i)


@njit(cache=True)
def _separated_on_axis(ax, ay, dx, dy, c1, s1, hl1, hw1, c2, s2, hl2, hw2):
    """True when the boxes' projections on unit axis (ax, ay) are disjoint or only touch."""
    r1 = hl1 * abs(ax * c1 + ay * s1) + hw1 * abs(-ax * s1 + ay * c1)
    r2 = hl2 * abs(ax * c2 + ay * s2) + hw2 * abs(-ax * s2 + ay * c2)
    return abs(ax * dx + ay * dy) >= r1 + r2 - OVERLAP_EPS


@njit(cache=True)
def boxes_overlap(x1, y1, yaw1, l1, w1, x2, y2, yaw2, l2, w2):
    """Strict overlap of two oriented boxes (touching is not overlap).

    A bounding-circle test rejects far pairs; the separating-axis test on the 4 face normals decides the
    rest. Overlaps thinner than `OVERLAP_EPS` count as touching.

    Returns:
        True when the interiors intersect.
    """
    dx, dy = x2 - x1, y2 - y1
    reach = 0.5 * (norm(l1, w1) + norm(l2, w2))
    if dx * dx + dy * dy >= reach * reach:
        return False
    c1, s1, c2, s2 = math.cos(yaw1), math.sin(yaw1), math.cos(yaw2), math.sin(yaw2)
    hl1, hw1, hl2, hw2 = 0.5 * l1, 0.5 * w1, 0.5 * l2, 0.5 * w2
    for ax, ay in ((c1, s1), (-s1, c1), (c2, s2), (-s2, c2)):
        if _separated_on_axis(ax, ay, dx, dy, c1, s1, hl1, hw1, c2, s2, hl2, hw2):
            return False
    return True


@njit(cache=True)
def _inside_box(px, py, x, y, c, s, half_l, half_w):
    """True when the point lies in the closed box."""
    dx, dy = px - x, py - y
    return abs(dx * c + dy * s) <= half_l and abs(-dx * s + dy * c) <= half_w


@njit(cache=True)
def _segment_intersection(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1):
    """Intersection point of two segments as (hit, x, y); parallel segments never hit."""
    ex, ey, fx, fy = ax1 - ax0, ay1 - ay0, bx1 - bx0, by1 - by0
    denom = ex * fy - ey * fx
    if denom == 0.0:
        return False, 0.0, 0.0
    gx, gy = bx0 - ax0, by0 - ay0
    t = (gx * fy - gy * fx) / denom
    u = (gx * ey - gy * ex) / denom
    if t < 0.0 or t > 1.0 or u < 0.0 or u > 1.0:
        return False, 0.0, 0.0
    return True, ax0 + t * ex, ay0 + t * ey


@njit(cache=True)
def _contact_point(x1, y1, c1, s1, hl1, hw1, x2, y2, c2, s2, hl2, hw2):
    """Mean of the vertices of the intersection polygon; the centres' midpoint when it has none."""
    sx, sy, count = 0.0, 0.0, 0
    for i in range(4):
        px, py = _corner(x1, y1, c1, s1, hl1, hw1, i)
        if _inside_box(px, py, x2, y2, c2, s2, hl2, hw2):
            sx, sy, count = sx + px, sy + py, count + 1
        px, py = _corner(x2, y2, c2, s2, hl2, hw2, i)
        if _inside_box(px, py, x1, y1, c1, s1, hl1, hw1):
            sx, sy, count = sx + px, sy + py, count + 1
    for i in range(4):
        ax0, ay0 = _corner(x1, y1, c1, s1, hl1, hw1, i)
        ax1, ay1 = _corner(x1, y1, c1, s1, hl1, hw1, (i + 1) % 4)
        for j in range(4):
            bx0, by0 = _corner(x2, y2, c2, s2, hl2, hw2, j)
            bx1, by1 = _corner(x2, y2, c2, s2, hl2, hw2, (j + 1) % 4)
            hit, px, py = _segment_intersection(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1)
            if hit:
                sx, sy, count = sx + px, sy + py, count + 1
    if count == 0:
        return 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    return sx / count, sy / count


@njit(cache=True)
def collision_kind(x1, y1, yaw1, l1, w1, x2, y2, yaw2, l2, w2):
    """Classifies a collision from box 1's (the ego's) point of view.

    Rule: the contact point is the mean of the intersection polygon's vertices (corners of either box
    inside the other plus edge crossings; the centres' midpoint if there are none). In box 1's frame with
    normalised coordinates u = cx / (l1 / 2), v = cy / (w1 / 2), the contact is on the front or rear face
    when |u| > |v| (front if cx > 0, else rear) and on a side otherwise (ties, e.g. two thin boxes
    crossing at their centres, count as lateral). AlpaSim counts front and lateral
    collisions as at fault and rear ones (box 2 drove into box 1) as not at fault.

    Returns:
        COLLISION_NONE (0) when the boxes do not overlap, else COLLISION_FRONT (1), COLLISION_REAR (2) or
        COLLISION_LATERAL (3).
    """
    if not boxes_overlap(x1, y1, yaw1, l1, w1, x2, y2, yaw2, l2, w2):
        return COLLISION_NONE
    c1, s1, c2, s2 = math.cos(yaw1), math.sin(yaw1), math.cos(yaw2), math.sin(yaw2)
    px, py = _contact_point(x1, y1, c1, s1, 0.5 * l1, 0.5 * w1, x2, y2, c2, s2, 0.5 * l2, 0.5 * w2)
    cx = (px - x1) * c1 + (py - y1) * s1
    cy = -(px - x1) * s1 + (py - y1) * c1
    if abs(cx) / (0.5 * l1) > abs(cy) / (0.5 * w1):
        return COLLISION_FRONT if cx > 0.0 else COLLISION_REAR
    return COLLISION_LATERAL


@njit(cache=True)
def point_segment_distance(px, py, x0, y0, x1, y1):
    """Distance from a point to a segment.

    Returns:
        (dist, t, cross): distance in metres; t in [0, 1], the clamped projection parameter along
        p0 -> p1; cross, the signed distance to the segment's supporting line (metres, the cross product
        of the unit direction with p - p0), > 0 when the point is LEFT of the directed segment. A
        zero-length segment gives t = 0 and cross = 0.
    """
    ex, ey = x1 - x0, y1 - y0
    qx, qy = px - x0, py - y0
    len2 = ex * ex + ey * ey
    if len2 == 0.0:
        return norm(qx, qy), 0.0, 0.0
    t = (qx * ex + qy * ey) / len2
    cross = (ex * qy - ey * qx) / math.sqrt(len2)
    if t <= 0.0:
        return norm(qx, qy), 0.0, cross
    if t >= 1.0:
        return norm(px - x1, py - y1), 1.0, cross
    return abs(cross), t, cross


@njit(cache=True)
def bbox_farther(px, py, x0, y0, x1, y1, d):
    """True when the bounding box of segment (x0, y0)-(x1, y1) is farther than `d` from the point (a lower
    bound on the segment's distance, so the segment is too); without a square root. `d` may be inf."""
    dx = max(min(x0, x1) - px, 0.0, px - max(x0, x1))
    dy = max(min(y0, y1) - py, 0.0, py - max(y0, y1))
    if dx > d or dy > d:
        return True
    return dx * dx + dy * dy > d * d


@njit(cache=True)
def _nearer(best_d, best_c, px, py, x0, y0, x1, y1):
    """Updates a nearest-edge record (distance, cross) with one segment.

    On a tie (the nearest point is a vertex shared by two segments) the segment whose supporting line is
    farther from the point decides the side. For two segments meeting at a vertex this equals the
    pseudo-normal test (sign of the sum of both crosses), so convex and concave corners are both right.
    """
    d, _, c = point_segment_distance(px, py, x0, y0, x1, y1)
    if d < best_d - TIE_EPS:
        return d, c
    if d <= best_d + TIE_EPS and abs(c) > abs(best_c):
        return min(d, best_d), c
    return best_d, best_c


@njit(cache=True)
def _signed(d, c):
    """Signed distance from a nearest-edge record: > 0 right of the edge (outside the drivable area)."""
    return d if c < 0.0 else -d


@njit(cache=True)
def signed_distance_to_edges(px, py, seg, n):
    """Signed distance from a point to the road edges.

    Args:
        px, py: The point, metres.
        seg: (E, 4) road-edge segments [x0, y0, x1, y1], each directed with the drivable area on its LEFT.
        n: Number of segments used (the first n rows).

    Returns:
        Distance to the nearest edge in metres, positive when the point is outside the drivable area (right
        of the nearest edge), negative inside. Shared vertices use the pseudo-normal rule of `_nearer`; a
        point beyond an open end exactly on the edge's extension counts as inside. With n == 0 returns
        -1e9 (no edges: everything is drivable).
    """
    best_d, best_c = math.inf, 0.0
    for k in range(n):
        x0, y0, x1, y1 = seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]
        if bbox_farther(px, py, x0, y0, x1, y1, best_d + TIE_EPS):
            continue
        best_d, best_c = _nearer(best_d, best_c, px, py, x0, y0, x1, y1)
    if n == 0:
        return NO_EDGE_DISTANCE
    return _signed(best_d, best_c)


@njit(cache=True)
def box_corner_points(x, y, yaw, length, width):
    """The 4 corners of a box as one tuple (x0, y0, ..., x3, y3), in `box_corners`' order, metres."""
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = 0.5 * length, 0.5 * width
    ax, ay = _corner(x, y, c, s, hl, hw, 0)
    bx, by = _corner(x, y, c, s, hl, hw, 1)
    cx, cy = _corner(x, y, c, s, hl, hw, 2)
    dx, dy = _corner(x, y, c, s, hl, hw, 3)
    return ax, ay, bx, by, cx, cy, dx, dy


NO_CORNER_RECORDS = (math.inf, 0.0, math.inf, 0.0, math.inf, 0.0, math.inf, 0.0)


@njit(cache=True)
def corners_nearer(rec, pts, x0, y0, x1, y1):
    """Updates the 4 corners' nearest-edge records (d, cross) x 4 with one segment (`_nearer` each)."""
    da, ca = _nearer(rec[0], rec[1], pts[0], pts[1], x0, y0, x1, y1)
    db, cb = _nearer(rec[2], rec[3], pts[2], pts[3], x0, y0, x1, y1)
    dc, cc = _nearer(rec[4], rec[5], pts[4], pts[5], x0, y0, x1, y1)
    dd, cd = _nearer(rec[6], rec[7], pts[6], pts[7], x0, y0, x1, y1)
    return da, ca, db, cb, dc, cc, dd, cd


@njit(cache=True)
def corners_reach(rec):
    """The farthest of the 4 corners' nearest-edge distances: no edge farther can change a record."""
    return max(max(rec[0], rec[2]), max(rec[4], rec[6])) + TIE_EPS


@njit(cache=True)
def corners_offroad(rec):
    """Largest signed distance over the 4 corners' records, > 0 when some corner is off the road."""
    front = max(_signed(rec[0], rec[1]), _signed(rec[6], rec[7]))
    return max(front, max(_signed(rec[2], rec[3]), _signed(rec[4], rec[5])))


@njit(cache=True)
def box_offroad_distance(x, y, yaw, length, width, seg, n):
    """Largest signed road-edge distance over a box's 4 corners (see `signed_distance_to_edges`).

    A segment whose bounding box is farther from the box's circumcircle than every corner's current best
    distance cannot be any corner's nearest edge and is skipped. `alpagym_env.sim.grid` gives the same
    answer from a grid of the segments without visiting them all.

    Returns:
        Metres, > 0 when some corner is off the drivable area; -1e9 when n == 0.
    """
    if n == 0:
        return NO_EDGE_DISTANCE
    radius = 0.5 * norm(length, width)
    pts = box_corner_points(x, y, yaw, length, width)
    rec = NO_CORNER_RECORDS
    for k in range(n):
        x0, y0, x1, y1 = seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]
        if bbox_farther(x, y, x0, y0, x1, y1, corners_reach(rec) + radius):
            continue
        rec = corners_nearer(rec, pts, x0, y0, x1, y1)
    return corners_offroad(rec)


@njit(cache=True)
def polyline_arclength(xy, n, out):
    """Cumulative arc length of a polyline.

    Args:
        xy: (R, 2) vertices, metres; the first n are used.
        n: Number of vertices.
        out: (R,) output; out[i] is the length from vertex 0 to vertex i (out[0] = 0).
    """
    if n > 0:
        out[0] = 0.0
    for i in range(1, n):
        out[i] = out[i - 1] + math.hypot(xy[i, 0] - xy[i - 1, 0], xy[i, 1] - xy[i - 1, 1])


@njit(cache=True)
def project_to_polyline(px, py, xy, s, n, start, stop):
    """Projects a point on a polyline, searching segments in [start, stop).

    Args:
        px, py: The point, metres.
        xy: (R, 2) vertices; s: (R,) their cumulative arc length (`polyline_arclength`); n: vertices used.
        start, stop: Segment index window (segment i joins vertices i and i + 1), clamped to [0, n - 1);
            an empty window searches the whole polyline.

    Returns:
        (s_proj, lateral, seg_index): arc length of the projection in metres, extrapolated along the
        first/last segment beyond the ends (so it may be < 0 or > s[n - 1]); signed distance, left > 0
        (beyond the ends, the distance to the extended end segment's line); the nearest segment. With
        n < 2 returns (0, 0, -1).
    """
    if n < 2:
        return 0.0, 0.0, -1
    lo, hi = max(start, 0), min(stop, n - 1)
    if lo >= hi:
        lo, hi = 0, n - 1
    best_d, best_c, best_i, best_t = math.inf, 0.0, -1, 0.0
    for i in range(lo, hi):
        seg_len = s[i + 1] - s[i]
        if seg_len <= 0.0:
            continue
        # A segment whose bounding box is farther than the best distance (and its tie margin) loses.
        bx = max(min(xy[i, 0], xy[i + 1, 0]) - px, 0.0, px - max(xy[i, 0], xy[i + 1, 0]))
        by = max(min(xy[i, 1], xy[i + 1, 1]) - py, 0.0, py - max(xy[i, 1], xy[i + 1, 1]))
        reach = best_d + TIE_EPS
        if bx > reach or by > reach or bx * bx + by * by > reach * reach:
            continue
        d, _, c = point_segment_distance(px, py, xy[i, 0], xy[i, 1], xy[i + 1, 0], xy[i + 1, 1])
        tie = d <= best_d + TIE_EPS and abs(c) > abs(best_c)
        if d < best_d - TIE_EPS or tie:
            ex, ey = xy[i + 1, 0] - xy[i, 0], xy[i + 1, 1] - xy[i, 1]
            t = ((px - xy[i, 0]) * ex + (py - xy[i, 1]) * ey) / (seg_len * seg_len)
            best_d, best_c, best_i, best_t = min(d, best_d), c, i, t
    if best_i < 0:
        return 0.0, 0.0, -1
    i, t = best_i, best_t
    first, last = s[i] <= s[0], s[i + 1] >= s[n - 1]
    if (t < 0.0 and first) or (t > 1.0 and last):
        return s[i] + t * (s[i + 1] - s[i]), best_c, i
    t = min(max(t, 0.0), 1.0)
    return s[i] + t * (s[i + 1] - s[i]), (best_d if best_c >= 0.0 else -best_d), i


@njit(cache=True)
def _segment_at(s, n, s_query):
    """Index of the segment holding arc length s_query (binary search), skipping zero-length segments."""
    lo, hi = 0, n - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if s[mid] <= s_query:
            lo = mid
        else:
            hi = mid - 1
    while lo > 0 and s[lo + 1] <= s[lo]:
        lo -= 1
    while lo < n - 2 and s[lo + 1] <= s[lo]:
        lo += 1
    return lo


@njit(cache=True)
def polyline_pose_at(xy, s, n, s_query):
    """Pose on a polyline at an arc length, extrapolating past the ends along the end segments.

    Args:
        xy: (R, 2) vertices; s: (R,) cumulative arc length; n: vertices used; s_query: metres.

    Returns:
        (x, y, heading) in metres and radians. A polyline of one vertex, or of zero length, gives that
        vertex with heading 0.
    """
    if n < 2:
        return xy[0, 0], xy[0, 1], 0.0
    i = _segment_at(s, n, s_query)
    seg_len = s[i + 1] - s[i]
    if seg_len <= 0.0:
        return xy[0, 0], xy[0, 1], 0.0
    ex, ey = xy[i + 1, 0] - xy[i, 0], xy[i + 1, 1] - xy[i, 1]
    f = (s_query - s[i]) / seg_len
    return xy[i, 0] + f * ex, xy[i, 1] + f * ey, math.atan2(ey, ex)


@njit(cache=True)
def _orient(ax, ay, bx, by, cx, cy):
    """Cross product (b - a) x (c - a): > 0 when c is left of a -> b."""
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def _on_segment(ax, ay, bx, by, cx, cy):
    """For collinear c: True when c lies within the bounding box of segment a-b."""
    return min(ax, bx) <= cx <= max(ax, bx) and min(ay, by) <= cy <= max(ay, by)


@njit(cache=True)
def segments_intersect(ax0, ay0, ax1, ay1, bx0, by0, bx1, by1):
    """True when segments a and b share a point (touching and collinear overlap included)."""
    d1 = _orient(bx0, by0, bx1, by1, ax0, ay0)
    d2 = _orient(bx0, by0, bx1, by1, ax1, ay1)
    d3 = _orient(ax0, ay0, ax1, ay1, bx0, by0)
    d4 = _orient(ax0, ay0, ax1, ay1, bx1, by1)
    if ((d1 > 0.0 and d2 < 0.0) or (d1 < 0.0 and d2 > 0.0)) and (
        (d3 > 0.0 and d4 < 0.0) or (d3 < 0.0 and d4 > 0.0)
    ):
        return True
    return (
        (d1 == 0.0 and _on_segment(bx0, by0, bx1, by1, ax0, ay0))
        or (d2 == 0.0 and _on_segment(bx0, by0, bx1, by1, ax1, ay1))
        or (d3 == 0.0 and _on_segment(ax0, ay0, ax1, ay1, bx0, by0))
        or (d4 == 0.0 and _on_segment(ax0, ay0, ax1, ay1, bx1, by1))
    )


@njit(cache=True)
def ray_segment_distance(px, py, dx, dy, x0, y0, x1, y1, max_range):
    """Distance along a ray to a segment.

    Args:
        px, py: Ray origin, metres. dx, dy: Unit direction.
        x0, y0, x1, y1: The segment, metres.
        max_range: Returned when the ray misses, metres.

    Returns:
        Distance in metres to the first point of the segment on the ray (a collinear segment gives its
        nearer end, or 0 when it contains the origin), capped at max_range.
    """
    ex, ey = x1 - x0, y1 - y0
    gx, gy = x0 - px, y0 - py
    denom = dx * ey - dy * ex
    if denom == 0.0:
        if gx * dy - gy * dx != 0.0:
            return max_range
        t0, t1 = gx * dx + gy * dy, (x1 - px) * dx + (y1 - py) * dy
        if max(t0, t1) < 0.0:
            return max_range
        return min(max(min(t0, t1), 0.0), max_range)
    t = (gx * ey - gy * ex) / denom
    u = (gx * dy - gy * dx) / denom
    if t < 0.0 or u < 0.0 or u > 1.0:
        return max_range
    return min(t, max_range)
