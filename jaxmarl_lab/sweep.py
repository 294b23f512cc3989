"""In-program hyperparameter sweeps: every combination × seed vmapped into one compiled program.

    python algos/ppo_bargain.py --config configs/ppo.yaml --sweep lr=1e-4,3e-4,1e-3 --sweep ent_coef=0.0,0.01

Why one program: on an accelerator the runs of a sweep share every kernel launch, so a grid of
small runs costs little more than one (PureJaxRL's trick, applied to hyperparameters as well as
seeds). How: the driver already vmaps ``num_seeds`` runs; a sweep makes that axis
combinations × seeds (slot ``c * num_seeds + s`` runs combination ``c`` with seed ``s``, so every
combination sees the same seeds) and calls the algorithm's ``make_train`` inside the vmap with
the swept fields replaced by traced values. Only float fields the algorithm uses as numbers can
be swept (``lr``, ``ent_coef``, ``clip``, ``gamma``, ...); a field that decides shapes or Python
control flow cannot, and the run says so.

Results: the run's ``metrics.csv`` has a ``<metric>/seed<slot>`` column per slot, and the end of
the run writes ``sweep_results.json`` (per combination: its values, the headline evaluation
metric per seed, mean and standard deviation) and prints the table best first.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import typing
from pathlib import Path

import numpy as np


def parse_sweep(specs: list[str], config_cls) -> list[dict[str, float]]:
    """``["lr=1e-4,3e-4", "ent_coef=0,0.01"]`` -> the grid of combinations (first field slowest)."""
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    axes: dict[str, list[float]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"--sweep takes NAME=V1,V2,...; got {spec!r}")
        if name not in fields:
            raise ValueError(f"--sweep {name}: not a field of {config_cls.__name__}; fields: {sorted(fields)}")
        if hints.get(name) is not float:
            raise ValueError(f"--sweep {name}: only float fields can be swept in one program "
                             f"({name} is {getattr(hints.get(name), '__name__', hints.get(name))}); "
                             "start one run per value instead")
        if name in axes:
            raise ValueError(f"--sweep {name} given twice")
        try:
            axes[name] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError as err:
            raise ValueError(f"--sweep {name}: values must be numbers, got {values!r}") from err
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def slot_values(combos: list[dict[str, float]], num_seeds: int) -> dict[str, np.ndarray]:
    """f32[combinations * seeds] per swept field, in slot order (combination-major)."""
    return {name: np.repeat(np.asarray([c[name] for c in combos], np.float32), num_seeds) for name in combos[0]}


def label(combo: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in combo.items())


def summarise(report: dict, combos: list[dict[str, float]], num_seeds: int, metric: str) -> list[dict]:
    """Per combination: values, ``metric`` per seed, mean and std (from the final evaluation of every slot)."""
    rows = []
    for c, combo in enumerate(combos):
        scores = [report["summary"].get(f"{metric}/seed{c * num_seeds + s}", report["summary"].get(metric))
                  for s in range(num_seeds)]
        scores = [float(x) for x in scores if x is not None]
        rows.append({"combination": combo, "label": label(combo), "metric": metric, "per_seed": scores,
                     "mean": float(np.mean(scores)) if scores else float("nan"),
                     "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0})
    return rows


def write_results(path: Path, rows: list[dict], lower_is_better: bool = False) -> str:
    """Write ``sweep_results.json`` and return the table (best first) as text."""
    ranked = sorted(rows, key=lambda r: r["mean"], reverse=not lower_is_better)
    Path(path).write_text(json.dumps({"combinations": rows, "best": ranked[0] if ranked else None}, indent=2))
    metric = rows[0]["metric"] if rows else "metric"
    lines = [f"sweep: {len(rows)} combinations, {metric} (mean ± std over seeds), best first"]
    lines += [f"  {r['label']:<40} {r['mean']:.4f} ± {r['std']:.4f}  ({', '.join(f'{x:.4f}' for x in r['per_seed'])})"
              for r in ranked]
    return "\n".join(lines)


# ---- jaxmarl-lab sweep: one training run per (trial, seed), any search method ----------------


@dataclasses.dataclass(frozen=True)
class Param:
    """A searched hyperparameter: explicit ``values`` or a ``low``..``high`` range (``log`` scale)."""

    name: str
    values: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False


def parse_param(spec: str) -> Param:
    """``lr=1e-4,3e-4`` (values) or ``lr=1e-5:1e-2:log`` / ``clip=0.1:0.3`` (a range)."""
    name, sep, body = spec.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep or not body:
        raise ValueError(f"--param takes NAME=V1,V2,... or NAME=LOW:HIGH[:log]; got {spec!r}")
    if ":" in body:
        parts = body.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"--param {name}: a range is LOW:HIGH or LOW:HIGH:log, got {body!r}")
        low, high = float(parts[0]), float(parts[1])
        if not low < high or (len(parts) == 3 and low <= 0):
            raise ValueError(f"--param {name}: need 0 < LOW < HIGH for log ranges and LOW < HIGH otherwise")
        return Param(name, low=low, high=high, log=len(parts) == 3)
    values = tuple(_number(v) for v in body.split(",") if v.strip())
    return Param(name, values=values)


def _number(text: str):
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def propose(params: list[Param], method: str, num_trials: int, seed: int = 0):
    """Yields ``(trial_index, values, report)``; call ``report(score)`` after each trial (bayes learns from it)."""
    if method == "grid":
        missing = [p.name for p in params if p.values is None]
        if missing:
            raise ValueError(f"grid search needs explicit values, not ranges: {missing}")
        grid = list(itertools.product(*[p.values for p in params]))
        for i, combo in enumerate(grid[:num_trials] if num_trials else grid):
            yield i, dict(zip([p.name for p in params], combo, strict=True)), lambda score: None
    elif method == "random":
        rng = np.random.default_rng(seed)
        for i in range(num_trials):
            values = {}
            for p in params:
                if p.values is not None:
                    values[p.name] = p.values[rng.integers(len(p.values))]
                elif p.log:
                    values[p.name] = float(np.exp(rng.uniform(np.log(p.low), np.log(p.high))))
                else:
                    values[p.name] = float(rng.uniform(p.low, p.high))
            yield i, values, lambda score: None
    elif method == "bayes":
        try:
            import optuna
        except ImportError as err:
            raise ValueError("--method bayes needs optuna: pip install 'jaxmarl_lab[sweep]'") from err
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        for i in range(num_trials):
            trial = study.ask()
            values = {p.name: (trial.suggest_categorical(p.name, list(p.values)) if p.values is not None
                               else trial.suggest_float(p.name, p.low, p.high, log=p.log)) for p in params}
            yield i, values, (lambda score, t=trial: study.tell(t, score))
    else:
        raise ValueError(f"--method must be grid, random or bayes, got {method!r}")


def run_trial(algorithm: str, config_file: str | None, overrides: dict, seed: int, results_dir: str,
              tags: list[str], quiet: bool = True):
    """Train one run of ``algos/<algorithm>.py`` with ``overrides`` and ``seed``; returns (run, metric, score)."""
    from jaxmarl_lab.api import _algorithm_module
    from jaxmarl_lab.config import RunOptions, build, load_yaml
    from jaxmarl_lab.training import train

    module = _algorithm_module(algorithm)
    values = dict(load_yaml(config_file)) if config_file else {}
    fields = {f.name for f in dataclasses.fields(module.Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{algorithm} has no option(s) {unknown}; options: {sorted(fields)}")
    run_keys = {f.name for f in dataclasses.fields(RunOptions)}
    config = build(module.Config, {**{k: v for k, v in values.items() if k in fields}, **overrides, "seed": seed})
    options = build(RunOptions, {**{k: v for k, v in values.items() if k in run_keys}, "results_dir": results_dir,
                                 "tags": tags, "quiet": quiet})
    kwargs = getattr(module, "DRIVER_KWARGS", {})
    result = train(algorithm, module.Config, module.make_train, module.make_policy, config, options, **kwargs)
    if result.exit_code != 0 or result.report is None:
        raise RuntimeError(f"{algorithm} run failed ({result.error or result.exit_code})")
    metric = kwargs.get("eval_metric") or next(k for k in ("selfplay_welfare", "mean_return", "nash_conv")
                                                 if k in result.report["summary"])
    return result.run, metric, float(result.report["summary"][metric])
