"""Env steps per second of our bargaining env vs OpenSpiel's ``bargaining``, in the same process.

Ours: ``jit`` + ``lax.scan`` over steps, ``vmap`` over B parallel games, uniformly random legal
actions, auto-reset. OpenSpiel: its C++ ``bargaining`` game (a different but comparable
bargaining game, see shared/specs/bargain.md §1.10) played one game at a time from Python with
random legal actions, as a user of pyspiel would. Not a test: run by hand.

    python bench/bargain_throughput.py [--batch-sizes 1 1024 16384] [--steps 2000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import random
import time

import jax
import jax.numpy as jnp

import jaxmarl_lab as jl


def ours(batch_size: int, steps: int, repeats: int = 3) -> tuple[float, float, float]:
    """(env steps/s, games/s, compile seconds) for ``batch_size`` parallel games."""
    env = jl.make("bargain")
    venv = jl.VmapEnv(jl.AutoReset(env), batch_size)
    params = env.default_params

    def random_legal(key, state):
        mover_mask = venv.action_mask(state, params).any(axis=1)  # [B, A]: the mover's legal actions
        actions = jl.uniform_legal_action(key, mover_mask)
        return jnp.broadcast_to(actions[:, None], (batch_size, env.num_agents))

    @jax.jit
    def run(key):
        obs, state = venv.reset(key, params)

        def body(carry, key):
            state, games, checksum = carry
            key_act, key_step = jax.random.split(key)
            obs, state, reward, done, _ = venv.step(key_step, state, random_legal(key_act, state), params)
            # observations and rewards feed the result, so XLA cannot skip building them
            return (state, games + done.sum(), checksum + obs.sum() + reward.sum()), None

        init = (state, jnp.int32(0), jnp.float32(0))
        (state, games, checksum), _ = jax.lax.scan(body, init, jax.random.split(key, steps))
        return games, checksum

    start = time.perf_counter()
    jax.block_until_ready(run(jax.random.key(0)))
    compile_s = time.perf_counter() - start
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        games = int(run(jax.random.key(r + 1))[0])
        best = min(best, time.perf_counter() - start)
    return batch_size * steps / best, games / best, compile_s


def openspiel(seconds: float) -> tuple[float, float]:
    """(env steps/s, games/s) of OpenSpiel's bargaining with random legal actions from Python."""
    import pyspiel

    game = pyspiel.load_game("bargaining")
    rng = random.Random(0)
    steps = games = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        state = game.new_initial_state()
        while not state.is_terminal():
            if state.is_chance_node():
                outcomes = state.chance_outcomes()
                state.apply_action(rng.choices([a for a, _ in outcomes], [p for _, p in outcomes])[0])
            else:
                state.apply_action(rng.choice(state.legal_actions()))
                steps += 1
        games += 1
    elapsed = time.perf_counter() - start
    return steps / elapsed, games / elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 1024, 16384])
    parser.add_argument("--steps", type=int, default=2000, help="scan length per timed run")
    parser.add_argument("--seconds", type=float, default=5.0, help="OpenSpiel timing budget")
    args = parser.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}: {jax.devices()}")
    os_steps, os_games = openspiel(args.seconds)
    print(f"OpenSpiel bargaining (Python loop, 1 game at a time): {os_steps:,.0f} steps/s, {os_games:,.0f} games/s")
    print("ours (jit + lax.scan + vmap, random legal actions, auto-reset):")
    print(f"{'batch':>7} {'steps/s':>14} {'games/s':>12} {'compile s':>10} {'x OpenSpiel steps/s':>20} "
          f"{'x OpenSpiel games/s':>20}")
    for batch_size in args.batch_sizes:
        steps = max(50, args.steps // max(1, batch_size // 1024))
        sps, gps, compile_s = ours(batch_size, steps)
        print(f"{batch_size:>7} {sps:>14,.0f} {gps:>12,.0f} {compile_s:>10.2f} {sps / os_steps:>19.1f}x "
              f"{gps / os_games:>19.1f}x")


if __name__ == "__main__":
    main()
