"""Per-cell JSON records (written atomically), and the tables derived from them.

A run directory holds ``cells/<cell_id>.json`` (the source of truth), ``samples/<cell_id>.png``,
``results.csv`` and ``curves.csv`` (both rebuilt from the records), ``curves.png`` and ``manifest.json``.
Columns are documented in docs/results-schema.md; bump SCHEMA_VERSION when their meaning changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.cache import atomic_write_bytes, atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1
COMPLETE = ("ok", "diverged")  # statuses a resumed run skips; "failed" cells are retried

RESULT_COLUMNS = [
    "schema_version", "cell_id", "status", "arch", "strategy", "augment", "source", "target", "shots", "seed",
    "fid", "kid", "trainable_params", "total_params", "trainable_fraction",
    "trainable_g", "total_g", "trainable_d", "total_d",
    "pretrain_s", "pretrain_cache_hit", "finetune_s", "step_ms", "images_per_s", "eval_s",
    "peak_mem_mb", "peak_mem_kind", "device", "arch_weights",
    "resolution", "channels", "pretrain_steps", "finetune_steps", "batch_size", "lr",
    "eval_samples", "eval_every", "n_gen", "n_ref", "kid_subset_size",
    "fid_mode", "inception_sha1", "ganbench_version", "torch_version", "cleanfid_version",
    "git_revision", "finished_at", "error",
]  # fmt: skip
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


def write_record(run_dir: Path, record: dict[str, Any], sample_png: bytes | None = None) -> None:
    """Samples first, then the record: a record on disk implies its artifacts are there too."""
    if sample_png is not None:
        atomic_write_bytes(Path(run_dir) / "samples" / f"{record['cell_id']}.png", sample_png)
    atomic_write_json(record_path(run_dir, record["cell_id"]), record)


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def completed_ids(run_dir: Path) -> set[str]:
    done = set()
    for path in (Path(run_dir) / "cells").glob("*.json"):
        record = read_record(path)
        if record and record.get("status") in COMPLETE:
            done.add(record["cell_id"])
    return done


def load_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Every cell record under one or more run directories (or record files), sorted by cell id."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    records = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted((p / "cells").glob("*.json")) or sorted(p.glob("*/cells/*.json"))
        records += [r for r in map(read_record, files) if r is not None]
    return sorted(records, key=lambda r: r["cell_id"])


def results_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{col: r.get(col) for col in RESULT_COLUMNS} for r in records]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


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


def write_tables(run_dir: Path) -> pd.DataFrame:
    """Rebuild results.csv and curves.csv from the records on disk; returns the results frame."""
    records = load_records(run_dir)
    frame = results_frame(records)
    atomic_write_text(Path(run_dir) / "results.csv", frame.to_csv(index=False))
    atomic_write_text(Path(run_dir) / "curves.csv", curves_frame(records).to_csv(index=False))
    return frame
