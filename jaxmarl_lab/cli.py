"""``jaxmarl-lab`` command line: ``baselines`` (round-robin of scripted policies), ``crossplay``
(baselines, trained runs and LLMs against each other), ``metagame`` (equilibrium analysis of a
cross-play file), ``render`` (a GIF of one game), ``list-envs``,
``list-models`` (chat models for LLM policies), ``evolve`` (Bucket Brigade genomes),
``therapy-table`` (therapists across client conditions), ``results`` (list, show, compare, rank and
export training runs)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jax
import yaml

from jaxmarl_lab.evaluation import crossplay, record_episode
from jaxmarl_lab.policies import baseline, list_baselines
from jaxmarl_lab.registry import env_class, list_envs, make
from jaxmarl_lab.render import save_gif
from jaxmarl_lab.results import DEFAULT_METRIC, ResultsManager


def _parse_env_args(pairs: list[str]) -> dict:
    """``key=value`` pairs; values are read as YAML so ``quantities=[1,1]`` and ``num_rounds=2`` work."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--env-arg expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def cmd_baselines(args) -> int:
    env = make(args.env, **_parse_env_args(args.env_arg))
    names = args.policies or list_baselines(env)
    if not names:
        raise SystemExit(f"env {args.env!r} has no baseline policies")
    policies = {name: baseline(env, name) for name in names}
    if env.num_agents != 2:
        raise SystemExit(f"the round-robin table needs a two-player env; {args.env!r} has {env.num_agents} agents")
    print(f"{len(names)} baselines x {len(names)} = {len(names) ** 2} matchups, {args.num_games} games each "
          f"(compiling one program for all of them, then running)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = crossplay(env, policies, args.num_games, jax.random.key(args.seed), progress=not args.quiet)
    elapsed = time.perf_counter() - start
    print(result.table())
    print(f"({elapsed:.1f}s including compilation)", file=sys.stderr)
    if args.json:
        result.save_json(args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.csv:
        result.save_csv(args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def policy_from_spec(env, spec: str, args) -> tuple[str, object]:
    """``baseline:NAME`` (or a bare baseline name), ``run:RUN_DIR`` or ``llm:MODEL`` (a predefined
    model or an LLM-config JSON file) → (display name, Policy)."""
    kind, _, value = spec.partition(":")
    if not value:
        kind, value = "baseline", spec
    if kind == "baseline":
        return value, baseline(env, value)
    if kind == "run":
        from jaxmarl_lab.training import load_policy

        return f"run:{Path(value).name}", load_policy(value)
    if kind == "search":  # search:RUN_DIR[:NUM_SIMULATIONS]: IS-MCTS over the run's policy (algos/is_mcts.py)
        import importlib

        from jaxmarl_lab.training import load_policy

        run_dir, _, sims = value.rpartition(":") if value.rpartition(":")[2].isdigit() else (value, "", "100")
        search = importlib.import_module("algos.is_mcts")
        return f"search:{Path(run_dir).name}:{sims}", search.search_policy(env, load_policy(run_dir), int(sims))
    if kind == "llm":
        from jaxmarl_lab.llm import llm_policy

        cache = False if args.no_cache else args.cache_dir
        return f"llm:{Path(value).stem if value.endswith('.json') else value}", llm_policy(
            env, value, cache_dir=cache, max_concurrency=args.max_concurrency)
    raise ValueError(f"unknown policy spec {spec!r}: use baseline:NAME, run:RUN_DIR, search:RUN_DIR:SIMS or llm:MODEL")


def cmd_crossplay(args) -> int:
    env = make(args.env, **_parse_env_args(args.env_arg))
    policies = dict(policy_from_spec(env, spec, args) for spec in args.policies)
    if len(policies) != len(args.policies):
        raise ValueError("two --policies entries have the same name")
    start = time.perf_counter()
    result = crossplay(env, policies, args.num_games, jax.random.key(args.seed), progress=not args.quiet)
    print(result.table())
    usage = {}
    for name, policy in policies.items():
        session = getattr(policy.act_fn, "session", None)
        if session is not None:
            usage[name] = session.stats()
            u = usage[name]
            cost = "unknown" if u["cost_usd"] is None else f"${u['cost_usd']:.4f}"
            print(f"{name}: {u['decisions']} decisions, {u['requests']} requests ({u['cache_hits']} from cache), "
                  f"{u['input_tokens']} input + {u['output_tokens']} output tokens, cost {cost}, "
                  f"{u['parse_failures']} unparseable answers (played as the fallback)")
    print(f"({time.perf_counter() - start:.1f}s including compilation)", file=sys.stderr)
    if args.json:
        data = result.to_dict()
        data["llm_usage"] = usage
        Path(args.json).write_text(json.dumps(data, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.csv:
        result.save_csv(args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.output:
        for path in write_crossplay_outputs(result, args.output, usage):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def write_crossplay_outputs(result, output: str, usage: dict | None = None) -> list[Path]:
    """FILE.json (payoff tensor, per-pair statistics), FILE.npz (every game, for bootstrap
    intervals), FILE.csv (one row per ordered pair), FILE_p0.csv / FILE_p1.csv / FILE_welfare.csv
    (matrices) and FILE.png (heatmaps)."""
    import csv

    from jaxmarl_lab.metagame import plot_crossplay

    json_path = Path(output)
    if json_path.suffix != ".json":
        json_path = json_path.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    stem = json_path.with_suffix("")
    games_path = stem.with_suffix(".npz")
    result.save_games(games_path)
    data = result.to_dict()
    data["games_file"] = games_path.name
    if usage:
        data["llm_usage"] = usage
    json_path.write_text(json.dumps(data, indent=2))
    written = [json_path, games_path]
    long_path = stem.with_suffix(".csv")
    result.save_csv(long_path)
    written.append(long_path)
    for suffix, matrix in (("_p0", result.payoffs[..., 0]), ("_p1", result.payoffs[..., 1]),
                           ("_welfare", result.welfare)):
        path = Path(f"{stem}{suffix}.csv")
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["P1 \\ P2", *result.names])
            for name, row in zip(result.names, matrix, strict=True):
                writer.writerow([name, *(f"{v:.6f}" for v in row)])
        written.append(path)
    accept = result.outcome_rates.get("accept")
    written.append(plot_crossplay(result.names, result.payoffs, result.welfare, stem.with_suffix(".png"), accept))
    return written


def cmd_metagame(args) -> int:
    from jaxmarl_lab.metagame import format_markdown, load_crossplay, report

    names, payoffs, games = load_crossplay(args.file)
    if games is None and args.bootstrap:
        print("note: no per-game data next to the file (FILE.npz); reporting without confidence intervals",
              file=sys.stderr)
    result = report(names, payoffs, games, solver=args.solver, samples=args.bootstrap, seed=args.seed)
    markdown = format_markdown(result, source=Path(args.file).name)
    print(markdown)
    stem = Path(args.output) if args.output else Path(args.file).with_suffix("")
    stem = stem.with_suffix("") if stem.suffix in (".md", ".json") else stem
    md_path, json_path = Path(f"{stem}_metagame.md"), Path(f"{stem}_metagame.json")
    md_path.write_text(markdown)
    json_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    env = make(args.env, **_parse_env_args(args.env_arg))
    names = args.policies or ["random"]
    if len(names) not in (1, env.num_agents):
        raise ValueError(f"--policies takes one baseline for every seat or {env.num_agents} (one per seat)")
    seats = [baseline(env, name) for name in names]
    frames, result = record_episode(env, seats[0] if len(seats) == 1 else seats, jax.random.key(args.seed))
    save_gif(frames, args.out, fps=args.fps)
    outcome = ", ".join(f"{k}" for k, v in result.outcomes.items() if v[0] > 0.5)
    returns = " ".join(f"{a}={r:.3f}" for a, r in zip(env.agents, result.returns[0], strict=True))
    print(f"wrote {args.out}: {len(frames)} frames, {int(result.lengths[0])} steps, {outcome or 'no outcome'}; "
          f"returns {returns}")
    return 0


def cmd_list_models(args) -> int:
    from jaxmarl_lab.llm.config import format_model_table

    print(format_model_table())
    return 0


def cmd_list_envs(args) -> int:
    for name in list_envs():
        cls = env_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:24s} {doc}")
    return 0


def _fmt(value: Any) -> str:
    """One table cell: short floats, '-' for missing, lists comma-joined."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) if value else "[]"
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain left-aligned text table with a dashed rule under the header (no extra dependencies)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_mapping(mapping: Mapping, indent: str = "  ") -> None:
    if not mapping:
        print(f"{indent}(none)")
        return
    width = max(len(str(k)) for k in mapping)
    for key, value in mapping.items():
        print(f"{indent}{str(key):<{width}}  {_fmt(value)}")


def _metric_label(metric: str) -> str:
    return metric.removeprefix("final_metrics.")


def cmd_results_list(args) -> int:
    manager = ResultsManager(args.root)
    entries = manager.list_runs(args.algorithm, args.status)
    if not entries:
        filters = ", ".join(f"{k}={v}" for k, v in (("algorithm", args.algorithm), ("status", args.status)) if v)
        print(f"no runs in {manager.root}" + (f" matching {filters}" if filters else ""))
        return 0
    rows = [[e["run_id"], e.get("algorithm"), e.get("status"), e.get("seed"),
             manager.get_metric(e, "total_env_steps"), manager.get_metric(e, args.metric)] for e in entries]
    print(format_table(["run_id", "algorithm", "status", "seed", "total_env_steps", _metric_label(args.metric)],
                       rows))
    return 0


def cmd_results_show(args) -> int:
    run = ResultsManager(args.root).open_run(args.run)
    meta = run.metadata
    print(f"run {run.run_id}  ({run.path})")
    print("\nmetadata:")
    _print_mapping({k: v for k, v in meta.items() if k not in ("final_metrics", "best_metrics")})
    print("\nfinal metrics:")
    _print_mapping(meta.get("final_metrics") or {})
    print("\nbest metrics:")
    _print_mapping(meta.get("best_metrics") or {})
    print("\nconfig:")
    config = run.load_config()
    text = yaml.safe_dump(config, sort_keys=False).rstrip() if config else "(none)"
    print("\n".join(f"  {line}" for line in text.splitlines()))
    rows = run.read_metrics()
    print(f"\nlast metrics row ({len(rows)} rows logged):")
    last = dict(rows[-1]) if rows else {}
    if isinstance(last.get("timestamp"), float):
        last["timestamp"] = datetime.fromtimestamp(last["timestamp"]).astimezone().isoformat(timespec="seconds")
    _print_mapping(last)
    return 0


def cmd_results_compare(args) -> int:
    dicts = ResultsManager(args.root).compare(args.runs)
    keys: list[str] = []
    for d in dicts:
        keys.extend(k for k in d if k not in keys)
    rows = []
    for key in keys:
        values = [d.get(key) for d in dicts]
        if args.diff_only and key != "run_id" and len({_fmt(v) for v in values}) == 1:
            continue
        rows.append([key, *values])
    print(format_table(["key", *(d["run_id"] for d in dicts)], rows))
    return 0


def cmd_results_best(args) -> int:
    manager = ResultsManager(args.root)
    run = manager.best_run(args.algorithm, args.metric, args.mode)
    if run is None:
        scope = f"run of {args.algorithm!r}" if args.algorithm else "run"
        raise ValueError(f"no {scope} in {manager.root} has metric {args.metric!r}")
    print(f"run_id: {run.run_id}")
    print(f"{args.metric}: {_fmt(manager.get_metric(run, args.metric))}")
    print(f"path: {run.path}")
    return 0


def cmd_results_leaderboard(args) -> int:
    manager = ResultsManager(args.root)
    board = manager.leaderboard(args.metric, args.mode)
    if not board:
        print(f"no runs in {manager.root} have metric {args.metric!r}")
        return 0
    rows = [[i + 1, b["algorithm"], b["run_id"], b["value"], b["num_runs"]] for i, b in enumerate(board)]
    print(format_table(["rank", "algorithm", "run_id", f"{_metric_label(args.metric)} ({args.mode})", "num_runs"],
                       rows))
    return 0


def cmd_results_export(args) -> int:
    manager = ResultsManager(args.root)
    manager.export(args.file)
    print(f"wrote {args.file} ({len(manager.list_runs())} runs)")
    return 0


def cmd_results_mark_abandoned(args) -> int:
    marked = ResultsManager(args.root).mark_abandoned(args.hours)
    print("\n".join(f"abandoned {run_id}" for run_id in marked) or "no stale running runs")
    return 0


def _add_results_parser(sub) -> None:
    results = sub.add_parser("results", help="list, inspect, compare, rank and export training runs")
    results.add_argument("--root", default="results", help="results directory (default: ./results)")
    # --root is also accepted after the sub-subcommand; SUPPRESS keeps it from overwriting the one given before
    root_opt = argparse.ArgumentParser(add_help=False)
    root_opt.add_argument("--root", default=argparse.SUPPRESS, help="results directory (default: ./results)")
    rsub = results.add_subparsers(dest="results_command", required=True)

    def metric_opts(p: argparse.ArgumentParser, mode: bool = True) -> None:
        p.add_argument("--metric", default=DEFAULT_METRIC, help=f"dotted metadata path (default: {DEFAULT_METRIC})")
        if mode:
            p.add_argument("--mode", choices=("max", "min"), default="max", help="higher or lower is better")

    p = rsub.add_parser("list", parents=[root_opt], help="runs, newest first")
    p.add_argument("--algorithm", default=None)
    p.add_argument("--status", default=None, help="running, completed, failed, interrupted or abandoned")
    metric_opts(p, mode=False)
    p.set_defaults(func=cmd_results_list)

    p = rsub.add_parser("show", parents=[root_opt], help="metadata, final metrics, config and last metrics row")
    p.add_argument("run", help="run id or run directory")
    p.set_defaults(func=cmd_results_show)

    p = rsub.add_parser("compare", parents=[root_opt], help="runs side by side (rows = keys, columns = runs)")
    p.add_argument("runs", nargs="+", help="run ids or run directories")
    p.add_argument("--diff-only", action="store_true", help="hide keys on which all runs agree")
    p.set_defaults(func=cmd_results_compare)

    p = rsub.add_parser("best", parents=[root_opt], help="best run of an algorithm (all runs if none given)")
    p.add_argument("algorithm", nargs="?", default=None)
    metric_opts(p)
    p.set_defaults(func=cmd_results_best)

    p = rsub.add_parser("leaderboard", parents=[root_opt], help="best run per algorithm, ranked")
    metric_opts(p)
    p.set_defaults(func=cmd_results_leaderboard)

    p = rsub.add_parser("export", parents=[root_opt], help="all runs to FILE.csv or FILE.json")
    p.add_argument("file")
    p.set_defaults(func=cmd_results_export)

    p = rsub.add_parser("mark-abandoned", parents=[root_opt], help="stale 'running' runs -> 'abandoned'")
    p.add_argument("--hours", type=float, default=24.0, help="started more than this many hours ago")
    p.set_defaults(func=cmd_results_mark_abandoned)


def cmd_evolve(args) -> int:
    """Evolve a Bucket Brigade heuristic genome against scripted teammates (V7 protocol)."""
    from envs.bucket_brigade import ARCHETYPES, GENES, HEURISTICS, ObsReader
    from jaxmarl_lab.evolution import evolve

    env = make("bucket_brigade", scenario=args.scenario, num_agents=args.num_agents, termination=args.termination,
               max_nights=args.max_nights)
    names = [n.strip() for n in args.opponents.split(",") if n.strip()]
    unknown = [n for n in names if n not in ARCHETYPES]
    if unknown or not names:
        raise ValueError(f"--opponents takes archetype names ({', '.join(ARCHETYPES)}), got {args.opponents!r}")
    if args.variant not in HEURISTICS:
        raise ValueError(f"--variant must be one of {', '.join(HEURISTICS)}")
    act = HEURISTICS[args.variant](ObsReader.of(env))
    opponents = jax.numpy.asarray([ARCHETYPES[n] for n in names])
    print(f"evolving {args.population} genomes x {args.generations} generations on {args.scenario} "
          f"({args.episodes} games each, {args.termination} rule, cap {args.max_nights}) ...", file=sys.stderr)
    start = time.perf_counter()
    result = evolve(env, act, opponents, jax.random.key(args.seed), population=args.population,
                    generations=args.generations, episodes=args.episodes, elite=args.elite,
                    mutation=args.mutation)
    elapsed = time.perf_counter() - start
    out = result.save(args.out or f"evolved/{args.scenario}", GENES, scenario=args.scenario, opponents=names,
                      variant=args.variant, termination=args.termination, max_nights=args.max_nights,
                      population=args.population, generations=args.generations, episodes=args.episodes,
                      seed=args.seed, seconds=round(elapsed, 2))
    print(f"best fitness {result.best_fitness:.3f} (generation 1 best {result.best_per_generation[0]:.3f}) "
          f"in {elapsed:.1f} s")
    print("genome: " + ", ".join(f"{g}={v:.3f}" for g, v in zip(GENES, result.best_genome, strict=True)))
    print(f"saved {out / 'best_genome.json'} and {out / 'fitness_curve.png'}")
    return 0


def cmd_therapy_table(args) -> int:
    """Success/dropout/length of complementary, random and (optionally) a trained therapist over
    5 mechanisms x 5 patterns."""
    from pathlib import Path

    from jaxmarl_lab.results import Run
    from jaxmarl_lab.therapy_table import format_table, plot_heatmaps, therapy_table, write_csv

    env_kwargs = {}
    if args.run:
        saved = Run(args.run).load_config()
        env_kwargs = {k: v for k, v in (saved.get("env_kwargs") or {}).items()
                      if k not in ("pattern", "mechanism", "potential_shaping", "shaping_gamma")}
    env_kwargs.update(_parse_env_args(args.env_arg))
    env = make("therapy", **env_kwargs)
    policies = {name: baseline(env, name) for name in args.baselines}
    if args.run:
        from jaxmarl_lab.training import load_policy

        policies[args.name] = load_policy(args.run, args.checkpoint, sample=not args.greedy)
    settings = ", ".join(f"{k}={getattr(env, k)}" for k in ("threshold", "entropy", "max_sessions", "bond_alpha",
                                                             "bond_offset", "baseline_accuracy", "history_weight"))
    print(f"therapy-table: {len(policies)} policies x 25 conditions x {args.episodes} episodes ({settings}) ...",
          file=sys.stderr)
    start = time.perf_counter()
    rows = therapy_table(env, policies, args.episodes, jax.random.key(args.seed))
    print(format_table(rows))
    out = Path(args.out)
    csv_path, png_path = write_csv(rows, out / "therapy_table.csv"), plot_heatmaps(rows, out / "therapy_table.png")
    print(f"\n{time.perf_counter() - start:.1f} s; saved {csv_path} and {png_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxmarl-lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("baselines", help="round-robin table of an env's scripted policies")
    p.add_argument("--env", default="bargain", help=f"one of: {', '.join(list_envs())}")
    p.add_argument("--num-games", type=int, default=10_000, help="games per ordered matchup")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policies", nargs="+", default=None, help="subset of baselines (default: all)")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="static env option, e.g. --env-arg num_rounds=2 (repeatable)")
    p.add_argument("--json", default=None, help="write the full result as JSON")
    p.add_argument("--csv", default=None, help="write one row per matchup as CSV")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("crossplay", help="every ordered pair of baselines, trained runs and LLMs (two-player envs)")
    p.add_argument("--env", default="bargain", help=f"one of: {', '.join(list_envs())}")
    p.add_argument("--policies", nargs="+", required=True,
                   help="entries baseline:NAME, run:RUN_DIR, search:RUN_DIR:SIMS (IS-MCTS) or llm:MODEL "
                        "(a predefined model or a JSON config)")
    p.add_argument("--num-games", type=int, default=1000, help="games per ordered matchup")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="static env option, e.g. --env-arg num_rounds=2 (repeatable)")
    p.add_argument("--cache-dir", default=None, help="LLM response cache (default ~/.cache/jaxmarl_lab/llm)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the LLM response cache")
    p.add_argument("--max-concurrency", type=int, default=8, help="LLM requests in flight at once")
    p.add_argument("--json", default=None, help="write the result (and LLM usage) as JSON")
    p.add_argument("--csv", default=None, help="write one row per matchup as CSV")
    p.add_argument("--output", default=None, metavar="FILE.json",
                   help="write FILE.json, FILE.npz (every game), CSVs and FILE.png (heatmaps)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_crossplay)

    p = sub.add_parser("metagame", help="symmetric meta-game of a crossplay file: equilibrium, regrets, welfare, CIs")
    p.add_argument("file", help="a crossplay JSON written with --output (its .npz gives bootstrap intervals)")
    p.add_argument("--solver", default="nash", choices=("nash", "replicator", "fictitious_play", "uniform"),
                   help="nash: maximum-entropy symmetric equilibrium by support enumeration")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="output stem (default: next to FILE)")
    p.set_defaults(func=cmd_metagame)

    p = sub.add_parser("render", help="play one game with baseline policies and save it as a GIF")
    p.add_argument("--env", default="bargain", help=f"one of: {', '.join(list_envs())}")
    p.add_argument("--policies", nargs="+", default=None, help="baseline for every seat, or one per seat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="game.gif")
    p.add_argument("--fps", type=float, default=1.0)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("evolve", help="evolve a Bucket Brigade heuristic genome against scripted teammates")
    p.add_argument("--scenario", default="default")
    p.add_argument("--population", type=int, default=64)
    p.add_argument("--generations", type=int, default=50)
    p.add_argument("--episodes", type=int, default=20, help="games per genome per generation")
    p.add_argument("--opponents", default="firefighter,free_rider,hero,coordinator",
                   help="archetypes the teammates are drawn from, per game")
    p.add_argument("--variant", default="simplified", help="heuristic: simplified (Rust) or full (Python)")
    p.add_argument("--termination", default="rust", choices=("rust", "python"))
    p.add_argument("--max-nights", type=int, default=100)
    p.add_argument("--num-agents", type=int, default=4)
    p.add_argument("--elite", type=int, default=4)
    p.add_argument("--mutation", type=float, default=0.1, help="std of the Gaussian mutation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default: evolved/<scenario>)")
    p.set_defaults(func=cmd_evolve)

    p = sub.add_parser("therapy-table", help="therapists across 5 mechanisms x 5 patterns: success, dropout, length")
    p.add_argument("--run", default=None, help="a trained therapist's run directory (its env settings are used)")
    p.add_argument("--checkpoint", default="best", help="best | final")
    p.add_argument("--greedy", action="store_true", help="argmax actions (the original evaluation) instead of sampling")
    p.add_argument("--name", default="trained", help="row label of the trained policy")
    p.add_argument("--baselines", nargs="+", default=["complementary", "random"])
    p.add_argument("--episodes", type=int, default=1000, help="episodes per policy and condition")
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="therapy env option, e.g. --env-arg threshold=0.8 (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="therapy_table", help="directory for therapy_table.csv and .png")
    p.set_defaults(func=cmd_therapy_table)

    p = sub.add_parser("sweep", help="hyperparameter search (grid/random/bayes) over seeds, or compare algorithms; "
                                      "every run lands in the results index")
    p.add_argument("--algorithm", help="file in algos/ (e.g. ppo_bargain)")
    p.add_argument("--config", help="YAML the trials start from (default: the algorithm's defaults)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2|LOW:HIGH[:log]",
                   help="searched option (repeatable): values, or a range for random/bayes")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="fixed option for every run")
    p.add_argument("--method", default="grid", choices=("grid", "random", "bayes"))
    p.add_argument("--num-trials", type=int, default=0, help="trials (grid: 0 = the whole grid)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="every trial runs once per seed")
    p.add_argument("--compare-algorithms", nargs="+", metavar="ALGORITHM",
                   help="instead of a search: these algorithms (defaults + --set) on the same seeds, ranked")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--name", default=None, help="sweep name (default: the algorithm or 'compare')")
    p.add_argument("--verbose", action="store_true", help="show each run's progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("list-envs", help="registered environments")
    p.set_defaults(func=cmd_list_envs)

    p = sub.add_parser("list-models", help="predefined chat models for LLM policies (name, endpoint, key, prices)")
    p.set_defaults(func=cmd_list_models)

    _add_results_parser(sub)
    return parser


def cmd_sweep(args) -> int:
    import json
    import time

    import numpy as np

    from jaxmarl_lab.sweep import _number, parse_param, propose, run_trial

    fixed = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
        fixed[name.strip().replace("-", "_")] = _number(value)
    if args.compare_algorithms:
        import dataclasses

        from jaxmarl_lab.api import _algorithm_module

        known = {name: {f.name for f in dataclasses.fields(_algorithm_module(name).Config)}
                 for name in args.compare_algorithms}
        unused = sorted(k for k in fixed if not any(k in names for names in known.values()))
        if unused:
            raise ValueError(f"--set {unused}: no compared algorithm has these options")
        # each algorithm takes the --set options it has (budgets are shared, minibatching may differ)
        plan = [(name, {k: v for k, v in fixed.items() if k in known[name]}, lambda score: None)
                for name in args.compare_algorithms]
        fixed = {}
        label = args.name or "compare"
    else:
        if not args.algorithm or not args.param:
            raise ValueError("give --algorithm and at least one --param (or --compare-algorithms A B ...)")
        if args.method != "grid" and args.num_trials < 1:
            raise ValueError(f"--method {args.method} needs --num-trials N")
        params = [parse_param(spec) for spec in args.param]
        plan = ((args.algorithm, values, report) for _, values, report in
                propose(params, args.method, args.num_trials, seed=args.seeds[0]))
        label = args.name or args.algorithm
    sweep_id = f"{label}_{time.strftime('%Y%m%d_%H%M%S')}"
    trials = []
    # proposals are generated lazily: bayes needs each score before it proposes the next trial
    for index, (algorithm, values, report) in enumerate(plan):
        runs, scores, metric = [], [], None
        for seed in args.seeds:
            run, metric, score = run_trial(algorithm, args.config if not args.compare_algorithms else None,
                                           {**fixed, **values}, seed, args.results_dir,
                                           [f"sweep:{sweep_id}", f"trial:{index}"], quiet=not args.verbose)
            runs.append(run.run_id)
            scores.append(score)
        sign = -1.0 if metric == "nash_conv" else 1.0
        report(sign * float(np.mean(scores)))
        trial = {"trial": index, "algorithm": algorithm, "values": values, "metric": metric, "seeds": args.seeds,
                 "scores": scores, "mean": float(np.mean(scores)),
                 "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0, "runs": runs}
        trials.append(trial)
        print(f"[{index + 1}] {algorithm} {values or ''} {metric} = {trial['mean']:.4f} ± {trial['std']:.4f} "
              f"over seeds {args.seeds}", file=sys.stderr, flush=True)
    lower = trials and trials[0]["metric"] == "nash_conv"
    ranked = sorted(trials, key=lambda t: t["mean"], reverse=not lower)
    out = Path(args.results_dir) / "sweeps" / f"{sweep_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sweep_id": sweep_id, "method": None if args.compare_algorithms else args.method,
                               "fixed": fixed, "trials": trials, "best": ranked[0] if ranked else None}, indent=2))
    print(f"| rank | algorithm | values | {ranked[0]['metric'] if ranked else 'metric'} (mean ± std) | per seed |")
    print("|---|---|---|---|---|")
    for rank, t in enumerate(ranked, 1):
        values = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["values"].items())
        print(f"| {rank} | {t['algorithm']} | {values or 'defaults'} | {t['mean']:.4f} ± {t['std']:.4f} | "
              f"{', '.join(f'{x:.4f}' for x in t['scores'])} |")
    print(f"\nsweep {sweep_id}: {len(trials)} trials x {len(args.seeds)} seeds -> {out} "
          f"(runs tagged sweep:{sweep_id}; jaxmarl-lab results leaderboard --root {args.results_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:  # bad names or keywords: one clear line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
