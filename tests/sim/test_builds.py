"""Serial and threaded builds of one kernel keep their own Numba cache entries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from alpagym_env.sim import controller, engine

KERNEL = textwrap.dedent(
    """
    import numpy as np
    from numba import prange
    from alpagym_env.sim.builds import serial_and_parallel

    def add_one(x):
        for i in prange(x.shape[0]):
            x[i] += 1.0

    add_one_serial, add_one = serial_and_parallel(add_one)
    """
)


def _call(tmp_path: Path, names: str) -> list[tuple[int, int]]:
    """Calls kernels `names` of the module in a fresh process; (cache hits, misses) of each."""
    code = (
        "import numpy as np, kmod\n"
        f"for name in {names.split()!r}:\n"
        "    f = getattr(kmod, name); x = np.zeros(4); f(x); assert (x == 1).all()\n"
        "    print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(Path(__file__).parents[2])])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [tuple(map(int, line.split())) for line in out.stdout.splitlines()]


def test_the_threaded_build_never_loads_the_serial_one_from_the_cache(tmp_path):
    (tmp_path / "kmod.py").write_text(KERNEL)
    assert _call(tmp_path, "add_one_serial") == [(0, 1)]
    # One build of one function with the other's options cached first: compiled, not loaded.
    assert _call(tmp_path, "add_one") == [(0, 1)]
    assert _call(tmp_path, "add_one_serial add_one") == [(1, 0), (1, 0)]  # both cached, each its own


def test_every_batch_kernel_has_two_builds_of_distinct_names():
    for serial, parallel in [
        (engine.step_batch_serial, engine.step_batch),
        (engine.reset_batch_serial, engine.reset_batch),
        (controller.track_batch_serial, controller.track_batch),
    ]:
        assert serial.py_func.__qualname__ == parallel.py_func.__qualname__ + "_serial"
        assert serial.py_func.__code__ is parallel.py_func.__code__
        assert not serial.targetoptions.get("parallel") and parallel.targetoptions["parallel"]
