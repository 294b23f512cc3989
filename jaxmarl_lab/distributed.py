"""Several devices and hosts on JAX's own runtime: a 1-D mesh over the env batch.

``--devices N`` (driver option) puts a ``jax.sharding.Mesh`` of N devices under a training run.
The runner's env-batched leaves (env states, observations, per-env bookkeeping: every leaf outside
``params``/``opt_state``/``key``/``update`` whose env axis has ``num_envs`` rows) are split along
that axis; parameters, optimiser state and keys are replicated. ``train_chunk`` is then jitted
with those shardings (sharded ``jit``, XLA's SPMD partitioner: each device steps its share of the
envs; the loss means over the batch become all-reduces, so gradients are averaged across
devices). The program is the same as on one device, so for the same global batch and key the
results agree within float tolerance (random bits do not depend on the sharding:
``jax_threefry_partitionable``).

Several hosts: ``--coordinator-address HOST:PORT --num-processes P --process-id I`` (or
``JAXMARL_COORDINATOR``/``JAXMARL_NUM_PROCESSES``/``JAXMARL_PROCESS_ID``, or a cluster JAX detects
itself) call ``jax.distributed.initialize`` before anything touches a device; the mesh then spans
every process's devices. Only process 0 logs, writes results and checkpoints.

Try it on one CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=4 python algos/ppo_bargain.py
--devices 4``.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmarl_lab.checkpoint import _is_key

#: runner fields that are never split (the rest are split along their env axis when they have one)
REPLICATED_FIELDS = ("params", "opt_state", "key", "update")
BATCH_AXIS = "batch"


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
    """``jax.distributed.initialize`` from the options or the JAXMARL_* environment variables;
    returns whether this is a multi-process run. Call before any device is used."""
    coordinator_address = coordinator_address or os.environ.get("JAXMARL_COORDINATOR")
    if num_processes is None and os.environ.get("JAXMARL_NUM_PROCESSES"):
        num_processes = int(os.environ["JAXMARL_NUM_PROCESSES"])
    if process_id is None and os.environ.get("JAXMARL_PROCESS_ID"):
        process_id = int(os.environ["JAXMARL_PROCESS_ID"])
    if coordinator_address is None and num_processes is None:
        return False
    if coordinator_address is None or num_processes is None or process_id is None:
        raise ValueError("a multi-process run needs --coordinator-address, --num-processes and --process-id "
                         f"(got {coordinator_address!r}, {num_processes!r}, {process_id!r})")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives between CPU processes
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    return True


def make_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices of every process (all of them: 0 or -1)."""
    devices = jax.devices()
    if num_devices in (0, -1):
        num_devices = len(devices)
    if num_devices > len(devices):
        raise ValueError(f"--devices {num_devices}: only {len(devices)} device(s) visible ({devices[0].platform}); "
                         "on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N before starting Python")
    return Mesh(np.asarray(devices[:num_devices]), (BATCH_AXIS,))


def _field_name(path) -> str:
    first = path[0] if path else None
    return getattr(first, "name", None) or str(getattr(first, "key", ""))


def runner_shardings(runner_shape, mesh: Mesh, num_envs: int, env_axis: int = 0):
    """NamedShardings for a runner (or its ``jax.eval_shape``): env-batched leaves split along
    ``env_axis`` (1 with stacked seeds), everything else replicated."""
    size = mesh.devices.size
    if num_envs % size:
        raise ValueError(f"num_envs {num_envs} must be a multiple of the {size} devices")
    replicated = NamedSharding(mesh, PartitionSpec())

    def sharding(path, leaf):
        shape = getattr(leaf, "shape", ())
        if _field_name(path) in REPLICATED_FIELDS or len(shape) <= env_axis or shape[env_axis] != num_envs:
            return replicated
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            return replicated  # typed key arrays (shape structs here, so not _is_key): keep whole
        return NamedSharding(mesh, PartitionSpec(*([None] * env_axis), BATCH_AXIS))

    return jax.tree_util.tree_map_with_path(sharding, runner_shape)


def to_global(tree, shardings):
    """Arrays every process holds in full (same values everywhere) -> global arrays with
    ``shardings``; each process keeps only its devices' slices (works with several processes,
    where ``device_put`` to devices of other processes does not)."""

    def one(x, sharding):
        if _is_key(x):
            data = one(jax.random.key_data(x), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(one, tree, shardings)


def to_host(tree):
    """Global arrays -> numpy on every process (a collective: all processes must call it)."""
    from jax.experimental import multihost_utils

    def one(x):
        if _is_key(x):
            return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        if not isinstance(x, jax.Array):
            return np.asarray(x)
        if x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree_util.tree_map(one, tree)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def is_main_process() -> bool:
    """Process 0 logs, writes results and checkpoints."""
    return jax.process_index() == 0
