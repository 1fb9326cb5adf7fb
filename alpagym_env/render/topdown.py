"""Top-down (bird's-eye) renderer: a static road layer rasterised once per scenario, agents per frame.

The static layer is a world-aligned bitmap: column ``c`` spans world ``x0 + [c, c + 1) * mpp`` and row
``r`` spans ``y_top - [r, r + 1) * mpp``, so world +y points up in the image. A frame is a crop of it
(a window around the ego, or the whole scene) with stop lines and agents drawn on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from alpagym_env.render import raster
from alpagym_env.scenarios.schema import Scenario

Color = tuple[int, int, int]

# Line and margin sizes, metres; raster kernels widen anything thinner than about a pixel.
LANE_LINE_HALF_WIDTH_M = 0.075
LANE_DASH_M, LANE_GAP_M = 3.0, 3.0
EDGE_HALF_WIDTH_M = 0.15
ROUTE_HALF_WIDTH_M = 0.4
STOP_LINE_HALF_WIDTH_M = 0.3
HIGHLIGHT_HALO_M = 0.5
SCENE_MARGIN_M = 5.0


@dataclass(frozen=True)
class RenderConfig:
    """Top-down renderer settings.

    Attributes:
        width, height: Frame size, pixels.
        metres_per_pixel: Resolution of the ego-centred view (0.25 m/px at 400 px spans 100 m). The
            whole-scene view picks its own resolution so the scene fits the frame.
        ego_centred: True: north-up window centred on the ego. False: the whole scene, fitted.
        max_static_pixels: Cap on the static bitmap of the ego-centred view (3 bytes a pixel). A larger
            scene keeps only the region around the ego's route; if even that is too big, `set_scenario`
            raises and asks for a coarser `metres_per_pixel`.
        background: Off-road area.
        road: Drivable area (lane polygons).
        lane_line: Dashed lane-centre lines.
        road_edge: Road-edge polylines.
        route: Ego route polyline.
        ego: The ego's box.
        vehicle, pedestrian, cyclist: Other agents' boxes by `schema.AGENT_*` type.
        heading: Triangle at the front of each box large enough to carry one.
        light_unknown, light_green, light_yellow, light_red: Stop lines by their light's state.
        collision: Halo around highlighted agents (e.g. the ones in collision).

    All colours are RGB tuples of ints in 0..255.
    """

    width: int = 400
    height: int = 400
    metres_per_pixel: float = 0.25
    ego_centred: bool = True
    max_static_pixels: int = 40_000_000
    background: Color = (35, 35, 40)
    road: Color = (85, 85, 92)
    lane_line: Color = (150, 150, 155)
    road_edge: Color = (225, 225, 225)
    route: Color = (55, 95, 170)
    ego: Color = (255, 140, 0)
    vehicle: Color = (120, 200, 255)
    pedestrian: Color = (255, 105, 180)
    cyclist: Color = (175, 120, 255)
    heading: Color = (20, 20, 20)
    light_unknown: Color = (150, 150, 200)
    light_green: Color = (0, 210, 0)
    light_yellow: Color = (255, 215, 0)
    light_red: Color = (220, 0, 0)
    collision: Color = (255, 40, 40)

    def __post_init__(self) -> None:
        w, h = self.width, self.height
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            raise ValueError(f"RenderConfig: width and height must be positive ints, got {w}x{h}")
        if not (math.isfinite(self.metres_per_pixel) and self.metres_per_pixel > 0):
            raise ValueError(f"RenderConfig: metres_per_pixel must be > 0, got {self.metres_per_pixel}")
        if self.max_static_pixels < self.width * self.height:
            raise ValueError("RenderConfig: max_static_pixels must be at least width * height")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "Color" and not (len(value) == 3 and all(0 <= int(c) <= 255 for c in value)):
                raise ValueError(f"RenderConfig: colour '{f.name}' must be RGB ints in 0..255, got {value}")


def _rgb(*colors: Color) -> np.ndarray:
    return np.array(colors, dtype=np.uint8).reshape(len(colors), 3)


class TopDownRenderer:
    """Renders frames of one scenario at a time; call `set_scenario` once per scenario, then `frame`."""

    def __init__(self, config: RenderConfig = RenderConfig()) -> None:  # noqa: B008 (frozen, immutable)
        self.config = c = config
        self._background = _rgb(c.background)[0]
        self._background_frame = _filled((c.height, c.width), self._background)
        # Rows indexed by schema.LIGHT_* (unknown, green, yellow, red) and schema.AGENT_* (vehicle,
        # pedestrian, cyclist) respectively.
        self._light_palette = _rgb(c.light_unknown, c.light_green, c.light_yellow, c.light_red)
        self._agent_palette = _rgb(c.vehicle, c.pedestrian, c.cyclist)
        self._marks = _rgb(c.ego, c.heading, c.collision)
        self._static: np.ndarray | None = None
        self._origin = np.zeros(2)  # world x of column 0's left side, world y of row 0's top side
        self._mpp = c.metres_per_pixel
        self._window = (0, 0)  # (row, col) of the last frame's top-left pixel in the static bitmap
        self._stop_lines = np.zeros((0, 4))
        self._stop_light = np.zeros(0, dtype=np.int64)

    @property
    def metres_per_pixel(self) -> float:
        """Resolution of the current scenario's frames (the configured one unless fitting the scene)."""
        return self._mpp

    def set_scenario(self, scenario: Scenario) -> None:
        """Rasterises the static layer of `scenario` once and keeps its stop lines for `frame`.

        The layer holds the drivable area (each lane segment as a quad of the lane's width, round joins
        so curves have no gaps), dashed lane-centre lines, road edges and the ego route, in a
        world-aligned bitmap covering the scene bounds plus a margin.
        """
        c = self.config
        lo, hi = _scene_bounds(scenario)
        if c.ego_centred:
            mpp = c.metres_per_pixel
            lo, hi = lo - SCENE_MARGIN_M, hi + SCENE_MARGIN_M
            if _num_pixels(lo, hi, mpp) > c.max_static_pixels:
                ego = scenario.traj[scenario.ego_index]
                pts = np.concatenate([scenario.route_xy, ego[scenario.valid[scenario.ego_index], :2]])
                view = max(c.width, c.height) * mpp
                lo = np.maximum(lo, pts.min(0) - view)
                hi = np.minimum(hi, pts.max(0) + view)
                if _num_pixels(lo, hi, mpp) > c.max_static_pixels:
                    raise ValueError(
                        f"scenario {scenario.scenario_id}: the static layer around the ego route would need "
                        f"{_num_pixels(lo, hi, mpp)} pixels (> max_static_pixels={c.max_static_pixels}); "
                        "use a larger metres_per_pixel"
                    )
            w_px, h_px = (int(math.ceil(s / mpp)) for s in hi - lo)
            origin = np.array([lo[0], lo[1] + h_px * mpp])
        else:
            lo, hi = lo - SCENE_MARGIN_M, hi + SCENE_MARGIN_M
            mpp = max((hi[0] - lo[0]) / c.width, (hi[1] - lo[1]) / c.height)
            centre = (lo + hi) / 2
            w_px, h_px = c.width, c.height
            origin = np.array([centre[0] - w_px * mpp / 2, centre[1] + h_px * mpp / 2])

        self._mpp, self._origin = float(mpp), origin
        img = _filled((h_px, w_px), self._background)
        s = scenario
        lu, lv = self._to_px(s.lane_xy)
        half = s.lane_width / (2 * mpp)
        road = _rgb(c.road)[0]
        raster.draw_polylines(img, lu, lv, s.lane_offsets, half, road, True, 0.0, 0.0)
        eu, ev, er = _lane_end_joins(s, lu, lv, half)
        raster.fill_discs(img, eu, ev, er, road)
        thin = np.full(s.num_lanes, LANE_LINE_HALF_WIDTH_M / mpp)
        dash, gap = LANE_DASH_M / mpp, LANE_GAP_M / mpp
        raster.draw_polylines(img, lu, lv, s.lane_offsets, thin, _rgb(c.lane_line)[0], False, dash, gap)
        eu, ev = self._to_px(s.edge_xy)
        edge_half = np.full(len(s.edge_offsets) - 1, EDGE_HALF_WIDTH_M / mpp)
        raster.draw_polylines(img, eu, ev, s.edge_offsets, edge_half, _rgb(c.road_edge)[0], True, 0.0, 0.0)
        ru, rv = self._to_px(s.route_xy)
        raster.draw_polyline(img, ru, rv, ROUTE_HALF_WIDTH_M / mpp, _rgb(c.route)[0], True, 0.0, 0.0)

        self._static = img
        self._stop_lines = np.ascontiguousarray(s.stop_lines, dtype=np.float64)
        self._stop_light = np.ascontiguousarray(s.stop_light, dtype=np.int64)
        self._window = (0, 0)

    def frame(
        self, xy, yaw, length, width, valid, agent_type, ego_slot, light_state, highlight=None
    ) -> np.ndarray:
        """Renders one frame.

        Args:
            xy: (N, 2) float64 agent centres, world metres, in the engine's slot order.
            yaw: (N,) float64 headings, radians counter-clockwise from +x.
            length, width: (N,) float64 box sizes, metres.
            valid: (N,) bool; invalid slots are not drawn.
            agent_type: (N,) int8 `schema.AGENT_*`.
            ego_slot: Slot of the ego: drawn last, in the ego colour, and the view centre if ego-centred.
            light_state: (K,) int8 current state of each light (`schema.LIGHT_*`), indexed by the
                scenario's `stop_light`; a stop line whose light is missing is drawn as unknown.
            highlight: Optional (N,) bool; those agents get a halo in the collision colour.

        Returns:
            A fresh (height, width, 3) uint8 RGB frame.
        """
        if self._static is None:
            raise RuntimeError("TopDownRenderer.frame: call set_scenario(scenario) first")
        xy = np.ascontiguousarray(xy, dtype=np.float64)
        n = xy.shape[0]
        if xy.shape != (n, 2):
            raise ValueError(f"TopDownRenderer.frame: xy has shape {xy.shape}, expected (N, 2)")
        yaw = _vec(yaw, np.float64, n, "yaw")
        length = _vec(length, np.float64, n, "length")
        width = _vec(width, np.float64, n, "width")
        valid = _vec(valid, np.bool_, n, "valid")
        agent_type = _vec(agent_type, np.int8, n, "agent_type")
        highlight = np.zeros(n, np.bool_) if highlight is None else _vec(highlight, np.bool_, n, "highlight")
        light_state = np.ascontiguousarray(light_state, dtype=np.int8).reshape(-1)
        ego_slot = int(ego_slot)
        if not -1 <= ego_slot < n:
            raise ValueError(f"TopDownRenderer.frame: ego_slot {ego_slot} is out of range for {n} slots")

        c = self.config
        if c.ego_centred and ego_slot >= 0 and np.all(np.isfinite(xy[ego_slot])):
            u, v = self._to_px(xy[ego_slot : ego_slot + 1])
            self._window = (int(math.floor(v[0])) - c.height // 2, int(math.floor(u[0])) - c.width // 2)
        elif not c.ego_centred:
            self._window = (0, 0)
        out = np.empty((c.height, c.width, 3), dtype=np.uint8)
        r0, c0 = self._window
        _crop(out, self._static, r0, c0, self._background_frame)
        inv = 1.0 / self._mpp
        x0, y_top = self._origin[0] + c0 * self._mpp, self._origin[1] - r0 * self._mpp
        stop_half = STOP_LINE_HALF_WIDTH_M * inv
        stops = (self._stop_lines, self._stop_light, stop_half, light_state, self._light_palette)
        agents = (xy, yaw, length, width, valid, agent_type, ego_slot, highlight)
        halo = max(HIGHLIGHT_HALO_M * inv, 1.5)
        _draw_dynamic(out, x0, y_top, inv, *stops, *agents, halo, self._agent_palette, self._marks)
        return out

    def world_to_pixel(self, xy) -> np.ndarray:
        """(M, 2) continuous [column, row] in the last frame of world points `xy` (M, 2), metres.

        Pixel ``(row, col)`` holds the point when ``col = floor(u)`` and ``row = floor(v)``.
        """
        u, v = self._to_px(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
        return np.stack([u - self._window[1], v - self._window[0]], axis=1)

    def _to_px(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Static-bitmap pixel coordinates (u, v) of world points (M, 2)."""
        u = (xy[:, 0] - self._origin[0]) / self._mpp
        v = (self._origin[1] - xy[:, 1]) / self._mpp
        return np.ascontiguousarray(u), np.ascontiguousarray(v)


def _crop(out: np.ndarray, src: np.ndarray, r0: int, c0: int, background: np.ndarray) -> None:
    """Copies the window of `src` whose top-left pixel is (r0, c0) into `out`, `background` outside `src`.

    Plain numpy copies (memcpy), several times faster than a Numba loop over uint8 pixels; `background`
    is a whole (h, w, 3) frame because broadcasting one RGB triple is slow.
    """
    h, w = out.shape[:2]
    ra, rb = max(r0, 0), min(r0 + h, src.shape[0])
    ca, cb = max(c0, 0), min(c0 + w, src.shape[1])
    if ra >= rb or ca >= cb:
        np.copyto(out, background)
        return
    if (ra, rb, ca, cb) != (r0, r0 + h, c0, c0 + w):
        np.copyto(out, background)
    out[ra - r0 : rb - r0, ca - c0 : cb - c0] = src[ra:rb, ca:cb]


def _filled(shape: tuple[int, int], color: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image of one colour; one row then row copies (broadcasting a triple is slow)."""
    img = np.empty((*shape, 3), dtype=np.uint8)
    img[0] = color
    img[1:] = img[0]
    return img


def _vec(a, dtype, n: int, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    if a.shape != (n,):
        raise ValueError(f"TopDownRenderer.frame: {name} has shape {a.shape}, expected ({n},)")
    return a


def _num_pixels(lo: np.ndarray, hi: np.ndarray, mpp: float) -> int:
    return int(math.ceil((hi[0] - lo[0]) / mpp)) * int(math.ceil((hi[1] - lo[1]) / mpp))


def _scene_bounds(s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """World (2,) lower and upper corners of lanes (with their widths), edges, route, stop lines, logs."""
    half = float(s.lane_width.max()) / 2 if s.num_lanes else 0.0
    parts = [s.route_xy, s.edge_xy, s.stop_lines.reshape(-1, 2), s.traj[..., :2][s.valid]]
    pts = np.concatenate(parts)
    lo, hi = pts.min(0), pts.max(0)
    if len(s.lane_xy):
        lo = np.minimum(lo, s.lane_xy.min(0) - half)
        hi = np.maximum(hi, s.lane_xy.max(0) + half)
    return lo, hi


def _lane_end_joins(s: Scenario, lu, lv, half) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discs at lane ends that meet a successor or predecessor, so lane-to-lane bends have no gaps."""
    counts = np.diff(s.lane_offsets)
    links = s.lane_successors
    has_succ = (links >= 0).any(axis=1) & (counts > 0)
    is_succ = np.zeros(s.num_lanes, dtype=bool)
    is_succ[links[links >= 0]] = True
    is_succ &= counts > 0
    idx = np.concatenate([s.lane_offsets[1:][has_succ] - 1, s.lane_offsets[:-1][is_succ]]).astype(np.int64)
    radius = np.concatenate([half[has_succ], half[is_succ]])
    return np.ascontiguousarray(lu[idx]), np.ascontiguousarray(lv[idx]), np.ascontiguousarray(radius)


@njit(cache=True)
def _draw_dynamic(
    img, x0, y_top, inv_mpp, stop_lines, stop_light, stop_half_px, light_state, light_palette,
    xy, yaw, length, width, valid, agent_type, ego_slot, highlight, halo_px, agent_palette, marks,
):  # fmt: skip
    """Draws stop lines and agents into a frame whose pixel (0, 0) has its top-left corner at (x0, y_top).

    Shapes as in `TopDownRenderer.frame`; sizes (`stop_half_px`, `halo_px`) in pixels. `light_palette`
    (4, 3) is indexed by LIGHT_*, `agent_palette` (3, 3) by AGENT_*, `marks` (3, 3) holds the ego,
    heading-tick and collision colours.
    """
    su = np.empty(4)
    sv = np.empty(4)
    num_lights = light_state.shape[0]
    for i in range(stop_lines.shape[0]):
        k = stop_light[i]
        state = light_state[k] if 0 <= k < num_lights else 0
        if state < 0 or state > 3:
            state = 0
        s = stop_lines[i]
        u0, v0 = (s[0] - x0) * inv_mpp, (y_top - s[1]) * inv_mpp
        u1, v1 = (s[2] - x0) * inv_mpp, (y_top - s[3]) * inv_mpp
        raster.draw_segment(img, u0, v0, u1, v1, stop_half_px, light_palette[state], su, sv)
    n = xy.shape[0]
    # Halos first so that no halo covers a neighbour's box; then everyone but the ego; the ego on top.
    for j in range(2 * n + 1):
        i = j % n if j < 2 * n else ego_slot
        if i < 0 or (n <= j < 2 * n and i == ego_slot) or (j < n and not highlight[i]) or not valid[i]:
            continue
        if not (np.isfinite(xy[i, 0]) and np.isfinite(xy[i, 1]) and np.isfinite(yaw[i])):
            continue
        u, v = (xy[i, 0] - x0) * inv_mpp, (y_top - xy[i, 1]) * inv_mpp
        hl = max(0.5 * length[i] * inv_mpp, 1.0)
        hw = max(0.5 * width[i] * inv_mpp, 1.0)
        cs, sn = np.cos(yaw[i]), -np.sin(yaw[i])
        if j < n:
            raster.fill_box(img, u, v, cs, sn, hl + halo_px, hw + halo_px, marks[2], su, sv)
            continue
        t = agent_type[i]
        color = marks[0] if i == ego_slot else agent_palette[t if 0 <= t < agent_palette.shape[0] else 0]
        raster.fill_box(img, u, v, cs, sn, hl, hw, color, su, sv)
        if hl >= 3.0 and hw >= 1.5:
            # Heading tick: a triangle pointing forward with its apex at the front bumper.
            depth = min(0.6 * hl, 1.2 * hw)
            bu, bv = u + cs * (hl - depth), v + sn * (hl - depth)
            su[0], sv[0] = u + cs * hl, v + sn * hl
            su[1], sv[1] = bu - sn * 0.6 * hw, bv + cs * 0.6 * hw
            su[2], sv[2] = bu + sn * 0.6 * hw, bv - cs * 0.6 * hw
            raster.fill_convex_polygon(img, su, sv, 3, marks[1])
