"""Uniform grids over a scene's plane, so that a search near a point costs what is near it.

A grid is `meta` (5,) float64 ``[x0, y0, cell, nx, ny]`` (origin and cell in metres, cells along x and
y) with CSR arrays: `start` (nx * ny + 1,) int64 offsets of each cell's run in `items`, cell
``ix * ny + iy``. Road edges are bucketed once, when a scene is compiled (`edge_grid`): each segment
in every cell its bounding box touches. `box_offroad_distance_grid` then visits the cells ring by
ring around a box and stops as soon as no unvisited edge can be any corner's nearest, so it returns
exactly `box_offroad_distance` over all edges for the cost of the edges nearby.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alpagym_env.sim.geometry import (
    NO_CORNER_RECORDS,
    NO_EDGE_DISTANCE,
    bbox_farther,
    box_corner_points,
    corners_nearer,
    corners_offroad,
    corners_reach,
    norm,
)

G_X0, G_Y0, G_CELL, G_NX, G_NY = range(5)
EDGE_CELL = 10.0  # m: the road-edge grid's cell, widened so that a map has at most MAX_EDGE_CELLS
MAX_EDGE_CELLS = 4096


def edge_cell_size(seg: np.ndarray, cell: float = EDGE_CELL, max_cells: int = MAX_EDGE_CELLS) -> float:
    """Cell size (m) of a grid over segments `seg` (E, 4): `cell`, or larger where the map's extent
    would need more than `max_cells` cells."""
    if seg.shape[0] == 0:
        return cell
    w, h = float(np.ptp(seg[:, 0::2])), float(np.ptp(seg[:, 1::2]))
    cell = max(cell, math.sqrt(w * h / max_cells))
    while (int(w / cell) + 1) * (int(h / cell) + 1) > max_cells:
        cell *= 1.05
    return cell


@njit(cache=True)
def edge_grid(seg, cell):
    """Buckets segments into the cells their bounding boxes touch.

    Args:
        seg: (E, 4) segments ``[x0, y0, x1, y1]``, metres.
        cell: Cell size, m.

    Returns:
        (meta (5,), start (nx * ny + 1,) int64, items (I,) int64 segment indices); one empty cell when
        E == 0.
    """
    meta = np.zeros(5)
    meta[G_CELL], meta[G_NX], meta[G_NY] = cell, 1.0, 1.0
    if seg.shape[0] == 0:
        return meta, np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64)
    x0 = min(seg[:, 0].min(), seg[:, 2].min())
    y0 = min(seg[:, 1].min(), seg[:, 3].min())
    nx = int((max(seg[:, 0].max(), seg[:, 2].max()) - x0) / cell) + 1
    ny = int((max(seg[:, 1].max(), seg[:, 3].max()) - y0) / cell) + 1
    meta[G_X0], meta[G_Y0], meta[G_NX], meta[G_NY] = x0, y0, nx, ny
    start = np.zeros(nx * ny + 1, dtype=np.int64)
    items = np.zeros(0, dtype=np.int64)
    for pass_ in range(2):
        fill = start[:-1].copy()
        for k in range(seg.shape[0]):
            ix0 = int((min(seg[k, 0], seg[k, 2]) - x0) / cell)
            ix1 = int((max(seg[k, 0], seg[k, 2]) - x0) / cell)
            iy0 = int((min(seg[k, 1], seg[k, 3]) - y0) / cell)
            iy1 = int((max(seg[k, 1], seg[k, 3]) - y0) / cell)
            for ix in range(ix0, ix1 + 1):
                for iy in range(iy0, iy1 + 1):
                    c = ix * ny + iy
                    if pass_:
                        items[fill[c]] = k
                        fill[c] += 1
                    else:
                        start[c + 1] += 1
        if not pass_:
            start = np.cumsum(start)
            items = np.empty(start[-1], dtype=np.int64)
    return meta, start, items


@njit(cache=True)
def _scan_cell(rec, pts, x, y, radius, seg, meta, start, items, jx, jy):
    """Updates the corner records with cell (jx, jy)'s segments, unless the whole cell is too far."""
    x0 = meta[G_X0] + jx * meta[G_CELL]
    y0 = meta[G_Y0] + jy * meta[G_CELL]
    if bbox_farther(x, y, x0, y0, x0 + meta[G_CELL], y0 + meta[G_CELL], corners_reach(rec) + radius):
        return rec
    c = jx * int(meta[G_NY]) + jy
    for m in range(start[c], start[c + 1]):
        k = items[m]
        x0, y0, x1, y1 = seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]
        if not bbox_farther(x, y, x0, y0, x1, y1, corners_reach(rec) + radius):
            rec = corners_nearer(rec, pts, x0, y0, x1, y1)
    return rec


@njit(cache=True)
def box_offroad_distance_grid(x, y, yaw, length, width, seg, meta, start, items):
    """`box_offroad_distance` over every segment of `seg`, visiting only the grid cells that can matter.

    Rings of cells around the box centre's cell are visited in turn (a segment met twice leaves the
    records as they were). After ring k every unvisited segment lies at least k cells from the centre,
    so at least k * cell - circumradius from any corner: once that exceeds every corner's nearest
    distance the answer is final.

    Args:
        x, y, yaw, length, width: The box, metres and radians.
        seg: (E, 4) the segments the grid was built from (`edge_grid`).
        meta, start, items: The grid (`start` and `items` may be longer than it needs: rows of a
            batch buffer).

    Returns:
        Metres, > 0 when some corner is off the drivable area; -1e9 when there are no segments.
    """
    cell, nx, ny = meta[G_CELL], int(meta[G_NX]), int(meta[G_NY])
    if start[nx * ny] == 0:
        return NO_EDGE_DISTANCE
    ix = int(math.floor((x - meta[G_X0]) / cell))
    iy = int(math.floor((y - meta[G_Y0]) / cell))
    radius = 0.5 * norm(length, width)
    pts = box_corner_points(x, y, yaw, length, width)
    rec = NO_CORNER_RECORDS
    last = max(max(ix, nx - 1 - ix), max(iy, ny - 1 - iy))  # the ring that covers the whole grid
    k = max(max(-ix, ix - nx + 1), max(-iy, iy - ny + 1), 0)  # the first ring with a cell of the grid
    while True:
        for jx in range(max(ix - k, 0), min(ix + k, nx - 1) + 1):
            if abs(jx - ix) == k:
                for jy in range(max(iy - k, 0), min(iy + k, ny - 1) + 1):
                    rec = _scan_cell(rec, pts, x, y, radius, seg, meta, start, items, jx, jy)
            else:
                if 0 <= iy - k < ny:
                    rec = _scan_cell(rec, pts, x, y, radius, seg, meta, start, items, jx, iy - k)
                if k > 0 and 0 <= iy + k < ny:
                    rec = _scan_cell(rec, pts, x, y, radius, seg, meta, start, items, jx, iy + k)
        if k >= last or k * cell - radius > corners_reach(rec):
            break
        k += 1
    return corners_offroad(rec)
