"""Env steps per second of our MPE against mpe2 (and JaxMARL when installed), in the same process.

Ours and JaxMARL: ``jit`` + ``lax.scan`` over steps, ``vmap`` over envs, uniformly random discrete
actions, auto-reset. mpe2: its ``parallel_env`` stepped from Python, one env at a time (what
a user of it does), timed for a few seconds. Not a test: run by hand.

    python bench/mpe_throughput.py [--scenario simple_reference] [--batch-sizes 1 64 1024 4096]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time

import jax
import jax.numpy as jnp

import jaxmarl_lab as jl
from jaxmarl_lab.throughput import best_time

MPE2_MODULES = {"simple_reference": "simple_reference_v3", "simple_speaker_listener": "simple_speaker_listener_v4",
                "simple_spread": "simple_spread_v3"}


def ours(scenario: str, batch_size: int, steps: int) -> float:
    env = jl.make(f"mpe_{scenario}")
    venv = jl.VmapEnv(jl.AutoReset(env), batch_size)
    mask = env.action_mask(None)

    @jax.jit
    def run(key):
        _, state = venv.reset(key)

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            actions = jl.uniform_legal_action(key_act, jnp.broadcast_to(mask, (batch_size,) + mask.shape))
            return venv.step(key_step, state, actions)[1], None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state.p_pos.sum()  # depends on every step, so XLA cannot drop the physics

    return batch_size * steps / best_time(run, jax.random.key(0))


@contextlib.contextmanager
def _quiet_stdout():
    """Silence file descriptor 1 (an imported module may swap sys.stdout back, so redirect_stdout is not enough)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def jaxmarl_env(scenario: str, batch_size: int, steps: int) -> float | None:
    try:
        with _quiet_stdout():  # jaxmarl prints about its optional submodules on import
            import jaxmarl

            env = jaxmarl.make(f"MPE_{scenario}_v3")
    except ImportError:
        return None

    @jax.jit
    def run(key):
        keys = jax.random.split(key, batch_size)
        _, state = jax.vmap(env.reset)(keys)

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            acts = {a: jax.random.randint(jax.random.fold_in(key_act, i), (batch_size,), 0, env.action_space(a).n)
                    for i, a in enumerate(env.agents)}
            _, state, _, _, _ = jax.vmap(env.step)(jax.random.split(key_step, batch_size), state, acts)
            return state, None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state.p_pos.sum()

    return batch_size * steps / best_time(run, jax.random.key(0))


def mpe2(scenario: str, seconds: float) -> float:
    env = importlib.import_module(f"mpe2.{MPE2_MODULES[scenario]}").parallel_env(max_cycles=25)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if not env.agents:
            env.reset()
        env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    return steps / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="simple_reference", choices=list(MPE2_MODULES))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()}; scenario {args.scenario}")
    reference = mpe2(args.scenario, args.seconds)
    print(f"mpe2 parallel_env (Python loop, 1 env): {reference:,.0f} steps/s")
    print(f"{'envs':>6} {'ours steps/s':>14} {'jaxmarl steps/s':>16} {'ours/jaxmarl':>13} {'ours/mpe2':>10}")
    for batch_size in args.batch_sizes:
        steps = max(50, args.steps // max(1, batch_size // 64))
        mine = ours(args.scenario, batch_size, steps)
        theirs = jaxmarl_env(args.scenario, batch_size, steps)
        ratio = f"{mine / theirs:.2f}x" if theirs else "n/a"
        theirs_text = f"{theirs:,.0f}" if theirs else "not installed"
        print(f"{batch_size:>6} {mine:>14,.0f} {theirs_text:>16} {ratio:>13} {mine / reference:>9.0f}x", flush=True)


if __name__ == "__main__":
    main()
