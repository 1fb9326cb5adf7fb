"""The road-edge grid gives exactly the full scan's off-road distance, near the road and far from it."""

import numpy as np
import pytest

from alpagym_env.scenarios import FAMILIES, generate
from alpagym_env.sim.geometry import NO_EDGE_DISTANCE, box_offroad_distance
from alpagym_env.sim.grid import (
    G_NX,
    G_NY,
    MAX_EDGE_CELLS,
    box_offroad_distance_grid,
    edge_cell_size,
    edge_grid,
)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_grid_equals_full_scan(family):
    seg = generate(family, 5).edge_segments()
    meta, start, items = edge_grid(seg, edge_cell_size(seg))
    assert int(meta[G_NX]) * int(meta[G_NY]) <= MAX_EDGE_CELLS
    rng = np.random.default_rng(0)
    lo, hi = seg[:, :2].min(0) - 100.0, seg[:, :2].max(0) + 100.0
    # Boxes on the road (at segment ends), near it, far from it and outside the map's extent.
    ends = seg[rng.integers(0, seg.shape[0], 300), :2]
    boxes = np.concatenate(
        [ends, ends + rng.normal(0.0, 5.0, ends.shape), rng.uniform(lo, hi, (300, 2)), [[1e4, -1e4]]]
    )
    for x, y in boxes:
        yaw = rng.uniform(-np.pi, np.pi)
        full = box_offroad_distance(x, y, yaw, 4.6, 1.9, seg, seg.shape[0])
        assert box_offroad_distance_grid(x, y, yaw, 4.6, 1.9, seg, meta, start, items) == full


def test_grid_rows_of_a_batch_buffer_and_no_edges():
    seg = generate("urban", 1).edge_segments()
    meta, start, items = edge_grid(seg, 7.0)
    longer = np.concatenate([start, np.full(9, 10**6)]), np.concatenate([items, np.full(9, 10**6)])
    x, y = seg[3, 0] + 1.0, seg[3, 1] - 2.0
    assert box_offroad_distance_grid(x, y, 0.3, 4.6, 1.9, seg, meta, *longer) == box_offroad_distance(
        x, y, 0.3, 4.6, 1.9, seg, seg.shape[0]
    )
    empty = np.zeros((0, 4))
    assert (
        box_offroad_distance_grid(0.0, 0.0, 0.0, 4.6, 1.9, empty, *edge_grid(empty, 10.0)) == NO_EDGE_DISTANCE
    )
