"""Per-cell JSON records (written atomically), and the tables derived from them.

A run directory holds ``cells/<cell_id>.json`` (the source of truth), ``samples/<cell_id>.png``,
``results.csv`` and ``curves.csv`` (both rebuilt from the records), ``curves.png``, ``manifest.json``, and while
cells are unfinished ``checkpoints/<cell_id>.pt``; ``.lock`` while a process runs it.
The record's fields are typed in :mod:`ganbench.store.schema` and documented in docs/results-schema.md; bump
SCHEMA_VERSION when their meaning changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.store.cache import atomic_write_bytes, atomic_write_json, atomic_write_text
from ganbench.store.schema import FIELDS, IDENTITY_FIELDS, RESULTS_FIELDS, Column

SCHEMA_VERSION = 2  # 2: records declare their metric columns (``metric_columns``) and carry ``reference_key``
COMPLETE = ("ok", "diverged")  # statuses a resumed run skips; "failed" cells are retried

# results.csv: these, then every metric column the records declare, then COST_AND_PROVENANCE_COLUMNS; both lists,
# and every field a record has, come from the typed record (ganbench.store.schema.Record)
IDENTITY_COLUMNS = list(IDENTITY_FIELDS)
COST_AND_PROVENANCE_COLUMNS = list(RESULTS_FIELDS)
#: names no metric column may take: the record's fields, and ``step`` (the key of a curve point)
CORE_COLUMNS = frozenset([*FIELDS, "step"])


def metric_columns(records: Iterable[dict[str, Any]]) -> list[Column]:
    """Every metric column the records declare, each once, in the order they first appear."""
    seen: dict[str, Column] = {}
    for record in records:
        for data in record.get("metric_columns") or ():
            seen.setdefault(data["name"], Column.from_record(data))
    return list(seen.values())


def scored_columns(columns: Iterable[Column]) -> list[Column]:
    """The columns that are scores (better lower or higher), in order; details left out."""
    return [c for c in columns if c.lower_is_better is not None]


HEADLINE = "fid"  # the score tables sort by and leaderboards rank by unless told otherwise


def headline_column(columns: Iterable[Column]) -> Column | None:
    """FID when it is among the scored columns, else the first score; None when there is no score."""
    scored = scored_columns(columns)
    return next((c for c in scored if c.name == HEADLINE), scored[0] if scored else None)


def result_columns(records: list[dict[str, Any]]) -> list[str]:
    """The columns of results.csv for these records."""
    return [*IDENTITY_COLUMNS, *(c.name for c in metric_columns(records)), *COST_AND_PROVENANCE_COLUMNS]


CURVE_COLUMNS = [
    "cell_id",
    "arch",
    "strategy",
    "augment",
    "source",
    "target",
    "shots",
    "seed",
    "step",
    "metric",
    "value",
]


def record_path(run_dir: Path, cell_id: str) -> Path:
    return Path(run_dir) / "cells" / f"{cell_id}.json"


def checkpoint_path(run_dir: Path, cell_id: str) -> Path:
    """Where an unfinished cell keeps its training state (removed once its record is written)."""
    return Path(run_dir) / "checkpoints" / f"{cell_id}.pt"


def write_record(run_dir: Path, record: dict[str, Any], sample_png: bytes | None = None) -> None:
    """Samples first, then the record: a record on disk implies its artifacts are there too."""
    if sample_png is not None:
        atomic_write_bytes(Path(run_dir) / "samples" / f"{record['cell_id']}.png", sample_png, "sample grid")
    atomic_write_json(record_path(run_dir, record["cell_id"]), record, "cell record")


def read_record(path: Path) -> dict[str, Any] | None:
    """The record in ``path``; None when it is unreadable, not JSON or not an object (a damaged record)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8 text
        return None
    return record if isinstance(record, dict) else None


def completed_ids(run_dir: Path) -> set[str]:
    done = set()
    for path in (Path(run_dir) / "cells").glob("*.json"):
        record = read_record(path)
        if record and record.get("status") in COMPLETE and isinstance(record.get("cell_id"), str):
            done.add(record["cell_id"])
    return done


def results_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    columns = result_columns(records)
    return pd.DataFrame([{col: r.get(col) for col in columns} for r in records], columns=columns)


def curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    keys = CURVE_COLUMNS[:8]
    rows = [
        {**{k: r.get(k) for k in keys}, "step": point["step"], "metric": metric, "value": value}
        for r in records
        for point in r.get("curve", [])
        for metric, value in point.items()
        if metric != "step"
    ]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def write_tables(run_dir: Path, records: list[dict[str, Any]]) -> pd.DataFrame:
    """Rebuild results.csv and curves.csv from ``records`` (those on disk); returns the results frame."""
    frame = results_frame(records)
    atomic_write_text(Path(run_dir) / "results.csv", frame.to_csv(index=False), "results table")
    atomic_write_text(Path(run_dir) / "curves.csv", curves_frame(records).to_csv(index=False), "curves table")
    return frame
