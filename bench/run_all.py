"""Run every benchmark in ``bench/`` and write ``bench/RESULTS.md``.

    python bench/run_all.py                  # full settings (tens of minutes on a 2-core CPU)
    python bench/run_all.py --quick          # smaller batches and budgets (a few minutes)
    python bench/run_all.py --only mpe_throughput search_throughput --output /tmp/RESULTS.md

Each script runs in its own process (so one's compilation or memory does not affect the next)
and prints Markdown tables with our figures next to its peer's and the ratio; this collects
them under one header that records the machine (CPU, cores, memory, accelerator) and the
versions of jax and the peers. A script that fails is reported with the end of its error and
the others still run. On a GPU machine install the ``cuda12`` extra first; the header names
the device every figure was measured on.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: script -> (full arguments, quick arguments); every script's peer runs in the same process
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bargain_throughput": ([], ["--batch-sizes", "1", "1024", "--steps", "500", "--seconds", "2"]),
    "bucket_brigade_throughput": ([], ["--batch-sizes", "1", "1024", "--steps", "100", "--profiles", "32",
                                       "--episodes", "20"]),
    "mpe_throughput": ([], ["--batch-sizes", "1", "1024", "--steps", "200", "--seconds", "2"]),
    "pistonball_throughput": ([], ["--batch-sizes", "1", "256", "--cycles", "50", "--seconds", "3"]),
    "ppo_bargain_throughput": ([], ["--networks", "mlp", "--seeds", "1", "--updates", "1", "--repeats", "1"]),
    "search_throughput": ([], ["--batches", "1", "64", "--repeats", "1"]),
    "llm_bridge_overhead": ([], ["--batch-sizes", "1", "64"]),
    "equilibrium_vs_openspiel": (["--budgets", "30", "90"], ["--games", "kuhn_poker", "--budgets", "15"]),
    "therapy_headroom": ([], ["--episodes", "200"]),
    "sweep_ratio": ([], ["--total-timesteps", "163840", "--eval-games", "500"]),
}
PEERS = ("jax", "jaxlib", "pettingzoo", "mpe2", "pymunk", "open_spiel", "jaxmarl", "mctx", "openai")


def machine_header() -> list[str]:
    """Machine, accelerator and package versions (the context every figure needs)."""
    import jax

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = jax.devices()[0]
    versions = []
    for name in PEERS:
        try:
            versions.append(f"{name} {importlib.metadata.version(name.replace('_', '-'))}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- Machine: {cpu}, {os.cpu_count()} logical cores, {memory:.0f} GiB memory, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        f"- Device of the JAX figures: {device.platform.upper()} ({device.device_kind}), "
        f"{jax.device_count()} device(s)",
        f"- Versions: {', '.join(versions)}",
    ]


def run_one(name: str, args: list[str], timeout: float) -> tuple[str, float, bool]:
    """(stdout or the error's tail, seconds, ok)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    except subprocess.TimeoutExpired:
        return f"(timed out after {timeout:.0f} s)", time.perf_counter() - start, False
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return f"(failed, exit {proc.returncode})\n\n```\n{proc.stderr[-1500:]}\n```", seconds, False
    text = proc.stdout.strip()
    if not any(line.startswith("|") for line in text.splitlines()):  # a plain-text table: keep its columns
        text = f"```\n{text}\n```"
    return text, seconds, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches and budgets")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these scripts")
    parser.add_argument("--output", default=str(ROOT / "bench" / "RESULTS.md"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per script")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    sections, failures = [], 0
    for name in names:
        full, quick = BENCHMARKS[name]
        script_args = quick if args.quick else full
        print(f"[run_all] {name} {' '.join(script_args)}", file=sys.stderr, flush=True)
        text, seconds, ok = run_one(name, script_args, args.timeout)
        failures += not ok
        command = f"python bench/{name}.py {' '.join(script_args)}".strip()
        sections.append(f"## {name}\n\n`{command}` ({seconds:.0f} s)\n\n{text}\n")
    lines = ["# Benchmark results", "", f"Written by `python bench/run_all.py{' --quick' if args.quick else ''}` "
             f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every table compares us with the peer "
             "run in the same process; ratios are ours / theirs.", "", *machine_header(), "", *sections]
    Path(args.output).write_text("\n".join(lines))
    print(f"[run_all] wrote {args.output} ({len(names) - failures}/{len(names)} scripts ok)", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
