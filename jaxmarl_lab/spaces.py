"""Per-agent observation and action spaces.

Spaces describe *one* agent's observation or action; every env stacks agents on a leading axis,
so the batched shapes are ``(num_agents, *space.shape)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Discrete:
    """Integer actions ``0 .. n-1``."""

    n: int
    dtype: jnp.dtype = jnp.int32

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x) -> bool:
        x = np.asarray(x)
        return bool(np.issubdtype(x.dtype, np.integer) and x.shape == () and 0 <= x < self.n)


@dataclass(frozen=True)
class Box:
    """Real-valued arrays with elementwise bounds ``low <= x <= high``."""

    low: float
    high: float
    shape: tuple[int, ...]
    dtype: jnp.dtype = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        low = -1e6 if np.isneginf(self.low) else self.low
        high = 1e6 if np.isposinf(self.high) else self.high
        return jax.random.uniform(key, self.shape, self.dtype, low, high)

    def contains(self, x) -> bool:
        x = np.asarray(x)
        return bool(x.shape == self.shape and np.all(x >= self.low) and np.all(x <= self.high))
