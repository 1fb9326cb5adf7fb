"""Compiles a `Scenario` into the fixed-layout arrays the step kernel reads.

Compilation happens once per (scenario, horizon, slots) and is cached by the engine. It

- orders agents so the controlled ones come first (the ego in slot 0), then the rest by distance to
  the ego, and keeps at most `max_agents`;
- pads or cuts the logs to `horizon + 1` steps and fills invalid steps with the nearest valid pose so
  every log is a usable path (its arc length `log_s` drives reactive agents);
- resamples each controlled agent's route at 1 m with the free road width left and right of it: the
  log path (`Scenario.route_xy` for the ego), against which the metrics measure progress and deviation,
  and the lane route (`alpagym_env.sim.lane_route`, map lane centres with lane widths and speed limits),
  which is all the observation shows;
- sorts road-edge and lane segments near the route into 10 m route bins, so the off-road and
  wrong-way checks only look at the segments around the ego;
- finds where stop lines cross the route and which light governs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from alpagym_env.scenarios.road import arclength, resample
from alpagym_env.scenarios.schema import LOG_HEADING, LOG_VX, Scenario
from alpagym_env.sim.geometry import project_to_polyline, ray_segment_distance, segments_intersect
from alpagym_env.sim.grid import edge_cell_size, edge_grid
from alpagym_env.sim.lane_route import DEFAULT_LANE_WIDTH, lane_route

ROUTE_SPACING = 1.0  # m between resampled route points
BIN_LENGTH = 10.0  # m of route per segment bin
NEAR_ROUTE = 25.0  # m: segments farther from the route are left to the full-map fallback
WIDTH_CAP = 20.0  # m: free width beyond this is reported as this
EXTENSION = 50.0  # m a controlled agent's route extends past its log
# Columns of a compiled route.
R_X, R_Y, R_S, R_WIDTH_LEFT, R_WIDTH_RIGHT = range(5)
# Extra columns of a compiled lane route (its first five are those of a route).
R_LANE_WIDTH, R_SPEED_LIMIT, R_LANE_SHIFT = 5, 6, 7


@dataclass(frozen=True, eq=False)
class RouteData:
    """One controlled agent's route and the map around it.

    Attributes:
        route: (R, 5) float64 ``[x, y, arc length, free_width_left, free_width_right]`` every 1 m, metres.
        edges: (E, 4) road-edge segments near the route, sorted by route bin.
        edge_bins: (NB + 1,) int64 CSR offsets of the bins into `edges`.
        lanes: (L, 5) lane segments ``[x0, y0, x1, y1, half_width]`` near the route, sorted by bin.
        lane_bins: (NB + 1,) int64 CSR offsets into `lanes`.
        stops: (S, 2) float64 ``[route arc length, light index]`` of stop lines crossing the route.
        s_start: Route arc length of the agent's first logged position, m.
        log_length: Logged path length over the horizon (progress normaliser), m.
        lane_route: (R2, 8) float64 the lane route the observation shows, every 1 m: the columns of
            `route` then ``[lane width m, speed limit m/s, shift m]`` (shift: the route lane's lateral
            offset from the lane it ends in, where it moves over between side-by-side lanes without a
            lane link, e.g. off a ramp; the log path, 3.7 m lanes, limit 0 = unknown and shift 0 where
            the map has no lane for the log).
        route_map: (R,) float64 lane-route arc length of the projection of each `route` point, m (the
            observation's starting guess to locate an agent on its lane route).
        lane_stops: (S2, 2) float64 `stops` on the lane route ``[lane-route arc length, light index]``.
    """

    route: np.ndarray
    edges: np.ndarray
    edge_bins: np.ndarray
    lanes: np.ndarray
    lane_bins: np.ndarray
    stops: np.ndarray
    s_start: float
    log_length: float
    lane_route: np.ndarray
    route_map: np.ndarray
    lane_stops: np.ndarray


@dataclass(frozen=True, eq=False)
class CompiledScene:
    """A scenario in engine layout (agents in slot order, logs `horizon + 1` long).

    Attributes:
        scenario: The source scenario.
        order: (n,) scenario agent index of each slot.
        log: (T, n, 5) ``[x, y, heading, vx, vy]`` with invalid steps filled, time-major as the engine's
            buffers (a scene loads with one contiguous copy per step).
        log_valid: (T, n) bool.
        log_s: (T, n) cumulative arc length along the log path, m.
        size: (n, 2) ``[length, width]``, m.
        kind: (n,) int8 agent types.
        edges: (E, 4) all road-edge segments.
        edge_grid: The edges' grid (`alpagym_env.sim.grid.edge_grid`): meta (5,), start, items.
        lanes: (L, 5) all lane segments.
        lights: (K, T) int8 light states, held after the scenario's last step.
        routes: One `RouteData` per controlled slot.
        steps: Episode length in steps: the horizon, or the scenario's last log step where it ends
            sooner (episodes are truncated where the log ends, never padded past it).
    """

    scenario: Scenario
    order: np.ndarray
    log: np.ndarray
    log_valid: np.ndarray
    log_s: np.ndarray
    size: np.ndarray
    kind: np.ndarray
    edges: np.ndarray
    edge_grid: tuple[np.ndarray, np.ndarray, np.ndarray]
    lanes: np.ndarray
    lights: np.ndarray
    routes: tuple[RouteData, ...]
    steps: int

    @property
    def num_agents(self) -> int:
        return self.order.shape[0]


def slot_order(s: Scenario, controlled: tuple[int, ...], max_agents: int) -> np.ndarray:
    """Scenario agent indices in slot order: `controlled` first, then others nearest the ego first."""
    ego = s.traj[controlled[0]]
    first = np.argmax(s.valid, axis=1)
    start = s.traj[np.arange(s.num_agents), first, :2]
    dist = np.hypot(*(start - ego[0, :2]).T)
    rest = [i for i in np.argsort(dist, kind="stable") if i not in controlled]
    return np.array(list(controlled) + rest, dtype=np.int64)[:max_agents]


def _pad_logs(s: Scenario, order: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    n, t = order.shape[0], min(steps, s.num_steps)
    log = np.zeros((n, steps, 5))
    valid = np.zeros((n, steps), dtype=bool)
    log[:, :t], valid[:, :t] = s.traj[order, :t], s.valid[order, :t]
    for i in range(n):
        idx = np.flatnonzero(valid[i])
        if idx.size == 0:
            continue
        # Hold the nearest valid pose (at rest) through invalid steps so the path stays defined.
        fill = idx[np.clip(np.searchsorted(idx, np.arange(steps)), 0, idx.size - 1)]
        back = np.maximum(np.searchsorted(idx, np.arange(steps), side="right") - 1, 0)
        fill = np.where(np.arange(steps) > idx[-1], idx[back], fill)
        held = ~valid[i]
        log[i, held] = log[i, fill[held]]
        log[i, held, LOG_VX:] = 0.0
    return log, valid


def _log_path(log: np.ndarray) -> np.ndarray:
    """A log's path plus a straight extension along its final heading, (P, 2)."""
    xy = log[:, :2]
    h = log[-1, LOG_HEADING]
    tail = xy[-1] + EXTENSION * np.array([np.cos(h), np.sin(h)])
    return np.vstack([xy, tail])


@njit(cache=True)
def _project_all(pts, xy, s, n, out):
    """Projects every point on the polyline: nearest of every 8th vertex first, then a local window.

    Points farther than NEAR_ROUTE + 16 m from every coarse vertex get lateral = inf.
    """
    stride = 8
    for i in range(pts.shape[0]):
        best, k = 1e300, 0
        for j in range(0, n, stride):
            d = (pts[i, 0] - xy[j, 0]) ** 2 + (pts[i, 1] - xy[j, 1]) ** 2
            if d < best:
                best, k = d, j
        if best > (NEAR_ROUTE + 2.0 * stride) ** 2:
            out[i, 0], out[i, 1] = 0.0, np.inf
            continue
        sp, lat, _ = project_to_polyline(
            pts[i, 0], pts[i, 1], xy, s, n, max(k - 2 * stride, 0), k + 2 * stride
        )
        out[i, 0], out[i, 1] = sp, lat


@njit(cache=True)
def _free_widths(route, edges, cap, out):
    """Distance from each route point to the nearest road edge along its left and right normals."""
    n = route.shape[0]
    for i in range(n):
        j0, j1 = max(i - 1, 0), min(i + 1, n - 1)
        dx, dy = route[j1, 0] - route[j0, 0], route[j1, 1] - route[j0, 1]
        norm = max(np.hypot(dx, dy), 1e-9)
        nx, ny = -dy / norm, dx / norm
        for side in range(2):
            sign = 1.0 if side == 0 else -1.0
            best = cap
            for k in range(edges.shape[0]):
                d = ray_segment_distance(
                    route[i, 0],
                    route[i, 1],
                    sign * nx,
                    sign * ny,
                    edges[k, 0],
                    edges[k, 1],
                    edges[k, 2],
                    edges[k, 3],
                    cap,
                )
                best = min(best, d)
            out[i, side] = best


# A stop line belongs to the route's own lane when the route crosses it near its middle: within
# STOP_MATCH_DISTANCE of the line's midpoint (about half a 3.5 m lane width, less a margin for a logged
# route that is off the lane centre) and inside the middle STOP_MATCH_FRACTION of the line. Stop lines
# span one lane, so a neighbouring lane's line is met, if at all, only near its end (it shares the
# lane boundary) and is left out.
STOP_MATCH_DISTANCE = 1.5  # m
STOP_MATCH_FRACTION = 0.8


@njit(cache=True)
def _route_stops(route, rs, stop_lines, stop_light, out):
    """Route arc length where each stop line of the route's own lane crosses the route; returns the count.

    Args:
        route: (R, 2) route points, m. rs: (R,) their arc lengths, m.
        stop_lines: (S, 4) ``[x0, y0, x1, y1]`` segments, m. stop_light: (S,) governing light index.
        out: (S, 2) written ``[arc length of the crossing, light index]`` for the kept lines.
    """
    m = 0
    for k in range(stop_lines.shape[0]):
        x0, y0, x1, y1 = stop_lines[k, 0], stop_lines[k, 1], stop_lines[k, 2], stop_lines[k, 3]
        lx, ly = x1 - x0, y1 - y0
        length = np.hypot(lx, ly)
        reach = min(STOP_MATCH_DISTANCE, 0.5 * STOP_MATCH_FRACTION * length)
        for i in range(route.shape[0] - 1):
            ax, ay, bx, by = route[i, 0], route[i, 1], route[i + 1, 0], route[i + 1, 1]
            if not segments_intersect(ax, ay, bx, by, x0, y0, x1, y1):
                continue
            # Crossing point: a + u (b - a) on the line (u = 1/2 when the two are parallel).
            dx, dy = bx - ax, by - ay
            den = dx * ly - dy * lx
            u = 0.5 if den == 0.0 else min(max(((x0 - ax) * ly - (y0 - ay) * lx) / den, 0.0), 1.0)
            px, py = ax + u * dx, ay + u * dy
            if np.hypot(px - 0.5 * (x0 + x1), py - 0.5 * (y0 + y1)) <= reach:
                out[m, 0] = rs[i] + u * (rs[i + 1] - rs[i])
                out[m, 1] = stop_light[k]
                m += 1
            break
    return m


def _bin_segments(segs: np.ndarray, route_xy: np.ndarray, route_s: np.ndarray, nbins: int):
    if segs.shape[0] == 0:
        return segs, np.zeros(nbins + 1, dtype=np.int64)
    mid = 0.5 * (segs[:, 0:2] + segs[:, 2:4])
    proj = np.zeros((mid.shape[0], 2))
    _project_all(mid, route_xy, route_s, route_xy.shape[0], proj)
    near = np.abs(proj[:, 1]) < NEAR_ROUTE
    bins = np.clip((proj[near, 0] // BIN_LENGTH).astype(np.int64), 0, nbins - 1)
    order = np.argsort(bins, kind="stable")
    offsets = np.zeros(nbins + 1, dtype=np.int64)
    np.cumsum(np.bincount(bins, minlength=nbins), out=offsets[1:])
    return np.ascontiguousarray(segs[near][order]), offsets


def _resampled_lane_route(s: Scenario, path: np.ndarray, log: np.ndarray, valid: np.ndarray, edges):
    """(R2, 7) lane route of one log resampled at 1 m (`path` where no lane matches), see `RouteData`."""
    found = lane_route(s, log, valid)
    src, attr = (path, np.array([[DEFAULT_LANE_WIDTH, 0.0, 0.0]])) if found is None else found
    # Points at exact multiples of 1 m from the start: a route cut elsewhere (a log with another
    # future) keeps every point before the cut bit for bit.
    src_s = arclength(src)
    keep = np.concatenate([[True], np.diff(src_s) > 1e-9])
    src, src_s, attr = src[keep], src_s[keep], attr[np.minimum(np.flatnonzero(keep), attr.shape[0] - 1)]
    rs = np.append(np.arange(0.0, src_s[-1], ROUTE_SPACING), src_s[-1])
    xy = np.stack([np.interp(rs, src_s, src[:, 0]), np.interp(rs, src_s, src[:, 1])], axis=1)
    rs = arclength(xy)
    seg = np.searchsorted(src_s, rs, side="right") - 1
    shift = np.interp(rs, src_s, attr[:, 2]) if attr.shape[0] == src.shape[0] else np.zeros_like(rs)
    attr = attr[np.clip(seg, 0, attr.shape[0] - 1)]
    attr[:, 2] = shift  # across a taper the shift runs smoothly from one lane to the next
    widths = np.zeros((xy.shape[0], 2))
    _free_widths(xy, edges, WIDTH_CAP, widths)
    return np.ascontiguousarray(np.concatenate([xy, rs[:, None], widths, attr], axis=1))


def _route_map(xy: np.ndarray, rs: np.ndarray, lane: np.ndarray) -> np.ndarray:
    """(R,) lane-route arc length of each route point's projection, interpolated where it is far."""
    proj = np.zeros((xy.shape[0], 2))
    lxy, ls = np.ascontiguousarray(lane[:, :2]), np.ascontiguousarray(lane[:, R_S])
    _project_all(xy, lxy, ls, lane.shape[0], proj)
    ok = np.isfinite(proj[:, 1])
    if not ok.any():
        return rs.copy()
    return np.interp(rs, rs[ok], proj[ok, 0])


def compile_route(
    s: Scenario, path: np.ndarray, log: np.ndarray, valid: np.ndarray, edges, lanes
) -> RouteData:
    """Resamples `path` and the lane route of `log`; gathers the map around them for one controlled agent."""
    xy = resample(path, ROUTE_SPACING)
    rs = arclength(xy)
    widths = np.zeros((xy.shape[0], 2))
    _free_widths(xy, edges, WIDTH_CAP, widths)
    lane = _resampled_lane_route(s, path, log, valid, edges)
    nbins = int(np.ceil(rs[-1] / BIN_LENGTH)) + 1
    near_edges, edge_bins = _bin_segments(edges, xy, rs, nbins)
    near_lanes, lane_bins = _bin_segments(lanes, xy, rs, nbins)
    stops = np.zeros((s.stop_lines.shape[0], 2))
    m = _route_stops(xy, rs, s.stop_lines, s.stop_light, stops)
    lane_stops = np.zeros((s.stop_lines.shape[0], 2))
    lxy, ls = np.ascontiguousarray(lane[:, :2]), np.ascontiguousarray(lane[:, R_S])
    ml = _route_stops(lxy, ls, s.stop_lines, s.stop_light, lane_stops)
    idx = np.flatnonzero(valid)
    ends = np.zeros((2, 2))
    _project_all(log[[idx[0], idx[-1]], :2], xy, rs, xy.shape[0], ends)
    return RouteData(
        route=np.ascontiguousarray(np.concatenate([xy, rs[:, None], widths], axis=1)),
        edges=near_edges,
        edge_bins=edge_bins,
        lanes=near_lanes,
        lane_bins=lane_bins,
        stops=stops[:m][np.argsort(stops[:m, 0])],
        s_start=float(ends[0, 0]),
        log_length=float(max(ends[1, 0] - ends[0, 0], 0.0)),
        lane_route=lane,
        route_map=_route_map(xy, rs, lane),
        lane_stops=lane_stops[:ml][np.argsort(lane_stops[:ml, 0])],
    )


def compile_scene(
    s: Scenario, horizon: int, max_agents: int, controlled: tuple[int, ...] | None = None
) -> CompiledScene:
    """Builds the engine layout of `s` for an episode of `horizon` steps.

    Args:
        s: The scenario.
        horizon: Episode length in steps; logs are padded or cut to `horizon + 1` steps.
        max_agents: Slot capacity; the agents farthest from the ego are dropped beyond it.
        controlled: Scenario agent indices the policy drives, ego first; default `(s.ego_index,)`.
    """
    controlled = (s.ego_index,) if controlled is None else tuple(controlled)
    order = slot_order(s, controlled, max_agents)
    log, valid = _pad_logs(s, order, horizon + 1)
    log_s = np.stack([arclength(log[i, :, :2]) for i in range(order.shape[0])])
    edges = s.edge_segments()
    lanes = s.lane_segments()
    routes = []
    for c, agent in enumerate(controlled):
        path = s.route_xy if agent == s.ego_index else _log_path(log[c])
        routes.append(compile_route(s, path, log[c], valid[c], edges, lanes))
    t = min(horizon + 1, s.num_steps)
    lights = np.zeros((s.num_lights, horizon + 1), dtype=np.int8)
    if s.num_lights:
        lights[:, :t] = s.light_states[:, :t]
        lights[:, t:] = s.light_states[:, t - 1 : t]
    return CompiledScene(
        scenario=s,
        order=order,
        log=np.ascontiguousarray(log.transpose(1, 0, 2)),
        log_valid=np.ascontiguousarray(valid.T),
        log_s=np.ascontiguousarray(log_s.T),
        size=np.stack([s.length[order], s.width[order]], axis=1),
        kind=s.agent_type[order].copy(),
        edges=edges,
        edge_grid=edge_grid(edges, edge_cell_size(edges)),
        lanes=lanes,
        lights=lights,
        routes=tuple(routes),
        steps=min(int(horizon), s.num_steps - 1),
    )
