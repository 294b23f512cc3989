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


@struct.dataclass
class ScriptedSeatsState:
    env_state: State
    obs: jax.Array  # [all agents, ...] the full observation (scripted seats act on their rows)
    seat_params: tuple  # params of each scripted seat (redrawn per episode where the policy samples them)


class ScriptedSeats(Wrapper):
    """The env as the learners see it when some seats are played by fixed policies.

    ``seats`` maps an agent index to a :class:`jaxmarl_lab.Policy`; the remaining agents (in
    ``env.agents`` order) are the learners: ``num_agents``, ``agents``, observations, masks,
    rewards and actions cover only them. Scripted seats act inside ``step`` on their own
    observation rows. A seat whose ``act_fn`` has ``sample_params(key)`` gets fresh params at every
    reset (e.g. Bucket Brigade's ``random_genome``; put :class:`AutoReset` outside this wrapper).
    ``info["all_rewards"]`` keeps every seat's reward; ``global_state`` and ``outcome_statistics`` are the full env's.
    """

    def __init__(self, env, seats: dict):
        super().__init__(env)
        total = env.num_agents
        bad = [i for i in seats if not 0 <= int(i) < total]
        if bad:
            raise ValueError(f"scripted seat index {bad[0]} out of range for {total} agents")
        self.seats = {int(i): p for i, p in sorted(seats.items())}
        self.learners = tuple(i for i in range(total) if i not in self.seats)
        if not self.learners:
            raise ValueError("every seat is scripted: leave at least one learner")
        self.num_agents = len(self.learners)
        self.agents = tuple(env.agents[i] for i in self.learners)
        self._learner_index = jnp.asarray(self.learners)

    def inner_state(self, state: ScriptedSeatsState) -> State:
        return state.env_state

    def _draw_params(self, key: jax.Array) -> tuple:
        keys = jax.random.split(key, len(self.seats))
        out = []
        for k, policy in zip(keys, self.seats.values(), strict=True):
            sampler = getattr(policy.act_fn, "sample_params", None)
            out.append(sampler(k) if sampler is not None else policy.params)
        return tuple(out)

    def reset(self, key: jax.Array, params: Params | None = None):
        key_env, key_seats = jax.random.split(key)
        obs, env_state = self._env.reset(key_env, params)
        return obs[self._learner_index], ScriptedSeatsState(env_state, obs, self._draw_params(key_seats))

    def full_action(self, key: jax.Array, state: ScriptedSeatsState, action, params: Params | None = None):
        """The joint action of all seats: the learners' ``action`` plus the scripted seats' choices."""
        action = jnp.asarray(action)
        if action.shape[:1] != (self.num_agents,):
            raise ValueError(f"ScriptedSeats: actions of the {self.num_agents} learners expected, got {action.shape}")
        mask = self._env.action_mask(state.env_state, params)
        keys = jax.random.split(key, len(self.seats))
        joint = jnp.zeros((self._env.num_agents,) + action.shape[1:], action.dtype).at[self._learner_index].set(action)
        for k, (seat, policy), seat_params in zip(keys, self.seats.items(), state.seat_params, strict=True):
            joint = joint.at[seat].set(policy.act(seat_params, state.obs[seat], mask[seat], k).astype(action.dtype))
        return joint

    def step(self, key: jax.Array, state: ScriptedSeatsState, action, params: Params | None = None):
        key_seats, key_env = jax.random.split(key)
        joint = self.full_action(key_seats, state, action, params)
        obs, env_state, reward, done, info = self._env.step(key_env, state.env_state, joint, params)
        info = dict(info)
        info["all_rewards"] = reward
        if "final_observation" in info:
            info["final_observation"] = info["final_observation"][self._learner_index]
        idx = self._learner_index
        return obs[idx], ScriptedSeatsState(env_state, obs, state.seat_params), reward[idx], done, info

    def action_mask(self, state, params=None):
        return self._env.action_mask(state.env_state, params)[self._learner_index]

    def acting(self, state, params=None):
        return self._env.acting(state.env_state, params)[self._learner_index]


def with_opponents(env, opponents: str | list[str] | tuple[str, ...]):
    """``env`` with scripted baselines in its last seats (:class:`ScriptedSeats`); learners keep the first.

    ``opponents``: baseline names (``"random,firefighter"`` or a list), or a count ``"3"`` that
    takes the first entries of the env's ``default_opponents`` (Bucket Brigade: the original's
    random_genome, random_genome, firefighter, coordinator). Empty or ``"0"``: ``env`` unchanged.
    """
    from jaxmarl_lab.policies import baseline

    names = [n.strip() for n in opponents.split(",") if n.strip()] if isinstance(opponents, str) else list(opponents)
    if len(names) == 1 and names[0].isdigit():
        count = int(names[0])
        defaults = tuple(getattr(env, "default_opponents", ()))
        if count > len(defaults):
            raise ValueError(f"opponents={count}: {env.name} has {len(defaults)} default opponents "
                             f"({', '.join(defaults) or 'none'}); name them instead, e.g. 'random,random'")
        names = list(defaults[:count])
    if not names:
        return env
    if len(names) >= env.num_agents:
        raise ValueError(f"{len(names)} opponents leave no learner among {env.num_agents} agents")
    first = env.num_agents - len(names)
    return ScriptedSeats(env, {first + i: baseline(env, name) for i, name in enumerate(names)})
