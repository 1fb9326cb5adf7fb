"""Pure Numba raster kernels drawing into an (H, W, 3) uint8 image.

Shapes are given in continuous pixel coordinates: ``u`` runs along columns (right) and ``v`` along rows
(down). Pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)`` and is painted when its centre
``(col + 0.5, row + 0.5)`` lies inside the shape. Every kernel clips to the image, so a shape may lie
partly or wholly outside it, and skips shapes with NaN or inf coordinates. Colours are (3,) uint8 RGB
arrays. Kernels paint opaque colours (no blending) and allocate at most a few scalars' scratch per call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Lines thinner than this (in pixels, half width) could slip between pixel centres and break up.
MIN_HALF_WIDTH_PX = 0.6


@njit(cache=True)
def _fill_span(img, row, u_left, u_right, color):
    """Paints the pixels of `row` whose centres lie in [u_left, u_right]."""
    w = img.shape[1]
    c0 = int(np.ceil(max(u_left, -1.0) - 0.5))
    c1 = int(np.floor(min(u_right, w + 1.0) - 0.5))
    c0 = max(c0, 0)
    c1 = min(c1, w - 1)
    for c in range(c0, c1 + 1):
        img[row, c, 0] = color[0]
        img[row, c, 1] = color[1]
        img[row, c, 2] = color[2]


@njit(cache=True)
def fill_convex_polygon(img, pu, pv, n, color):
    """Fills a convex polygon by scanlines.

    Args:
        img: (H, W, 3) uint8 image, written in place.
        pu: (>= n,) float64 vertex columns, pixels, in order (either winding).
        pv: (>= n,) float64 vertex rows, pixels.
        n: Number of vertices to use (>= 3; fewer draws nothing).
        color: (3,) uint8 RGB.
    """
    if n < 3:
        return
    h, w = img.shape[0], img.shape[1]
    umin = umax = pu[0]
    vmin = vmax = pv[0]
    for i in range(1, n):
        umin = min(umin, pu[i])
        umax = max(umax, pu[i])
        vmin = min(vmin, pv[i])
        vmax = max(vmax, pv[i])
    # Written so that NaN fails the test and the polygon is skipped.
    if not (umax >= 0.0 and umin <= w and vmax >= 0.0 and vmin <= h):
        return
    r0 = max(int(np.ceil(max(vmin, -1.0) - 0.5)), 0)
    r1 = min(int(np.floor(min(vmax, h + 1.0) - 0.5)), h - 1)
    for r in range(r0, r1 + 1):
        yc = r + 0.5
        left = np.inf
        right = -np.inf
        for i in range(n):
            j = i + 1 if i + 1 < n else 0
            v0, v1 = pv[i], pv[j]
            if (v0 <= yc <= v1) or (v1 <= yc <= v0):
                if v0 == v1:
                    x0, x1 = pu[i], pu[j]
                    left = min(left, x0, x1)
                    right = max(right, x0, x1)
                else:
                    x = pu[i] + (yc - v0) * (pu[j] - pu[i]) / (v1 - v0)
                    left = min(left, x)
                    right = max(right, x)
        if left <= right:
            _fill_span(img, r, left, right, color)


@njit(cache=True)
def fill_disc(img, cu, cv, radius, color):
    """Fills a disc of `radius` pixels centred on (cu, cv) pixels."""
    h, w = img.shape[0], img.shape[1]
    inside = cu + radius >= 0.0 and cu - radius <= w and cv + radius >= 0.0 and cv - radius <= h
    if not (radius > 0.0 and inside):  # written so that NaN skips the disc
        return
    r0 = max(int(np.ceil(cv - radius - 0.5)), 0)
    r1 = min(int(np.floor(cv + radius - 0.5)), h - 1)
    rr = radius * radius
    for r in range(r0, r1 + 1):
        dy = r + 0.5 - cv
        d2 = rr - dy * dy
        if d2 >= 0.0:
            dx = np.sqrt(d2)
            _fill_span(img, r, cu - dx, cu + dx, color)


@njit(cache=True)
def fill_discs(img, cu, cv, radius, color):
    """Fills discs: cu, cv, radius (M,) float64 pixels, one colour."""
    for i in range(cu.shape[0]):
        fill_disc(img, cu[i], cv[i], radius[i], color)


@njit(cache=True)
def draw_segment(img, u0, v0, u1, v1, half_width, color, su, sv):
    """Thick line from (u0, v0) to (u1, v1) pixels with butt ends, for loops that reuse scratch.

    Args:
        img: (H, W, 3) uint8 image, written in place.
        u0, v0, u1, v1: End points, pixels.
        half_width: Half the line width, pixels (at least 0.6 is drawn); a zero-length segment is a disc.
        color: (3,) uint8 RGB.
        su, sv: (4,) float64 scratch arrays.
    """
    hw = max(half_width, MIN_HALF_WIDTH_PX)
    du, dv = u1 - u0, v1 - v0
    length = np.sqrt(du * du + dv * dv)
    if not length > 1e-9:
        fill_disc(img, u0, v0, hw, color)
        return
    nu, nv = -dv / length * hw, du / length * hw
    su[0], sv[0] = u0 + nu, v0 + nv
    su[1], sv[1] = u1 + nu, v1 + nv
    su[2], sv[2] = u1 - nu, v1 - nv
    su[3], sv[3] = u0 - nu, v0 - nv
    fill_convex_polygon(img, su, sv, 4, color)


@njit(cache=True)
def draw_line(img, u0, v0, u1, v1, half_width, color):
    """Thick line from (u0, v0) to (u1, v1) with butt ends; half_width in pixels (at least 0.6)."""
    su = np.empty(4)
    sv = np.empty(4)
    draw_segment(img, u0, v0, u1, v1, half_width, color, su, sv)


@njit(cache=True)
def _polyline(img, pu, pv, start, end, half_width, color, round_joins, dash, gap, su, sv):
    if end - start == 1:
        if round_joins:
            fill_disc(img, pu[start], pv[start], max(half_width, MIN_HALF_WIDTH_PX), color)
        return
    if dash <= 0.0:
        for i in range(start, end - 1):
            draw_segment(img, pu[i], pv[i], pu[i + 1], pv[i + 1], half_width, color, su, sv)
            if round_joins and i > start:
                fill_disc(img, pu[i], pv[i], max(half_width, MIN_HALF_WIDTH_PX), color)
        return
    period = dash + gap
    s = 0.0  # arc length at the start of the current segment, pixels; the dash phase runs on across joins
    for i in range(start, end - 1):
        du, dv = pu[i + 1] - pu[i], pv[i + 1] - pv[i]
        length = np.sqrt(du * du + dv * dv)
        if not length > 1e-9:
            continue
        k = np.floor(s / period)
        while k * period < s + length:
            a = max(k * period, s)
            b = min(k * period + dash, s + length)
            if b > a:
                ua, va = pu[i] + (a - s) / length * du, pv[i] + (a - s) / length * dv
                ub, vb = pu[i] + (b - s) / length * du, pv[i] + (b - s) / length * dv
                draw_segment(img, ua, va, ub, vb, half_width, color, su, sv)
            k += 1.0
        s += length


@njit(cache=True)
def draw_polyline(img, pu, pv, half_width, color, round_joins=True, dash=0.0, gap=0.0):
    """Thick polyline through (pu[i], pv[i]) pixels.

    Args:
        img: (H, W, 3) uint8 image, written in place.
        pu, pv: (P,) float64 vertex columns and rows, pixels.
        half_width: Half the line width, pixels (at least 0.6 is drawn).
        color: (3,) uint8 RGB.
        round_joins: Fill a disc at each interior vertex so bends have no notches.
        dash, gap: Dash and gap lengths in pixels; dash <= 0 draws a solid line.
    """
    su = np.empty(4)
    sv = np.empty(4)
    if pu.shape[0] > 0:
        _polyline(img, pu, pv, 0, pu.shape[0], half_width, color, round_joins, dash, gap, su, sv)


@njit(cache=True)
def draw_polylines(img, pu, pv, offsets, half_width, color, round_joins, dash, gap):
    """Many polylines stored flat with CSR offsets (polyline i is points offsets[i]:offsets[i + 1]).

    Args:
        img: (H, W, 3) uint8 image, written in place.
        pu, pv: (P,) float64 vertex columns and rows, pixels.
        offsets: (L + 1,) int64 CSR offsets.
        half_width: (L,) float64 half width of each polyline, pixels.
        color: (3,) uint8 RGB.
        round_joins: Fill discs at interior vertices.
        dash, gap: Dash and gap lengths in pixels; dash <= 0 draws solid lines.
    """
    su = np.empty(4)
    sv = np.empty(4)
    for i in range(offsets.shape[0] - 1):
        a, b = offsets[i], offsets[i + 1]
        if b > a:
            _polyline(img, pu, pv, a, b, half_width[i], color, round_joins, dash, gap, su, sv)


@njit(cache=True)
def fill_box(img, cu, cv, cos_yaw, sin_yaw, half_length, half_width, color, su, sv):
    """Fills an oriented box in pixel coordinates.

    Args:
        img: (H, W, 3) uint8 image, written in place.
        cu, cv: Box centre, pixels.
        cos_yaw, sin_yaw: Heading in the image plane (rows point down, so a world heading `yaw`
            counter-clockwise from +x gives ``cos_yaw = cos(yaw)``, ``sin_yaw = -sin(yaw)``).
        half_length, half_width: Half extents along and across the heading, pixels.
        color: (3,) uint8 RGB.
        su, sv: (4,) float64 scratch arrays.
    """
    fu, fv = cos_yaw * half_length, sin_yaw * half_length
    lu, lv = -sin_yaw * half_width, cos_yaw * half_width
    su[0], sv[0] = cu + fu + lu, cv + fv + lv
    su[1], sv[1] = cu + fu - lu, cv + fv - lv
    su[2], sv[2] = cu - fu - lu, cv - fv - lv
    su[3], sv[3] = cu - fu + lu, cv - fv + lv
    fill_convex_polygon(img, su, sv, 4, color)
