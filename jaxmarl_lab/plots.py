"""Training curves as PNG (matplotlib's object API: headless, and no effect on a notebook's backend)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

PANELS = (
    ("episode return (mean per agent)", ("episode_return", "eval/mean_return")),
    ("episode welfare", ("episode_welfare", "eval/selfplay_welfare")),
    ("reward per seat",
     ("episode_reward_p0", "episode_reward_p1", "eval/selfplay_reward_p0", "eval/selfplay_reward_p1")),
    ("success / dropout rate", ("episode_success", "episode_dropout", "eval/mean_success", "eval/mean_dropout")),
    ("entropy", ("entropy",)),
    ("losses", ("policy_loss", "value_loss")),
)


def plot_training_curves(rows: list[dict], path: str | Path, panels=PANELS, x_key: str = "env_steps") -> Path | None:
    """One panel per group of metric keys against env steps (panels without data are left out);
    evaluation points drawn as markers."""
    present = {k for r in rows for k, v in r.items() if isinstance(v, float | int)}
    panels = [(title, keys) for title, keys in panels if present.intersection(keys)]
    if not rows or not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for key in keys:
            points = [(r[x_key], r[key]) for r in rows
                      if isinstance(r.get(key), float | int) and r.get(x_key) is not None]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            style = dict(marker="o", linestyle="--") if key.startswith("eval/") else dict(linewidth=1.2)
            ax.plot(xs, ys, label=key, **style)
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_nash_conv(rows: list[dict], path: str | Path) -> Path | None:
    """Exact NashConv of the evaluated policy against wall-clock time and env steps (log scale);
    None when the run has no ``eval/nash_conv``."""
    points = [(r.get("eval/time_s"), r.get("env_steps"), r["eval/nash_conv"]) for r in rows
              if isinstance(r.get("eval/nash_conv"), float | int)]
    if not points:
        return None
    fig = Figure(figsize=(9, 3.4))
    for ax, column, label in zip(fig.subplots(1, 2), (0, 1), ("training time (s)", "env steps"), strict=True):
        xs = [p[column] for p in points if p[column] is not None]
        ys = [p[2] for p in points if p[column] is not None]
        ax.plot(xs, ys, marker="o")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("NashConv")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
