"""``jaxmarl-lab`` command line: ``baselines`` (round-robin of scripted policies), ``render`` (a GIF
of one game), ``list-envs``."""

from __future__ import annotations

import argparse
import sys
import time

import jax
import yaml

from jaxmarl_lab.evaluation import crossplay, record_episode
from jaxmarl_lab.policies import baseline, list_baselines
from jaxmarl_lab.registry import env_class, list_envs, make
from jaxmarl_lab.render import save_gif


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


def cmd_list_envs(args) -> int:
    for name in list_envs():
        cls = env_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:24s} {doc}")
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

    p = sub.add_parser("render", help="play one game with baseline policies and save it as a GIF")
    p.add_argument("--env", default="bargain", help=f"one of: {', '.join(list_envs())}")
    p.add_argument("--policies", nargs="+", default=None, help="baseline for every seat, or one per seat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="game.gif")
    p.add_argument("--fps", type=float, default=1.0)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("list-envs", help="registered environments")
    p.set_defaults(func=cmd_list_envs)
    return parser


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
