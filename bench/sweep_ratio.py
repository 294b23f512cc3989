"""Wall time of a vmapped hyperparameter sweep against one run of ppo_bargain.

Runs the PPO program twice, end to end, each in its own process and results directory:

1. one run: ``python algos/ppo_bargain.py --config configs/ppo.yaml`` (one seed);
2. a sweep of 8 learning rates x 2 seeds as one compiled program:
   ``... --num-seeds 2 --sweep lr=3e-5,1e-4,...`` (16 runs vmapped together).

It prints both wall times (process start to exit: compilation, training, evaluation) and the
ratio, and the training-only ratio from each run's ``train_time_s``. Issue 12's bar is a sweep
under 4x one run. A sweep is 16x the arithmetic of one run, so the ratio falls below 4 only where
one run leaves the device mostly idle (a GPU); on a CPU that one run already saturates, expect a
ratio near the number of runs.

    python bench/sweep_ratio.py                                # 655,360 steps per run (about 10 min on 2 CPU cores)
    python bench/sweep_ratio.py --total-timesteps 163840       # shorter
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATES = ("3e-5", "1e-4", "2e-4", "3e-4", "5e-4", "1e-3", "2e-3", "3e-3")


def timed_run(extra: list[str], args: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds of the whole process, its run's train_time_s)."""
    with tempfile.TemporaryDirectory(prefix="sweep_ratio_") as results:
        command = [sys.executable, str(ROOT / "algos" / "ppo_bargain.py"), "--config", args.config,
                   "--total-timesteps", str(args.total_timesteps), "--eval-games", str(args.eval_games),
                   "--eval-interval", "0", "--checkpoint-interval", "0", "--results-dir", results, "--quiet", *extra]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
        (metadata,) = Path(results).glob("ppo_bargain/*/metadata.json")
        return wall, float(json.loads(metadata.read_text())["train_time_s"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs/ppo.yaml"))
    parser.add_argument("--total-timesteps", type=int, default=655_360, help="per run (and per swept run)")
    parser.add_argument("--eval-games", type=int, default=2000)
    parser.add_argument("--lrs", nargs="+", default=list(LEARNING_RATES))
    parser.add_argument("--seeds", type=int, default=2, help="seeds per learning rate")
    args = parser.parse_args(argv)

    import jax

    runs = len(args.lrs) * args.seeds
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}); "
          f"ppo_bargain, {args.total_timesteps:,} steps per run, {args.eval_games} evaluation games")
    single_wall, single_train = timed_run([], args)
    sweep_wall, sweep_train = timed_run(["--num-seeds", str(args.seeds), "--sweep", "lr=" + ",".join(args.lrs)], args)
    print(f"{'program':<34} {'wall s':>8} {'train s':>8} {'runs':>5} {'wall / one run':>15} {'train / one run':>16}")
    print(f"{'one run':<34} {single_wall:>8.1f} {single_train:>8.1f} {1:>5} {1.0:>14.2f}x {1.0:>15.2f}x")
    print(f"{f'sweep: {len(args.lrs)} lr x {args.seeds} seeds, vmapped':<34} {sweep_wall:>8.1f} {sweep_train:>8.1f} "
          f"{runs:>5} {sweep_wall / single_wall:>14.2f}x {sweep_train / single_train:>15.2f}x")
    print(f"sweep wall per run: {sweep_wall / runs:.1f} s ({single_wall / (sweep_wall / runs):.1f}x faster than "
          f"{runs} separate runs); bar: sweep < 4x one run -> {'met' if sweep_wall < 4 * single_wall else 'not met'}")


if __name__ == "__main__":
    main()
