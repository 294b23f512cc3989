"""Results management for training runs: one directory per run, plus an index to find them again.

Training scripts create a :class:`Run` through :class:`ResultsManager`, log metrics into it as they go
and finish it with a status; the CLI (``jaxmarl-lab results ...``) and notebooks read the same files
back to list, compare, rank and export runs. Everything is plain files (JSON, YAML, CSV) so runs can be
copied, inspected and diffed without this module.

On-disk layout::

    results/                          # root, default "results" (relative to cwd), overridable everywhere
      index.json                      # {"runs": {run_id: {"algorithm", "env", "seed", "timestamp", "path",
                                      #                    "status", "tags", "run_name"}},
                                      #  "created": iso, "updated": iso}
      .index.lock                     # empty lock file serialising index updates between processes
      <algorithm>/<run_id>/
        config.yaml                   # resolved config (yaml.safe_dump of a plain dict, sort_keys=False)
        metadata.json                 # see below
        metrics.csv                   # one row per logged step; header = union of keys seen
        final_eval.json               # final evaluation dict (any JSON-able nested dict)
        checkpoints/                  # created empty; other code fills it
        plots/                        # created empty; other code fills it

``path`` in ``index.json`` is relative to the root. ``run_id`` is ``f"{algorithm}_{YYYYmmdd_HHMMSS}_seed{seed}"``
(``run_name`` in place of the algorithm when one is given), with ``_1``, ``_2``, ... appended when that
directory or id exists already. Timestamps are ISO 8601 in local time with the UTC offset.

``metadata.json`` holds: ``run_id``, ``algorithm``, ``env``, ``seed``, ``num_seeds``, ``run_name``, ``tags``,
``status`` (``running`` | ``completed`` | ``failed`` | ``interrupted`` | ``abandoned``), ``error_message``,
``timestamp_start``, ``timestamp_end``, ``jax_version``, ``devices``, ``total_env_steps``, ``wall_time_s``,
``steps_per_s``, ``final_metrics`` (top-level numbers of the final evaluation's summary), ``best_metrics``
(per logged metric: the min for keys containing "loss" or "error", else the max), plus any extra fields
the caller passed.

All JSON (and YAML) writes are atomic: a temporary file in the same directory, then ``os.replace``, so a
crashed or concurrent writer never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

try:
    import fcntl
except ImportError:  # no flock (Windows): atomic writes still keep the files whole
    fcntl = None

__all__ = ["DEFAULT_METRIC", "STATUSES", "ResultsManager", "Run"]

DEFAULT_METRIC = "final_metrics.selfplay_welfare"
STATUSES = ("running", "completed", "failed", "interrupted", "abandoned")

INDEX_FILE = "index.json"
LOCK_FILE = ".index.lock"
CONFIG_FILE = "config.yaml"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.csv"
FINAL_EVAL_FILE = "final_eval.json"
_SYNCED_FIELDS = ("status", "tags", "run_name")  # metadata fields mirrored into the index when they change
_MISSING = object()


# ----------------------------------------------------------------------------------------------- helpers

def _now() -> datetime:
    """Aware local time (a function so tests can freeze it)."""
    return datetime.now().astimezone()


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    """ISO timestamp -> aware datetime; naive ones are taken as local time."""
    dt = datetime.fromisoformat(text)
    return dt.astimezone() if dt.tzinfo is None else dt


def _plain(obj: Any) -> Any:
    """Plain Python (dict/list/str/number/bool/None) for YAML and JSON: numpy and jax values, tuples,
    paths and other objects from configs would otherwise make ``safe_dump``/``json.dump`` fail."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars
        return _plain(obj.tolist())
    if hasattr(obj, "item"):
        return _plain(obj.item())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> float | int | None:
    """A plain int/float for numeric values (numpy and jax scalars included), else None."""
    if isinstance(value, bool):
        return None
    if _is_number(value):
        return value
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        with contextlib.suppress(TypeError, ValueError):
            item = value.item()
            if _is_number(item):
                return item
    return None


def _atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and ``os.replace`` (atomic on POSIX and Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_json(path: Path, data: Any) -> None:
    _atomic_write_text(path, json.dumps(_plain(data), indent=2) + "\n")


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Exclusive lock on the root's lock file, so parallel runs (seeds) don't lose each other's index entries."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as fh:
        if fcntl is None:
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_index(root: Path) -> dict:
    path = root / INDEX_FILE
    if not path.exists():
        return {"runs": {}}
    index = _read_json(path)
    index.setdefault("runs", {})
    return index


def _modify_index(root: Path, fn: Callable[[dict], Any], *, create: bool = True) -> None:
    """Read-modify-write index.json under the lock; ``create=False`` leaves a missing index missing."""
    if not create and not (root / INDEX_FILE).exists():
        return
    with _locked(root):
        index = _load_index(root)
        stamp = _iso(_now())
        index.setdefault("created", stamp)
        if fn(index["runs"]) is False:
            return
        index["updated"] = stamp
        _write_json(root / INDEX_FILE, {"runs": index["runs"], "created": index["created"], "updated": stamp})


def _lookup(data: Any, parts: list[str]) -> Any:
    """Dotted-path lookup that also finds keys which themselves contain dots (longest match first)."""
    if not parts:
        return data
    if not isinstance(data, Mapping):
        return _MISSING
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in data:
            found = _lookup(data[key], parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def _flatten(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> one level of dotted keys; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def write_rows_csv(rows: Sequence[Mapping], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """``rows`` as a CSV with a header (``columns``, default the first row's keys; missing cells empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or (rows[0] if rows else [])), restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path

def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_plain(value))
    return value


def _parse_cell(key: str, text: str) -> Any:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    if key == "step" and value.is_integer():
        return int(value)
    return value


def _check_name(kind: str, name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise ValueError(f"{kind} {name!r} cannot be used as a directory name")


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")


def _device_info() -> tuple[str | None, list[str]]:
    """jax version and devices for the metadata; imported lazily so reading results never needs jax."""
    try:
        import jax
    except ImportError:
        return None, []
    try:
        devices = [str(d) for d in jax.devices()]
    except Exception:  # metadata only: a backend that can't initialise must not stop the run
        devices = []
    return jax.__version__, devices


# ----------------------------------------------------------------------------------------------- Run

class Run:
    """One run directory: config, metadata, metrics and final evaluation. Cheap to construct; all state is on
    disk except the CSV header and best metrics cached by :meth:`log_metrics`.

    Used as a context manager it finishes itself: ``completed`` on a normal exit, ``interrupted`` on
    KeyboardInterrupt, ``failed`` (with the error message) on an exception -- unless already finished.
    """

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None):
        self.path = Path(path)
        self.run_id = self.path.name
        self.root = Path(root) if root is not None else self.path.parent.parent
        self._metrics_header: list[str] | None = None
        self._best: dict[str, float] | None = None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(self.path.resolve())

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.metadata.get("status") != "running":
            return
        if exc_type is None:
            self.finish("completed")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("interrupted")
        else:
            self.finish("failed", error=f"{exc_type.__name__}: {exc}")

    # -- paths and metadata

    @property
    def metadata(self) -> dict:
        """Re-read from disk every time, so other processes' updates show."""
        return _read_json(self.path / METADATA_FILE)

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    def update_metadata(self, **fields: Any) -> dict:
        """Merge fields into metadata.json; a status change is mirrored into index.json so listing stays cheap."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {fields['status']!r}")
        meta = self.metadata
        before = {k: meta.get(k) for k in _SYNCED_FIELDS}
        meta.update(_plain(fields))
        _write_json(self.path / METADATA_FILE, meta)
        synced = {k: meta[k] for k in _SYNCED_FIELDS if k in fields and meta[k] != before[k]}
        if synced:
            def sync(runs: dict) -> bool:
                if self.run_id not in runs:
                    return False
                runs[self.run_id].update(synced)
                return True
            _modify_index(self.root, sync, create=False)
        return meta

    # -- config

    def save_config(self, config: Mapping) -> None:
        """The resolved config, so a run can be reproduced and compared by hyperparameter."""
        text = yaml.safe_dump(_plain(dict(config)), sort_keys=False)
        _atomic_write_text(self.path / CONFIG_FILE, text)

    def load_config(self) -> dict:
        path = self.path / CONFIG_FILE
        if not path.exists():
            return {}
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}

    # -- metrics

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Append one row to metrics.csv (widening the header when new keys show up) and track best_metrics."""
        row: dict[str, Any] = {"step": int(step), "timestamp": time.time()}
        for key, value in metrics.items():
            num = _number(value)
            row[str(key)] = num if num is not None else _csv_cell(_plain(value))
        path = self.path / METRICS_FILE
        if self._metrics_header is None:
            self._metrics_header = self._read_header(path)
        header = self._metrics_header
        new_keys = [k for k in row if k not in header]
        if new_keys or not path.exists():
            rows = self._read_raw_rows(path) if path.exists() else []
            header = header + new_keys
            lines = _CsvText(header)
            for old in rows:
                lines.add(old)
            lines.add(row)
            _atomic_write_text(path, lines.text())
            self._metrics_header = header
        else:
            with open(path, "a", encoding="utf-8", newline="") as fh:
                csv.DictWriter(fh, fieldnames=header, restval="").writerow(row)
        self._update_best(row)

    def _update_best(self, row: Mapping[str, Any]) -> None:
        if self._best is None:
            self._best = dict(self.metadata.get("best_metrics") or {})
        changed = False
        for key, value in row.items():
            if key in ("step", "timestamp") or not _is_number(value) or math.isnan(value):
                continue
            lower = "loss" in key.lower() or "error" in key.lower()
            old = self._best.get(key)
            if old is None or (value < old if lower else value > old):
                self._best[key] = value
                changed = True
        if changed:
            self.update_metadata(best_metrics=self._best)

    @staticmethod
    def _read_header(path: Path) -> list[str]:
        if not path.exists():
            return []
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), [])

    @staticmethod
    def _read_raw_rows(path: Path) -> list[dict[str, str]]:
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def read_metrics(self) -> list[dict]:
        """Rows of metrics.csv with numbers parsed (``step`` as int); empty cells become None."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return []
        return [{k: _parse_cell(k, v or "") for k, v in raw.items() if k is not None}
                for raw in self._read_raw_rows(path)]

    def read_new_metrics(self, cursor: tuple[str, int] | None = None) -> tuple[list[dict], tuple[str, int], bool]:
        """Rows of metrics.csv appended since ``cursor`` (parsed like ``read_metrics``), the new cursor, and
        whether reading restarted from the top (first call, or the header widened and the file was rewritten).

        Lets a caller that follows a long run (progress files, dashboards) read each row once instead of
        re-reading the whole file after every update."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return [], ("", 0), cursor is None or cursor[1] > 0
        with open(path, "rb") as fh:
            header_line = fh.readline()
            header_text = header_line.decode("utf-8")
            restarted = cursor is None or cursor[0] != header_text
            if not restarted:
                fh.seek(cursor[1])
            body = fh.read()
        complete = body[: body.rfind(b"\n") + 1]  # a row still being written is left for the next call
        offset = (len(header_line) if restarted else cursor[1]) + len(complete)
        keys = next(csv.reader([header_text]), [])
        rows = [{k: _parse_cell(k, v or "") for k, v in raw.items() if k is not None}
                for raw in csv.DictReader(io.StringIO(complete.decode("utf-8"), newline=""), fieldnames=keys)]
        return rows, (header_text, offset), restarted

    # -- final evaluation and end of run

    def write_final_eval(self, result: Mapping) -> None:
        """final_eval.json, plus its top-level numbers (of ``summary`` if present) as metadata final_metrics."""
        _write_json(self.path / FINAL_EVAL_FILE, result)
        summary = result.get("summary", result)
        final: dict[str, float | int] = {}
        if isinstance(summary, Mapping):
            for key, value in summary.items():
                num = _number(value)
                if num is not None:
                    final[str(key)] = num
        self.update_metadata(final_metrics=final)

    def read_final_eval(self) -> dict | None:
        path = self.path / FINAL_EVAL_FILE
        return _read_json(path) if path.exists() else None

    def finish(self, status: str = "completed", error: str | None = None, **fields: Any) -> None:
        """Record the end state; fills steps_per_s from total_env_steps when the caller didn't."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        meta = self.metadata
        end = _now()
        wall = 0.0
        with contextlib.suppress(KeyError, TypeError, ValueError):
            wall = max((end - _parse_time(meta["timestamp_start"])).total_seconds(), 0.0)
        update: dict[str, Any] = {"status": status, "timestamp_end": _iso(end), "wall_time_s": wall}
        if error is not None:
            update["error_message"] = str(error)
        update.update(fields)
        steps = _number(update.get("total_env_steps", meta.get("total_env_steps")))
        if "steps_per_s" not in fields and steps and wall > 0:
            update["steps_per_s"] = steps / wall
        self.update_metadata(**update)


class _CsvText:
    """Builds CSV text in memory for the (rare) full rewrite of metrics.csv."""

    def __init__(self, header: list[str]):
        self._buf = io.StringIO()
        self._writer = csv.DictWriter(self._buf, fieldnames=header, restval="")
        self._writer.writeheader()

    def add(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow(row)

    def text(self) -> str:
        return self._buf.getvalue()


# ----------------------------------------------------------------------------------------------- manager

class ResultsManager:
    """Creates runs under one root and answers questions across them (list, best, leaderboard, compare,
    export). Nothing is created on disk until the first run is."""

    def __init__(self, root: str | os.PathLike = "results"):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ResultsManager({str(self.root)!r})"

    # -- creating and opening runs

    def create_run(self, algorithm: str, env: str, seed: int, config: Mapping, *, run_name: str | None = None,
                   tags: Sequence[str] = (), num_seeds: int = 1, **extra: Any) -> Run:
        """New run directory with config.yaml, metadata.json (status "running") and its index entry."""
        _check_name("algorithm", algorithm)
        if run_name is not None:
            _check_name("run_name", run_name)
        reserved = {"run_id", "status", "timestamp_start", "timestamp_end"} & set(extra)
        if reserved:
            raise ValueError(f"create_run sets {', '.join(sorted(reserved))} itself")
        start = _now()
        base = f"{run_name or algorithm}_{start:%Y%m%d_%H%M%S}_seed{int(seed)}"
        parent = self.root / algorithm
        parent.mkdir(parents=True, exist_ok=True)
        known = set(_load_index(self.root)["runs"])
        suffix = 0
        while True:
            run_id = base if suffix == 0 else f"{base}_{suffix}"
            if run_id not in known:
                try:
                    (parent / run_id).mkdir()  # atomic claim of the name, even against other processes
                    break
                except FileExistsError:
                    pass
            suffix += 1
        run = Run(parent / run_id, root=self.root)
        run.checkpoints_dir.mkdir()
        run.plots_dir.mkdir()
        run.save_config(config)
        jax_version, devices = _device_info()
        meta = {
            "run_id": run_id, "algorithm": algorithm, "env": env, "seed": int(seed), "num_seeds": int(num_seeds),
            "run_name": run_name, "tags": list(tags), "status": "running", "error_message": None,
            "timestamp_start": _iso(start), "timestamp_end": None, "jax_version": jax_version, "devices": devices,
            "total_env_steps": 0, "wall_time_s": 0.0, "steps_per_s": 0.0, "final_metrics": {}, "best_metrics": {},
        }
        meta.update(extra)
        _write_json(run.path / METADATA_FILE, meta)
        entry = {"algorithm": algorithm, "env": env, "seed": int(seed), "timestamp": meta["timestamp_start"],
                 "path": run.path.relative_to(self.root).as_posix(), "status": "running", "tags": list(tags),
                 "run_name": run_name}
        _modify_index(self.root, lambda runs: runs.__setitem__(run_id, entry))
        return run

    def open_run(self, run: str | os.PathLike | Run) -> Run:
        """A run by id (from the index, or found as ``<root>/*/<id>``) or by the path of its directory."""
        if isinstance(run, Run):
            return run
        text = os.fspath(run)
        runs = _load_index(self.root)["runs"]
        if text in runs:
            return Run(self.root / runs[text]["path"], root=self.root)
        path = Path(text)
        if (path / METADATA_FILE).is_file():
            inside = self._is_inside_root(path)
            return Run(path, root=self.root if inside else None)
        if "/" not in text and os.sep not in text and self.root.is_dir():  # index missing or stale
            hits = [p for p in self.root.glob(f"*/{text}") if (p / METADATA_FILE).is_file()]
            if len(hits) == 1:
                return Run(hits[0], root=self.root)
        ids = [e["run_id"] for e in self.list_runs()]
        known = ", ".join(ids[:5]) + (f" (and {len(ids) - 5} more)" if len(ids) > 5 else "") if ids else "none"
        raise ValueError(f"unknown run {text!r}: not a run id in {self.root / INDEX_FILE} nor a run directory "
                         f"(with {METADATA_FILE}); known runs: {known}")

    def _is_inside_root(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return True

    def reindex(self) -> int:
        """Rebuild index.json from the run directories (after copying runs in, or losing the index)."""
        entries = {}
        for meta_path in sorted(self.root.glob(f"*/*/{METADATA_FILE}")):
            with contextlib.suppress(OSError, ValueError):
                meta = _read_json(meta_path)
                run_id = meta_path.parent.name
                entries[run_id] = {
                    "algorithm": meta.get("algorithm", meta_path.parent.parent.name), "env": meta.get("env"),
                    "seed": meta.get("seed"), "timestamp": meta.get("timestamp_start"),
                    "path": meta_path.parent.relative_to(self.root).as_posix(), "status": meta.get("status"),
                    "tags": meta.get("tags", []), "run_name": meta.get("run_name")}

        def replace(runs: dict) -> None:
            runs.clear()
            runs.update(entries)
        _modify_index(self.root, replace)
        return len(entries)

    # -- querying

    def list_runs(self, algorithm: str | None = None, status: str | None = None) -> list[dict]:
        """Index entries (each with its ``run_id``), newest first; [] when there is no index yet."""
        runs = _load_index(self.root)["runs"]
        entries = [{"run_id": run_id, **entry} for run_id, entry in runs.items()
                   if (algorithm is None or entry.get("algorithm") == algorithm)
                   and (status is None or entry.get("status") == status)]
        order = {e["run_id"]: i for i, e in enumerate(entries)}

        def key(e: dict) -> tuple[float, int]:
            try:
                stamp = _parse_time(e.get("timestamp") or "").timestamp()
            except (TypeError, ValueError):
                stamp = float("-inf")
            return stamp, order[e["run_id"]]
        return sorted(entries, key=key, reverse=True)

    def _metadata_of(self, run: Run | Mapping) -> dict | None:
        if isinstance(run, Run):
            target = run
        elif "path" in run and "timestamp_start" not in run:  # an index entry
            target = Run(self.root / run["path"], root=self.root)
        else:
            return dict(run)
        try:
            return target.metadata
        except (OSError, ValueError):
            return None

    def get_metric(self, run: Run | Mapping, metric: str) -> float | None:
        """A number at a dotted path in the metadata (``config.*`` falls back to config.yaml); None if absent."""
        meta = self._metadata_of(run)
        if meta is None:
            return None
        parts = metric.split(".")
        value = _lookup(meta, parts)
        if value is _MISSING and parts[0] == "config":
            target = run if isinstance(run, Run) else None
            if target is None and "path" in run:
                target = Run(self.root / run["path"], root=self.root)
            if target is not None:
                value = _lookup(target.load_config(), parts[1:])
        num = _number(value) if value is not _MISSING else None
        if num is None or (isinstance(num, float) and math.isnan(num)):
            return None
        return float(num)

    def _ranked(self, algorithm: str | None, metric: str, mode: str) -> list[tuple[float, dict]]:
        _check_mode(mode)
        scored = []
        for entry in self.list_runs(algorithm):
            value = self.get_metric(entry, metric)
            if value is not None:
                scored.append((value, entry))
        # stable sort on newest-first entries: ties go to the newer run
        scored.sort(key=lambda item: item[0], reverse=(mode == "max"))
        return scored

    def best_run(self, algorithm: str | None = None, metric: str = DEFAULT_METRIC, mode: str = "max") -> Run | None:
        """The run with the highest (or lowest) metric among runs that have it; None when none does."""
        ranked = self._ranked(algorithm, metric, mode)
        if not ranked:
            return None
        return Run(self.root / ranked[0][1]["path"], root=self.root)

    def leaderboard(self, metric: str = DEFAULT_METRIC, mode: str = "max") -> list[dict]:
        """Best run per algorithm, best first; ``num_runs`` counts that algorithm's runs that have the metric."""
        best: dict[str, dict] = {}
        for value, entry in self._ranked(None, metric, mode):
            algo = entry.get("algorithm")
            if algo not in best:
                best[algo] = {"algorithm": algo, "run_id": entry["run_id"], "value": value, "num_runs": 0}
            best[algo]["num_runs"] += 1
        return list(best.values())  # already in rank order: first appearance is each algorithm's best

    def compare(self, runs: Sequence[str | os.PathLike | Run]) -> list[dict]:
        """One flat dict per run: identity, throughput, ``final_metrics.*`` and ``config.*`` (dotted)."""
        rows = []
        for ref in runs:
            run = self.open_run(ref)
            meta = run.metadata
            row = {"run_id": meta.get("run_id", run.run_id)}
            for key in ("algorithm", "status", "seed", "total_env_steps", "steps_per_s"):
                row[key] = meta.get(key)
            row.update(_flatten(meta.get("final_metrics") or {}, "final_metrics."))
            row.update(_flatten(run.load_config(), "config."))
            rows.append(row)
        return rows

    # -- maintenance

    def export(self, path: str | os.PathLike) -> None:
        """All runs to .csv (metadata with nested dicts flattened to dotted keys, plus ``config.*``) or .json
        (a list of metadata dicts, each with its ``config``), for spreadsheets and pandas."""
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise ValueError(f"export writes .csv or .json, not {out.suffix or 'a file without suffix'!r}")
        records = []
        for entry in reversed(self.list_runs()):  # oldest first reads naturally in a spreadsheet
            run = Run(self.root / entry["path"], root=self.root)
            try:
                meta = run.metadata
            except (OSError, ValueError):
                continue
            records.append((meta, run.load_config()))
        if suffix == ".json":
            _write_json(out, [{**meta, "config": config} for meta, config in records])
            return
        flat = [{**_flatten(meta), **_flatten(config, "config.")} for meta, config in records]
        header: list[str] = []
        for row in flat:
            header.extend(k for k in row if k not in header)
        text = _CsvText(header)
        for row in flat:
            text.add({k: _csv_cell(v) for k, v in row.items()})
        _atomic_write_text(out, text.text())

    def mark_abandoned(self, older_than_hours: float = 24) -> list[str]:
        """Runs still "running" that started too long ago (their process died without finishing) -> "abandoned"."""
        cutoff = _now() - timedelta(hours=older_than_hours)
        marked = []
        for entry in self.list_runs():
            run = Run(self.root / entry["path"], root=self.root)
            try:
                meta = run.metadata
                started = _parse_time(meta["timestamp_start"])
            except (OSError, KeyError, TypeError, ValueError):
                continue
            if meta.get("status") == "running" and started < cutoff:
                run.update_metadata(status="abandoned")
                marked.append(entry["run_id"])
        return marked
