"""The original therapist-training workflow (Tianshou PPO + TherapyNet), with its flags, run by ``algos/ippo.py``.

    python algos/ppo_therapy.py --experiment-name rl_vs_comp --patterns cold_stuck --threshold 0.8 \\
        --entropy 0.1 --total-timesteps 2500000

One learner, the therapist, on ``therapy`` with the TherapyNet actor-critic (``--network therapy``:
separate actor and critic, embeddings 8→16 and 9→8, 256-256 trunk). Flag meanings follow the
original (spec therapy.md §5.2): ``--n-envs`` parallel envs, ``--batch-size`` env steps per env per
collect (one PPO update uses n_envs·batch_size steps, minibatches of ``--batch-size``), ``--n-epochs``
PPO epochs per update, ``--entropy`` the *client's* softmax temperature and ``--ent-coef`` the PPO
entropy bonus. ``--eval-freq`` (env steps between evaluations of ``--eval-episodes`` episodes; the
original evaluated after every 512-step epoch and stored eval_freq unused) and ``--save-freq``
(periodic checkpoints) are in env steps. Every other ``algos/ippo.py`` option can follow ``--``.
Defaults come from ``--config`` (configs/ppo_therapy.yaml, the original's settings).

Run directory (results/<experiment-name>_<time>/): ``config.yaml``, ``metrics.csv`` (one row per
update), ``progress.csv`` (one row per evaluation, the original's columns: epoch, step,
train_reward_mean, train_reward_std, train_length_mean, test_reward_mean, test_reward_std,
test_length_mean, duration, plus train/test success and dropout rates), ``checkpoints/policy_best``
(best mean test reward), ``checkpoints/policy_final``, periodic ``checkpoints/step_<n>``,
``final_eval.json`` and ``plots/``. ``--resume-from RUN_DIR`` continues a run (Ctrl-C saves one).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "ppo_therapy.yaml"

PROGRESS_COLUMNS = ("epoch", "step", "train_reward_mean", "train_reward_std", "train_length_mean",
                    "test_reward_mean", "test_reward_std", "test_length_mean", "duration",
                    "train_success_rate", "train_dropout_rate", "test_success_rate", "test_dropout_rate")

#: original flag -> ippo Config field (the value is passed through)
PPO_FLAGS = {"total_timesteps": "total-timesteps", "n_envs": "num-envs", "learning_rate": "lr",
             "n_epochs": "update-epochs", "gamma": "gamma", "gae_lambda": "gae-lambda", "clip_range": "clip",
             "ent_coef": "ent-coef", "hidden_size": "hidden-size", "eval_freq": "eval-interval",
             "eval_episodes": "eval-games", "save_freq": "checkpoint-interval", "seed": "seed"}
ENV_FLAGS = ("mechanism", "threshold", "max_sessions", "entropy")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ppo_therapy.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="ippo YAML config (default: the original's settings)")
    p.add_argument("--experiment-name", default=None, help="run name prefix (default: ppo_therapy)")
    p.add_argument("--patterns", nargs="+", default=None, help="initial memory patterns (one sampled per episode)")
    p.add_argument("--mechanism", default=None, help="client expectation mechanism")
    p.add_argument("--threshold", type=float, default=None, help="success threshold (fraction of the RS range)")
    p.add_argument("--max-sessions", type=int, default=None)
    p.add_argument("--entropy", type=float, default=None, help="client softmax temperature")
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument("--n-envs", type=int, default=None, help="parallel training envs")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="steps per env per collect = minibatch size")
    p.add_argument("--n-epochs", type=int, default=None, help="PPO epochs per collect")
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--gae-lambda", type=float, default=None)
    p.add_argument("--clip-range", type=float, default=None)
    p.add_argument("--ent-coef", type=float, default=None, help="PPO entropy bonus")
    p.add_argument("--hidden-size", type=int, default=None)
    p.add_argument("--eval-freq", type=int, default=None, help="env steps between evaluations")
    p.add_argument("--eval-episodes", type=int, default=None)
    p.add_argument("--save-freq", type=int, default=None, help="env steps between checkpoints")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume-from", default=None, help="run directory to continue")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    return p


def translate(argv: list[str] | None = None) -> list[str]:
    """The original's flags -> ``algos/ippo.py`` arguments (env options go to ``--env-kwargs``)."""
    import yaml

    args, rest = parser().parse_known_args(argv)
    if args.cpu:
        os.environ["JAX_PLATFORMS"] = "cpu"
    # env options: the run's saved ones when resuming (changed only by explicit flags), else the config's
    source = Path(args.resume_from) / "config.yaml" if args.resume_from else Path(args.config)
    with open(source) as f:
        base = yaml.safe_load(f) or {}
    env_kwargs = dict(base.get("env_kwargs") or {})
    changes = {name: getattr(args, name) for name in ENV_FLAGS if getattr(args, name) is not None}
    if args.patterns:
        changes["pattern"] = args.patterns
    env_kwargs.update(changes)
    out = ["--config", args.config, "--env", "therapy", "--network", "therapy",
           "--run-name", args.experiment_name or "ppo_therapy"]
    if changes or not args.resume_from:
        out += ["--env-kwargs", _dict_flag(env_kwargs)]
    for name, flag in PPO_FLAGS.items():
        if getattr(args, name) is not None:
            out += [f"--{flag}", str(getattr(args, name))]
    if args.batch_size is not None:  # minibatches of batch_size out of n_envs·batch_size steps
        out += ["--rollout", str(args.batch_size), "--num-minibatches", str(args.n_envs or base.get("num_envs", 8))]
    if args.resume_from:
        out += ["--resume-from", args.resume_from]
    return out + [a for a in rest if a != "--"]


def _dict_flag(values: dict) -> str:
    """``{a: 1, pattern: [x, y]}`` as the YAML flow mapping ippo's dict-typed flag accepts."""
    import yaml

    return yaml.safe_dump(values, default_flow_style=True, width=10_000).strip()


class ProgressWriter:
    """Keeps ``progress.csv`` of a run: one row per evaluation, training statistics pooled over the
    episodes that finished since the previous evaluation.

    Called after every evaluation (``training.train``'s ``on_progress`` hook). It reads only the
    metrics rows added since its last call and appends, so a 50M-step run evaluated every 5,000 steps
    costs linear, not quadratic, time; it rebuilds the file when metrics.csv was rewritten."""

    def __init__(self) -> None:
        self.cursor: tuple[str, int] | None = None
        self.epoch = 0
        self.window: list[dict] = []

    def __call__(self, run) -> Path:
        from jaxmarl_lab.results import write_rows_csv

        rows, self.cursor, restarted = run.read_new_metrics(self.cursor)
        if restarted:
            self.epoch, self.window = 0, []
        out = []
        for row in rows:
            if row.get("eval/mean_return") is not None:
                self.epoch += 1
                out.append({"epoch": self.epoch, "step": int(row["env_steps"]), **_pooled(self.window),
                            "test_reward_mean": row["eval/mean_return"], "test_reward_std": row.get("eval/std_return"),
                            "test_length_mean": row.get("eval/mean_length"), "duration": row.get("eval/time_s"),
                            "test_success_rate": row.get("eval/mean_success"),
                            "test_dropout_rate": row.get("eval/mean_dropout")})
                self.window = []
            elif row.get("episodes"):
                self.window.append(row)
        path = Path(run.path) / "progress.csv"
        if restarted or not path.exists():
            return write_rows_csv(out, path, PROGRESS_COLUMNS)
        with open(path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=PROGRESS_COLUMNS, restval="").writerows(out)
        return path


def write_progress(run) -> Path:
    """``progress.csv`` of a run rebuilt from its whole metrics.csv (for a finished run)."""
    return ProgressWriter()(run)


def _pooled(rows: list[dict]) -> dict:
    """Mean/std/length/success/dropout over all episodes of several updates (count-weighted moments)."""
    counts = np.array([r["episodes"] for r in rows], float)
    if not counts.sum():
        return {}
    get = lambda key: np.array([r.get(key) or 0.0 for r in rows], float)
    w = counts / counts.sum()
    mean = float(w @ get("episode_return"))
    second = float(w @ (get("episode_return_std") ** 2 + get("episode_return") ** 2))
    return {"train_reward_mean": mean, "train_reward_std": float(np.sqrt(max(second - mean**2, 0.0))),
            "train_length_mean": float(w @ get("episode_length")),
            "train_success_rate": float(w @ get("episode_success")),
            "train_dropout_rate": float(w @ get("episode_dropout"))}


def main(argv: list[str] | None = None) -> int:
    ippo_argv = translate(argv)
    sys.path.insert(0, str(ROOT))
    from algos import ippo
    from jaxmarl_lab.config import ConfigError, parse_args
    from jaxmarl_lab.training import train

    try:
        config, options, explicit = parse_args(ippo.Config, ippo_argv, prog="ppo_therapy.py", description=__doc__)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return train("ppo_therapy", ippo.Config, ippo.make_train, ippo.make_policy, config, options, explicit,
                 on_progress=ProgressWriter(), **ippo.DRIVER_KWARGS).exit_code


if __name__ == "__main__":
    sys.exit(main())
