"""PettingZoo adapter: any registered env as a PettingZoo ``ParallelEnv`` (numpy in, numpy out).

    from jaxmarl_lab import to_pettingzoo
    env = to_pettingzoo("bargain", render_mode="rgb_array")
    obs, infos = env.reset(seed=0)
    obs, rewards, terminations, truncations, infos = env.step({a: 0 for a in env.agents})

Why: other libraries (SB3/RLlib wrappers, SuperSuit, PettingZoo's own tests) speak PettingZoo;
this lets them use our envs one game at a time. It is not the fast path: every call is one jitted
``reset``/``step`` plus a device-to-host copy (train with the vmapped JAX envs instead).

Observations: an env whose ``action_mask`` can rule actions out (turn-based games, muted
speakers) gives each agent ``{"observation": f32[obs_dim], "action_mask": int8[num_actions]}``
(PettingZoo's convention for masked actions; ``mask_in_observation`` overrides), other envs give
the plain array. ``infos[agent]["action_mask"]`` always holds the mask. In turn-based games the
agent not to move has an all-zero mask and its action is ignored; an action outside the mask of
an agent that has a legal move raises ``ValueError``. The episode ends for all agents at once
(``info["terminated"]``/``info["truncated"]`` of the env), after which ``agents`` is empty.
Rewards are the env's per-agent rewards of that step.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import numpy as np
from pettingzoo import ParallelEnv

from jaxmarl_lab.env import Env
from jaxmarl_lab.spaces import Box, Discrete


def _gym_space(space) -> gymnasium.Space:
    if isinstance(space, Discrete):
        return gymnasium.spaces.Discrete(int(space.n))
    if isinstance(space, Box):
        dtype = np.dtype(space.dtype)
        low = np.broadcast_to(np.asarray(space.low, dtype), space.shape)
        high = np.broadcast_to(np.asarray(space.high, dtype), space.shape)
        return gymnasium.spaces.Box(low, high, tuple(space.shape), dtype)
    raise TypeError(f"no gymnasium equivalent of {space!r}")


def _masks_actions(env: Env) -> bool:
    return type(env).action_mask is not Env.action_mask


class JaxParallelEnv(ParallelEnv):
    """A jaxmarl_lab env behind PettingZoo's ParallelEnv API (see the module docstring)."""

    def __init__(self, env: Env, params=None, render_mode: str | None = None,
                 mask_in_observation: bool | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env = env
        self.params = env.default_params if params is None else params
        self.render_mode = render_mode
        self.possible_agents = list(env.agents)
        self.agents: list[str] = []
        self.metadata = {"name": env.name, "render_modes": ["rgb_array"], "is_parallelizable": True}
        self.mask_in_observation = _masks_actions(env) if mask_in_observation is None else mask_in_observation
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._mask = jax.jit(env.action_mask)
        self._render = jax.jit(env.render)
        self._key = jax.random.key(0)
        self._state = None

    @functools.cache  # noqa: B019 - PettingZoo requires the identical object per agent
    def observation_space(self, agent: str) -> gymnasium.Space:
        base = _gym_space(self.env.observation_space(self.params))
        if not self.mask_in_observation:
            return base
        num_actions = int(self.env.action_space(self.params).n)
        mask = gymnasium.spaces.Box(0, 1, (num_actions,), np.int8)
        return gymnasium.spaces.Dict({"observation": base, "action_mask": mask})

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> gymnasium.Space:
        return _gym_space(self.env.action_space(self.params))

    def _observations(self, obs: np.ndarray, mask: np.ndarray) -> tuple[dict, dict]:
        dtype = self.observation_space(self.possible_agents[0])
        dtype = (dtype["observation"] if self.mask_in_observation else dtype).dtype
        observations, infos = {}, {}
        for i, agent in enumerate(self.possible_agents):
            agent_obs = np.asarray(obs[i], dtype)
            agent_mask = mask[i].astype(np.int8)
            observations[agent] = ({"observation": agent_obs, "action_mask": agent_mask}
                                   if self.mask_in_observation else agent_obs)
            infos[agent] = {"action_mask": agent_mask}
        return observations, infos

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._key = jax.random.key(seed)
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset(key, self.params)
        self.agents = list(self.possible_agents)
        return self._observations(np.asarray(obs), np.asarray(self._mask(self._state, self.params)))

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._state is None or not self.agents:
            raise RuntimeError("call reset() first (the episode is over or has not started)")
        unknown = set(actions) - set(self.agents)
        if unknown:
            raise ValueError(f"actions for unknown or finished agents {sorted(unknown)}; agents: {self.agents}")
        mask = np.asarray(self._mask(self._state, self.params))
        space = self.env.action_space(self.params)
        joint = []
        for i, agent in enumerate(self.possible_agents):
            if agent not in actions:
                if mask[i].any():
                    raise ValueError(f"no action for {agent}, who has legal actions this step")
                joint.append(np.zeros(space.shape, np.dtype(space.dtype)))
                continue
            action = np.asarray(actions[agent], np.dtype(space.dtype))
            if isinstance(space, Discrete):
                if action.shape != () or not 0 <= int(action) < space.n:
                    raise ValueError(f"action of {agent} must be an int in [0, {space.n}), got {actions[agent]!r}")
                if mask[i].any() and not mask[i][int(action)]:
                    legal = np.flatnonzero(mask[i]).tolist()
                    raise ValueError(f"illegal action {int(action)} for {agent}; legal: {legal}")
            joint.append(action)
        self._key, key = jax.random.split(self._key)
        obs, self._state, reward, done, info = self._step(key, self._state, np.stack(joint), self.params)
        obs, reward, done = np.asarray(obs), np.asarray(reward), bool(done)
        truncated = bool(np.asarray(info.get("truncated", False)).any()) if done else False
        terminated = done and not truncated
        observations, infos = self._observations(obs, np.asarray(self._mask(self._state, self.params)))
        agents = self.agents
        rewards = {a: float(reward[self.possible_agents.index(a)]) for a in agents}
        terminations = dict.fromkeys(agents, terminated)
        truncations = dict.fromkeys(agents, truncated)
        observations = {a: observations[a] for a in agents}
        infos = {a: infos[a] for a in agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        return np.asarray(self._render(self._state, self.params))

    def close(self) -> None:
        self._state = None

    def state(self) -> np.ndarray:
        """The env's global state (centralised critics)."""
        return np.asarray(self.env.global_state(self._state, self.params))


def to_pettingzoo(env: str | Env, params=None, render_mode: str | None = None,
                  mask_in_observation: bool | None = None, **kwargs) -> JaxParallelEnv:
    """A PettingZoo ``ParallelEnv`` of a registered env name (``kwargs`` go to ``make``) or an env."""
    if isinstance(env, str):
        from jaxmarl_lab.registry import make

        env = make(env, **kwargs)
    elif kwargs:
        raise TypeError(f"keyword arguments {sorted(kwargs)} only apply to an env name")
    return JaxParallelEnv(getattr(env, "unwrapped", env), params, render_mode, mask_in_observation)
