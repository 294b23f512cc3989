"""The host-callback bridge: a jittable :class:`~jaxmarl_lab.Policy` whose actions come from a chat
model.

``act`` is one ``jax.pure_callback`` with ``vmap_method="broadcast_all"``: under ``vmap`` (games,
seats) and ``lax.scan`` (steps) each step makes **one** host call holding the whole batch. The host
renders one prompt per agent that has a legal move (rows whose mask is all False, e.g. the player
not to move or a finished game, are skipped), sends them concurrently, parses every answer to a
legal action (the env's documented fallback when it cannot, counted as a parse failure) and returns
the action array. Each request carries a seed drawn from the policy's key, so a rerun with the same
key is answered from the on-disk cache without any HTTP request.

The policy's ``params`` is its seat index (which agent it plays); :func:`jaxmarl_lab.evaluate` and
friends bind it per seat and batch all seats of one LLM policy into the same call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.llm.client import LLMClient, LLMError
from jaxmarl_lab.llm.config import LLMConfig
from jaxmarl_lab.llm.prompts import EnvPrompts, prompts_for
from jaxmarl_lab.policies import Policy


@dataclass
class LLMSession:
    """Host side of an LLM policy: the client, prompt renderer, per-seat policy texts and counters."""

    env: object
    client: LLMClient
    prompts: EnvPrompts
    policy_texts: dict[int, str] = field(default_factory=dict)
    keep_transcript: bool = False
    host_calls: int = 0
    decisions: int = 0
    parse_failures: int = 0
    transcript: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def policy_text(self, seat: int) -> str:
        return self.policy_texts.get(int(seat), self.policy_texts.get(-1, ""))

    def act_batch(self, seat: np.ndarray, obs: np.ndarray, mask: np.ndarray, seed: np.ndarray,
                  action_shape: tuple, action_dtype) -> np.ndarray:
        batch = np.shape(seed)
        size = int(np.prod(batch, dtype=int))
        seat, seed = np.reshape(seat, (size,)), np.reshape(seed, (size,))
        obs = np.reshape(obs, (size,) + np.shape(obs)[len(batch):])
        mask = np.reshape(mask, (size, -1)).astype(bool)
        actions = np.zeros((size,) + action_shape, action_dtype)
        active = np.flatnonzero(mask.any(-1))
        for row in np.flatnonzero(~mask.any(-1)):
            actions[row] = self.prompts.fallback(mask[row])
        messages = [self.prompts.render(obs[r], mask[r], int(seat[r]), self.policy_text(seat[r])) for r in active]
        completions = self.client.complete_many(messages, [int(seed[r]) for r in active])
        failures = 0
        for r, message, completion in zip(active, messages, completions, strict=True):
            action, ok = self.prompts.parse(completion.text, obs[r], mask[r])
            failures += not ok
            actions[r] = action
            if self.keep_transcript:      # "call" = host calls before this one; "row" = index in the batch
                self.transcript.append({"call": self.host_calls, "row": [int(i) for i in np.unravel_index(r, batch)],
                                        "seat": int(seat[r]), "prompt": message[-1]["content"],
                                        "response": completion.text, "action": np.asarray(action).tolist(),
                                        "parsed": ok, "cached": completion.cached,
                                        "input_tokens": completion.input_tokens,
                                        "output_tokens": completion.output_tokens})
        with self._lock:
            self.host_calls += 1
            self.decisions += len(active)
            self.parse_failures += failures
        return actions.reshape(batch + action_shape)

    def stats(self) -> dict:
        return {"host_calls": self.host_calls, "decisions": self.decisions, "parse_failures": self.parse_failures,
                **self.client.usage.summary()}

    def reset_counters(self) -> None:
        self.host_calls = self.decisions = self.parse_failures = 0
        self.transcript.clear()


@dataclass(frozen=True, eq=False)       # hashed by identity: a static argument of jitted evaluation
class LLMAct:
    session: LLMSession
    action_shape: tuple
    action_dtype: object

    #: evaluation batches every seat played by this act function into one host call
    batch_over_seats = True

    def for_seat(self, policy: Policy, seat: int) -> Policy:
        return policy.replace(params=jnp.asarray(seat, jnp.int32))

    def __call__(self, params, obs, mask, key):
        seed = jax.random.randint(key, (), 0, np.iinfo(np.int32).max)
        seat = jnp.asarray(params if params is not None else -1, jnp.int32)
        shape = jax.ShapeDtypeStruct(self.action_shape, self.action_dtype)

        def host(seat, obs, mask, seed):
            return self.session.act_batch(np.asarray(seat), np.asarray(obs), np.asarray(mask), np.asarray(seed),
                                          self.action_shape, self.action_dtype)

        return jax.pure_callback(host, shape, seat, obs, mask, seed, vmap_method="broadcast_all")


def llm_policy(env, llm_config: LLMConfig | str | dict | Path, policy_texts: str | Sequence[str] | dict | None = None,
               *, client: LLMClient | None = None, cache_dir: str | Path | None | bool = None,
               max_concurrency: int = 8, seat: int = 0, keep_transcript: bool = False) -> Policy:
    """A jittable Policy that asks ``llm_config``'s model for each action (see the module docstring).

    ``policy_texts``: one text for every seat, a list (one per seat) or a dict ``{seat: text}``;
    it is added to the prompt ("your strategy notes" / "your current policy"). ``seat`` is the
    agent played when the policy is used on its own (evaluation binds every seat itself).
    """
    prompts = prompts_for(env)
    if client is None:
        client = LLMClient(llm_config, cache_dir=cache_dir, max_concurrency=max_concurrency)
    if policy_texts is None:
        texts = {}
    elif isinstance(policy_texts, str):
        texts = {-1: policy_texts}
    elif isinstance(policy_texts, dict):
        texts = {int(str(k).rsplit("_", 1)[-1]) if not isinstance(k, int) else k: v for k, v in policy_texts.items()}
    else:
        texts = dict(enumerate(policy_texts))
    space = env.action_space()
    session = LLMSession(env, client, prompts, texts, keep_transcript)
    act = LLMAct(session, tuple(space.shape), np.dtype(space.dtype))
    return Policy(jnp.asarray(seat, jnp.int32), act, f"llm:{client.config.name}")


def llm_session(policy: Policy) -> LLMSession:
    """The host-side session (counters, transcript, usage) of a policy made by :func:`llm_policy`."""
    if not isinstance(policy.act_fn, LLMAct):
        raise ValueError(f"policy {policy.name!r} is not an LLM policy")
    return policy.act_fn.session


__all__ = ["LLMAct", "LLMError", "LLMSession", "llm_policy", "llm_session"]
