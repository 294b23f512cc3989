"""Results management: run directories, index, metrics, queries, export and the ``results`` CLI.

Pure file I/O on a temporary results root (no training, no jitted code)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import datetime, timedelta

import pytest
import yaml

from jaxmarl_lab import results as results_mod
from jaxmarl_lab.cli import main
from jaxmarl_lab.results import DEFAULT_METRIC, ResultsManager, Run

CONFIG_A = {"lr": 3e-4, "num_envs": 64, "model": {"hidden": 64, "layers": 2}}
CONFIG_B = {"lr": 1e-3, "num_envs": 64, "model": {"hidden": 128, "layers": 2}}
CONFIG_C = {"lr": 5e-4, "num_envs": 32, "model": {"hidden": 64, "layers": 2}}


@pytest.fixture
def populated(tmp_path):
    """Three runs: two ppo_bargain (welfare 0.8, 0.9), one ippo (0.6, interrupted, with a run_name)."""
    mgr = ResultsManager(tmp_path / "results")
    a = mgr.create_run("ppo_bargain", "bargain", 0, CONFIG_A, tags=["baseline", "v1"])
    a.log_metrics(0, {"loss": 1.0, "return": 0.1})
    a.log_metrics(10, {"loss": 0.5, "return": 0.3})
    a.log_metrics(20, {"loss": 0.7, "return": 0.2, "entropy": 1.2})  # new key: header must widen
    a.write_final_eval({"summary": {"selfplay_welfare": 0.8, "agreement_rate": 0.9, "label": "greedy",
                                    "nested": {"x": 1}},
                        "per_seed": [{"selfplay_welfare": 0.8}]})
    a.finish(total_env_steps=1000)

    b = mgr.create_run("ppo_bargain", "bargain", 1, CONFIG_B)
    b.log_metrics(0, {"td_error": 0.4, "return": 0.5})
    b.log_metrics(5, {"td_error": 0.2, "return": 0.4})
    b.write_final_eval({"selfplay_welfare": 0.9, "agreement_rate": 0.95})
    b.finish(total_env_steps=2000)

    c = mgr.create_run("ippo", "bargain", 0, CONFIG_C, run_name="ippo_small")
    c.log_metrics(0, {"loss": 2.0})
    c.write_final_eval({"summary": {"selfplay_welfare": 0.6}})
    c.finish("interrupted", total_env_steps=500)
    return mgr, {"a": a, "b": b, "c": c}


# ----------------------------------------------------------------------------------------------- layout

def test_layout_index_and_relative_paths(populated):
    mgr, runs = populated
    index = json.loads((mgr.root / "index.json").read_text())
    assert set(index["runs"]) == {r.run_id for r in runs.values()}
    assert {"created", "updated"} <= set(index)
    for run in runs.values():
        entry = index["runs"][run.run_id]
        assert set(entry) == {"algorithm", "env", "seed", "timestamp", "path", "status", "tags", "run_name"}
        assert not entry["path"].startswith("/")
        assert (mgr.root / entry["path"]).resolve() == run.path.resolve()
        for name in ("config.yaml", "metadata.json", "final_eval.json"):
            assert (run.path / name).is_file(), name
        assert run.checkpoints_dir.is_dir() and run.plots_dir.is_dir()
    a, c = runs["a"], runs["c"]
    assert re.fullmatch(r"ppo_bargain_\d{8}_\d{6}_seed0", a.run_id)
    assert index["runs"][a.run_id]["path"] == f"ppo_bargain/{a.run_id}"
    assert index["runs"][a.run_id]["tags"] == ["baseline", "v1"]
    # run_name replaces the algorithm in the id, the directory stays under the algorithm
    assert re.fullmatch(r"ippo_small_\d{8}_\d{6}_seed0", c.run_id)
    assert index["runs"][c.run_id]["path"] == f"ippo/{c.run_id}"
    assert index["runs"][c.run_id]["status"] == "interrupted"
    assert index["runs"][c.run_id]["run_name"] == "ippo_small"
    assert yaml.safe_load((a.path / "config.yaml").read_text()) == CONFIG_A
    assert a.load_config() == CONFIG_A
    # no temp files left behind by the atomic writes
    assert not list(mgr.root.rglob("*.tmp"))


def test_metadata_fields(populated):
    _, runs = populated
    meta = runs["a"].metadata
    for key in ("run_id", "algorithm", "env", "seed", "num_seeds", "run_name", "tags", "status", "error_message",
                "timestamp_start", "timestamp_end", "jax_version", "devices", "total_env_steps", "wall_time_s",
                "steps_per_s", "final_metrics", "best_metrics"):
        assert key in meta, key
    assert meta["status"] == "completed" and meta["error_message"] is None
    assert isinstance(meta["devices"], list) and meta["jax_version"]
    assert meta["total_env_steps"] == 1000
    assert meta["wall_time_s"] >= 0
    assert datetime.fromisoformat(meta["timestamp_end"]) >= datetime.fromisoformat(meta["timestamp_start"])
    if meta["wall_time_s"] > 0:
        assert meta["steps_per_s"] == pytest.approx(1000 / meta["wall_time_s"])


def test_extra_fields_and_reserved(tmp_path):
    mgr = ResultsManager(tmp_path / "r")
    run = mgr.create_run("ppo", "bargain", 3, {}, num_seeds=4, git_commit="abc123")
    assert run.metadata["git_commit"] == "abc123" and run.metadata["num_seeds"] == 4
    with pytest.raises(ValueError, match="status"):
        mgr.create_run("ppo", "bargain", 3, {}, status="completed")
    with pytest.raises(ValueError, match="directory name"):
        mgr.create_run("../evil", "bargain", 0, {})


# ----------------------------------------------------------------------------------------------- metrics

def test_metrics_csv_widened_header(populated):
    _, runs = populated
    a = runs["a"]
    with open(a.path / "metrics.csv", newline="") as fh:
        raw = list(csv.reader(fh))
    assert raw[0] == ["step", "timestamp", "loss", "return", "entropy"]
    assert len(raw) == 4
    assert raw[1][4] == "" and raw[2][4] == ""  # earlier rows: missing cells empty
    rows = a.read_metrics()
    assert [r["step"] for r in rows] == [0, 10, 20]
    assert all(isinstance(r["step"], int) for r in rows)
    assert rows[0]["entropy"] is None and rows[2]["entropy"] == pytest.approx(1.2)
    assert rows[1]["loss"] == pytest.approx(0.5)
    assert isinstance(rows[0]["timestamp"], float)


def test_metrics_append_after_reopen(populated):
    """A fresh Run object (another process) appends to the existing file with its header."""
    mgr, runs = populated
    again = mgr.open_run(runs["a"].run_id)
    again.log_metrics(30, {"loss": 0.1})
    rows = again.read_metrics()
    assert [r["step"] for r in rows] == [0, 10, 20, 30]
    assert rows[-1]["loss"] == pytest.approx(0.1) and rows[-1]["return"] is None
    assert again.metadata["best_metrics"]["loss"] == pytest.approx(0.1)
    assert again.metadata["best_metrics"]["return"] == pytest.approx(0.3)


def test_best_metrics_min_for_loss_and_error_else_max(populated):
    _, runs = populated
    assert runs["a"].metadata["best_metrics"] == pytest.approx({"loss": 0.5, "return": 0.3, "entropy": 1.2})
    assert runs["b"].metadata["best_metrics"] == pytest.approx({"td_error": 0.2, "return": 0.5})


def test_final_eval(populated):
    _, runs = populated
    a = runs["a"]
    # only top-level numbers of the summary
    assert a.metadata["final_metrics"] == pytest.approx({"selfplay_welfare": 0.8, "agreement_rate": 0.9})
    assert a.read_final_eval()["per_seed"] == [{"selfplay_welfare": 0.8}]
    # no summary: the dict itself
    assert runs["b"].metadata["final_metrics"] == pytest.approx({"selfplay_welfare": 0.9, "agreement_rate": 0.95})


def test_update_metadata_syncs_status_to_index(populated):
    mgr, runs = populated
    b = runs["b"]
    meta = b.update_metadata(status="failed", note="re-run")
    assert meta["note"] == "re-run" and b.metadata["status"] == "failed"
    assert {e["run_id"]: e["status"] for e in mgr.list_runs()}[b.run_id] == "failed"
    with pytest.raises(ValueError, match="status"):
        b.update_metadata(status="done")


def test_context_manager_records_failure(tmp_path):
    mgr = ResultsManager(tmp_path / "r")
    with pytest.raises(RuntimeError), mgr.create_run("ppo", "bargain", 0, {}) as run:
        raise RuntimeError("nan loss")
    assert run.metadata["status"] == "failed"
    assert "nan loss" in run.metadata["error_message"]
    assert mgr.list_runs()[0]["status"] == "failed"


# ----------------------------------------------------------------------------------------------- lookup

def test_open_run_by_id_and_path(populated, tmp_path):
    mgr, runs = populated
    a = runs["a"]
    assert mgr.open_run(a.run_id) == a
    assert mgr.open_run(str(a.path)) == a
    assert mgr.open_run(a.path).metadata["run_id"] == a.run_id
    # a run directory anywhere, outside the manager's root
    elsewhere = tmp_path / "copied" / "somewhere" / a.run_id
    shutil.copytree(a.path, elsewhere)
    opened = ResultsManager(tmp_path / "other_root").open_run(elsewhere)
    assert opened.load_config() == CONFIG_A
    opened.update_metadata(status="failed")  # no index there: must not fail nor touch the real index
    assert mgr.open_run(a.run_id).metadata["status"] == "completed"


def test_open_run_unknown_lists_known_ids(populated):
    mgr, runs = populated
    with pytest.raises(ValueError, match="unknown run 'nope'") as err:
        mgr.open_run("nope")
    assert runs["c"].run_id in str(err.value)


def test_missing_index_and_lazy_root(populated, tmp_path):
    mgr, runs = populated
    (mgr.root / "index.json").unlink()
    assert mgr.list_runs() == []
    assert mgr.open_run(runs["a"].path) == runs["a"]
    assert mgr.open_run(runs["b"].run_id) == runs["b"]  # found by directory scan
    runs["c"].update_metadata(status="failed")  # status change without an index: fine
    assert not (mgr.root / "index.json").exists()
    assert mgr.reindex() == 3
    assert {e["run_id"] for e in mgr.list_runs(status="failed")} == {runs["c"].run_id}

    fresh = ResultsManager(tmp_path / "does" / "not" / "exist")
    assert fresh.list_runs() == [] and fresh.best_run() is None and fresh.leaderboard() == []
    assert not fresh.root.exists()  # reading never creates the root
    fresh.create_run("ppo", "bargain", 0, {"lr": 1})
    assert len(fresh.list_runs()) == 1


def test_run_id_collision_gets_suffix(tmp_path, monkeypatch):
    frozen = datetime(2024, 5, 6, 7, 8, 9).astimezone()
    monkeypatch.setattr(results_mod, "_now", lambda: frozen)
    mgr = ResultsManager(tmp_path / "r")
    ids = [mgr.create_run("ppo", "bargain", 0, {}).run_id for _ in range(3)]
    assert ids == ["ppo_20240506_070809_seed0", "ppo_20240506_070809_seed0_1", "ppo_20240506_070809_seed0_2"]
    assert len(mgr.list_runs()) == 3
    assert mgr.list_runs()[0]["run_id"] == ids[-1]  # equal timestamps: newest created first


def test_list_runs_filter_and_order(populated):
    mgr, runs = populated
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert [e["run_id"] for e in mgr.list_runs()] == [c.run_id, b.run_id, a.run_id]
    assert [e["run_id"] for e in mgr.list_runs(algorithm="ppo_bargain")] == [b.run_id, a.run_id]
    assert [e["run_id"] for e in mgr.list_runs(status="interrupted")] == [c.run_id]
    assert mgr.list_runs(algorithm="ppo_bargain", status="interrupted") == []
    assert mgr.list_runs(algorithm="nope") == []
    assert all("run_id" in e and "path" in e for e in mgr.list_runs())


def test_get_metric(populated):
    mgr, runs = populated
    a = runs["a"]
    assert mgr.get_metric(a, DEFAULT_METRIC) == pytest.approx(0.8)
    assert mgr.get_metric(a, "best_metrics.loss") == pytest.approx(0.5)
    assert mgr.get_metric(a, "total_env_steps") == 1000
    assert mgr.get_metric(a, "config.model.hidden") == 64
    assert mgr.get_metric(a, "final_metrics.missing") is None
    assert mgr.get_metric(a, "status") is None  # not a number
    entry = next(e for e in mgr.list_runs() if e["run_id"] == a.run_id)
    assert mgr.get_metric(entry, DEFAULT_METRIC) == pytest.approx(0.8)  # an index entry
    assert mgr.get_metric(a.metadata, DEFAULT_METRIC) == pytest.approx(0.8)  # a metadata dict


def test_best_run(populated):
    mgr, runs = populated
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert mgr.best_run() == b
    assert mgr.best_run("ppo_bargain") == b
    assert mgr.best_run("ppo_bargain", mode="min") == a
    assert mgr.best_run("ippo") == c
    assert mgr.best_run(mode="min") == c
    assert mgr.best_run(metric="best_metrics.loss", mode="min") == a
    assert mgr.best_run(metric="final_metrics.nope") is None
    assert mgr.best_run("nope") is None
    with pytest.raises(ValueError, match="mode"):
        mgr.best_run(mode="median")


def test_leaderboard(populated):
    mgr, runs = populated
    board = mgr.leaderboard()
    assert board == [
        {"algorithm": "ppo_bargain", "run_id": runs["b"].run_id, "value": pytest.approx(0.9), "num_runs": 2},
        {"algorithm": "ippo", "run_id": runs["c"].run_id, "value": pytest.approx(0.6), "num_runs": 1},
    ]
    low = mgr.leaderboard(mode="min")
    assert [(r["algorithm"], r["run_id"]) for r in low] == [("ippo", runs["c"].run_id),
                                                             ("ppo_bargain", runs["a"].run_id)]
    steps = mgr.leaderboard("total_env_steps")
    assert steps[0]["run_id"] == runs["b"].run_id and steps[0]["value"] == 2000


def test_compare(populated):
    mgr, runs = populated
    a, c = runs["a"], runs["c"]
    rows = mgr.compare([a.run_id, str(c.path)])
    assert [r["run_id"] for r in rows] == [a.run_id, c.run_id]
    ra, rc = rows
    for key in ("run_id", "algorithm", "status", "seed", "total_env_steps", "steps_per_s"):
        assert key in ra, key
    assert ra["algorithm"] == "ppo_bargain" and rc["status"] == "interrupted"
    assert ra["final_metrics.selfplay_welfare"] == pytest.approx(0.8)
    assert ra["final_metrics.agreement_rate"] == pytest.approx(0.9)
    assert ra["config.lr"] == pytest.approx(3e-4) and rc["config.lr"] == pytest.approx(5e-4)
    assert ra["config.model.hidden"] == 64
    with pytest.raises(ValueError, match="unknown run"):
        mgr.compare([a.run_id, "nope"])


def test_export_csv_and_json(populated, tmp_path):
    mgr, runs = populated
    out = tmp_path / "exports" / "all.csv"
    mgr.export(out)
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = reader.fieldnames
    assert "final_metrics.selfplay_welfare" in header and "config.lr" in header
    assert "run_id" in header and "best_metrics.loss" in header
    by_id = {r["run_id"]: r for r in rows}
    assert set(by_id) == {r.run_id for r in runs.values()}
    assert float(by_id[runs["b"].run_id]["final_metrics.selfplay_welfare"]) == pytest.approx(0.9)
    assert float(by_id[runs["c"].run_id]["config.lr"]) == pytest.approx(5e-4)
    assert by_id[runs["b"].run_id]["best_metrics.loss"] == ""  # b never logged a loss
    assert json.loads(by_id[runs["a"].run_id]["tags"]) == ["baseline", "v1"]

    mgr.export(tmp_path / "all.json")
    data = json.loads((tmp_path / "all.json").read_text())
    assert isinstance(data, list) and len(data) == 3
    by_id = {d["run_id"]: d for d in data}
    assert by_id[runs["a"].run_id]["final_metrics"]["selfplay_welfare"] == pytest.approx(0.8)
    assert by_id[runs["a"].run_id]["status"] == "completed"

    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        mgr.export(tmp_path / "all.xlsx")


def test_mark_abandoned(populated):
    mgr, runs = populated
    stale = mgr.create_run("ppo_bargain", "bargain", 7, {})
    fresh = mgr.create_run("ppo_bargain", "bargain", 8, {})
    old = (datetime.now().astimezone() - timedelta(hours=48)).isoformat()
    stale.update_metadata(timestamp_start=old)
    runs["a"].update_metadata(timestamp_start=old)  # old but completed: untouched
    assert mgr.mark_abandoned(24) == [stale.run_id]
    assert stale.metadata["status"] == "abandoned"
    assert fresh.metadata["status"] == "running" and runs["a"].metadata["status"] == "completed"
    assert [e["run_id"] for e in mgr.list_runs(status="abandoned")] == [stale.run_id]
    assert mgr.mark_abandoned(24) == []
    assert mgr.mark_abandoned(0) == [fresh.run_id]


# ----------------------------------------------------------------------------------------------- CLI

def _cli(capsys, root, *args):
    code = main(["results", "--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list(populated, capsys):
    mgr, runs = populated
    code, out, _ = _cli(capsys, mgr.root, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["run_id", "algorithm", "status", "seed", "total_env_steps", "selfplay_welfare"]
    assert lines[2].split() == [runs["c"].run_id, "ippo", "interrupted", "0", "500", "0.6"]
    assert lines[3].split() == [runs["b"].run_id, "ppo_bargain", "completed", "1", "2000", "0.9"]
    assert lines[4].split()[0] == runs["a"].run_id and lines[4].split()[-1] == "0.8"

    code, out, _ = _cli(capsys, mgr.root, "list", "--algorithm", "ippo")
    assert code == 0 and runs["c"].run_id in out and runs["a"].run_id not in out
    code, out, _ = _cli(capsys, mgr.root, "list", "--status", "completed")
    assert runs["a"].run_id in out and runs["c"].run_id not in out


def test_cli_root_after_subcommand_and_empty_root(populated, capsys, tmp_path):
    mgr, runs = populated
    code = main(["results", "list", "--root", str(mgr.root)])
    out, _ = capsys.readouterr()
    assert code == 0 and runs["a"].run_id in out
    code, out, _ = _cli(capsys, tmp_path / "empty", "list")
    assert code == 0 and "no runs" in out


def test_cli_show(populated, capsys):
    mgr, runs = populated
    a = runs["a"]
    code, out, _ = _cli(capsys, mgr.root, "show", a.run_id)
    assert code == 0
    assert a.run_id in out and "ppo_bargain" in out
    assert "final metrics:" in out and "selfplay_welfare" in out and "0.8" in out
    assert "config:" in out and "lr: 0.0003" in out and "hidden: 64" in out
    last = out.split("last metrics row")[1]
    assert "(3 rows logged)" in last and "entropy" in last and "1.2" in last
    # by path as well
    code, out, _ = _cli(capsys, mgr.root, "show", str(runs["c"].path))
    assert code == 0 and "interrupted" in out


def test_cli_compare(populated, capsys):
    mgr, runs = populated
    a, b = runs["a"], runs["b"]
    code, out, _ = _cli(capsys, mgr.root, "compare", a.run_id, b.run_id)
    assert code == 0
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert out.splitlines()[0].split() == ["key", a.run_id, b.run_id]
    assert lines["final_metrics.selfplay_welfare"] == ["0.8", "0.9"]
    assert lines["config.lr"] == ["0.0003", "0.001"]
    assert lines["config.num_envs"] == ["64", "64"]

    code, out, _ = _cli(capsys, mgr.root, "compare", a.run_id, b.run_id, "--diff-only")
    assert code == 0
    keys = [line.split()[0] for line in out.splitlines()[2:]]
    assert "config.lr" in keys and "run_id" in keys
    assert "config.num_envs" not in keys and "algorithm" not in keys and "config.model.layers" not in keys


def test_cli_best_and_leaderboard(populated, capsys):
    mgr, runs = populated
    code, out, _ = _cli(capsys, mgr.root, "best", "ppo_bargain")
    assert code == 0
    assert f"run_id: {runs['b'].run_id}" in out and "0.9" in out and str(runs["b"].path) in out
    code, out, _ = _cli(capsys, mgr.root, "best", "ppo_bargain", "--mode", "min")
    assert f"run_id: {runs['a'].run_id}" in out
    code, out, _ = _cli(capsys, mgr.root, "best", "ppo_bargain", "--metric", "best_metrics.loss", "--mode", "min")
    assert f"run_id: {runs['a'].run_id}" in out and "0.5" in out

    code, out, _ = _cli(capsys, mgr.root, "leaderboard")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows == [["1", "ppo_bargain", runs["b"].run_id, "0.9", "2"], ["2", "ippo", runs["c"].run_id, "0.6", "1"]]
    code, out, _ = _cli(capsys, mgr.root, "leaderboard", "--mode", "min")
    assert [line.split()[1] for line in out.splitlines()[2:]] == ["ippo", "ppo_bargain"]


def test_cli_export(populated, capsys, tmp_path):
    mgr, _ = populated
    for name in ("runs.csv", "runs.json"):
        code, out, _ = _cli(capsys, mgr.root, "export", str(tmp_path / name))
        assert code == 0 and "3 runs" in out
        assert (tmp_path / name).is_file()
    assert "final_metrics.selfplay_welfare" in (tmp_path / "runs.csv").read_text().splitlines()[0]
    code, _, err = _cli(capsys, mgr.root, "export", str(tmp_path / "runs.txt"))
    assert code == 2 and "error:" in err and ".csv or .json" in err


def test_cli_errors(populated, capsys):
    mgr, runs = populated
    code, out, err = _cli(capsys, mgr.root, "show", "no_such_run")
    assert code == 2
    assert err.startswith("error: unknown run 'no_such_run'") and runs["c"].run_id in err
    code, _, err = _cli(capsys, mgr.root, "compare", runs["a"].run_id, "no_such_run")
    assert code == 2 and "no_such_run" in err
    code, _, err = _cli(capsys, mgr.root, "best", "nope")
    assert code == 2 and "error: no run of 'nope'" in err


def test_cli_mark_abandoned(populated, capsys):
    mgr, _ = populated
    run = mgr.create_run("ppo_bargain", "bargain", 9, {})
    run.update_metadata(timestamp_start=(datetime.now().astimezone() - timedelta(hours=30)).isoformat())
    code, out, _ = _cli(capsys, mgr.root, "mark-abandoned", "--hours", "24")
    assert code == 0 and f"abandoned {run.run_id}" in out
    assert run.metadata["status"] == "abandoned"


def test_cli_existing_subcommands_still_parse(capsys):
    from jaxmarl_lab.cli import build_parser

    args = build_parser().parse_args(["baselines", "--num-games", "3"])
    assert args.num_games == 3 and args.func.__name__ == "cmd_baselines"
    args = build_parser().parse_args(["render", "--out", "x.gif"])
    assert args.func.__name__ == "cmd_render"
    assert main(["list-envs"]) == 0
    assert "bargain" in capsys.readouterr().out
    args = build_parser().parse_args(["results", "list"])
    assert args.root == "results" and args.func.__name__ == "cmd_results_list"


def test_run_repr_and_equality(populated):
    _, runs = populated
    a = runs["a"]
    assert Run(a.path) == a and Run(a.path).root == a.root
    assert a.run_id in repr(a)
