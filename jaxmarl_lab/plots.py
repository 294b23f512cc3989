"""Training curves as PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (
    ("episode welfare", ("episode_welfare", "eval/selfplay_welfare")),
    ("reward per seat",
     ("episode_reward_p0", "episode_reward_p1", "eval/selfplay_reward_p0", "eval/selfplay_reward_p1")),
    ("entropy", ("entropy",)),
    ("losses", ("policy_loss", "value_loss")),
)


def plot_training_curves(rows: list[dict], path: str | Path, panels=PANELS, x_key: str = "env_steps") -> Path | None:
    """One panel per group of metric keys against env steps; evaluation points drawn as markers."""
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
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
    plt.close(fig)
    return path
