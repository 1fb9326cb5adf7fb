"""The Intelligent Driver Model (Treiber et al., 2000), shared by the expert and reactive agents."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def idm_accel(v, v0, gap, v_lead, a_max, b_comf, s0, headway):
    """IDM acceleration of a follower, m/s^2.

    Args:
        v: Follower speed, m/s (>= 0).
        v0: Desired speed, m/s. At or below 0.1 m/s the free-road term brakes to a stop.
        gap: Bumper-to-bumper gap to the leader, metres; pass a large number (>= 1e3) for none.
        v_lead: Leader speed, m/s.
        a_max: Maximum acceleration, m/s^2.
        b_comf: Comfortable deceleration, m/s^2 (> 0).
        s0: Jam distance, metres.
        headway: Desired time headway, seconds.

    Returns:
        The acceleration, not clipped; callers clip to their vehicle's limits.
    """
    if v0 > 0.1:
        free = 1.0 - (v / v0) ** 4
    else:
        free = -v / 0.5  # no desired speed: come to rest within about half a second of braking
    if gap >= 1e3:
        return a_max * free
    dv = v - v_lead
    s_star = s0 + max(0.0, v * headway + v * dv / (2.0 * np.sqrt(a_max * b_comf)))
    g = max(gap, 0.1)
    return a_max * (free - (s_star / g) ** 2)
