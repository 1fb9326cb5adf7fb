"""Steps per second of AlpaDrive's APIs against its raw engine and highway-env, measured side by side.

One process, one table. For num_envs in {1, 16, 64, 256} and two workloads: the native vector env through
the Gymnasium API (`gym.make_vec`), the raw engine (`BatchedSim.step`), and Gymnasium's `SyncVectorEnv` of
single envs; then the single env's `env.step` and highway-env's `highway-fast-v0`. Every scene has 32
agents. The workloads (`RawWorkload`): ``constant``, one constant action and no early termination, so every
episode runs its 200 steps and the API's own cost shows; ``random``, random actions and the default
termination, so episodes end and reset as in training. Ratios: the vector API against the raw engine and
against `SyncVectorEnv` of the same size, and each row against `highway-fast-v0`. The raw engine also
replays every scene's expert actions (`expert_dataset`) as trajectory actions (8 poses at 0.5 s, tracked by
the LQ controller) and as control actions, so both drive the same paths: the note gives the controller's
cost per agent-step from their difference, and its kernel's alone (`track_batch`). The random workload
also runs with every finished scene restarting the scene its slot holds (a load that copies nothing) and
with every load copying a scene the engine's bank does not hold, as a large suite would (the same scenes
listed more than once, drawn among those no slot holds, with no spare bank rows): the notes give
the share of the raw step that loading scenes takes in each case. The vector env and the raw engine (and,
for the random workload, its two other ways of loading) are timed in alternating windows
(`interleaved_rates`), so the machine's other load falls on each alike. `--profile` adds where one vector
step's time goes.

Usage: python benchmarks/env_step.py [--seconds 2] [--agents replay|idm] [--sizes 1 16 64 256] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import gymnasium as gym
import numpy as np

import alpagym_env  # noqa: F401
from alpagym_env.config import EnvConfig
from alpagym_env.envs.batched_sim import BatchedSim
from alpagym_env.scenarios import FAMILIES, generate
from alpagym_env.sim import controller, engine
from alpagym_env.sim.trajectory import encode_poses

AGENTS = 32


def scenes_with_agents(count: int, min_agents: int) -> list:
    """`count` procedural scenes (all families in turn) with at least `min_agents` agents."""
    out, seed = [], 10_000
    families = sorted(FAMILIES)
    while len(out) < count:
        s = generate(families[seed % len(families)], seed)
        if s.num_agents >= min_agents:
            out.append(s)
        seed += 1
    return out


def rate(step, seconds: float, batch: int = 1) -> float:
    """Env-steps per second of `step()` (which advances `batch` envs) after a warm-up."""
    for _ in range(20):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            step()
        n += 10
    return n * batch / (time.perf_counter() - t0)


def interleaved_rates(steps: dict, seconds: float, batch: int, windows: int = 10) -> dict[str, float]:
    """Env-steps per second of each ``steps[name]()`` (which advances `batch` envs), each measured for
    `seconds` in all, in `windows` windows taken in turn: the machine's other load then falls on every
    one of them alike, so their ratios hold better than those of runs one after the other."""
    for step in steps.values():
        for _ in range(20):
            step()
    count, spent = dict.fromkeys(steps, 0), dict.fromkeys(steps, 0.0)
    for _ in range(windows):
        for name, step in steps.items():
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / windows:
                for _ in range(5):
                    step()
                count[name] += 5
            spent[name] += time.perf_counter() - t0
    return {name: count[name] * batch / spent[name] for name in steps}


def actions_for(space, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(0.2, 0.3, space.shape), -1, 1).astype(np.float32) for _ in range(256)]


NO_TERMINATION = {"at_cut": False, "at_fault_collision": False, "offroad": False, "route_complete": False}


class RawWorkload:
    """The raw engine under one of the two workloads; `step()` advances every scene once.

    How a slot whose episode ended (all of them after 200 steps in ``constant``) gets its next scene,
    by `loads`:

    - ``"drawn"``: a scene drawn at random, as the vector env does, so both load scenes as often. The
      engine's scene bank shares a scene another slot holds and keeps those left recently: with this
      suite of 64 scenes nearly every load finds its scene there and copies nothing.
    - ``"kept"``: the scene the slot holds, restarted: no load copies anything.
    - ``"copied"``: a scene no slot holds, into a bank without spare rows: every load copies its scene
      in, as a suite much larger than the bank would (needs more scenes than slots).
    """

    def __init__(self, scenes, n: int, workload: str, agents: str = "replay", max_agents: int = AGENTS,
                 loads: str = "drawn"):  # fmt: skip
        if loads not in ("drawn", "kept", "copied"):
            raise ValueError(f"loads must be 'drawn', 'kept' or 'copied', got {loads!r}")
        if loads == "copied" and len(scenes) <= n:
            raise ValueError(f"loads='copied' needs more scenes than the {n} slots, got {len(scenes)}")
        term = NO_TERMINATION if workload == "constant" else {}
        config = EnvConfig.from_kwargs(agents=agents, max_agents=max_agents, termination=term)
        spare = 0 if loads == "copied" else None
        self.sim = BatchedSim(config, n, scenes, len(scenes), spare_scenes=spare)
        self.n, self.workload = n, workload
        self.rng = np.random.default_rng(0)
        self.ids = np.arange(n) % len(scenes)
        for i in range(len(scenes)):  # compile every scene once, as a long run would have
            self.sim.compile(i)
        self.sim.reset(range(n), self.ids)
        if workload == "random":
            self.actions = [a.astype(np.float64) for a in random_actions((n, 1, 2))]
        else:
            self.actions = [np.zeros((n, 1, 2))]
            self.actions[0][..., 0] = 0.2
        self.k, self.loads = 0, loads

    def step(self) -> None:
        sim = self.sim
        sim.step(self.actions[self.k % len(self.actions)])
        done = np.flatnonzero(sim.terminated[:, 0] | sim.truncated)
        if done.size:
            if self.loads == "kept":
                scenes = self.ids[done]
            elif self.loads == "copied":
                unheld = np.setdiff1d(np.arange(sim.num_scenarios), sim.scenario_index)
                scenes = self.rng.choice(unheld, size=done.size, replace=False)
            else:
                scenes = self.rng.integers(sim.num_scenarios, size=done.size)
            sim.reset(done, scenes)
        self.k += 1


def random_actions(shape: tuple[int, ...], count: int = 64) -> list[np.ndarray]:
    """`count` arrays of random control actions (throttle around 0.2, small steering)."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(count):
        a = np.empty(shape)
        a[..., 0] = rng.normal(0.2, 0.4, shape[:-1])
        a[..., 1] = rng.normal(0.0, 0.15, shape[:-1])
        out.append(np.clip(a, -1.0, 1.0).astype(np.float32))
    return out


def vector_env(scenes, n: int, workload: str, kind: str = "native", agents: str = "replay"):
    """A vector env under `workload` (autoreset, as a training loop sees it), reset and with every scene
    compiled, and a function that steps it once: the native vector env (`kind="native"`) or Gymnasium's
    `SyncVectorEnv` of single envs (``"sync"``)."""
    term = NO_TERMINATION if workload == "constant" else {}
    mode = None if kind == "native" else "sync"
    env = gym.make_vec(
        "AlpaDrive-v0",
        num_envs=n,
        vectorization_mode=mode,
        scenarios=scenes,
        agents=agents,
        max_agents=AGENTS,
        termination=term,
    )
    env.reset(seed=0)
    sims = [env.sim] if kind == "native" else [e.unwrapped.sim for e in env.envs]
    for sim in sims:  # compile every scene once, as a long run would have
        for i in range(len(scenes)):
            sim.compile(i)
    if workload == "constant":
        const = np.zeros(env.action_space.shape, np.float32)
        const[:, 0] = 0.2
        acts = [const]
    else:
        acts = [a[:, 0] for a in random_actions((n, 1, 2))]
    k = [0]

    def step():
        env.step(acts[k[0] % len(acts)])
        k[0] += 1

    return env, step


def vector_rate(
    scenes, n: int, workload: str, seconds: float, kind: str = "native", agents: str = "replay"
) -> float:
    """`vector_env`'s env-steps/s."""
    env, step = vector_env(scenes, n, workload, kind, agents)
    out = rate(step, seconds, n)
    env.close()
    return out


def expert_actions(scenes, action_type: str, agents: str) -> np.ndarray:
    """(S, 200, A) each scene's expert actions (`alpagym_env.expert_dataset`: the ego drives its log),
    zeros after an episode's end."""
    data = alpagym_env.expert_dataset(scenes, action_type, agents=agents, max_agents=AGENTS)
    out = np.zeros((len(scenes), 200, data.actions.shape[1]))
    out[data.episode, data.step] = data.actions
    return out


def raw_engine(scenes, n: int, agents: str, seconds: float, expert: np.ndarray | None = None) -> float:
    """`BatchedSim.step` rate with a constant control action (`RawWorkload`'s ``constant``), or replaying
    `expert` actions (S, 200, A) (then with the matching action type, so every scene drives the same
    path whatever the type)."""
    if expert is None:
        return rate(RawWorkload(scenes, n, "constant", agents).step, seconds, n)
    action_type = "control" if expert is None or expert.shape[-1] == 2 else "trajectory"
    config = EnvConfig.from_kwargs(
        agents=agents, max_agents=AGENTS, action_type=action_type, termination=NO_TERMINATION
    )
    sim = BatchedSim(config, n, scenes, len(scenes))
    ids = np.arange(n) % len(scenes)
    sim.reset(range(n), ids)
    acts, k = np.zeros((200, n, 1, sim.action_dim)), [0]
    acts[..., 0] = 0.2
    if expert is not None:
        acts[:, :, 0] = expert[ids].transpose(1, 0, 2)

    def step():
        if k[0] == 200:
            sim.reset(range(n), ids)
            k[0] = 0
        sim.step(acts[k[0]])
        k[0] += 1

    return rate(step, seconds, n)


def controller_alone(n: int, seconds: float) -> float:
    """Agent-steps per second of the trajectory controller's batched kernel (`track_batch`), B = n."""
    config = EnvConfig.from_kwargs(action_type="trajectory")
    cp = controller.controller_params(config.trajectory, config.controller)
    shape = controller.work_shape(8, config.trajectory.steps(), int(cp[controller.C_PREVIEW]))
    x = 10.0 * config.trajectory.spacing * np.arange(1, 9)
    acts = np.zeros((n, 1, config.trajectory.action_dim))
    acts[:] = encode_poses(np.stack([x, 0 * x, 0 * x], axis=1), config.trajectory)  # straight, 10 m/s
    agent = np.zeros((n, 1, 8))
    agent[..., 3] = np.linspace(5.0, 25.0, n)[:, None]
    work, cmds, flags = np.zeros((n, 1, *shape)), np.zeros((n, 1, 2)), np.zeros((n, 1), dtype=np.int64)
    dyn = config.dynamics.to_array()
    kernel = controller.track_batch if n >= engine.PARALLEL_MIN_SCENES else controller.track_batch_serial
    return rate(lambda: kernel(acts, agent, dyn, cp, 0.1, work, cmds, flags), seconds, n)


def single_env(scenes, agents: str, seconds: float) -> float:
    env = gym.make("AlpaDrive-v0", scenarios=scenes, agents=agents, max_agents=AGENTS)
    env.reset(seed=0)
    for i in range(len(scenes)):
        env.unwrapped.sim.compile(i)
    acts, k = actions_for(env.action_space), [0]

    def step():
        k[0] += 1
        _, _, te, tr, _ = env.step(acts[k[0] % 256])
        if te or tr:
            env.reset()

    return rate(step, seconds)


def highway(seconds: float) -> float | None:
    try:
        import highway_env  # noqa: F401
    except ImportError:
        return None
    env = gym.make("highway-fast-v0")
    env.reset(seed=0)

    def step():
        _, _, te, tr, _ = env.step(env.action_space.sample())
        if te or tr:
            env.reset()

    return rate(step, seconds)


def profile_vector_step(scenes, n: int, agents: str) -> None:
    """Prints where one native vector step of `n` envs spends its time."""
    env = gym.make_vec("AlpaDrive-v0", num_envs=n, scenarios=scenes, agents=agents, max_agents=AGENTS)
    env.reset(seed=0)
    for i in range(len(scenes)):
        env.sim.compile(i)
    acts = actions_for(env.action_space)
    for a in acts[:20]:
        env.step(a)
    reps = 300
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(reps):
        env.step(acts[i % 256])
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    kernel = sum(v[2] for k, v in stats.stats.items() if k[2] in ("step_batch", "reset_batch"))
    print(f"\nOne vector step, num_envs={n}, random actions (episodes end and reset often):")
    print(f"{total / reps * 1e6:,.0f} us per step (profiled); engine kernels {kernel / total:.0%} of it")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
    print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:3000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--agents", default="replay", choices=("replay", "idm"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    scenes = scenes_with_agents(64, AGENTS)
    hw = highway(args.seconds)
    experts = {t: expert_actions(scenes, t, args.agents) for t in ("control", "trajectory")}
    rows = []
    for n in args.sizes:
        for workload in ("constant", "random"):
            env, vector_step = vector_env(scenes, n, workload, "native", args.agents)
            steps = {"native": vector_step, "raw": RawWorkload(scenes, n, workload, args.agents).step}
            if workload == "random":
                steps["kept"] = RawWorkload(scenes, n, workload, args.agents, loads="kept").step
                # The same scenes listed more than once, so that there are more than slots: the bank
                # keys scenes by index, so each listing is its own scene to load.
                listed = scenes * (n // len(scenes) + 2)
                steps["copied"] = RawWorkload(listed, n, workload, args.agents, loads="copied").step
            rates = interleaved_rates(steps, args.seconds, n)
            env.close()
            native, raw = rates["native"], rates["raw"]
            sync = vector_rate(scenes, n, workload, min(args.seconds, 1.0), "sync", args.agents)
            ratios = f"{native / raw:.0%} of raw, {native / sync:.1f}x sync"
            rows.append((f"gym.make_vec native, num_envs={n}, {workload}", native, ratios))
            rows.append((f"raw engine BatchedSim.step, B={n}, {workload}", raw, ""))
            rows.append((f"SyncVectorEnv of single envs, num_envs={n}, {workload}", sync, ""))
            if workload == "random":
                kept, copied = rates["kept"], rates["copied"]
                loads = f"scene loads take {1 - raw / kept:.0%} of the random workload's raw step"
                rows.append((f"raw engine, B={n}, random, resets keep the scene", kept, loads))
                loads = f"loads take {1 - copied / kept:.0%} of the step where each one copies its scene"
                rows.append((f"raw engine, B={n}, random, every load copied", copied, loads))
        control = raw_engine(scenes, n, args.agents, args.seconds, experts["control"])
        traj = raw_engine(scenes, n, args.agents, args.seconds, experts["trajectory"])
        alone = controller_alone(n, min(args.seconds, 1.0))
        cost = (
            f"controller +{(1 / traj - 1 / control) * 1e6:.1f} us per agent-step over expert control "
            f"actions ({control:,.0f}/s); its kernel alone {1e6 / alone:.1f} us"
        )
        rows.append((f"raw engine, expert trajectory actions, B={n}", traj, cost))
    rows.append(("gym.make single env.step", single_env(scenes, args.agents, args.seconds), ""))
    if hw is not None:
        rows.append(("highway-env highway-fast-v0 (5 vehicles observed)", hw, ""))
    print(f"\nagents={args.agents}, {AGENTS} agents per scene, {args.seconds:.0f} s per row, one process\n")
    head = f"| {'what':<48} | {'env-steps/s':>12} | {'agent-steps/s':>14} | {'x highway-fast':>14} | notes"
    print(head)
    print("|" + "-" * 50 + "|" + "-" * 14 + "|" + "-" * 16 + "|" + "-" * 16 + "|------")
    for name, r, note in rows:
        ratio = f"{r / hw:,.0f}x" if hw else "n/a"
        agent_rate = f"{r * AGENTS:,.0f}" if "highway" not in name else "-"
        print(f"| {name:<48} | {r:>12,.0f} | {agent_rate:>14} | {ratio:>14} | {note}")
    if hw is None:
        print("\nhighway-env is not installed (pip install highway-env): no highway ratio")
    if args.profile:
        profile_vector_step(scenes, 64, args.agents)


if __name__ == "__main__":
    main()
