"""Road-network building blocks for the procedural families.

Everything here is plain numpy on small arrays, run once per scene. Geometry is built from a reference
line (straight, arc and clothoid pieces integrated from a curvature profile), from smooth connectors
between two poses (quintic Hermite curves with zero curvature at both ends, so a vehicle's steering
changes continuously), and from lateral offsets of those curves. Lanes are densely sampled centre
polylines (`LANE_DS` = 1 m); road edges are offsets of lane centres, directed so that the drivable area
lies on their LEFT: the right-hand offset of a lane, taken in the lane's direction of travel, is an edge.

`RoadNetwork` collects lanes, edges and stop lines and turns them into the `Scenario` road fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LANE_DS = 1.0  # metres between lane-centre points
_FINE_DS = 0.05  # integration step of curvature profiles, metres


# ------------------------------------------------------------------------------------------ polylines


def arclength(xy: np.ndarray) -> np.ndarray:
    """(P,) cumulative arc length of a (P, 2) polyline, metres."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample(xy: np.ndarray, ds: float = LANE_DS) -> np.ndarray:
    """Resamples a polyline at (almost) uniform spacing `ds`, keeping both end points.

    Args:
        xy: (P, 2) polyline, metres; repeated points are allowed.
        ds: Target spacing, metres; the actual spacing is length / ceil(length / ds).

    Returns:
        (Q, 2) polyline with Q >= 2.
    """
    s = arclength(xy)
    keep = np.concatenate([[True], np.diff(s) > 1e-9])
    xy, s = xy[keep], s[keep]
    n = max(int(np.ceil(s[-1] / ds - 1e-9)), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, xy[:, 0]), np.interp(t, s, xy[:, 1])], axis=1)


def headings(xy: np.ndarray) -> np.ndarray:
    """(P,) unwrapped vertex headings of a (P, 2) polyline (mean of the adjacent segments), radians."""
    d = np.diff(xy, axis=0)
    seg = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    h = np.empty(len(xy))
    h[0], h[-1] = seg[0], seg[-1]
    h[1:-1] = 0.5 * (seg[:-1] + seg[1:])
    return h


def offset(xy: np.ndarray, d, h: np.ndarray | None = None) -> np.ndarray:
    """Offsets a polyline sideways.

    Args:
        xy: (P, 2) polyline, metres.
        d: Offset to the LEFT of the direction of travel, metres: a scalar or (P,) per vertex.
        h: (P,) vertex headings; computed from `xy` when omitted.

    Returns:
        (P, 2) offset polyline (same vertex count; resample if uniform spacing matters).
    """
    h = headings(xy) if h is None else h
    d = np.broadcast_to(np.asarray(d, dtype=np.float64), (len(xy),))
    return xy + d[:, None] * np.stack([-np.sin(h), np.cos(h)], axis=1)


def smoothstep(u: np.ndarray) -> np.ndarray:
    """Quintic smoothstep on [0, 1] (zero first and second derivatives at both ends)."""
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


# --------------------------------------------------------------------------------- curves and pieces


@dataclass(frozen=True)
class Piece:
    """One piece of a curvature profile: curvature varies linearly from `k0` to `k1` over `length`.

    `k0 == k1 == 0` is a straight, `k0 == k1 != 0` an arc of radius 1 / |k|, otherwise a clothoid.
    Curvature is 1 / m, positive turning left.
    """

    length: float
    k0: float = 0.0
    k1: float = 0.0


def integrate(x0: float, y0: float, h0: float, pieces: list[Piece], ds: float = LANE_DS):
    """Integrates a curvature profile into a reference line.

    Args:
        x0, y0, h0: Start pose, metres and radians.
        pieces: Consecutive `Piece`s.
        ds: Output spacing, metres.

    Returns:
        (xy, h, s): (P, 2) points, (P,) headings in radians and (P,) arc lengths in metres, at spacing
        `ds` (the last spacing is between 0.25 and 1.25 `ds`).
    """
    total = sum(p.length for p in pieces)
    n = max(int(np.ceil(total / _FINE_DS)), 1)
    s = np.linspace(0.0, total, n + 1)
    knots = np.cumsum([0.0] + [p.length for p in pieces])
    k = np.zeros_like(s)
    for p, a in zip(pieces, knots[:-1], strict=True):
        m = (s >= a) & (s <= a + p.length)
        k[m] = p.k0 + (p.k1 - p.k0) * (s[m] - a) / max(p.length, 1e-12)
    step = np.diff(s)
    h = h0 + np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * step)])
    hm = 0.5 * (h[1:] + h[:-1])  # midpoint heading: second-order accurate positions
    x = x0 + np.concatenate([[0.0], np.cumsum(np.cos(hm) * step)])
    y = y0 + np.concatenate([[0.0], np.cumsum(np.sin(hm) * step)])
    out_s = np.append(np.arange(0.0, total, ds), total)
    if len(out_s) > 2 and out_s[-1] - out_s[-2] < 0.25 * ds:
        out_s = np.delete(out_s, -2)
    xy = np.stack([np.interp(out_s, s, x), np.interp(out_s, s, y)], axis=1)
    return xy, np.interp(out_s, s, h), out_s


def frenet(ref: np.ndarray, ref_h: np.ndarray, ref_s: np.ndarray, s, lat) -> np.ndarray:
    """World points at arc length `s` along a reference line and lateral offset `lat` (left > 0).

    Args:
        ref, ref_h, ref_s: (P, 2) reference points, (P,) headings and (P,) arc lengths (`integrate`).
        s, lat: Arc lengths and offsets, metres (broadcast together).

    Returns:
        (..., 2) points, metres.
    """
    s, lat = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    x, y, h = (np.interp(s, ref_s, c) for c in (ref[:, 0], ref[:, 1], ref_h))
    return np.stack([x - lat * np.sin(h), y + lat * np.cos(h)], axis=-1)


def curve_pieces(rng: np.random.Generator, length: float, r_min: float, r_max: float, max_turn: float):
    """A random highway-style profile: straights and curves with clothoid transitions.

    Args:
        rng: Random source.
        length: Total length, metres.
        r_min, r_max: Range of curve radii, metres.
        max_turn: Largest heading change of one curve, radians.

    Returns:
        A list of `Piece`s of total length `length`.
    """
    pieces: list[Piece] = []
    used = 0.0
    while used < length:
        straight = float(rng.uniform(40.0, 160.0))
        radius = float(rng.uniform(r_min, r_max))
        k = float(rng.choice([-1.0, 1.0])) / radius
        trans = float(rng.uniform(40.0, 90.0))
        turn = float(rng.uniform(0.3, 1.0)) * max_turn
        arc = max(turn * radius - trans, 10.0)  # two half transitions turn as much as one arc of `trans`
        for p in (Piece(straight), Piece(trans, 0.0, k), Piece(arc, k, k), Piece(trans, k, 0.0)):
            take = min(p.length, length - used)
            if take <= 1e-6:
                break
            k_end = p.k0 + (p.k1 - p.k0) * take / p.length
            pieces.append(Piece(take, p.k0, k_end))
            used += take
    return pieces


def connector(p0, h0: float, p1, h1: float, ds: float = LANE_DS) -> np.ndarray:
    """Smooth curve from pose (p0, h0) to pose (p1, h1) with zero curvature at both ends.

    A quintic Hermite curve with zero second derivatives at the ends; the tangent length is chosen among
    a few candidates to minimise the peak curvature, so turns look like clothoid-arc-clothoid.

    Returns:
        (P, 2) polyline resampled at spacing `ds`, metres.
    """
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    dist = float(np.hypot(*(p1 - p0)))
    u = np.linspace(0.0, 1.0, 401)[:, None]
    # quintic Hermite basis with P''(0) = P''(1) = 0
    b0 = 1 - 10 * u**3 + 15 * u**4 - 6 * u**5
    b1 = u - 6 * u**3 + 8 * u**4 - 3 * u**5
    b4 = -4 * u**3 + 7 * u**4 - 3 * u**5
    b5 = 10 * u**3 - 15 * u**4 + 6 * u**5
    t0 = np.array([np.cos(h0), np.sin(h0)])
    t1 = np.array([np.cos(h1), np.sin(h1)])
    best, best_k = None, np.inf
    for scale in (0.8, 1.0, 1.2, 1.4, 1.6):
        m = scale * dist
        xy = b0 * p0 + b1 * m * t0 + b4 * m * t1 + b5 * p1
        k = np.abs(np.diff(headings(xy))) / np.maximum(np.hypot(*np.diff(xy, axis=0).T), 1e-9)
        if k.max() < best_k:
            best, best_k = xy, k.max()
    return resample(best, ds)


# ------------------------------------------------------------------------------------------ network


@dataclass
class RoadNetwork:
    """Mutable collector of lanes, edges and stop lines; `fields()` gives the `Scenario` road fields."""

    lanes: list[np.ndarray] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)
    limits: list[float] = field(default_factory=list)
    successors: list[list[int]] = field(default_factory=list)
    edges: list[np.ndarray] = field(default_factory=list)
    stops: list[tuple[float, float, float, float]] = field(default_factory=list)
    stop_lights: list[int] = field(default_factory=list)

    def add_lane(self, xy: np.ndarray, width: float, speed_limit: float) -> int:
        """Adds a lane centre (resampled at `LANE_DS`); returns its index."""
        self.lanes.append(resample(np.asarray(xy, dtype=np.float64)))
        self.widths.append(float(width))
        self.limits.append(float(speed_limit))
        self.successors.append([])
        return len(self.lanes) - 1

    def link(self, lane: int, successor: int) -> None:
        """Records that `successor` continues `lane` (at most 4 successors per lane)."""
        if len(self.successors[lane]) >= 4:
            raise ValueError(f"lane {lane} already has 4 successors")
        self.successors[lane].append(successor)

    def add_edge(self, xy: np.ndarray) -> None:
        """Adds a road-edge polyline, drivable area on its left (resampled at `LANE_DS`)."""
        self.edges.append(resample(np.asarray(xy, dtype=np.float64)))

    def add_stop_line(self, lane: int, light: int) -> None:
        """Adds a stop line across the END of `lane`, governed by light `light`."""
        xy = self.lanes[lane]
        h = headings(xy)[-1]
        half = 0.5 * self.widths[lane]
        nx, ny = -np.sin(h) * half, np.cos(h) * half
        x, y = xy[-1]
        self.stops.append((x + nx, y + ny, x - nx, y - ny))
        self.stop_lights.append(int(light))

    def fields(self) -> dict[str, np.ndarray]:
        """The `Scenario` road fields (lanes, edges, stop lines); lights are filled by the caller."""
        succ = np.full((len(self.lanes), 4), -1, dtype=np.int64)
        for i, row in enumerate(self.successors):
            succ[i, : len(row)] = row
        return {
            "lane_xy": np.concatenate(self.lanes),
            "lane_offsets": np.cumsum([0] + [len(a) for a in self.lanes]).astype(np.int64),
            "lane_width": np.array(self.widths),
            "lane_successors": succ,
            "lane_speed_limit": np.array(self.limits),
            "edge_xy": np.concatenate(self.edges),
            "edge_offsets": np.cumsum([0] + [len(a) for a in self.edges]).astype(np.int64),
            "stop_lines": np.array(self.stops, dtype=np.float64).reshape(-1, 4),
            "stop_light": np.array(self.stop_lights, dtype=np.int64),
        }


def chain(*parts: np.ndarray) -> np.ndarray:
    """Concatenates polylines, dropping a point that repeats the previous part's last point."""
    out = [np.asarray(parts[0], dtype=np.float64)]
    for p in parts[1:]:
        p = np.asarray(p, dtype=np.float64)
        if np.hypot(*(p[0] - out[-1][-1])) < 1e-6:
            p = p[1:]
        out.append(p)
    return np.concatenate(out)
