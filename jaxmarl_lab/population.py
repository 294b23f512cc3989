"""Populations of policies and their mixtures (PSRO, Ex²PSRO, FCP).

A population is a stack of parameter sets of *one* network architecture: every leaf has a
leading axis [K, ...]. Stacks have a fixed capacity, so the programs that use them compile once;
unused slots carry weight 0.

* :class:`MixtureAct` / :func:`mixture_policy`: a meta-strategy profile as a :class:`Policy`.
  Seat s plays component k with probability ``weights[s, k]``, drawn **once per game** from the
  episode key that :mod:`jaxmarl_lab.evaluation` hands to ``per_episode`` policies (the original
  re-drew the component at every decision, which is a different strategy). Exact evaluation
  (:mod:`jaxmarl_lab.game_theory`) weighs the components by their own reach probabilities, which
  is exactly the mixed strategy.
* :func:`pair_returns`: per-game returns of many (seat-0 params, seat-1 params) pairs in one
  jitted program: the cells of an empirical payoff tensor.
* :func:`stack_params`, :func:`padded_size`, :func:`take_components`: stack bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.networks import _logits, _network_spec, make_network
from jaxmarl_lab.policies import Policy, masked_logits


def stack_params(params_list: list) -> Any:
    """[p_0, ..., p_{K-1}] (same structure) -> one pytree with leading axis K."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *params_list)


def padded_size(n: int) -> int:
    """The next power of two >= n: populations are passed to compiled programs in these sizes, so
    a population growing one policy per iteration recompiles only log2(K) times."""
    return 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))


def take_components(stack, n: int, size: int | None = None):
    """The first ``n`` entries of a stack, padded (by repeating entry 0) to ``size`` entries."""
    size = padded_size(n) if size is None else size
    index = np.r_[np.arange(n), np.zeros(size - n, np.int64)]
    return jax.tree_util.tree_map(lambda x: x[index], stack)


def pad_weights(weights, size: int) -> np.ndarray:
    out = np.zeros(size, np.float32)
    out[: len(weights)] = weights
    return out


@dataclass(frozen=True)
class MixtureAct:
    """Seat s plays component k of ``params["components"][s]`` with probability ``params["weights"][s, k]``.

    ``params = {"components": [2, K, ...] network params, "weights": f32[2, K]}``; the seat is read
    from ``obs[seat_slot]``. With an ``episode_key`` (evaluate, crossplay) the component is drawn
    once per game; without one (someone else's rollout), once per decision.
    """

    network_spec: tuple[tuple[str, Any], ...]
    seat_slot: int
    max_components: int
    sample: bool = True
    per_episode = True

    @property
    def network(self):
        return make_network(**dict(self.network_spec))

    def _seat(self, obs):
        return jnp.round(obs[self.seat_slot]).astype(jnp.int32)

    def component_logits(self, params, obs, mask) -> jax.Array:
        """Masked logits [K, A] of every component of the observer's seat."""
        network = self.network
        # Every seat's components, then pick the observer's seat: indexing the parameters by a
        # (vmapped) seat would copy the whole population once per game.
        per_seat = jax.vmap(jax.vmap(lambda p: _logits(network.apply(p, obs[None]))[0]))(params["components"])
        return masked_logits(per_seat[self._seat(obs)], mask[None])

    def component_probs(self, params, obs, mask) -> tuple[jax.Array, jax.Array]:
        """(action probabilities [K, A] of every component, mixture weights [K]) for the observer's seat."""
        return jax.nn.softmax(self.component_logits(params, obs, mask)), params["weights"][self._seat(obs)]

    def __call__(self, params, obs, mask, key, episode_key=None):
        seat = self._seat(obs)
        key_component, key_action = jax.random.split(key)
        if episode_key is not None:  # independent per seat, fixed for the game
            key_component = jax.random.fold_in(episode_key, seat)
        weights = params["weights"][seat]
        component = jax.random.categorical(key_component, jnp.log(jnp.maximum(weights, 1e-30)))
        logits = self.component_logits(params, obs, mask)[component]
        action = jax.random.categorical(key_action, logits) if self.sample else jnp.argmax(logits)
        return action.astype(jnp.int32)

    def spec(self) -> dict:
        return {"kind": "mixture", "network": dict(self.network_spec), "seat_slot": self.seat_slot,
                "max_components": self.max_components}

    @classmethod
    def from_spec(cls, spec: dict, sample: bool = True) -> MixtureAct:
        return cls(_network_spec(spec["network"]), spec["seat_slot"], spec["max_components"], sample)

    def init_params(self, key: jax.Array, obs_dim: int):
        one = self.network.init(key, jnp.zeros((obs_dim,)))
        stack = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (2, self.max_components) + x.shape), one)
        return {"components": stack, "weights": jnp.zeros((2, self.max_components), jnp.float32)}


def mixture_policy(network_kwargs: dict, components, weights, *, seat_slot: int, sample: bool = True,
                   name: str = "mixture") -> Policy:
    """A meta-strategy profile as a Policy: ``components`` [2, K, ...], ``weights`` [2, K] (rows sum to 1)."""
    max_components = int(np.shape(weights)[1])
    act = MixtureAct(_network_spec(network_kwargs), int(seat_slot), max_components, sample)
    return Policy({"components": components, "weights": jnp.asarray(weights, jnp.float32)}, act, name)


@partial(jax.jit, static_argnames=("env", "network_spec", "num_games"))
def _pair_returns(env, network_spec, row_params, col_params, num_games: int, key, env_params):
    from jaxmarl_lab.evaluation import _play_episode

    network = make_network(**dict(network_spec))

    def act(params, obs, mask, k):
        logits = masked_logits(_logits(network.apply(params, obs[None]))[0], mask)
        return jax.random.categorical(k, logits).astype(jnp.int32)

    def games(p0, p1):
        def joint_act(obs, mask, k, episode_key, memory):
            k0, k1 = jax.random.split(k)
            return jnp.stack([act(p0, obs[0], mask[0], k0), act(p1, obs[1], mask[1], k1)]), memory

        keys = jax.random.split(key, num_games)  # common random numbers across pairs
        return jax.vmap(lambda k: _play_episode(env, joint_act, k, env_params))(keys)

    returns, lengths, outcomes = jax.vmap(games)(row_params, col_params)
    return returns, outcomes


def pair_returns(env, network_kwargs: dict, row_params, col_params, num_games: int, key: jax.Array,
                 env_params=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-game returns f32[P, G, 2] (and outcome indicators [P, G]) of P pairs: pair p seats a
    network with ``row_params[p]`` as player 0 and one with ``col_params[p]`` as player 1, both
    sampling their actions. The number of pairs is padded to a power of two (fewer compilations)."""
    count = int(jax.tree_util.tree_leaves(row_params)[0].shape[0])
    size = padded_size(count)
    pad = lambda stack: take_components(stack, count, size) if size != count else stack
    env_params = env.default_params if env_params is None else env_params
    spec = _network_spec(network_kwargs)
    returns, outcomes = jax.device_get(
        _pair_returns(env, spec, pad(row_params), pad(col_params), int(num_games), key, env_params))
    return np.asarray(returns[:count]), {k: np.asarray(v[:count]) for k, v in outcomes.items()}
