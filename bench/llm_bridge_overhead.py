"""Per-step overhead of the LLM host-callback bridge, against the loopback server (no network).

A jitted ``evaluate`` of an LLM policy in both seats of ``bargain`` at 1, 64 and 1024 parallel games,
three ways, all compiled beforehand: every decision sent over HTTP to the loopback server (which
answers at once, so this is our client + server + bridge cost, not a model's latency), the same
games again served from the on-disk cache (bridge + prompt rendering + parsing, no HTTP), and the
greedy baseline (no host call at all). Prints env steps/s, host calls/s and milliseconds per step.
Not a test: run by hand.

    python bench/llm_bridge_overhead.py [--batch-sizes 1 64 1024] [--max-concurrency 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax

import jaxmarl_lab as jl
from jaxmarl_lab.llm import LoopbackServer, llm_policy, llm_session
from jaxmarl_lab.llm.testing import simple_bargainer_model


def timed_evaluate(env, policy, games: int, key) -> tuple[float, int]:
    start = time.perf_counter()
    result = jl.evaluate(env, policy, games, key)
    return time.perf_counter() - start, int(result.lengths.sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--max-concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    env = jl.make("bargain")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; bargain, LLM in both seats, "
          f"{env.max_steps} scan steps per evaluate (one host call each)")
    print(f"{'games':>6} {'mode':<14} {'env steps/s':>12} {'host calls/s':>13} {'ms/step':>9} {'requests':>9}")
    greedy = jl.baseline(env, "greedy")
    with LoopbackServer(simple_bargainer_model()) as server, tempfile.TemporaryDirectory() as cache:
        for games in args.batch_sizes:
            key = jax.random.key(games)
            jl.evaluate(env, greedy, games, key)                     # compile the baseline program
            seconds, steps = timed_evaluate(env, greedy, games, key)
            print(f"{games:>6} {'no host call':<14} {steps / seconds:>12,.0f} {'-':>13} "
                  f"{1000 * seconds / env.max_steps:>9.2f} {0:>9}")
            policy = llm_policy(env, server.config(), cache_dir=cache, max_concurrency=args.max_concurrency)
            session = llm_session(policy)
            jl.evaluate(env, policy, games, jax.random.fold_in(key, 1))   # compile (and fill other cache rows)
            for mode in ("HTTP", "cache"):         # the same games twice: new requests, then all from cache
                sent, calls = len(server.requests), session.host_calls
                seconds, steps = timed_evaluate(env, policy, games, key)
                calls = session.host_calls - calls
                print(f"{games:>6} {mode:<14} {steps / seconds:>12,.0f} {calls / seconds:>13,.1f} "
                      f"{1000 * seconds / calls:>9.2f} {len(server.requests) - sent:>9}")

if __name__ == "__main__":
    main()
