"""The original Bucket Brigade PPO workflow, with its option names and defaults, run by ``algos/ippo.py``.

    python algos/ppo_bucket_brigade.py --scenario rest_trap --steps 1000000 --opponents 3 --run-name rt

One learner (or more, ``--opponents`` fewer than N−1) plays against scripted opponents in the
last seats: ``--opponents 3`` takes the original's list (random_genome, random_genome,
firefighter); names such as ``--opponents specialist,firefighter,free_rider`` pick baselines;
``--opponents 0`` trains N learners. ``--batch-size`` is the env steps per PPO update (spread
over ``--num-envs`` parallel games), ``--epochs`` the PPO epochs, ``--checkpoint-interval`` and
``--eval-interval`` are in env steps (defaults 100K and 10K like the original), ``--cpu`` hides
accelerators. Everything else comes from ``--config`` (default configs/ppo_bucket_brigade.yaml,
an ``algos/ippo.py`` config) and can be given as an ippo flag after ``--``.

Metrics are logged under the original's names as well (episode/reward, episode/length,
train/avg_reward_100ep, train/steps_per_sec, train/total_episodes) to CSV, TensorBoard
(``--tensorboard``, on by default here) and wandb (``--wandb``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ppo_bucket_brigade.yaml"


def translate(argv: list[str] | None = None) -> list[str]:
    """The original's options -> ``algos/ippo.py`` arguments."""
    parser = argparse.ArgumentParser(prog="ppo_bucket_brigade.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="total env steps (default: the config's)")
    parser.add_argument("--scenario", default="default", help="Bucket Brigade scenario")
    parser.add_argument("--opponents", default="3", help="count (the original's list) or comma-separated names")
    parser.add_argument("--num-agents", type=int, default=4)
    parser.add_argument("--run-name", default=None)
    parser.add_argument("--batch-size", type=int, default=2048, help="env steps per PPO update")
    parser.add_argument("--num-envs", type=int, default=16, help="parallel games sharing the batch")
    parser.add_argument("--epochs", type=int, default=4, help="PPO epochs per update")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's)")
    parser.add_argument("--checkpoint-interval", type=int, default=100_000)
    parser.add_argument("--eval-interval", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    parser.add_argument("--no-tensorboard", action="store_true")
    args, rest = parser.parse_known_args(argv)
    if args.batch_size % args.num_envs:
        parser.error(f"--batch-size {args.batch_size} must be a multiple of --num-envs {args.num_envs}")
    if args.cpu:
        os.environ["JAX_PLATFORMS"] = "cpu"
    out = ["--config", args.config, "--env", "bucket_brigade",
           "--env-kwargs", f"scenario={args.scenario},num_agents={args.num_agents},normalize_obs=true",
           "--opponents", args.opponents, "--num-envs", str(args.num_envs),
           "--rollout", str(args.batch_size // args.num_envs), "--update-epochs", str(args.epochs),
           "--checkpoint-interval", str(args.checkpoint_interval), "--eval-interval", str(args.eval_interval),
           "--run-name", args.run_name or f"ppo_bucket_brigade_{args.scenario}"]
    if not args.no_tensorboard:
        out += ["--tensorboard"]
    for flag, value in (("--total-timesteps", args.steps), ("--lr", args.lr), ("--seed", args.seed)):
        if value is not None:
            out += [flag, str(value)]
    return out + [a for a in rest if a != "--"]


def main(argv: list[str] | None = None) -> int:
    ippo_argv = translate(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from algos import ippo

    return ippo.main(ippo_argv)


if __name__ == "__main__":
    sys.exit(main())
