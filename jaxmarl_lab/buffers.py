"""Fixed-shape replay and reservoir buffers as pure functions (jittable, vmappable over players).

A buffer holds a pytree of arrays with a leading ``capacity`` axis. ``add`` takes a batch with a
``valid`` mask, so code inside ``jit`` can offer a fixed number of candidate items per step and
store only the real ones.

* :class:`Replay`: circular; new items overwrite the oldest (DQN experience replay).
* :class:`Reservoir`: Vitter's algorithm R; after n items were offered each one is in the buffer
  with probability capacity / n (NFSP's supervised memory, Deep CFR's advantage and strategy
  memories). A batch is stored exactly as if its items had been offered one by one: the t-th
  item offered draws j ~ U{0..t}; it is kept in slot j if j < capacity (slot t while t < capacity),
  and when two items of one batch draw the same slot the later one wins, as it would sequentially.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


def _zeros_like_item(item, capacity: int):
    return jax.tree_util.tree_map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), item)


def _scatter(data, slots: jax.Array, batch):
    """Write batch rows at ``slots``; a slot equal to capacity is dropped."""
    return jax.tree_util.tree_map(lambda d, b: d.at[slots].set(b.astype(d.dtype), mode="drop"), data, batch)


@struct.dataclass
class Replay:
    data: object  # pytree [capacity, ...]
    position: jax.Array  # i32[] next slot to write
    size: jax.Array  # i32[] items stored

    @classmethod
    def create(cls, item, capacity: int) -> Replay:
        """An empty buffer whose items look like ``item`` (one unbatched example)."""
        return cls(_zeros_like_item(item, capacity), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        return jax.tree_util.tree_leaves(self.data)[0].shape[0]

    def add(self, batch, valid: jax.Array) -> Replay:
        capacity = self.capacity
        order = jnp.cumsum(valid) - 1
        slots = jnp.where(valid, (self.position + order) % capacity, capacity)
        added = valid.sum().astype(jnp.int32)
        return Replay(_scatter(self.data, slots, batch), (self.position + added) % capacity,
                      jnp.minimum(self.size + added, capacity))

    def sample(self, key: jax.Array, batch_size: int):
        index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree_util.tree_map(lambda d: d[index], self.data)


@struct.dataclass
class Reservoir:
    data: object  # pytree [capacity, ...]
    seen: jax.Array  # i32[] items offered so far

    @classmethod
    def create(cls, item, capacity: int) -> Reservoir:
        return cls(_zeros_like_item(item, capacity), jnp.zeros((), jnp.int32))

    @property
    def capacity(self) -> int:
        return jax.tree_util.tree_leaves(self.data)[0].shape[0]

    @property
    def size(self) -> jax.Array:
        return jnp.minimum(self.seen, self.capacity)

    def add(self, key: jax.Array, batch, valid: jax.Array) -> Reservoir:
        capacity = self.capacity
        t = self.seen + jnp.cumsum(valid) - 1  # each valid item's position in the stream
        draw = jax.random.randint(key, t.shape, 0, jnp.iinfo(jnp.int32).max) % jnp.maximum(t + 1, 1)
        slot = jnp.where(t < capacity, t, draw)
        slot = jnp.where(valid & (slot < capacity), slot, capacity)
        # within one batch the latest item drawing a slot wins, as in the sequential algorithm
        latest = jnp.full((capacity + 1,), -1, t.dtype).at[slot].max(jnp.where(valid, t, -1))
        slot = jnp.where(latest[slot] == t, slot, capacity)
        return Reservoir(_scatter(self.data, slot, batch), self.seen + valid.sum().astype(jnp.int32))

    def sample(self, key: jax.Array, batch_size: int):
        index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree_util.tree_map(lambda d: d[index], self.data)
