"""Trajectory actions: their layout, and the reference path and progress a controller tracks.

An action holds H future poses of the ego at `TrajectoryConfig.spacing`, 2 spacing, ... seconds, in the
ego frame when the action is taken (+x along the heading, +y left, origin at the box centre), flattened
as ``[x / x_scale, y / y_scale, heading / pi]`` per pose (``heading="derived"``: ``[x / x_scale,
y / y_scale]``, the heading being the direction of the chord through the neighbouring poses).

Kernels here work on a `knots` array, one row per pose (row 0: pose 0, where the plan puts the ego now)
with the columns K_X, K_Y (m), K_PSI (rad), K_S (cumulative chord length, m), K_M (progress rate, m/s)
and K_COS, K_SIN (of K_PSI):

- the path is a geometric cubic Hermite spline through the poses with each pose's heading as its tangent,
  parametrised by chord length, so it never reverses (`curvature`);
- the progress along it in time is a monotone cubic (Fritsch-Carlson PCHIP) through the cumulative chord
  lengths at the pose times (`pchip_slopes`, `progress`), so a plan never asks to drive backwards;
- pose 0 is extrapolated back from pose 1 over the plan's own speed, deceleration and curvature
  (`start_pose`), not pinned to the ego: a tracking error then stays an error the controller closes
  smoothly, instead of bending the path within the first spacing (which destabilises re-planning at
  fine spacings).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

K_X, K_Y, K_PSI, K_S, K_M, K_COS, K_SIN = range(7)
NUM_KNOT_COLS = 7


@njit(cache=True)
def decode(action, h, with_heading, x_scale, y_scale, knots):
    """Fills pose rows 1..H of `knots` with positions (m) and headings (rad) from a normalised action."""
    stride = 3 if with_heading else 2
    for j in range(1, h + 1):
        knots[j, K_X] = action[stride * (j - 1)] * x_scale
        knots[j, K_Y] = action[stride * (j - 1) + 1] * y_scale
        knots[j, K_PSI] = action[stride * (j - 1) + 2] * math.pi if with_heading else 0.0
    if not with_heading:  # chord through the neighbours (one-sided at the ends); kept if it has no length
        for j in range(1, h + 1):
            lo, hi = max(j - 1, 1), min(j + 1, h)
            dx, dy = knots[hi, K_X] - knots[lo, K_X], knots[hi, K_Y] - knots[lo, K_Y]
            knots[j, K_PSI] = math.atan2(dy, dx) if dx * dx + dy * dy > 1e-12 else knots[j - 1, K_PSI]


@njit(cache=True)
def chords(knots, j0, h):
    """Cumulative chord length from pose j0 (0 there) to each pose up to h (m), and the headings' cos, sin."""
    knots[j0, K_S] = 0.0
    for j in range(j0, h + 1):
        knots[j, K_COS], knots[j, K_SIN] = math.cos(knots[j, K_PSI]), math.sin(knots[j, K_PSI])
        if j > j0:
            dx, dy = knots[j, K_X] - knots[j - 1, K_X], knots[j, K_Y] - knots[j - 1, K_Y]
            knots[j, K_S] = knots[j - 1, K_S] + math.sqrt(dx * dx + dy * dy)


@njit(cache=True)
def pchip_slopes(knots, j0, h, spacing):
    """Monotone (Fritsch-Carlson) slopes of the cumulative chord length at poses j0..h, m/s."""
    for j in range(j0, h + 1):
        if h - j0 == 1:
            knots[j, K_M] = (knots[h, K_S] - knots[j0, K_S]) / spacing
        elif j == j0 or j == h:
            i = j0 if j == j0 else h - 1
            o = j0 + 1 if j == j0 else h - 2
            d0 = (knots[i + 1, K_S] - knots[i, K_S]) / spacing
            d1 = (knots[o + 1, K_S] - knots[o, K_S]) / spacing
            knots[j, K_M] = min(max(0.5 * (3.0 * d0 - d1), 0.0), 3.0 * d0)
        else:
            d0 = (knots[j, K_S] - knots[j - 1, K_S]) / spacing
            d1 = (knots[j + 1, K_S] - knots[j, K_S]) / spacing
            knots[j, K_M] = 0.0 if d0 * d1 <= 0.0 else 2.0 / (1.0 / d0 + 1.0 / d1)


@njit(cache=True)
def curvature(knots, j0, h, s):
    """Signed curvature (1/m) of the Hermite path through poses j0..h (after `chords` from j0) at chord
    length s, and the segment it lies on (a hint for the next, larger s)."""
    j = j0
    while j < h - 1 and knots[j + 1, K_S] <= s:
        j += 1
    c = knots[j + 1, K_S] - knots[j, K_S]
    if c < 1e-3:
        return 0.0, j
    u = min(max((s - knots[j, K_S]) / c, 0.0), 1.0)
    t0x, t0y = c * knots[j, K_COS], c * knots[j, K_SIN]
    t1x, t1y = c * knots[j + 1, K_COS], c * knots[j + 1, K_SIN]
    dpx, dpy = knots[j + 1, K_X] - knots[j, K_X], knots[j + 1, K_Y] - knots[j, K_Y]
    a, b = 6 * u - 6 * u * u, 3 * u * u
    x1 = a * dpx + (b - 4 * u + 1) * t0x + (b - 2 * u) * t1x
    y1 = a * dpy + (b - 4 * u + 1) * t0y + (b - 2 * u) * t1y
    x2 = (6 - 12 * u) * dpx + (6 * u - 4) * t0x + (6 * u - 2) * t1x
    y2 = (6 - 12 * u) * dpy + (6 * u - 4) * t0y + (6 * u - 2) * t1y
    n2 = x1 * x1 + y1 * y1
    if n2 < 1e-6 * c * c:
        return 0.0, j
    return (x1 * y2 - y1 * x2) / (n2 * math.sqrt(n2)), j


@njit(cache=True)
def start_pose(knots, h, spacing):
    """Fills row 0 with pose 0, where the plan has the ego now: back from pose 1 along the path's
    curvature there, by the plan's speed and acceleration at pose 1 (the ego itself when H = 1)."""
    if h == 1:
        knots[0, K_X] = knots[0, K_Y] = knots[0, K_PSI] = 0.0
        return
    chords(knots, 1, h)
    pchip_slopes(knots, 1, h, spacing)
    s2, m1, m2 = knots[2, K_S], knots[1, K_M] * spacing, knots[2, K_M] * spacing
    acc = 6.0 * s2 - 4.0 * m1 - 2.0 * m2  # s'' at pose 1 times spacing^2
    back = min(max(m1 - 0.5 * acc, 0.0), 3.0 * s2)
    kappa, _ = curvature(knots, 1, h, 0.0)
    turn = kappa * back
    chord = back if abs(turn) < 1e-6 else 2.0 * math.sin(0.5 * turn) / kappa
    mid = knots[1, K_PSI] - 0.5 * turn
    knots[0, K_X] = knots[1, K_X] - chord * math.cos(mid)
    knots[0, K_Y] = knots[1, K_Y] - chord * math.sin(mid)
    knots[0, K_PSI] = knots[1, K_PSI] - turn


@njit(cache=True)
def progress(knots, h, m, spacing, k):
    """(s m, s' m/s, s'' m/s^2) of the progress cubic at step k (pose j at step j * m), poses 0..h."""
    j = min(k // m, h - 1)
    u = (k - j * m) / m
    s0, s1, m0, m1 = knots[j, K_S], knots[j + 1, K_S], knots[j, K_M] * spacing, knots[j + 1, K_M] * spacing
    u2, u3 = u * u, u * u * u
    s = (2 * u3 - 3 * u2 + 1) * s0 + (u3 - 2 * u2 + u) * m0 + (-2 * u3 + 3 * u2) * s1 + (u3 - u2) * m1
    ds = (6 * u2 - 6 * u) * s0 + (3 * u2 - 4 * u + 1) * m0 + (-6 * u2 + 6 * u) * s1 + (3 * u2 - 2 * u) * m1
    dds = (12 * u - 6) * s0 + (6 * u - 4) * m0 + (-12 * u + 6) * s1 + (6 * u - 2) * m1
    return s, max(ds / spacing, 0.0), dds / (spacing * spacing)


def encode_poses(poses: np.ndarray, trajectory) -> np.ndarray:
    """Ego-frame poses (..., H, 3) [x m, y m, heading rad] -> normalised actions (..., A) float32, clipped
    to [-1, 1] (no heading column for ``heading="derived"``)."""
    poses = np.asarray(poses, dtype=np.float64)
    scale = np.array([trajectory.x_scale, trajectory.y_scale, np.pi])
    cols = 2 if trajectory.heading == "derived" else 3
    out = np.clip(poses[..., :cols] / scale[:cols], -1.0, 1.0)
    return out.reshape(*poses.shape[:-2], -1).astype(np.float32)


def decode_poses(action: np.ndarray, trajectory) -> np.ndarray:
    """Normalised actions (..., A) -> ego-frame poses (..., H, 3); derived headings are left at 0."""
    cols = 2 if trajectory.heading == "derived" else 3
    a = np.asarray(action, dtype=np.float64).reshape(*np.shape(action)[:-1], trajectory.num_poses, cols)
    out = np.zeros((*a.shape[:-1], 3))
    out[..., :cols] = a * np.array([trajectory.x_scale, trajectory.y_scale, np.pi])[:cols]
    return out
