"""Shared steps of the importers: parsed tracks and map features -> a validated `Scenario`.

Importers parse a file into plain numpy pieces (`Track`, `Lane`, `Light`, edge polylines) and hand them
to `build_scenario`, which

- crops the logs to start at the ego's first valid step (the schema needs the ego valid at step 0) and
  subsamples logs recorded at a multiple of 10 Hz to the engine's 0.1 s step;
- orients every road edge so the drivable area lies on its LEFT, as the schema requires: each edge
  segment votes, weighted by its length, for the side on which the nearest lane-centre point lies, and
  the polyline is reversed when the right side wins; an edge with no lane within 30 m is kept as given;
- builds stop lines across the controlled lane at each traffic light's stop point;
- builds the ego route from its valid logged positions, extended 5 m behind and 60 m ahead.

Every importer also takes a `notes` counter (`collections.Counter`) and adds one count per thing it
fixed, defaulted or dropped (a vehicle box given width-first, a map feature it could not use, a light
without states, ...); `python -m alpagym_env.scenarios.convert` prints them in its report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from alpagym_env.scenarios.schema import (
    AGENT_CYCLIST,
    AGENT_STATIC,
    AGENT_VEHICLE,
    Scenario,
    ScenarioError,
    make_scenario,
)

ENGINE_DT = 0.1
DEFAULT_LANE_WIDTH = 3.7  # m, when the source gives none (Waymo lanes have no width)
DEFAULT_SPEED_LIMIT = 15.0  # m/s
EDGE_VOTE_RANGE = 30.0  # m: lanes farther than this from an edge segment do not vote
ROUTE_BEHIND, ROUTE_AHEAD = 5.0, 60.0  # m
STATIC_MOTION = 1.0  # m: an agent of unknown type that moves less than this over its log is static


@dataclass
class Track:
    """One agent: ``traj`` (T, 5) [x, y, heading, vx, vy] (world velocity), ``valid`` (T,), box size, type."""

    traj: np.ndarray
    valid: np.ndarray
    length: float
    width: float
    kind: int = AGENT_VEHICLE


@dataclass
class Lane:
    """A lane centre line ``xy`` (P, 2) with its width, speed limit and successor lane ids."""

    key: str
    xy: np.ndarray
    width: float = DEFAULT_LANE_WIDTH
    speed_limit: float = DEFAULT_SPEED_LIMIT
    successors: tuple[str, ...] = ()


@dataclass
class Light:
    """A traffic light: its stop point (2,), the id of the lane it controls (or None), states (T,) int8."""

    stop_point: np.ndarray
    lane: str | None
    states: np.ndarray


def fix_box(track: Track, notes: Counter) -> Track:
    """`track` with length and width swapped where a vehicle or cyclist box is wider than long.

    ScenarioNet's nuScenes converter writes the ego's size width-first (1.73 m long, 4.08 m wide), so
    the order a file gives cannot be trusted; a road vehicle is never wider than long.
    """
    if track.kind in (AGENT_VEHICLE, AGENT_CYCLIST) and track.width > track.length:
        notes["vehicle boxes wider than long: length and width swapped"] += 1
        track.length, track.width = track.width, track.length
    return track


def static_or_vehicle(traj: np.ndarray, valid: np.ndarray, notes: Counter, name: str) -> int:
    """AGENT_STATIC for an agent of unknown type `name` that stays within STATIC_MOTION of its first
    valid position, else AGENT_VEHICLE (counted in `notes` either way)."""
    xy = traj[valid, :2]
    moved = float(np.max(np.hypot(*(xy - xy[0]).T))) if len(xy) else 0.0
    kind = AGENT_STATIC if moved < STATIC_MOTION else AGENT_VEHICLE
    notes[
        f"agents of type {name!r} kept as {'static obstacles' if kind == AGENT_STATIC else 'vehicles'}"
    ] += 1
    return kind


def orient_edges(edges: list[np.ndarray], lanes: list[np.ndarray]) -> list[np.ndarray]:
    """Each edge polyline, reversed where needed so the nearest lanes lie on its left (see module doc)."""
    pts = [lane for lane in lanes if len(lane)]
    if not pts:
        return [np.asarray(e, dtype=np.float64) for e in edges]
    lane_pts = np.concatenate(pts)
    out = []
    for e in edges:
        e = np.asarray(e, dtype=np.float64)
        if len(e) < 2:
            out.append(e)
            continue
        d = np.diff(e, axis=0)
        mid = 0.5 * (e[1:] + e[:-1])
        vote = 0.0
        for s in range(0, len(mid), 256):  # chunks bound the (segments x lane points) distance matrix
            m, dd = mid[s : s + 256], d[s : s + 256]
            dist2 = ((m[:, None, :] - lane_pts[None, :, :]) ** 2).sum(-1)
            near = np.argmin(dist2, axis=1)
            ok = dist2[np.arange(len(m)), near] < EDGE_VOTE_RANGE**2
            rel = lane_pts[near] - m
            cross = dd[:, 0] * rel[:, 1] - dd[:, 1] * rel[:, 0]
            vote += float(np.sum(np.sign(cross[ok]) * np.hypot(dd[ok, 0], dd[ok, 1])))
        out.append(e[::-1].copy() if vote < 0 else e)
    return out


def _stop_line(light: Light, lanes: list[Lane], index: dict[str, int]) -> np.ndarray:
    """A segment across the controlled lane (or the nearest lane) through the light's stop point."""
    p = np.asarray(light.stop_point, dtype=np.float64)[:2]
    cand = [lanes[index[light.lane]]] if light.lane is not None and light.lane in index else lanes
    best, direction, width = np.inf, np.array([1.0, 0.0]), DEFAULT_LANE_WIDTH
    for lane in cand:
        if len(lane.xy) < 2:
            continue
        a, b = lane.xy[:-1], lane.xy[1:]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
        dist = np.hypot(*(a + t[:, None] * ab - p).T)
        k = int(np.argmin(dist))
        if dist[k] < best:
            best, direction, width = dist[k], ab[k] / max(np.hypot(*ab[k]), 1e-9), lane.width
    normal = np.array([-direction[1], direction[0]]) * 0.5 * width
    return np.concatenate([p - normal, p + normal])


def _route(track: Track) -> np.ndarray:
    xy = track.traj[track.valid, :2]
    keep = [0]
    for i in range(1, len(xy)):
        if np.hypot(*(xy[i] - xy[keep[-1]])) > 0.5:
            keep.append(i)
    xy = xy[keep]
    h = track.traj[track.valid, 2]
    first, last = np.array([np.cos(h[0]), np.sin(h[0])]), np.array([np.cos(h[-1]), np.sin(h[-1])])
    return np.vstack([xy[0] - ROUTE_BEHIND * first, xy, xy[-1] + ROUTE_AHEAD * last])


def _resample_time(dt: float, where: str) -> int:
    """The subsampling stride that turns a `dt` log into a 0.1 s one; raises for other steps."""
    k = ENGINE_DT / dt
    if dt <= 0 or abs(k - round(k)) > 1e-3 or round(k) < 1:
        raise ScenarioError(f"{where}: time step {dt:g} s is not 0.1 s or an integer fraction of it")
    return int(round(k))


def build_scenario(
    scenario_id: str,
    family: str,
    source: str,
    dt: float,
    tracks: list[Track],
    ego: int,
    lanes: list[Lane],
    edges: list[np.ndarray],
    lights: list[Light],
    where: str,
    notes: Counter | None = None,
) -> Scenario:
    """Assembles and validates a `Scenario` (see the module docstring for what is derived)."""
    notes = Counter() if notes is None else notes
    if not 0 <= ego < len(tracks):
        raise ScenarioError(f"{where}: ego index {ego} is out of range for {len(tracks)} tracks")
    stride = _resample_time(dt, where)
    valid_ego = np.flatnonzero(tracks[ego].valid)
    if valid_ego.size == 0:
        raise ScenarioError(f"{where}: the ego track is never valid")
    t0 = int(valid_ego[0])
    sl = slice(t0, None, stride)
    keep = [i for i, tr in enumerate(tracks) if tr.valid[sl].any()]
    if len(keep) < len(tracks):
        notes["agents never valid from the ego's first step on: dropped"] += len(tracks) - len(keep)
    tracks = [
        fix_box(Track(tr.traj[sl], tr.valid[sl], tr.length, tr.width, tr.kind), notes)
        for tr in (tracks[i] for i in keep)
    ]
    ego = keep.index(ego)
    steps = tracks[ego].traj.shape[0]
    if steps < 2:
        raise ScenarioError(f"{where}: the ego has fewer than two log steps after its first valid one")
    traj = np.stack([np.where(tr.valid[:, None], tr.traj, 0.0) for tr in tracks])
    traj[..., 2] = np.arctan2(np.sin(traj[..., 2]), np.cos(traj[..., 2]))
    lanes = [lane for lane in lanes if len(lane.xy) >= 2]
    index = {lane.key: i for i, lane in enumerate(lanes)}
    successors = np.full((len(lanes), 4), -1, dtype=np.int64)
    for i, lane in enumerate(lanes):
        succ = [index[s] for s in lane.successors if s in index][:4]
        successors[i, : len(succ)] = succ
    edges = [e for e in orient_edges(edges, [lane.xy for lane in lanes]) if len(e) >= 2]
    if not edges:
        notes["scenes without road edges (off-road cannot fire)"] += 1
    if not lights:
        notes["scenes without traffic-light states (agents ignore lights)"] += 1
    light_states = np.zeros((len(lights), steps), dtype=np.int8)
    for k, light in enumerate(lights):
        states = np.asarray(light.states, dtype=np.int8)[sl][:steps]
        light_states[k, : len(states)] = states
    stop_lines = np.array([_stop_line(light, lanes, index) for light in lights]).reshape(-1, 4)

    def flat(polys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in polys])]).astype(np.int64)
        return (np.concatenate(polys) if polys else np.zeros((0, 2))), offsets

    lane_xy, lane_offsets = flat([lane.xy for lane in lanes])
    edge_xy, edge_offsets = flat(edges)
    return make_scenario(
        scenario_id=scenario_id,
        family=family,
        source=source,
        dt=ENGINE_DT,
        lane_xy=lane_xy,
        lane_offsets=lane_offsets,
        lane_width=np.array([lane.width for lane in lanes], dtype=np.float64),
        lane_successors=successors,
        lane_speed_limit=np.array([lane.speed_limit for lane in lanes], dtype=np.float64),
        edge_xy=edge_xy,
        edge_offsets=edge_offsets,
        stop_lines=stop_lines,
        stop_light=np.arange(len(lights), dtype=np.int64),
        light_states=light_states,
        traj=traj,
        valid=np.stack([tr.valid for tr in tracks]),
        length=np.array([tr.length for tr in tracks]),
        width=np.array([tr.width for tr in tracks]),
        agent_type=np.array([tr.kind for tr in tracks], dtype=np.int8),
        ego_index=ego,
        route_xy=_route(tracks[ego]),
    )
