"""Memory per env, time to first step and pickled size of `AlpaDrive-v0` on a named suite.

Each measurement runs in a fresh Python process with the suite already cached (the first run builds or
converts the cache). Time to first step is from the start of the process to the first `step()`
returning, split into the imports and `gym.make` + `reset` + `step`. Memory per env is the growth of the
process's private memory (`Private_Clean` + `Private_Dirty` of `/proc/self/smaps_rollup`, so pages of
the memory-mapped suite that every env shares are not counted) while `--envs` more single envs are made,
reset and stepped, divided by their number (compiled scenes are shared by the envs of a process, so a
further env mostly adds its buffers); resident memory (RSS) is reported beside it. An
`AsyncVectorEnv` of `--async-envs` single envs is timed from creation to the end of its first reset.

Usage: python benchmarks/env_memory.py [--suite train] [--envs 16] [--async-envs 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PROBE = r"""
import json, pickle, sys, time
t0 = time.perf_counter()
import gymnasium as gym
import numpy as np
import alpagym_env  # noqa: F401
t1 = time.perf_counter()
suite, extra, n_async = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def memory():
    fields = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0].endswith(":") and len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Rss"]


def first_step(env):
    env.reset(seed=0)
    env.step(np.zeros(env.action_space.shape, np.float32))


env = gym.make("AlpaDrive-v0", suite=suite)
first_step(env)
t2 = time.perf_counter()
private0, rss0 = memory()
envs = [gym.make("AlpaDrive-v0", suite=suite) for _ in range(extra)]
for e in envs:
    first_step(e)
private1, rss1 = memory()
pickled = len(pickle.dumps(env.unwrapped))
t3 = time.perf_counter()
if n_async:
    vec = gym.vector.AsyncVectorEnv([lambda: gym.make("AlpaDrive-v0", suite=suite)] * n_async)
    vec.reset(seed=0)
    vec.close()
t4 = time.perf_counter()
print(json.dumps({
    "import_s": t1 - t0,
    "make_reset_step_s": t2 - t1,
    "first_step_s": t2 - t0,
    "private_mb_per_env": (private1 - private0) / max(extra, 1) / 1e6,
    "rss_mb_per_env": (rss1 - rss0) / max(extra, 1) / 1e6,
    "private_mb_first_env": private0 / 1e6,
    "pickled_kb": pickled / 1e3,
    "async_make_reset_s": t4 - t3 if n_async else None,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="train")
    parser.add_argument("--envs", type=int, default=16, help="further single envs made after the first")
    parser.add_argument("--async-envs", type=int, default=4, help="size of the AsyncVectorEnv timed")
    args = parser.parse_args()
    from alpagym_env.scenarios import load_suite

    start = time.perf_counter()
    load_suite(args.suite)  # warm the cache (built or converted on the first run)
    print(f"suite {args.suite!r} cache ready in {time.perf_counter() - start:.2f} s")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, args.suite, str(args.envs), str(args.async_envs)],
        check=True,
        capture_output=True,
        text=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"time to first step in a fresh process: {r['first_step_s']:.2f} s")
    print(f"  imports {r['import_s']:.2f} s, gym.make + reset + step {r['make_reset_step_s']:.2f} s")
    print(f"private memory of the process with one env: {r['private_mb_first_env']:.0f} MB")
    print(
        f"each further env: {r['private_mb_per_env']:.1f} MB private, {r['rss_mb_per_env']:.1f} MB resident "
        f"(mean over {args.envs})"
    )
    print(f"a pickled env: {r['pickled_kb']:.1f} kB")
    if r["async_make_reset_s"] is not None:
        print(f"AsyncVectorEnv of {args.async_envs}: made and reset in {r['async_make_reset_s']:.2f} s")


if __name__ == "__main__":
    main()
