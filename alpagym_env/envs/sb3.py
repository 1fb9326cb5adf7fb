"""An SB3 `VecEnv` over the native batch: `PPO("MlpPolicy", AlpaDriveSB3VecEnv(16))`, no subprocesses.

Optional adapter: importing this module imports stable-baselines3 (and so torch); the rest of
`alpagym_env` never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from alpagym_env.envs.infos import INFO_KEY
from alpagym_env.envs.vector_env import AlpaDriveVectorEnv


class AlpaDriveSB3VecEnv(VecEnv):
    """`num_envs` AlpaDrive sub-envs stepped by one engine call, with SB3's conventions.

    Finished sub-envs reset in the same step; their last observation is in
    ``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]`` marks horizon
    truncation, and ``infos[i]["alpagym"]`` carries the episode's closed-loop metrics, return ``r`` and
    length ``l``. A copy goes in SB3's own ``infos[i]["episode"]`` (what its logger reads for
    ``ep_rew_mean``); a `VecMonitor` on top replaces that with its ``{r, l, t}`` and keeps ``alpagym``.

    Args:
        num_envs: Sub-envs.
        **kwargs: As `AlpaDriveEnv` (``suite``, ``scenarios``, ``reward``, ``agents``, ...).
    """

    def __init__(self, num_envs: int = 8, **kwargs: Any) -> None:
        self.venv = AlpaDriveVectorEnv(num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        self.render_mode = self.venv.render_mode
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = terminated | truncated
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            final = infos["final_info"]
            out[i] = {
                "terminal_observation": infos["final_obs"][i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                INFO_KEY: {k: v[i] for k, v in final[INFO_KEY].items() if not k.startswith("_")},
            }
            out[i]["episode"] = dict(out[i][INFO_KEY])
        return obs, rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list[Any]:
        method = getattr(self.venv, method_name)
        return [method(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs
