"""How AlpaDrive's engine scales with cores, batch size and agents per scene, measured side by side.

One process, three tables, every ratio taken within this run (the machine's other load moves absolute
figures between runs, much less the ratios of one run):

1. Numba threads 1, 2 and all (`NUMBA_NUM_THREADS`) at B = 64 scenes of 32 agents: env-steps/s of the
   raw engine (`BatchedSim.step`) and of the native vector env (`gym.make_vec`), the speed-up over one
   thread and the parallel efficiency (speed-up / threads), with AlpaGym's OpenMP wait policy for idle
   pool threads and OpenMP's passive and active ones, on idle cores and beside a busy-looping process
   (the cores shared, as with several actors or other jobs). Two workloads:
   ``constant`` (a constant throttle, no early termination: every scene runs its 200 steps, as
   `env_step.py`'s raw row) and ``random`` (random actions with the default termination, so episodes
   end and reset: the raw engine resets finished scenes itself as the vector env does, and both draw
   the same actions).
2. Batch size B = 1 ... 1024 at all threads: env-steps/s and microseconds per env-step.
3. Agents per scene 8, 32, 128, 256 (B = 64, all threads, both agent modes): env-steps/s, agent-steps/s
   and nanoseconds per agent-step, with the cost per agent-step relative to 32 agents'. Scenes of 8 and
   32 agents keep the agents nearest the ego (`max_agents`); the procedural families have 22-61 agents,
   so scenes of 128 and 256 add time-shifted copies of every other agent's log (the same traffic a few
   seconds earlier or later on the same paths, `dense_scene`).

Usage: python benchmarks/env_scaling.py [--seconds 1.5] [--sizes 1 4 16 64 256 1024]
    [--agent-counts 8 32 128 256] [--only threads batch agents]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numba
import numpy as np
from env_step import AGENTS, RawWorkload, rate, scenes_with_agents, vector_rate

import alpagym_env  # noqa: F401
from alpagym_env.scenarios.schema import Scenario

B = 64
# OpenMP wait policies of idle pool threads: AlpaGym's default (GOMP_SPINCOUNT=10000, `alpagym_env`),
# then OMP_WAIT_POLICY's two.
DEFAULT_POLICY = "GOMP_SPINCOUNT=10000 (default)"
POLICIES = (DEFAULT_POLICY, "PASSIVE", "ACTIVE")
SHIFT_STEPS = 15  # steps between the time-shifted copies of an agent's log


def dense_scene(s: Scenario, num_agents: int) -> Scenario:
    """`s` with at least `num_agents` agents: copies of its other agents' logs shifted by multiples of
    SHIFT_STEPS steps, alternately later and earlier (invalid where the shifted log has no step)."""
    others = [i for i in range(s.traj.shape[0]) if i != s.ego_index]
    traj, valid = [s.traj], [s.valid]
    idx = list(range(s.traj.shape[0]))
    k, count = 1, s.traj.shape[0]
    while count < num_agents:
        shift = SHIFT_STEPS * ((k + 1) // 2) * (1 if k % 2 else -1)
        for i in others:
            if count >= num_agents:
                break
            t = np.roll(s.traj[i], -shift, axis=0)
            v = np.roll(s.valid[i], -shift)
            if shift > 0:
                v[-shift:] = False
            else:
                v[:-shift] = False
            traj.append(t[None])
            valid.append(v[None])
            idx.append(i)
            count += 1
        k += 1
    idx = np.asarray(idx)
    return dataclasses.replace(
        s,
        scenario_id=f"{s.scenario_id}-dense{num_agents}",
        traj=np.concatenate(traj),
        valid=np.concatenate(valid),
        length=s.length[idx],
        width=s.width[idx],
        agent_type=s.agent_type[idx],
    )


def table(head: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def thread_rates(scenes, seconds: float) -> list[dict]:
    """Raw and vector env-steps/s of both workloads at 1, 2 and all threads, in this process."""
    most = numba.config.NUMBA_NUM_THREADS
    out = []
    for workload in ("constant", "random"):
        raw_w = RawWorkload(scenes, B, workload)
        for th in sorted({1, min(2, most), most}):
            numba.set_num_threads(th)
            raw = rate(raw_w.step, seconds, B)
            out.append(
                {
                    "workload": workload,
                    "threads": th,
                    "raw": raw,
                    "vector": vector_rate(scenes, B, workload, seconds),
                }
            )
    numba.set_num_threads(most)
    return out


def threads_table(seconds: float) -> None:
    """Runs `thread_rates` in child processes: OpenMP's wait policy is read when the thread pool starts,
    so each policy needs its own process; each runs on idle cores and beside a busy-looping process (the
    cores shared, as with several actors or other jobs)."""
    rows = []
    for policy in POLICIES:
        for busy in (False, True):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
                if policy != DEFAULT_POLICY:
                    env["OMP_WAIT_POLICY"] = policy
                cmd = [sys.executable, __file__, "--child-threads", "--seconds", str(seconds)]
                res = json.loads(
                    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                )
            finally:
                if hog is not None:
                    hog.kill()
            base = {r["workload"]: r["raw"] for r in res if r["threads"] == 1}
            for r in res:
                gain = r["raw"] / base[r["workload"]]
                rows.append(
                    [
                        policy,
                        "one busy process beside" if busy else "idle",
                        r["workload"],
                        str(r["threads"]),
                        f"{r['raw']:,.0f}",
                        f"{r['raw'] * AGENTS / 1e6:.2f} M",
                        f"{gain:.2f}x",
                        f"{gain / r['threads']:.0%}",
                        f"{r['vector']:,.0f}",
                        f"{r['vector'] / r['raw']:.0%}",
                    ]
                )
    print(f"Threads: B = {B} scenes of {AGENTS} agents, replayed agents; this machine has "
          f"{numba.config.NUMBA_NUM_THREADS} Numba threads (wait policy: of idle threads)\n")  # fmt: skip
    head = ["wait policy", "cores", "workload", "threads", "raw env-steps/s", "agent-steps/s"]
    table(head + ["speed-up", "efficiency", "vector API env-steps/s", "vector / raw"], rows)


def batch_table(scenes, sizes: list[int], seconds: float) -> None:
    rows = []
    for n in sizes:
        r = rate(RawWorkload(scenes, n, "constant").step, seconds, n)
        rows.append([str(n), f"{r:,.0f}", f"{1e6 / r:.1f}"])
    print(f"Batch size: raw engine, constant workload, {AGENTS} agents, all threads\n")
    table(["B", "env-steps/s", "us per env-step"], rows)


def agents_table(base_scenes, counts: list[int], seconds: float) -> None:
    rows = []
    for mode in ("replay", "idm"):
        ref = None
        per = {}
        for count in counts:
            if count <= AGENTS:
                scenes = scenes_with_agents(len(base_scenes), count)
            else:
                scenes = [dense_scene(s, count) for s in base_scenes]
            r = rate(RawWorkload(scenes, B, "constant", mode, max_agents=count).step, seconds, B)
            ns = 1e9 / (r * count)
            per[count] = ns
            ref = per.get(AGENTS, ref)
            rows.append([mode, str(count), f"{r:,.0f}", f"{r * count / 1e6:.2f} M", f"{ns:.0f}", ""])
        for row in rows[-len(counts) :]:
            if AGENTS in per:
                row[-1] = f"{per[int(row[1])] / per[AGENTS]:.2f}x"
    print(f"Agents per scene: raw engine, B = {B}, constant workload, all threads\n")
    table(["agents", "per scene", "env-steps/s", "agent-steps/s", "ns per agent-step", "vs 32 agents"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--agent-counts", type=int, nargs="+", default=[8, 32, 128, 256])
    parser.add_argument("--only", nargs="+", default=["threads", "batch", "agents"])
    parser.add_argument("--child-threads", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scenes = scenes_with_agents(64, AGENTS)
    if args.child_threads:
        print(json.dumps(thread_rates(scenes, args.seconds)))
        return
    t0 = time.perf_counter()
    if "threads" in args.only:
        threads_table(args.seconds)
    if "batch" in args.only:
        batch_table(scenes, args.sizes, args.seconds)
    if "agents" in args.only:
        agents_table(scenes, args.agent_counts, args.seconds)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
