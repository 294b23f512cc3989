"""Decision-time search throughput: IS-MCTS decisions per second on bargaining.

    python bench/search_throughput.py [--checkpoint RUN_DIR] [--simulations 100] [--batches 1 64 1024]

Each decision samples ``--worlds`` deals, replays the game so far and runs ``--simulations``
simulations (algos/is_mcts.py). The prior is a trained run or a freshly initialised PPO network of
the default size (92 → 256 → 256, one network per seat); the cost does not depend on its weights.
Compilation is excluded (one warm-up call per batch size).
"""

from __future__ import annotations

import argparse
import time

import jax

from algos.is_mcts import search_policy
from jaxmarl_lab.networks import actor_critic_policy
from jaxmarl_lab.registry import make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--worlds", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = make("bargain")
    if args.checkpoint:
        from jaxmarl_lab.training import load_policy

        prior = load_policy(args.checkpoint)
    else:
        prior = actor_critic_policy({"name": "mlp", "num_actions": 82, "hidden_size": 256}, None, share_seats=False)
        prior = prior.replace(params=prior.act_fn.init_params(jax.random.key(0), env.obs_dim))
    searched = search_policy(env, prior, args.simulations, num_worlds=args.worlds)
    act = searched.act_fn
    memory = act.initial_memory(searched.params)

    @jax.jit
    def decide(obs, mask, keys):
        return jax.vmap(lambda o, m, k: act(searched.params, o, m, k, memory=memory)[0])(obs, mask, keys)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.simulations} simulations, "
          f"{args.worlds} worlds per decision")
    print("| parallel games | decisions/s | ms per batch |")
    print("|---|---|---|")
    for batch in args.batches:
        obs, state = jax.vmap(env.reset)(jax.random.split(jax.random.key(1), batch))
        mask = jax.vmap(env.action_mask)(state)[:, 0]
        keys = jax.random.split(jax.random.key(2), batch)
        decide(obs[:, 0], mask, keys).block_until_ready()
        start = time.perf_counter()
        for r in range(args.repeats):
            decide(obs[:, 0], mask, jax.random.split(jax.random.key(3 + r), batch)).block_until_ready()
        seconds = (time.perf_counter() - start) / args.repeats
        print(f"| {batch} | {batch / seconds:,.1f} | {1000 * seconds:,.1f} |")


if __name__ == "__main__":
    main()
