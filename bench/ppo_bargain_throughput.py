"""Training throughput of algos/ppo_bargain.py: env steps per second *including learning*.

For each network (mlp, transformer) and each ``--num-seeds`` value (1 and 8 by default) it builds
the config of ``configs/ppo.yaml``, compiles ``train_chunk`` (vmapped over seeds when K > 1),
then times whole chunks (rollout + GAE + 4 epochs of minibatch updates). Env steps/s counts all
seeds' steps. Not a test: run by hand.

    python bench/ppo_bargain_throughput.py [--config configs/ppo.yaml] [--updates 4] [--seeds 1 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax

import jaxmarl_lab as jl
from algos.ppo_bargain import Config, make_train
from jaxmarl_lab.config import build, load_yaml

ROOT = Path(__file__).resolve().parents[1]


def measure(config: Config, repeats: int) -> tuple[float, float]:
    """(env steps/s over ``repeats`` timed chunks, compile seconds)."""
    env = jl.make(config.env)
    init, train_chunk = make_train(config, env)
    init = jax.jit(init)
    if config.num_seeds > 1:  # stacked, not vmapped: see jaxmarl_lab.networks.init_seat_params
        train_chunk = jax.vmap(train_chunk)
        seeds = [init(k) for k in jax.random.split(jax.random.key(0), config.num_seeds)]
        runner = jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *seeds)
    else:
        runner = init(jax.random.key(0))
    chunk = jax.jit(train_chunk)
    start = time.perf_counter()
    runner, metrics = chunk(runner)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(repeats):
        runner, metrics = chunk(runner)
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
    steps = repeats * config.updates_per_chunk * config.steps_per_update * config.num_seeds
    return steps / elapsed, compile_s


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs/ppo.yaml"))
    parser.add_argument("--networks", nargs="+", default=["mlp", "transformer"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--updates", type=int, default=2, help="updates per timed chunk")
    parser.add_argument("--repeats", type=int, default=2, help="timed chunks after the compiling one")
    args = parser.parse_args(argv)

    values = {k: v for k, v in load_yaml(args.config).items() if k in {f.name for f in dataclasses.fields(Config)}}
    base = build(Config, values)
    print(f"jax {jax.__version__} on {jax.devices()}; config {args.config}: num_envs {base.num_envs}, "
          f"rollout {base.rollout}, {base.update_epochs} epochs x minibatch {base.minibatch_size}, "
          f"share_seats {base.share_seats}")
    print(f"{'network':<12} {'seeds':>5} {'env steps/s':>14} {'per seed':>12} {'compile s':>10}")
    for network in args.networks:
        for seeds in args.seeds:
            config = dataclasses.replace(base, network=network, num_seeds=seeds, updates_per_chunk=args.updates)
            sps, compile_s = measure(config, args.repeats)
            print(f"{network:<12} {seeds:>5} {sps:>14,.0f} {sps / seeds:>12,.0f} {compile_s:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
