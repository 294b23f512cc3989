"""Throughput helpers for ``bench/``: best-of-N timing of a jitted function and the env-steps/s of
a vmapped, auto-resetting env under uniformly random legal actions (one XLA program)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmarl_lab.policies import uniform_legal_action
from jaxmarl_lab.wrappers import AutoReset, VmapEnv


def best_time(run: Callable[[jax.Array], jax.Array], key: jax.Array, repeats: int = 3) -> float:
    """Fastest of ``repeats`` timed calls of ``run(key')`` after one untimed (compiling) call."""
    jax.block_until_ready(run(key))
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(jax.random.fold_in(key, r + 1)))
        best = min(best, time.perf_counter() - start)
    return best


def random_rollout_rate(env, batch_size: int, steps: int, key: jax.Array | None = None,
                        devices: Sequence[jax.Device] | None = None) -> float:
    """Env steps per second: ``jit`` + ``lax.scan`` over ``steps``, ``vmap`` over ``batch_size``
    envs with auto-reset, uniformly random legal discrete actions. The result depends on every
    leaf of the final state, so XLA cannot drop any of the dynamics. With several ``devices``
    the env batch is split across them (e.g. one XLA CPU device per core, made with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``)."""
    venv = VmapEnv(AutoReset(env), batch_size)
    if devices is not None and len(devices) > 1:
        if batch_size % len(devices):
            raise ValueError(f"batch_size={batch_size} does not split evenly over {len(devices)} devices")
        split = NamedSharding(Mesh(np.asarray(devices), ("envs",)), PartitionSpec("envs"))
        place = partial(jax.lax.with_sharding_constraint, shardings=split)
    else:
        place = lambda tree: tree  # noqa: E731

    @jax.jit
    def run(key):
        _, state = venv.reset(key)

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            mask = jax.vmap(env.action_mask)(state)
            return place(venv.step(key_step, state, uniform_legal_action(key_act, mask))[1]), None

        state, _ = jax.lax.scan(body, place(state), jax.random.split(key, steps))
        return jax.tree_util.tree_reduce(lambda total, leaf: total + jnp.sum(leaf).astype(jnp.float32), state,
                                         jnp.zeros(()))

    return batch_size * steps / best_time(run, jax.random.key(0) if key is None else key)
