"""The rule-based multi-agent expert that drives every agent of a procedural scene.

Every moving agent follows a *path*: a centre polyline made of the lanes it will drive (e.g. approach lane,
junction connector, exit lane). Its state is the arc length `s` along the path, the path speed `v` and,
during a lane change, a lateral offset `d(s)` that decays to 0 along a quintic profile (so heading and
steering stay smooth, and a stopped car does not slide sideways). Each 0.1 s step:

- Longitudinal: the minimum of several IDM accelerations (`sim.idm.idm_accel`): free road at the desired
  speed (lane limit times a per-agent factor, capped by a curvature envelope looked up one second
  ahead that keeps lateral acceleration near `A_LAT_MAX`), every agent whose box overlaps the agent's
  corridor ahead (other lanes' agents changing or turning into it included, projected on the agent's
  own path), a wall at the end of a path
  that must be left (on-ramp), a red light or a yellow the agent can comfortably stop for, and the entry
  of a junction while a conflicting path is not clear (gap acceptance). Acceleration is clipped to
  [-4, a_max] m/s^2 and jerk-limited.
- Lateral: MOBIL lane changes between neighbouring paths (safe gaps, politeness, keep-right bias),
  mandatory ones off an acceleration lane; mainline drivers marked courteous slow for a merging car.

The kernel is pure Numba over plain arrays (`simulate`); `Traffic` collects the Python-side description,
`prepare` packs it into arrays and `run` calls the kernel. Turning a family's draft into a clean
`Scenario` (validate-and-repair, ego choice, route) lives in `validate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alpagym_env.scenarios.expert_kernel import (  # noqa: F401  (constants are part of this module's API)
    A_LAT_MAX,
    B_ENVELOPE,
    B_MAX,
    B_YELLOW,
    JERK_DOWN,
    JERK_UP,
    KIND_CAR,
    KIND_CYCLIST,
    KIND_PARKED,
    KIND_TRUCK,
    LAT_MARGIN,
    MODE_OCCUPIED,
    MODE_SYMMETRIC,
    MODE_YIELD,
    NUM_PARAMS,
    P_AMAX,
    P_BCOMF,
    P_COURTESY,
    P_HEADWAY,
    P_LCTIME,
    P_POLITE,
    P_S0,
    P_SPEED,
    PATH_DS,
    simulate,
    speed_envelope,
)
from alpagym_env.scenarios.road import arclength, headings, resample


@dataclass
class PathSpec:
    """One path of the expert, in world coordinates.

    Attributes:
        xy: (P, 2) centre polyline, metres.
        limit: (P,) speed limit at each point, m/s.
        wall: Stop at the path's end (it must be left by a lane change) instead of despawning there.
        junction: (s_in, s_out) arc-length range inside a junction, metres, or None.
        light: Light index governing a stop line at `junction[0]`, or -1.
        rank: Yield priority inside junctions: a path yields (gap acceptance) to every conflicting path
            of lower rank; otherwise it only waits for agents already inside the junction whose way
            crosses its own.
        left, right: Neighbour path indices for lane changes, or -1.
        lc_range: (lo, hi) arc length on this path where lane changes may start and must end, metres.
        mandatory: +1 / -1 when the agent must change to the left / right neighbour before `wall`.
        half_width: Half the lane width, metres.
    """

    xy: np.ndarray
    limit: np.ndarray
    wall: bool = False
    junction: tuple[float, float] | None = None
    light: int = -1
    rank: int = 0
    left: int = -1
    right: int = -1
    lc_range: tuple[float, float] = (0.0, 0.0)
    mandatory: int = 0
    half_width: float = 1.75


@dataclass
class AgentSpec:
    """One agent: a path follower (path >= 0) or a static box (path == -1, e.g. a parked car).

    Attributes:
        path: Path index, or -1 for a static box at `pose`.
        s: Start arc length on the path, metres. v: Start speed, m/s.
        length, width: Box size, metres.
        kind: KIND_* constant.
        params: (NUM_PARAMS,) driver parameters (P_* columns).
        spawn: First step at which the agent may appear: 0 starts at step 0, a later one waits until its
            start is clear.
        pose: (x, y, heading) of a static box.
        ego_bonus: Added to the agent's score when the ego is chosen (prefer turning or merging agents).
    """

    path: int
    s: float
    v: float
    length: float
    width: float
    kind: int
    params: np.ndarray
    spawn: int = 0
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ego_bonus: float = 0.0


@dataclass
class Traffic:
    """The expert's view of a scene: paths, agents and the light schedule."""

    paths: list[PathSpec] = field(default_factory=list)
    agents: list[AgentSpec] = field(default_factory=list)

    def add_path(self, spec: PathSpec) -> int:
        self.paths.append(spec)
        return len(self.paths) - 1


def default_params(rng: np.random.Generator, truck: bool = False) -> np.ndarray:
    """Random per-agent driver parameters (see the P_* columns)."""
    p = np.empty(NUM_PARAMS)
    p[P_SPEED] = rng.uniform(0.78, 0.92) if truck else rng.uniform(0.88, 1.08)
    p[P_AMAX] = rng.uniform(0.8, 1.1) if truck else rng.uniform(1.2, 2.0)
    p[P_BCOMF] = rng.uniform(1.5, 2.2)
    p[P_S0] = rng.uniform(2.0, 3.0)
    p[P_HEADWAY] = rng.uniform(1.3, 1.8) if truck else rng.uniform(1.0, 1.6)
    p[P_POLITE] = rng.uniform(0.1, 0.5)
    p[P_LCTIME] = rng.uniform(3.5, 5.0)
    p[P_COURTESY] = float(rng.random() < 0.6)
    return p


# --------------------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """Kernel-ready arrays of a `Traffic` (paths resampled at `PATH_DS`)."""

    arrays: tuple
    path_xy: list[np.ndarray]  # (P_m, 2) resampled paths, for routes


def _conflicts(paths: list[PathSpec], xy: list[np.ndarray], hs: list[np.ndarray]):
    """Conflict zones between the junction parts of every pair of paths.

    Two points conflict when closer than 2.2 m + 1.5 m * |sin(heading difference)| (two cars side by side
    fit 2.2 m apart; crossing boxes reach further); agents' lengths are added when zones are checked.
    Pairs that enter the junction at the same point diverge and never conflict (car following handles
    them).

    Returns:
        (M + 1,) offsets and (C, 7) rows [other path, a_lo, a_hi, b_lo, b_hi, mode, merge] sorted by path;
        `merge` is 1 when both paths leave the junction on the same lane.
    """
    rows: list[list[list[float]]] = [[] for _ in paths]
    jun = [i for i, p in enumerate(paths) if p.junction is not None]
    parts = {}
    for i in jun:
        lo, hi = paths[i].junction
        k = np.arange(int(lo / PATH_DS), min(int(hi / PATH_DS) + 1, len(xy[i])), 2)
        k_end = min(int(round(hi / PATH_DS)), len(xy[i]) - 1)
        parts[i] = (xy[i][k], hs[i][k], k * PATH_DS, xy[i][k_end])
    for n, a in enumerate(jun):
        for b in jun[n + 1 :]:
            pa, ha, sa, end_a = parts[a]
            pb, hb, sb, end_b = parts[b]
            if np.hypot(*(pa[0] - pb[0])) < 0.5:
                continue
            dist = np.hypot(pa[:, None, 0] - pb[None, :, 0], pa[:, None, 1] - pb[None, :, 1])
            thr = 2.2 + 1.5 * np.abs(np.sin(ha[:, None] - hb[None, :]))
            hit = dist < thr
            if not hit.any():
                continue
            ia, ib = np.nonzero(hit.any(axis=1))[0], np.nonzero(hit.any(axis=0))[0]
            za, zb = (sa[ia.min()], sa[ia.max()]), (sb[ib.min()], sb[ib.max()])
            ra, rb = paths[a].rank, paths[b].rank
            mode_a = MODE_SYMMETRIC if ra == rb else (MODE_YIELD if ra > rb else MODE_OCCUPIED)
            mode_b = MODE_SYMMETRIC if ra == rb else (MODE_YIELD if rb > ra else MODE_OCCUPIED)
            merge = float(np.hypot(*(end_a - end_b)) < 0.5)  # both leave the junction on one lane
            rows[a].append([b, *za, *zb, mode_a, merge])
            rows[b].append([a, *zb, *za, mode_b, merge])
    off = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    flat = [r for rs in rows for r in rs]
    return off, np.array(flat, dtype=np.float64).reshape(-1, 7)


def _shift(a: np.ndarray, b: np.ndarray, lc_range: tuple[float, float]) -> float:
    """Typical s_b - s_a between neighbouring paths a and b (a guess for projections), metres."""
    k = min(int(0.5 * (lc_range[0] + lc_range[1]) / PATH_DS), len(a) - 1)
    j = int(np.argmin(np.hypot(*(b - a[k]).T)))
    return (j - k) * PATH_DS


def prepare(traffic: Traffic, paths: tuple | None = None) -> Prepared:
    """Packs a `Traffic` into kernel arrays; `paths` reuses `prepare_paths(traffic)` output."""
    off, pts, pint, pflt, c_off, conf, xy = prepare_paths(traffic) if paths is None else paths
    ag = traffic.agents
    a_int = np.array([[a.path, a.kind, a.spawn] for a in ag], dtype=np.int64).reshape(-1, 3)
    a_flt = np.array([[a.s, a.v, a.length, a.width, *a.pose] for a in ag], dtype=np.float64).reshape(-1, 7)
    a_par = np.array([a.params for a in ag], dtype=np.float64).reshape(-1, NUM_PARAMS)
    return Prepared((off, pts, pint, pflt, c_off, conf, a_int, a_flt, a_par), xy)


def prepare_paths(traffic: Traffic) -> tuple:
    """Resamples the paths at `PATH_DS` and builds their speed envelopes and conflict zones."""
    xy, hs, ks, lims, curv = [], [], [], [], []
    for p in traffic.paths:
        s_in = arclength(p.xy)
        q = resample(p.xy, PATH_DS)
        # force exact spacing PATH_DS (the last point may be closer)
        s_q = arclength(q)
        n = int(s_q[-1] / PATH_DS) + 1
        t = np.arange(n) * PATH_DS
        q = np.stack([np.interp(t, s_q, q[:, 0]), np.interp(t, s_q, q[:, 1])], axis=1)
        h = headings(q)
        k = np.gradient(h, PATH_DS)
        k = np.convolve(np.pad(k, 2, mode="edge"), np.ones(5) / 5.0, mode="valid")  # de-noise
        lim = np.interp(t, s_in, np.broadcast_to(np.asarray(p.limit, dtype=np.float64), (len(p.xy),)))
        cap = np.minimum(np.sqrt(A_LAT_MAX / np.maximum(np.abs(k), 1e-4)), 40.0)
        xy.append(q)
        hs.append(h)
        ks.append(k)
        lims.append(speed_envelope(lim, PATH_DS, 1.0))
        curv.append(speed_envelope(cap, PATH_DS, B_ENVELOPE))
    m = len(traffic.paths)
    off = np.cumsum([0] + [len(q) for q in xy]).astype(np.int64)
    cat = np.concatenate
    pts = np.stack([cat(xy)[:, 0], cat(xy)[:, 1], cat(hs), cat(ks), cat(lims), cat(curv)], axis=1)
    pint = np.zeros((m, 6), dtype=np.int64)  # wall, light, left, right, mandatory, has_junction
    pflt = np.zeros((m, 8))  # length, lc_lo, lc_hi, j_in, j_out, shift_left, shift_right, half width
    for i, p in enumerate(traffic.paths):
        pint[i] = [p.wall, p.light, p.left, p.right, p.mandatory, p.junction is not None]
        jin, jout = p.junction if p.junction is not None else (-1.0, -1.0)
        shifts = [_shift(xy[i], xy[q], p.lc_range) if q >= 0 else 0.0 for q in (p.left, p.right)]
        pflt[i] = [(len(xy[i]) - 1) * PATH_DS, *p.lc_range, jin, jout, *shifts, p.half_width]
    c_off, conf = _conflicts(traffic.paths, xy, hs)
    return off, pts, pint, pflt, c_off, conf, xy


@dataclass
class Logs:
    """Expert output: traj (N, T, 5), valid (N, T), path index (N, T, -1 static) and arc length s (N, T)."""

    traj: np.ndarray
    valid: np.ndarray
    path: np.ndarray
    s: np.ndarray


def run(prepared: Prepared, light_states: np.ndarray, num_steps: int, dt: float) -> Logs:
    """Runs the expert kernel on prepared arrays; `light_states` is (K, T) int8 (K may be 0)."""
    off, pts, pint, pflt, c_off, conf, a_int, a_flt, a_par = prepared.arrays
    n = a_int.shape[0]
    lights = light_states if light_states.shape[0] else np.zeros((1, num_steps), dtype=np.int8)
    traj = np.zeros((n, num_steps, 5))
    valid = np.zeros((n, num_steps), dtype=np.bool_)
    plog = np.full((n, num_steps), -1, dtype=np.int64)
    slog = np.zeros((n, num_steps))
    simulate(off, pts, pint, pflt, c_off, conf, a_int, a_flt, a_par, lights, dt, traj, valid, plog, slog)
    return Logs(traj, valid, plog, slog)
