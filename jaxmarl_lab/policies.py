"""Policies: one protocol for trained networks, scripted baselines and (later) LLM agents.

A :class:`Policy` is a pytree whose only traced leaves are ``params``; its ``act_fn`` is static.
``act_fn(params, obs, mask, key) -> action`` handles *one* agent's observation and legal-action
mask and is pure, so it can be vmapped over games, used inside ``jit`` and ``lax.scan``, and
passed to :func:`jaxmarl_lab.evaluate` / :func:`jaxmarl_lab.crossplay` as an ordinary argument
(new params do not recompile; a different ``act_fn`` does).

Give ``act_fn`` a stable identity (a module-level function or a frozen dataclass instance) so
that two policies built the same way share one compiled program.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

#: logit given to illegal actions; finite so an all-illegal row still yields a valid distribution
MASKED_LOGIT = -1e9


@struct.dataclass
class Policy:
    """``params`` plus a pure ``act_fn(params, obs, mask, key) -> action`` for one agent."""

    params: Any
    act_fn: Callable = struct.field(pytree_node=False)
    name: str = struct.field(pytree_node=False, default="policy")

    def act(self, params, obs: jax.Array, mask: jax.Array, key: jax.Array) -> jax.Array:
        return self.act_fn(params, obs, mask, key)

    def __call__(self, obs: jax.Array, mask: jax.Array, key: jax.Array) -> jax.Array:
        """Act with the policy's own params."""
        return self.act_fn(self.params, obs, mask, key)


def initial_memory(policy: Policy):
    """The memory a policy starts each game with: ``()`` for memoryless policies. Policies whose
    ``act_fn`` defines ``initial_memory(params)`` (decision-time search, which needs what it has seen
    earlier in the game) are called with ``memory=`` and return ``(action, new_memory)``."""
    init = getattr(policy.act_fn, "initial_memory", None)
    return () if init is None else init(policy.params)


def act_in_episode(policy: Policy, obs: jax.Array, mask: jax.Array, key: jax.Array, episode_key: jax.Array,
                   memory=()):
    """One decision of ``policy`` -> (action, memory). Policies whose ``act_fn.per_episode`` is true
    (mixtures that draw one component per game) also get ``episode_key``, which stays fixed for the
    whole game; policies with memory (see :func:`initial_memory`) get and update ``memory``. Every
    policy is called at every step of a game (with an all-False mask when it does not move), so a
    memory sees every observation of its seat."""
    kwargs = {"episode_key": episode_key} if getattr(policy.act_fn, "per_episode", False) else {}
    if getattr(policy.act_fn, "initial_memory", None) is not None:
        return policy.act_fn(policy.params, obs, mask, key, memory=memory, **kwargs)
    return policy.act_fn(policy.params, obs, mask, key, **kwargs), memory


def masked_logits(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """Replace the logits of illegal actions by a large negative number."""
    return jnp.where(mask, logits, MASKED_LOGIT)


def uniform_legal_action(key: jax.Array, mask: jax.Array) -> jax.Array:
    """Uniform over the True entries of the last axis of ``mask`` (over all entries if none is True).

    One uniform draw per row picks the k-th legal action: far cheaper than Gumbel noise per action.
    """
    mask = jnp.where(mask.any(axis=-1, keepdims=True), mask, True)
    count = mask.sum(axis=-1)
    u = jax.random.uniform(key, count.shape)
    k = jnp.minimum(jnp.floor(u * count).astype(jnp.int32), count - 1)
    return jnp.argmax(jnp.cumsum(mask, axis=-1) > k[..., None], axis=-1).astype(jnp.int32)


def first_best(scores: jax.Array, mask: jax.Array, maximise: bool = True) -> jax.Array:
    """Index of the first legal maximum (or minimum) of ``scores``; -1 if nothing is legal."""
    fill = -jnp.inf if maximise else jnp.inf
    masked = jnp.where(mask, scores, fill)
    best = jnp.argmax(masked) if maximise else jnp.argmin(masked)
    return jnp.where(mask.any(), best, -1).astype(jnp.int32)


@dataclass(frozen=True)
class RandomAct:
    """Uniform over the legal actions (of a discrete action space)."""

    def __call__(self, params, obs, mask, key):
        return uniform_legal_action(key, mask)

    def action_probs(self, params, obs, mask):
        mask = jnp.where(mask.any(axis=-1, keepdims=True), mask, True)
        return mask / mask.sum(axis=-1, keepdims=True)


def random_policy(env) -> Policy:
    """Uniform over legal actions at every decision (the baseline named ``random`` of every env)."""
    return Policy(None, RandomAct(), "random")


def baseline(env, name: str, **kwargs) -> Policy:
    """One of ``env``'s scripted policies by name (``env.baseline_policies`` lists them)."""
    table = getattr(env, "baseline_policies", {})
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown baseline {name!r} for env {env.name!r}.{hint} Valid baselines: {', '.join(table) or '(none)'}"
        )
    factory = table[name]
    accepted = [p for p in inspect.signature(factory).parameters if p != "env"]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise TypeError(
            f"unknown keyword(s) {', '.join(map(repr, unknown))} for baseline {name!r}; "
            f"valid keywords: {', '.join(accepted) or '(none)'}"
        )
    return factory(getattr(env, "unwrapped", env), **kwargs)


def list_baselines(env) -> list[str]:
    return list(getattr(env, "baseline_policies", {}))
