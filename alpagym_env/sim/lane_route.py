"""The lane-level route a controlled agent is shown: map lane centre lines, not its logged path.

nuPlan and AlpaSim give a planner its route as a sequence of map lanes; the exact logged path would tell
the policy where, when and how far the expert drove. `lane_route` builds such a route from a log:

1. every valid log pose is matched to the nearest lane whose centre lies within its half width
   (+ `MATCH_MARGIN`) and points within `MATCH_HEADING` of the pose;
2. the lane the log *ends* in is followed backwards through the lane graph (predecessors from
   `Scenario.lane_successors`) to a lane that covers the log's first pose; among these chains the one
   nearest the whole log wins. A chain follows one lane per road section, so where the log changes
   lane the route is the lane the log ends in along that whole section: the route says which lane to
   be in by the section's end (as a navigation route does), never when the expert moved over;
3. the centre lines of the chain are concatenated from `BEHIND` m behind the log's start and continued
   past its end along the straightest successors, then straight ahead, to `EXTENSION` m beyond the
   log's end, so the route's end reveals nothing about where (or whether) the expert stopped.

Scenes without lanes (or logs no lane matches) get None, and the caller falls back to the log path.
"""

from __future__ import annotations

import numpy as np

from alpagym_env.scenarios.road import arclength

MATCH_HEADING = np.pi / 4  # rad: a lane matches a pose only within this heading difference
MATCH_MARGIN = 0.5  # m beyond the lane's half width that still matches
BEHIND = 20.0  # m of route behind the log's first pose
EXTENSION = 250.0  # m of route beyond the log's last pose
MAX_CHAINS, MAX_DEPTH = 64, 16
COVER_LANES = 1.6  # lane widths: a chain covers the poses this close to its lanes
TAPER = 20.0  # m over which the route crosses from one piece's lane to the next's
MAX_RUN_ON = 400.0  # m a piece may run on past the split to its lane's end
DEFAULT_LANE_WIDTH = 3.7  # m, where no lane is known
MATCH_CHUNK = 16  # poses matched together against the segments near them


def _point_lane_distance(xy: np.ndarray, yaw: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, S) distances from points to segments and the heading difference to them (rad)."""
    ex, ey = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    ll = np.maximum(ex * ex + ey * ey, 1e-12)
    qx, qy = xy[:, :1] - seg[:, 0], xy[:, 1:] - seg[:, 1]
    u = np.clip((qx * ex + qy * ey) / ll, 0.0, 1.0)
    d = np.hypot(qx - u * ex, qy - u * ey)
    dh = np.abs((yaw[:, None] - np.arctan2(ey, ex) + np.pi) % (2.0 * np.pi) - np.pi)
    return d, dh


def match_lanes(s, xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(P,) int64 lane matched to each pose (nearest aligned lane centre containing it), -1 for none."""
    seg = s.lane_segments()
    if seg.shape[0] == 0 or xy.shape[0] == 0:
        return np.full(xy.shape[0], -1, dtype=np.int64)
    lane_of = np.repeat(np.arange(s.num_lanes), np.maximum(np.diff(s.lane_offsets) - 1, 0))
    lo_seg, hi_seg = np.minimum(seg[:, :2], seg[:, 2:4]), np.maximum(seg[:, :2], seg[:, 2:4])
    reach = seg[:, 4:5] + MATCH_MARGIN
    out = np.full(xy.shape[0], -1, dtype=np.int64)
    for a in range(0, xy.shape[0], MATCH_CHUNK):
        # Broad phase: only segments whose box, widened by their reach, meets this chunk's box.
        p = xy[a : a + MATCH_CHUNK]
        near = np.all((lo_seg - reach <= p.max(axis=0)) & (hi_seg + reach >= p.min(axis=0)), axis=1)
        idx = np.flatnonzero(near)
        if idx.size == 0:
            continue
        d, dh = _point_lane_distance(p, yaw[a : a + MATCH_CHUNK], seg[idx])
        d = np.where((dh < MATCH_HEADING) & (d <= seg[idx, 4] + MATCH_MARGIN), d, np.inf)
        k = d.argmin(axis=1)
        out[a : a + MATCH_CHUNK] = np.where(np.isfinite(d[np.arange(p.shape[0]), k]), lane_of[idx[k]], -1)
    return out


def _distance_to_lane(s, lane: int, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P,) distances from points to lane `lane`'s centre line and (P,) the nearest vertex index."""
    pts = s.lane(lane)
    if pts.shape[0] < 2:
        d = np.hypot(*(xy - pts[0]).T)
        return d, np.zeros(xy.shape[0], dtype=np.int64)
    seg = np.concatenate([pts[:-1], pts[1:]], axis=1)
    d, _ = _point_lane_distance(xy, np.zeros(xy.shape[0]), seg)
    k = d.argmin(axis=1)
    return d[np.arange(xy.shape[0]), k], k


def _chains(s, end: int, start_xy: np.ndarray) -> list[tuple[int, ...]]:
    """Predecessor chains from lane `end` back to a lane that covers `start_xy` (or to the graph's start)."""
    preds: list[list[int]] = [[] for _ in range(s.num_lanes)]
    for lane, succ in enumerate(s.lane_successors):
        for q in succ:
            if q >= 0 and lane not in preds[q]:
                preds[q].append(lane)
    out, stack = [], [(end,)]
    while stack and len(out) < MAX_CHAINS:
        chain = stack.pop()
        head = chain[0]
        d, k = _distance_to_lane(s, head, start_xy[None])
        covers = d[0] < 2.5 * s.lane_width[head] and k[0] > 0
        todo = [p for p in preds[head] if p not in chain]
        if covers or not todo or len(chain) >= MAX_DEPTH:
            out.append(chain)
        else:
            stack.extend((p, *chain) for p in todo)
    return out


def _straightest_successor(s, lane: int) -> int:
    """The successor of `lane` whose start heading is nearest its end heading, -1 if it has none."""
    pts = s.lane(lane)
    h = np.arctan2(*(pts[-1] - pts[-2])[::-1]) if pts.shape[0] > 1 else 0.0
    best, best_dh = -1, np.inf
    for q in s.lane_successors[lane]:
        qp = s.lane(q) if q >= 0 else None
        if qp is None or qp.shape[0] < 2:
            continue
        dh = abs((np.arctan2(*(qp[1] - qp[0])[::-1]) - h + np.pi) % (2.0 * np.pi) - np.pi)
        if dh < best_dh:
            best, best_dh = int(q), dh
    return best


def _best_chain(s, pose: np.ndarray, end: int) -> tuple[int, ...]:
    """The predecessor chain of lane `end` nearest the poses (mean distance, capped at 10 m)."""
    sample = pose[:: max(pose.shape[0] // 40, 1), :2]
    best, best_cost = (end,), np.inf
    for chain in _chains(s, end, pose[0, :2]):
        d = np.min([_distance_to_lane(s, lane, sample)[0] for lane in chain], axis=0)
        cost = np.minimum(d, 10.0).mean() + 0.01 * len(chain)
        if cost < best_cost:
            best, best_cost = chain, cost
    return best


def _polyline(s, lanes) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated centre lines of `lanes` (P, 2) and each point's ``[lane width, speed limit]`` (P, 2)."""
    parts, attrs = [], []
    for lane in lanes:
        pts = s.lane(lane)
        if parts and np.hypot(*(pts[0] - parts[-1][-1])) < 1e-6:
            pts = pts[1:]
        parts.append(pts)
        attrs.append(np.tile([s.lane_width[lane], s.lane_speed_limit[lane]], (pts.shape[0], 1)))
    return np.concatenate(parts), np.concatenate(attrs)


def _nearest_vertex(xy: np.ndarray, p: np.ndarray) -> int:
    return int(np.argmin(np.hypot(xy[:, 0] - p[0], xy[:, 1] - p[1])))


def _signed_offset(xy: np.ndarray, p: np.ndarray) -> float:
    """Signed distance of `p` from the polyline's nearest vertex along its normal, left > 0, m."""
    k = min(_nearest_vertex(xy, p), xy.shape[0] - 2)
    t = xy[k + 1] - xy[k]
    return float((t[0] * (p[1] - xy[k, 1]) - t[1] * (p[0] - xy[k, 0])) / max(np.hypot(*t), 1e-9))


def lane_route(s, log: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The lane-level route of one agent's log (see the module docstring), or None when no lane matches.

    Where the lane graph does not join the lanes the log drove (an on-ramp drawn without a successor
    link), the log is split at the first pose the later chain does not cover (farther than
    `COVER_LANES` lane widths) and the earlier part gets its own chain. The earlier piece runs on to
    its lane's end when that end lies beside the later piece (a ramp: the route shows where the ramp
    ends, not when the log merged), and a straight taper reaches the later lane `TAPER` m further on.

    Args:
        s: The `Scenario` (its lanes).
        log: (T, 5) the agent's log ``[x, y, heading, vx, vy]``.
        valid: (T,) bool, its valid steps.

    Returns:
        (xy (P, 2) polyline, metres; attrs (P, 3) ``[lane width m, speed limit m/s, shift m]`` of the
        lane each point belongs to, shift being that lane's lateral offset from the lane of the route's
        end where they lie side by side, left > 0), or None.
    """
    if s.num_lanes == 0 or not valid.any():
        return None
    pose = log[valid]
    matched = match_lanes(s, pose[:, :2], pose[:, 2])
    if not (matched >= 0).any():
        return None
    pieces, hi = [], pose.shape[0]
    seen = set(matched[matched >= 0].tolist())
    while hi > 0:
        hit = np.flatnonzero(matched[:hi] >= 0)
        if hit.size == 0:
            break
        chain = _best_chain(s, pose[:hi], int(matched[hit[-1]]))
        d = np.min([_distance_to_lane(s, lane, pose[:hi, :2])[0] for lane in chain], axis=0)
        far = np.flatnonzero(d > COVER_LANES * s.lane_width[chain[-1]])
        lo = int(far[-1]) + 1 if far.size else 0
        lo = min(lo, hit[-1])  # a piece holds at least its own end pose
        if pieces:  # an earlier piece goes on through the lanes the log drove next (a ramp's lanes)
            for _ in range(MAX_DEPTH):
                nxt = [q for q in s.lane_successors[chain[-1]] if q in seen and q not in chain]
                if not nxt:
                    break
                chain = (*chain, int(nxt[0]))
        pieces.insert(0, (chain, lo))
        hi = lo
    xys, attrs, fulls, beside = [], [], [], []
    for i, (chain, lo) in enumerate(pieces):
        xy, attr = _polyline(s, chain)
        fulls.append(xy)
        rs = arclength(xy)
        if i == 0:
            a = int(np.searchsorted(rs, rs[_nearest_vertex(xy, pose[lo, :2])] - BEHIND))
        else:  # start TAPER m past where the previous piece ends
            a = int(np.searchsorted(rs, rs[_nearest_vertex(xy, xys[-1][-1])] + TAPER))
        b = xy.shape[0]
        if i + 1 < len(pieces):
            # Run on to the lane's end (a ramp's end) when it lies beside the next piece, else split.
            b = _nearest_vertex(xy, pose[pieces[i + 1][1], :2]) + 1
            nxt = pieces[i + 1][0]
            gap = np.min([_distance_to_lane(s, lane, xy[-1:])[0][0] for lane in nxt])
            beside.append(gap < COVER_LANES * s.lane_width[nxt[0]])
            if rs[-1] - rs[b - 1] < MAX_RUN_ON and beside[-1]:
                b = xy.shape[0]
        xys.append(xy[a : max(b, a + 2)])
        attrs.append(attr[a : max(b, a + 2)])
    # Lateral shift of each piece's lane from the last piece's (left > 0) where the lanes lie side by side.
    shifts, acc = [np.zeros(xys[-1].shape[0])], 0.0
    for i in range(len(xys) - 2, -1, -1):
        acc += _signed_offset(fulls[i + 1], xys[i][-1]) if beside[i] else 0.0
        shifts.insert(0, np.full(xys[i].shape[0], acc))
    xy, attr, shift = np.concatenate(xys), np.concatenate(attrs), np.concatenate(shifts)
    rs = arclength(xy)
    beyond = rs[-1] - rs[_nearest_vertex(xy, pose[-1, :2])]
    lane = pieces[-1][0][-1]
    for _ in range(MAX_DEPTH):
        if beyond >= EXTENSION:
            break
        lane = _straightest_successor(s, lane)
        if lane < 0:
            break
        more, more_attr = _polyline(s, [lane])
        if np.hypot(*(more[0] - xy[-1])) < 1e-6:
            more, more_attr = more[1:], more_attr[1:]
        beyond += arclength(np.vstack([xy[-1:], more]))[-1]
        xy, attr = np.vstack([xy, more]), np.vstack([attr, more_attr])
        shift = np.concatenate([shift, np.zeros(more.shape[0])])
    if beyond < EXTENSION:
        h = np.arctan2(*(xy[-1] - xy[-2])[::-1])
        xy = np.vstack([xy, xy[-1] + (EXTENSION - beyond) * np.array([np.cos(h), np.sin(h)])])
        attr, shift = np.vstack([attr, attr[-1:]]), np.append(shift, 0.0)
    else:  # cut the route EXTENSION m past the log's last pose
        rs = arclength(xy)
        keep = int(np.searchsorted(rs, rs[-1] - (beyond - EXTENSION))) + 1
        xy, attr, shift = xy[:keep], attr[:keep], shift[:keep]
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > 1e-6])
    return xy[keep], np.column_stack([attr, shift])[keep]
