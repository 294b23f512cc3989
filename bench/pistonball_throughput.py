"""Env steps (cycles: every piston moves once) per second of our Pistonball against PettingZoo's
``pistonball_v6``, in the same process. Not a test: run by hand.

Ours: ``jit`` + ``lax.scan`` over cycles, ``vmap`` over envs, uniformly random discrete actions,
auto-reset, vector observations. PettingZoo: its ``parallel_env`` stepped from Python with random
actions (what a user of it does; it returns the 457x120x3 image crops), and, as a second, kinder
peer, the raw AEC env stepped agent by agent without ever asking for an observation (pure pymunk).

    python bench/pistonball_throughput.py [--n-pistons 20] [--batch-sizes 1 256 4096] [--cycles 125]

With several JAX devices (on CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=2``, one per
core) it also times the batch split across all of them.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxmarl_lab as jl
from jaxmarl_lab.throughput import random_rollout_rate


def ours(n_pistons: int, batch_size: int, cycles: int, devices=None) -> float:
    return random_rollout_rate(jl.make("pistonball", n_pistons=n_pistons), batch_size, cycles, devices=devices)


def pettingzoo_parallel(n_pistons: int, seconds: float) -> float:
    from pettingzoo.butterfly import pistonball_v6

    env = pistonball_v6.parallel_env(n_pistons=n_pistons, continuous=False)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    cycles, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step({a: int(rng.integers(3)) for a in env.agents})
        cycles += 1
        if any(terminated.values()) or any(truncated.values()) or not env.agents:
            env.reset(seed=cycles)
    return cycles / (time.perf_counter() - start)


def pettingzoo_physics_only(n_pistons: int, seconds: float) -> float:
    from pettingzoo.butterfly import pistonball_v6

    env = pistonball_v6.env(n_pistons=n_pistons, continuous=False)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    raw = env.unwrapped
    cycles, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in rng.integers(0, 3, n_pistons):
            env.step(int(action))
        cycles += 1
        if raw.terminate or raw.truncate:
            env.reset(seed=cycles)
    return cycles / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pistons", type=int, default=20)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument("--cycles", type=int, default=125, help="cycles per timed scan")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each PettingZoo peer is timed")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; n_pistons={args.n_pistons}")
    peer = pettingzoo_parallel(args.n_pistons, args.seconds)
    physics = pettingzoo_physics_only(args.n_pistons, args.seconds)
    print(f"PettingZoo pistonball_v6 parallel_env (with image observations): {peer:,.1f} cycles/s")
    print(f"PettingZoo AEC env, physics only (no observations):               {physics:,.1f} cycles/s")
    print(f"{'envs':>6} {'devices':>7} {'ours cycles/s':>15} {'x parallel_env':>15} {'x physics only':>15}")
    devices = jax.devices()
    for batch in args.batch_sizes:
        for used in ([devices[:1], devices] if len(devices) > 1 and batch % len(devices) == 0 else [devices[:1]]):
            rate = ours(args.n_pistons, batch, args.cycles, used)
            print(f"{batch:>6} {len(used):>7} {rate:>15,.0f} {rate / peer:>15,.1f} {rate / physics:>15,.1f}")


if __name__ == "__main__":
    main()
