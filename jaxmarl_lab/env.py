"""The environment contract shared by every env in ``envs/``.

Functional and agent-stacked: static configuration lives in the constructor, dynamic
parameters in a ``params`` pytree (a ``flax.struct`` dataclass that can be vmapped), and every
per-agent quantity has the agents on the leading axis::

    obs, state = env.reset(key, params)                       # obs [num_agents, ...]
    obs, state, reward, done, info = env.step(key, state, action, params)
    # action [num_agents] int; reward f32[num_agents]; done bool[]
    # info["terminated"], info["truncated"] kept apart so truncation can bootstrap

``step`` never auto-resets (see ``jaxmarl_lab.wrappers``). Turn-based games follow the same
contract: every agent observes every step, ``acting`` says whose action takes effect, and every
agent receives its own reward every step.

Subclasses implement ``reset_env``, ``step_env``, ``action_mask``, ``acting``,
``global_state``, ``render``, ``observation_space``, ``action_space`` and ``default_params``; the
base class validates actions at trace time and fills in ``params`` when omitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.spaces import Box, Discrete

Obs = jax.Array
State = Any
Params = Any
StepResult = tuple[Obs, State, jax.Array, jax.Array, dict[str, jax.Array]]


class Env:
    """Base class of all jaxmarl_lab environments (see the module docstring for the contract)."""

    #: registry name, set by subclasses
    name: ClassVar[str] = "env"
    #: scripted policies of this env: name -> factory(env, **kwargs) -> Policy
    baseline_policies: ClassVar[dict[str, Callable[..., Any]]] = {}

    num_agents: int
    agents: tuple[str, ...]
    #: upper bound on the number of steps of one episode (evaluation scans this many steps)
    max_steps: int

    # ---- to implement -------------------------------------------------------------------
    @property
    def default_params(self) -> Params:
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params: Params) -> tuple[Obs, State]:
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: State, action: jax.Array, params: Params) -> StepResult:
        raise NotImplementedError

    def action_mask(self, state: State, params: Params | None = None) -> jax.Array:
        """bool[num_agents, num_actions]; all True where nothing is masked."""
        n = self.action_space(params).n
        return jnp.ones((self.num_agents, n), dtype=bool)

    def acting(self, state: State, params: Params | None = None) -> jax.Array:
        """bool[num_agents]: whose action takes effect this step (all agents in simultaneous games)."""
        return jnp.ones((self.num_agents,), dtype=bool)

    def global_state(self, state: State, params: Params | None = None) -> jax.Array:
        raise NotImplementedError

    def render(self, state: State, params: Params | None = None) -> jax.Array:
        raise NotImplementedError

    def observation_space(self, params: Params | None = None) -> Box:
        raise NotImplementedError

    def action_space(self, params: Params | None = None) -> Discrete | Box:
        raise NotImplementedError

    def outcome_statistics(self, state: State, params: Params | None = None) -> dict[str, jax.Array]:
        """Per-episode outcome indicators read off a *final* state (e.g. accept/walk); {} if none."""
        return {}

    def describe(self, state: State, params: Params | None = None) -> str:
        """A plain-text account of one (unbatched) state, for logs and LLM prompts."""
        return repr(state)

    # ---- provided -----------------------------------------------------------------------
    def reset(self, key: jax.Array, params: Params | None = None) -> tuple[Obs, State]:
        """Start an episode: returns (obs [num_agents, ...], state)."""
        return self.reset_env(key, self.default_params if params is None else params)

    def step(self, key: jax.Array, state: State, action, params: Params | None = None) -> StepResult:
        """Advance one step (no auto-reset). The action's shape and dtype are checked at trace time."""
        params = self.default_params if params is None else params
        return self.step_env(key, state, self.check_action(action, params), params)

    def check_action(self, action, params: Params | None = None) -> jax.Array:
        """Validate shape and dtype statically; values are the env's business (it cannot raise in jit)."""
        action = jnp.asarray(action)
        space = self.action_space(params)
        expected = (self.num_agents, *space.shape)
        if action.shape != expected:
            raise ValueError(
                f"{self.name}: action must have shape {expected} (num_agents={self.num_agents}"
                f"{', per-agent shape ' + str(space.shape) if space.shape else ''}), got {action.shape}. "
                "For a batch of envs, vmap the env (jaxmarl_lab.VmapEnv) instead of passing a batch."
            )
        if isinstance(space, Discrete):
            if not jnp.issubdtype(action.dtype, jnp.integer):
                raise TypeError(f"{self.name}: discrete actions must be integers, got dtype {action.dtype}")
            return action.astype(jnp.int32)
        if not jnp.issubdtype(action.dtype, jnp.floating):
            action = action.astype(jnp.float32)
        return action

    @property
    def num_actions(self) -> int:
        return self.action_space().n

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.observation_space().shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, num_agents={self.num_agents})"

    # Envs built with the same static options compare equal, so jitted functions that take the env
    # as a static argument (evaluate, crossplay) reuse one compiled program. Subclasses set
    # ``self._config`` to a hashable tuple of their options; without it, identity is used.
    def __hash__(self) -> int:
        return hash((type(self), getattr(self, "_config", id(self))))

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return False
        return getattr(self, "_config", id(self)) == getattr(other, "_config", id(other))


def tree_select(pred: jax.Array, on_true, on_false):
    """Leafwise ``jnp.where(pred, a, b)`` over two pytrees of the same structure (pred broadcasts)."""

    def select(a, b):
        p = jnp.reshape(pred, jnp.shape(pred) + (1,) * (jnp.ndim(a) - jnp.ndim(pred)))
        return jnp.where(p, a, b)

    return jax.tree_util.tree_map(select, on_true, on_false)


def to_numpy(tree):
    """Device arrays -> numpy (for host-side code such as ``describe``)."""
    return jax.tree_util.tree_map(np.asarray, tree)
