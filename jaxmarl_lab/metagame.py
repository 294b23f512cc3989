"""Meta-game analysis of a cross-play table (``jaxmarl-lab metagame FILE.json``).

From the payoff tensor P[i, j, s] (row policy i in seat 0, column policy j in seat 1; mean return
of seat s) it builds the symmetric meta-game

    M[i, j] = 1/2 (P[i, j, 0] + P[j, i, 1])     (i's payoff against j, averaged over both seats)

solves it for a symmetric equilibrium sigma (``nash``: the maximum-entropy one among those found by
support enumeration; or ``replicator``, ``fictitious_play``, ``uniform``) and reports per policy:

* ``regret``: (M sigma)_i - sigma^T M sigma, what policy i gains over the equilibrium against it
  (<= 0 up to noise for policies in the support; lower is better for the others);
* ``uniform_score``: mean_j M[i, j], the average payoff against the whole pool;
* ``probability``: its weight in sigma;

and at the equilibrium profile (sigma in both seats): seat payoffs u1 = sigma^T P0 sigma,
u2 = sigma^T P1 sigma, utilitarian welfare u1 + u2 and Nash welfare sqrt(max(u1,0) max(u2,0)).

Confidence intervals: stratified bootstrap, resampling the games of every ordered pair with
replacement (the cross-play run's per-game ``.npz``), re-solving each resample; 95% percentile
intervals. (The original analysis code used the same protocol, shared/specs/bargain.md §5.2.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxmarl_lab import game_theory as gt

SOLVERS = ("nash", "replicator", "fictitious_play", "uniform")


def symmetric_metagame(payoffs: np.ndarray) -> np.ndarray:
    """M[i, j] = 1/2 (P[i, j, 0] + P[j, i, 1])."""
    payoffs = np.asarray(payoffs, np.float64)
    return 0.5 * (payoffs[..., 0] + payoffs[..., 1].T)


def solve_symmetric(M: np.ndarray, solver: str) -> np.ndarray:
    if solver == "nash":
        return gt.symmetric_nash(M)
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; valid solvers: {', '.join(SOLVERS)}")
    x, y = gt.meta_solver(solver)(M, M.T)
    sigma = 0.5 * (x + y)  # the two populations are one pool; symmetric dynamics give x = y
    return sigma / sigma.sum()


def analyse(payoffs: np.ndarray, solver: str = "nash") -> dict:
    """Point estimates (see the module docstring) for one payoff tensor [n, n, 2]."""
    payoffs = np.asarray(payoffs, np.float64)
    M = symmetric_metagame(payoffs)
    sigma = solve_symmetric(M, solver)
    u1, u2 = sigma @ payoffs[..., 0] @ sigma, sigma @ payoffs[..., 1] @ sigma
    return {"probability": sigma, "regret": gt.symmetric_regrets(M, sigma), "uniform_score": M.mean(axis=1),
            "value": float(sigma @ M @ sigma), "u1": float(u1), "u2": float(u2),
            "utilitarian_welfare": float(u1 + u2), "nash_welfare": float(np.sqrt(max(u1, 0.0) * max(u2, 0.0)))}


def bootstrap(game_returns: np.ndarray, solver: str, samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The statistics of :func:`analyse` on ``samples`` stratified resamples of the games
    ([n, n, G, 2]: each ordered pair's G games resampled with replacement)."""
    rng = np.random.default_rng(seed)
    n, _, games, _ = game_returns.shape
    out: dict[str, list] = {}
    for _ in range(samples):
        index = rng.integers(0, games, size=(n, n, games))
        means = np.take_along_axis(game_returns, index[..., None], axis=2).mean(axis=2)
        for key, value in analyse(means, solver).items():
            out.setdefault(key, []).append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def load_crossplay(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(names, payoff tensor [n, n, 2], per-game returns [n, n, G, 2] or None) of a crossplay JSON."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no cross-play file at {path} (write one with: jaxmarl-lab crossplay ... --output FILE.json)")
    data = json.loads(path.read_text())
    if "payoff_matrix" not in data or "policy_names" not in data:
        raise ValueError(f"{path} is not a cross-play file (needs policy_names and payoff_matrix)")
    names = list(data["policy_names"])
    payoffs = np.asarray(data["payoff_matrix"], np.float64)
    if payoffs.shape != (len(names), len(names), 2):
        raise ValueError(f"{path}: payoff_matrix has shape {payoffs.shape}, expected {(len(names), len(names), 2)}")
    games = None
    games_file = data.get("games_file")
    if games_file:
        games_path = Path(games_file) if Path(games_file).is_absolute() else path.parent / games_file
        if games_path.exists():
            games = np.load(games_path)["returns"].astype(np.float64)
    return names, payoffs, games


def report(names: list[str], payoffs: np.ndarray, games: np.ndarray | None, solver: str = "nash",
           samples: int = 500, seed: int = 0) -> dict:
    """Point estimates plus bootstrap intervals (when per-game data exist) as a JSON-ready dict."""
    point = analyse(payoffs, solver)
    boot = bootstrap(games, solver, samples, seed) if games is not None and samples > 0 else None

    def interval(key, index=None):
        if boot is None:
            return None
        values = boot[key] if index is None else boot[key][:, index]
        low, high = np.percentile(values, [2.5, 97.5])
        return [float(low), float(high)]

    policies = []
    for i, name in enumerate(names):
        policies.append({"name": name, "probability": float(point["probability"][i]),
                         "probability_ci": interval("probability", i),
                         "regret": float(point["regret"][i]), "regret_ci": interval("regret", i),
                         "uniform_score": float(point["uniform_score"][i]),
                         "uniform_score_ci": interval("uniform_score", i)})
    equilibrium = {k: point[k] for k in ("value", "u1", "u2", "utilitarian_welfare", "nash_welfare")}
    equilibrium.update({f"{k}_ci": interval(k) for k in ("utilitarian_welfare", "nash_welfare", "value")})
    return {"solver": solver, "bootstrap_samples": samples if boot is not None else 0, "policies": policies,
            "equilibrium": equilibrium, "metagame": symmetric_metagame(payoffs).tolist()}


def format_markdown(result: dict, source: str = "") -> str:
    def ci(values):
        return "" if values is None else f" [{values[0]:.3f}, {values[1]:.3f}]"

    lines = [f"# Meta-game analysis{f' of {source}' if source else ''}", "",
             f"Symmetric meta-game M[i,j] = ½(P1 payoff of i vs j + P2 payoff of i vs j); solver `{result['solver']}`; "
             + (f"95% intervals from {result['bootstrap_samples']} stratified bootstrap resamples."
                if result["bootstrap_samples"] else "no per-game data, so no intervals."), "",
             "| policy | equilibrium prob. | regret vs equilibrium | uniform score |", "|---|---|---|---|"]
    ranked = sorted(result["policies"], key=lambda p: (p["regret"], -p["uniform_score"]), reverse=True)
    for p in ranked:
        lines.append(f"| {p['name']} | {p['probability']:.3f}{ci(p['probability_ci'])} | "
                     f"{p['regret']:+.4f}{ci(p['regret_ci'])} | {p['uniform_score']:.4f}{ci(p['uniform_score_ci'])} |")
    eq = result["equilibrium"]
    lines += ["", "At the equilibrium (σ in both seats):", "",
              f"- seat payoffs: P1 {eq['u1']:.4f}, P2 {eq['u2']:.4f}; "
              f"equilibrium value {eq['value']:.4f}{ci(eq['value_ci'])}",
              f"- utilitarian welfare: {eq['utilitarian_welfare']:.4f}{ci(eq['utilitarian_welfare_ci'])}",
              f"- Nash welfare √(u1·u2): {eq['nash_welfare']:.4f}{ci(eq['nash_welfare_ci'])}"]
    return "\n".join(lines) + "\n"


def plot_crossplay(names: list[str], payoffs: np.ndarray, welfare: np.ndarray, path: str | Path,
                   accept: np.ndarray | None = None) -> Path:
    """Heatmaps: P1's payoff, P2's payoff and welfare (plus accept rate if given) per ordered pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("P1 (row) payoff", payoffs[..., 0]), ("P2 (column) payoff", payoffs[..., 1]), ("welfare", welfare)]
    if accept is not None:
        panels.append(("accept rate", accept))
    n = len(names)
    size = max(4.0, 0.6 * n + 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size))
    for ax, (title, values) in zip(np.atleast_1d(axes), panels, strict=True):
        image = ax.imshow(values, cmap="viridis")
        ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set_xlabel("P2 (column)")
        ax.set_ylabel("P1 (row)")
        ax.set_title(title)
        if n <= 14:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
