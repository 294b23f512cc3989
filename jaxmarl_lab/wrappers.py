"""Wrappers around the env contract: auto-reset, episode statistics, vectorisation.

Stack them as ``VmapEnv(EpisodeStats(AutoReset(env)), num_envs)``: auto-reset innermost so the
statistics see each episode's end, vmap outermost so everything inside is written for one game.
Every wrapper forwards unknown attributes to the env it wraps and exposes ``unwrapped``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxmarl_lab.env import Env, Params, State, tree_select


class Wrapper:
    """Forwards everything it does not override to the wrapped env."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def unwrapped(self) -> Env:
        return getattr(self._env, "unwrapped", self._env)

    def inner_state(self, state: State) -> State:
        """The wrapped env's state inside this wrapper's state (identity unless the wrapper adds fields)."""
        return state

    # state-reading methods see through wrappers that change the state type
    def action_mask(self, state, params=None):
        return self._env.action_mask(self.inner_state(state), params)

    def acting(self, state, params=None):
        return self._env.acting(self.inner_state(state), params)

    def global_state(self, state, params=None):
        return self._env.global_state(self.inner_state(state), params)

    def render(self, state, params=None):
        return self._env.render(self.inner_state(state), params)

    def outcome_statistics(self, state, params=None):
        return self._env.outcome_statistics(self.inner_state(state), params)

    def describe(self, state, params=None):
        return self._env.describe(self.inner_state(state), params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"


class AutoReset(Wrapper):
    """Resets finished episodes inside ``step``.

    The observation returned on a final step is the first observation of the next episode; the
    true final observation is kept in ``info["final_observation"]`` (for bootstrapping truncated
    episodes) and the final state's outcome statistics in ``info["final_outcome"]``; with
    ``final_global_state=True`` also ``info["final_global_state"]`` (for centralised critics).
    """

    def __init__(self, env, final_global_state: bool = False):
        super().__init__(env)
        self._final_global_state = bool(final_global_state)

    def step(self, key: jax.Array, state: State, action, params: Params | None = None):
        params = self._env.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs_step, state_step, reward, done, info = self._env.step(key_step, state, action, params)
        obs_reset, state_reset = self._env.reset(key_reset, params)
        info = dict(info)
        info["final_observation"] = obs_step
        info["final_outcome"] = self._env.outcome_statistics(state_step, params)
        if self._final_global_state:
            info["final_global_state"] = self._env.global_state(state_step, params)
        state = tree_select(done, state_reset, state_step)
        obs = tree_select(done, obs_reset, obs_step)
        return obs, state, reward, done, info


@struct.dataclass
class EpisodeStatsState:
    env_state: State
    episode_returns: jax.Array  # f32[num_agents], running sum of the current episode
    episode_length: jax.Array  # i32[]
    returned_episode_returns: jax.Array  # f32[num_agents], of the last finished episode
    returned_episode_length: jax.Array  # i32[]


class EpisodeStats(Wrapper):
    """Tracks per-episode returns and lengths; put it *outside* :class:`AutoReset`.

    Adds to ``info``: ``returned_episode`` (bool, an episode ended this step),
    ``returned_episode_returns`` f32[num_agents] and ``returned_episode_length`` (of the most recent
    finished episode, so averaging them where ``returned_episode`` is set gives episode means).
    """

    def inner_state(self, state: EpisodeStatsState) -> State:
        return state.env_state

    def reset(self, key: jax.Array, params: Params | None = None):
        obs, env_state = self._env.reset(key, params)
        zeros = jnp.zeros((self._env.num_agents,), jnp.float32)
        zero = jnp.zeros((), jnp.int32)
        return obs, EpisodeStatsState(env_state, zeros, zero, zeros, zero)

    def step(self, key: jax.Array, state: EpisodeStatsState, action, params: Params | None = None):
        obs, env_state, reward, done, info = self._env.step(key, state.env_state, action, params)
        returns = state.episode_returns + reward
        length = state.episode_length + 1
        new_state = EpisodeStatsState(
            env_state=env_state,
            episode_returns=jnp.where(done, 0.0, returns),
            episode_length=jnp.where(done, 0, length),
            returned_episode_returns=jnp.where(done, returns, state.returned_episode_returns),
            returned_episode_length=jnp.where(done, length, state.returned_episode_length),
        )
        info = dict(info)
        info["returned_episode"] = done
        info["returned_episode_returns"] = new_state.returned_episode_returns
        info["returned_episode_length"] = new_state.returned_episode_length
        return obs, new_state, reward, done, info


class VmapEnv(Wrapper):
    """``num_envs`` independent copies: reset takes one key, step takes actions [num_envs, num_agents].

    ``params`` are shared by all copies unless ``batched_params=True``, in which case every leaf of
    ``params`` carries a leading [num_envs] axis (e.g. one scenario per copy).
    """

    def __init__(self, env, num_envs: int, batched_params: bool = False):
        super().__init__(env)
        self.num_envs = int(num_envs)
        self._params_axis = 0 if batched_params else None

    def reset(self, key: jax.Array, params: Params | None = None):
        params = self._env.default_params if params is None else params
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.reset, in_axes=(0, self._params_axis))(keys, params)

    def step(self, key: jax.Array, state: State, action, params: Params | None = None):
        params = self._env.default_params if params is None else params
        action = jnp.asarray(action)
        if action.shape[:1] != (self.num_envs,):
            raise ValueError(f"VmapEnv: actions need a leading axis of num_envs={self.num_envs}, got {action.shape}")
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self._env.step, in_axes=(0, 0, 0, self._params_axis))(keys, state, action, params)

    def _vmapped(self, method):
        return lambda state, params=None: jax.vmap(
            lambda s, p: method(s, p), in_axes=(0, self._params_axis)
        )(state, self._env.default_params if params is None else params)

    def action_mask(self, state, params=None):
        return self._vmapped(self._env.action_mask)(state, params)

    def acting(self, state, params=None):
        return self._vmapped(self._env.acting)(state, params)

    def global_state(self, state, params=None):
        return self._vmapped(self._env.global_state)(state, params)

    def render(self, state, params=None):
        return self._vmapped(self._env.render)(state, params)

    def outcome_statistics(self, state, params=None):
        return self._vmapped(self._env.outcome_statistics)(state, params)
