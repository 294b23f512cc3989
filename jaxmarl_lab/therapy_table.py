"""Therapist policies across client conditions: success rate, dropout rate and mean length for every
(expectation mechanism × initial-memory pattern) pair, as rows, a CSV and a heatmap PNG.

All conditions of one policy run in a single vmapped program (the conditions differ only in the
env's ``params``: mechanism index and pattern probabilities), on the same episode keys (common
random numbers: the k-th episode of every condition draws the same utility matrix).

    jaxmarl-lab therapy-table --env-arg threshold=0.8 --env-arg entropy=0.1 --run results/ppo_therapy/<run>
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from envs.therapy import DEFAULT_PATTERNS, MECHANISMS, PATTERNS, Therapy
from jaxmarl_lab.evaluation import evaluate_params
from jaxmarl_lab.policies import Policy
from jaxmarl_lab.results import write_rows_csv

COLUMNS = ("policy", "mechanism", "pattern", "episodes", "success_rate", "success_stderr", "dropout_rate",
           "dropout_stderr", "mean_length", "mean_return", "success_vs_complementary", "paired_stderr", "paired_z")
REFERENCE = "complementary"  # policies after it get paired success differences against it


def condition_params(env: Therapy, mechanisms: Sequence[str] = MECHANISMS,
                     patterns: Sequence[str] = DEFAULT_PATTERNS):
    """The env's evaluation params for every (mechanism, pattern), stacked on a leading axis in
    row-major order, and the list of (mechanism, pattern) labels."""
    base = env.evaluation_params
    labels, entries = [], []
    for mechanism in mechanisms:
        for pattern in patterns:
            probs = jnp.zeros(len(PATTERNS), jnp.float32).at[PATTERNS.index(pattern)].set(1.0)
            entries.append(base.replace(mechanism=jnp.asarray(MECHANISMS.index(mechanism), jnp.int32),
                                        pattern_probs=probs))
            labels.append((mechanism, pattern))
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *entries), labels


def therapy_table(env: Therapy, policies: Mapping[str, Policy], episodes: int, key: jax.Array,
                  mechanisms: Sequence[str] = MECHANISMS, patterns: Sequence[str] = DEFAULT_PATTERNS) -> list[dict]:
    """One row per (policy, mechanism, pattern): rates with their standard errors over ``episodes``.
    Policies listed after ``complementary`` also get their success difference to it on the same
    clients, with the paired standard error and z-score."""
    for name in (*mechanisms, *patterns):
        if name not in MECHANISMS and name not in PATTERNS:
            raise ValueError(f"unknown mechanism or pattern {name!r}")
    stacked, labels = condition_params(env, mechanisms, patterns)
    se = lambda x: float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else 0.0
    rows, reference = [], {}
    for name, policy in policies.items():
        for (mechanism, pattern), result in zip(labels, evaluate_params(env, policy, episodes, key, stacked),
                                                strict=True):
            success, dropout = result.outcomes["success"], result.outcomes["dropout"]
            row = {"policy": name, "mechanism": mechanism, "pattern": pattern, "episodes": int(episodes),
                   "success_rate": float(success.mean()), "success_stderr": se(success),
                   "dropout_rate": float(dropout.mean()), "dropout_stderr": se(dropout),
                   "mean_length": float(result.lengths.mean()), "mean_return": float(result.returns.mean())}
            if name == REFERENCE:
                reference[mechanism, pattern] = success
            elif (mechanism, pattern) in reference:  # same clients (episode keys) as the reference's episodes
                diff = success - reference[mechanism, pattern]
                row.update(success_vs_complementary=float(diff.mean()), paired_stderr=se(diff),
                           paired_z=float(diff.mean() / max(se(diff), 1e-12)))
            rows.append(row)
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    return write_rows_csv(rows, path, COLUMNS)


def format_table(rows: list[dict]) -> str:
    header = (f"{'policy':<14} {'mechanism':<36} {'pattern':<17} {'success':>15} {'dropout':>15} {'length':>7}"
              f"   vs complementary (paired)")
    lines = [header, "-" * len(header)]
    for r in rows:
        versus = (f"   {100 * r['success_vs_complementary']:+5.1f} ± {100 * r['paired_stderr']:.1f} "
                  f"(z {r['paired_z']:+.1f})" if "paired_z" in r else "")
        lines.append(f"{r['policy']:<14} {r['mechanism']:<36} {r['pattern']:<17} "
                     f"{100 * r['success_rate']:6.1f}% ± {100 * r['success_stderr']:4.1f} "
                     f"{100 * r['dropout_rate']:6.1f}% ± {100 * r['dropout_stderr']:4.1f} {r['mean_length']:7.1f}"
                     + versus)
    return "\n".join(lines)


def plot_heatmaps(rows: list[dict], path: str | Path) -> Path:
    """Success and dropout rate heatmaps (mechanism × pattern), one row of panels per policy."""
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    mechanisms = list(dict.fromkeys(r["mechanism"] for r in rows))
    patterns = list(dict.fromkeys(r["pattern"] for r in rows))
    fig = Figure(figsize=(11, 3.2 * len(policies) + 0.4))
    axes = fig.subplots(len(policies), 2, squeeze=False)
    for i, policy in enumerate(policies):
        for j, (metric, cmap) in enumerate((("success_rate", "Greens"), ("dropout_rate", "Reds"))):
            grid = np.array([[next(r[metric] for r in rows if r["policy"] == policy and r["mechanism"] == m
                                   and r["pattern"] == p) for p in patterns] for m in mechanisms])
            ax = axes[i, j]
            image = ax.imshow(100 * grid, cmap=cmap, vmin=0, vmax=max(100 * grid.max(), 1.0), aspect="auto")
            for a in range(len(mechanisms)):
                for b in range(len(patterns)):
                    ax.text(b, a, f"{100 * grid[a, b]:.1f}", ha="center", va="center", fontsize=8)
            ax.set_xticks(range(len(patterns)), [p.replace("_", "\n") for p in patterns], fontsize=7)
            ax.set_yticks(range(len(mechanisms)), [m.replace("_amplifier", "_amp").replace("bond_weighted", "bw")
                                                   for m in mechanisms], fontsize=7)
            ax.set_title(f"{policy}: {metric.replace('_rate', '')} rate (%)", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
