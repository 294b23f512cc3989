"""``call_where(need, fn, *args)``: run an expensive per-row function only on the rows that need it.

Why: under ``vmap`` a ``lax.cond`` turns into a ``select`` that evaluates both branches on every
row. A decision-time search policy is called at every step of every game (the evaluation loops
are vmapped over games, seats and matchups), but in a turn-based game it has to search on only
about half of the rows at each step (the ones where it is the mover and the game is not over).

Unbatched, ``call_where`` is ``lax.cond(need, fn, zeros)``. Under ``vmap`` (any nesting: each
level's axis is folded into one flat batch by a recursive batching rule) it sorts the rows that
need the call to the front and runs ``vmap(fn)`` over chunks of them in a ``while_loop`` until
none are left; rows that do not need it get zeros. Work is ``ceil(count / chunk) * chunk`` rows
instead of all rows. ``fn`` must be a pure function of its arguments (no closure over batched
values) returning a pytree of arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

#: a flat batch of N rows is processed in chunks of N // CHUNKS_PER_BATCH rows (when divisible)
CHUNKS_PER_BATCH = 4


def _zeros_like_output(fn, args):
    shapes = jax.eval_shape(fn, *args)
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _chunk_size(rows: int) -> int:
    for parts in (CHUNKS_PER_BATCH, 2, 1):
        if rows % parts == 0:
            return rows // parts
    return rows


def _flat_call(fn, batched_flags: tuple, treedef, need: jax.Array, leaves: list) -> Any:
    """``need``: bool[N]; leaves flagged batched have a leading axis N, the others are shared."""
    rows = need.shape[0]
    chunk = _chunk_size(rows)

    def one_row(*row_leaves):
        return fn(*jax.tree_util.tree_unflatten(treedef, list(row_leaves)))

    in_axes = tuple(0 if b else None for b in batched_flags)
    row_example = [leaf[0] if b else leaf for leaf, b in zip(leaves, batched_flags, strict=True)]
    zero_row = _zeros_like_output(one_row, row_example)
    out = jax.tree_util.tree_map(lambda z: jnp.zeros((rows,) + z.shape, z.dtype), zero_row)
    order = jnp.argsort(~need, stable=True).astype(jnp.int32)  # rows that need the call first
    num_chunks = (need.sum() + chunk - 1) // chunk

    def body(carry):
        index, out = carry
        picked = jax.lax.dynamic_slice(order, (index * chunk,), (chunk,))
        chunk_leaves = [leaf[picked] if b else leaf for leaf, b in zip(leaves, batched_flags, strict=True)]
        result = jax.vmap(one_row, in_axes=in_axes)(*chunk_leaves)
        keep = need[picked]

        def write(full, part):
            mask = keep.reshape((chunk,) + (1,) * (part.ndim - 1))
            return full.at[picked].set(jnp.where(mask, part, full[picked]))

        return index + 1, jax.tree_util.tree_map(write, out, result)

    _, out = jax.lax.while_loop(lambda c: c[0] < num_chunks, body, (jnp.zeros((), jnp.int32), out))
    return out


def _batched_call(fn, batched_flags: tuple, treedef):
    """A custom_vmap function over a flat batch; an outer vmap folds its axis into the batch."""

    @custom_vmap
    def call(need, leaves):
        return _flat_call(fn, batched_flags, treedef, need, list(leaves))

    @call.def_vmap
    def rule(axis_size, in_batched, need, leaves):
        need_batched, leaves_batched = in_batched
        rows = need.shape[-1]
        need = need if need_batched else jnp.broadcast_to(need, (axis_size,) + need.shape)
        new_leaves, new_flags = [], []
        for leaf, inner, outer in zip(leaves, batched_flags, leaves_batched, strict=True):
            if inner and outer:  # [O, N, ...] -> [O * N, ...]
                new_leaves.append(leaf.reshape((axis_size * rows,) + leaf.shape[2:]))
            elif inner:  # [N, ...] -> [O * N, ...]
                new_leaves.append(jnp.tile(leaf, (axis_size,) + (1,) * (leaf.ndim - 1)))
            elif outer:  # [O, ...] -> [O * N, ...]
                new_leaves.append(jnp.repeat(leaf, rows, axis=0))
            else:
                new_leaves.append(leaf)
            new_flags.append(inner or outer)
        flat = _batched_call(fn, tuple(new_flags), treedef)(need.reshape(-1), tuple(new_leaves))
        out = jax.tree_util.tree_map(lambda x: x.reshape((axis_size, rows) + x.shape[1:]), flat)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return call


def call_where(need: jax.Array, fn: Callable[..., Any], *args) -> Any:
    """``fn(*args)`` where ``need`` (a bool scalar per row) holds, zeros of the same structure
    elsewhere; under vmap only rows that need it are computed (see the module docstring)."""
    leaves, treedef = jax.tree_util.tree_flatten(args)

    @custom_vmap
    def single(need, leaves):
        call = lambda: fn(*jax.tree_util.tree_unflatten(treedef, list(leaves)))  # noqa: E731
        zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(call))
        return jax.lax.cond(need, call, lambda: zeros)

    @single.def_vmap
    def rule(axis_size, in_batched, need, leaves):
        need_batched, leaves_batched = in_batched
        need = need if need_batched else jnp.broadcast_to(need, (axis_size,))
        out = _batched_call(fn, tuple(bool(b) for b in leaves_batched), treedef)(need, tuple(leaves))
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return single(jnp.asarray(need, bool), tuple(leaves))


__all__ = ["call_where", "CHUNKS_PER_BATCH"]
