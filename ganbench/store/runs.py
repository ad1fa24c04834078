"""The one loader of run folders: every cell record under one or more run directories, one per cell id.

A path may be a run directory (``cells/*.json``), a folder of run directories, or one record file. A cell id
found in several runs is kept once: its latest ``finished_at`` among ``ok``/``diverged`` records, a
``failed`` one only when there is no other. What was skipped or replaced is said in ``notes``.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.store.records import COMPLETE, MetricColumn, read_record


@dataclass
class RunRecords:
    """The records of the given runs, one per cell id, the run each came from, and what loading noticed."""

    records: list[dict[str, Any]]
    runs: list[Path]
    run_of: dict[str, Path] = field(default_factory=dict)  # cell id -> the run directory its record is in
    notes: list[str] = field(default_factory=list)


def _record_files(path: Path) -> list[tuple[Path, Path]]:
    """(record file, run directory) pairs: a run directory, a folder of run directories, or one record."""
    if path.is_file():
        return [(path, path.parent.parent)]
    if (path / "cells").is_dir():
        return [(f, path) for f in sorted((path / "cells").glob("*.json"))]
    return [(f, f.parent.parent) for f in sorted(path.glob("*/cells/*.json"))]


def finished_at(record: dict[str, Any]) -> _dt.datetime:
    """When the cell finished (timezone-aware); the earliest possible time when the record does not say."""
    try:
        when = _dt.datetime.fromisoformat(str(record.get("finished_at")))
    except ValueError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def listed(items: list[str], shown: int = 3) -> str:
    """The first ``shown`` items, comma-joined, and how many more there are."""
    return ", ".join(items[:shown]) + (f" (+{len(items) - shown} more)" if len(items) > shown else "")


def load_runs(paths: str | os.PathLike | Iterable[str | os.PathLike], *, allow_empty: bool = False) -> RunRecords:
    """Every record under ``paths``, one per cell id. Raises GanbenchError (one line) for a path that does not
    exist or holds no record, unless ``allow_empty`` (a run that has not finished a cell yet)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    resolved = list(dict.fromkeys(Path(p).resolve() for p in paths))
    if not resolved and not allow_empty:
        raise GanbenchError("no run directory given")
    loaded: list[tuple[dict[str, Any], Path]] = []
    notes: list[str] = []
    runs: list[Path] = []
    for path in resolved:
        files = _record_files(path) if path.exists() else []
        if not files and not allow_empty:
            if not path.exists():
                raise GanbenchError(f"{path} does not exist (expected a run directory holding cells/*.json)")
            raise GanbenchError(f"no cell records under {path} (expected {path / 'cells'}/*.json)")
        unreadable = []
        for file, run in files:
            record = read_record(file)
            if not isinstance(record, dict) or "cell_id" not in record:
                unreadable.append(str(file))
                continue
            loaded.append((upgrade(record), run))
            runs.append(run)
        if unreadable:
            notes.append(f"note: skipped {len(unreadable)} unreadable record(s): {listed(unreadable)}")
    by_id: dict[str, list[tuple[dict[str, Any], Path]]] = defaultdict(list)
    for record, run in loaded:
        by_id[record["cell_id"]].append((record, run))
    kept, run_of, replaced = [], {}, []
    for cell_id, copies in sorted(by_id.items()):
        best, best_run = max(copies, key=lambda c: (c[0].get("status") in COMPLETE, finished_at(c[0])))
        kept.append(best)
        run_of[cell_id] = best_run
        if len(copies) > 1:
            others = sorted({run.name for record, run in copies if record is not best} - {best_run.name})
            also = f" over {', '.join(others)}" if others else ""
            replaced.append(f"{cell_id} from {best_run.name}{also}")
    if replaced:
        notes.append(
            f"note: {len(replaced)} cell(s) appear in more than one run; kept the latest finished_at of each "
            "(a failed record only when the cell has no other): "
            f"{listed(replaced)}"
        )
    return RunRecords(kept, list(dict.fromkeys(runs)), run_of, notes)


def load_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Every cell record under one or more run directories (or record files), one per cell id, by cell id."""
    return load_runs(paths, allow_empty=True).records


# Records of schema 1 predate declared metric columns; the only metrics then were these (as declared now).
SCHEMA_1_COLUMNS = {
    "fid": [MetricColumn("fid", "fid", True, "FID", 2)],
    "kid": [MetricColumn("kid", "kid", True, "KID", 4), MetricColumn("kid_subset_size", "kid", None, "KID subset", 0)],
}


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the current schema: a schema-1 record gets the metric columns of the metrics it ran."""
    if "metric_columns" in record:
        return record
    metrics = (record.get("spec") or {}).get("metrics") or ["fid", "kid"]
    columns = [c.as_record() for m in metrics for c in SCHEMA_1_COLUMNS.get(str(m).partition(":")[0], [])]
    return {**record, "metric_columns": columns}
