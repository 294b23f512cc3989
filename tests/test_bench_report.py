"""bench/run_all.py collects the bench scripts' tables under a machine header into RESULTS.md."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run_all  # noqa: E402


def test_run_all_writes_a_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    assert run_all.main(["--only", "bargain_throughput", "--quick", "--output", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results")
    assert "- Machine:" in text and "- Device of the JAX figures: CPU" in text and "jax " in text
    assert "## bargain_throughput" in text and "python bench/bargain_throughput.py --batch-sizes" in text
    section = text.split("## bargain_throughput", 1)[1]
    assert "1024" in section and ("|" in section or "```" in section)  # the script's table made it in


def test_every_bench_script_is_in_run_all():
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"run_all"}
    assert scripts == set(run_all.BENCHMARKS), scripts ^ set(run_all.BENCHMARKS)
