"""Orbax checkpoints of a whole learner state (params, optimizer, RNG keys, env state, counters).

A checkpoint is a directory ``<run>/checkpoints/<name>`` where ``name`` is ``step_<env steps>``,
``final`` or ``best``. Typed PRNG keys are stored as their raw key data and re-wrapped on restore,
so the restored state continues the exact random stream of the saved one.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_storable(tree):
    return jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _checkpointer() -> ocp.StandardCheckpointer:
    """A checkpointer for this process alone: in a multi-process run each process reads whole host
    states and only process 0 writes (no cross-process barriers inside orbax)."""
    if jax.process_count() == 1:
        return ocp.StandardCheckpointer()
    me = jax.process_index()
    return ocp.StandardCheckpointer(
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}))


def save_checkpoint(directory: str | Path, name: str, state) -> Path:
    """Write ``state`` (any pytree of arrays) to ``directory/name``, replacing an older one of that name."""
    path = Path(directory).absolute() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    storable = _to_storable(state)
    if jax.process_count() > 1:  # multi-process runs gather to host first and save from one process alone
        storable = jax.tree_util.tree_map(np.asarray, storable)  # orbax refuses process-local jax.Arrays here
    checkpointer = _checkpointer()
    checkpointer.save(path, storable, force=True)
    checkpointer.wait_until_finished()
    checkpointer.close()
    return path


def restore_checkpoint(directory: str | Path, name: str, like):
    """Read ``directory/name`` into the structure of ``like`` (a state of the same shapes, e.g. from init)."""
    path = Path(directory).absolute() / name
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {name!r} in {directory}; found: {list_checkpoints(directory)}")
    template = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), _to_storable(like))
    checkpointer = _checkpointer()
    restored = checkpointer.restore(path, template)
    checkpointer.close()
    return jax.tree_util.tree_map(
        lambda ref, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref)) if _is_key(ref) else x,
        like, restored)


def list_checkpoints(directory: str | Path) -> list[str]:
    directory = Path(directory)
    return sorted(p.name for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []


def latest_step_checkpoint(directory: str | Path) -> str | None:
    """Name of the periodic checkpoint with the most env steps (``step_<n>``), if any."""
    steps = [(int(m.group(1)), name) for name in list_checkpoints(directory)
             if (m := re.fullmatch(r"step_(\d+)", name))]
    return max(steps)[1] if steps else None
