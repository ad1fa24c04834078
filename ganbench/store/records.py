"""Per-cell JSON records (written atomically), and the tables derived from them.

A run directory holds ``cells/<cell_id>.json`` (the source of truth), ``samples/<cell_id>.png``,
``results.csv`` and ``curves.csv`` (both rebuilt from the records), ``curves.png``, ``manifest.json``, and while
cells are unfinished ``checkpoints/<cell_id>.pt``; ``.lock`` while a process runs it.
Columns are documented in docs/results-schema.md; bump SCHEMA_VERSION when their meaning changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ganbench.store.cache import atomic_write_bytes, atomic_write_json, atomic_write_text
from ganbench.store.provenance import versions

if TYPE_CHECKING:
    from ganbench.grid.cells import Cell

SCHEMA_VERSION = 2  # 2: records declare their metric columns (``metric_columns``) and carry ``reference_key``
COMPLETE = ("ok", "diverged")  # statuses a resumed run skips; "failed" cells are retried

# results.csv: these, then every metric column the records declare, then COST_AND_PROVENANCE_COLUMNS
IDENTITY_COLUMNS = ["schema_version", "cell_id", "status", "arch", "strategy", "augment", "source", "target",
                    "shots", "seed"]  # fmt: skip
COST_AND_PROVENANCE_COLUMNS = [
    "trainable_params", "total_params", "trainable_fraction", "trainable_g", "total_g", "trainable_d", "total_d",
    "pretrain_s", "pretrain_cache_hit", "adapt_s", "finetune_s", "step_ms", "images_per_s", "eval_s",
    "eval_generate_s", "eval_features_s", "eval_metrics_s", "peak_mem_mb", "peak_train_mb", "peak_eval_mb",
    "peak_mem_kind", "device", "host", "executor", "threads", "device_shared_by", "worker_warm_up_s", "arch_weights", "resumes", "steps_redone", "checkpoint_every",
    "resolution", "channels", "pretrain_steps", "finetune_steps", "batch_size", "lr", "betas", "ema", "r1_gamma",
    "r1_every", "train_precision", "channels_last", "compiled", "augment_p", "source_file",
    "eval_samples", "eval_every", "n_gen", "reference", "reference_samples", "n_target", "n_ref", "n_heldout",
    "n_val", "shots_from", "shots_key", "reference_key", "select_on", "selected_step",
    "fid_mode", "inception_sha1", "ganbench_version", "torch_version", "cleanfid_version",
    "git_revision", "finished_at", "error",
]  # fmt: skip
CORE_COLUMNS = frozenset([*IDENTITY_COLUMNS, *COST_AND_PROVENANCE_COLUMNS, "spec", "curve", "loss", "traceback",
                          "metric_columns", "pretrain_key", "source_checkpoint", "python_version", "numpy_version",
                          "peak_mem_kind", "step", "selected", "losses", "resumed_from"])  # fmt: skip


@dataclass(frozen=True)
class MetricColumn:
    """A metric column as records declare it (``record["metric_columns"]``): which metric wrote it, and whether
    lower values are better (None: a detail such as a sample count, recorded but never ranked or averaged)."""

    name: str
    metric: str
    lower_is_better: bool | None
    label: str
    digits: int

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> MetricColumn:
        return cls(data["name"], data.get("metric", data["name"]), data.get("lower_is_better"),
                   data.get("label") or data["name"], int(data.get("digits", 4)))  # fmt: skip


def metric_columns(records: Iterable[dict[str, Any]]) -> list[MetricColumn]:
    """Every metric column the records declare, each once, in the order they first appear."""
    seen: dict[str, MetricColumn] = {}
    for record in records:
        for data in record.get("metric_columns") or ():
            seen.setdefault(data["name"], MetricColumn.from_record(data))
    return list(seen.values())


def scored_columns(columns: Iterable[MetricColumn]) -> list[MetricColumn]:
    """The columns that are scores (better lower or higher), in order; details left out."""
    return [c for c in columns if c.lower_is_better is not None]


HEADLINE = "fid"  # the score tables sort by and leaderboards rank by unless told otherwise


def headline_column(columns: Iterable[MetricColumn]) -> MetricColumn | None:
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


def cell_fields(cell: Cell, git_revision: str | None) -> dict[str, Any]:
    """The fields every record of ``cell`` has, whatever its outcome: what it is, its budgets, the code."""
    b = cell.budget
    return {
        "schema_version": SCHEMA_VERSION, "cell_id": cell.id,
        "arch": cell.labels.get("arch", cell.arch), "strategy": cell.labels.get("strategy", cell.strategy),
        "source": cell.labels.get("source", cell.source), "target": cell.labels.get("target", cell.target),
        "augment": cell.labels.get("augment", cell.augment), "shots": cell.shots, "seed": cell.seed,
        "resolution": cell.resolution, "channels": cell.channels,
        "pretrain_steps": b.pretrain_steps, "finetune_steps": b.finetune_steps, "batch_size": b.batch_size,
        "lr": b.lr, "eval_samples": b.eval_samples, "eval_every": b.eval_every,
        "reference": cell.protocol.reference, "reference_samples": cell.protocol.reference_samples or None,
        "select_on": cell.protocol.select_on, "betas": ",".join(f"{b:g}" for b in cell.recipe.betas),
        "ema": cell.recipe.ema, "r1_gamma": cell.recipe.r1_gamma, "r1_every": cell.recipe.r1_every,
        "train_precision": cell.recipe.precision, "source_file": cell.source_file, "spec": cell.identity(), "git_revision": git_revision, **versions(),
    }  # fmt: skip


def record_path(run_dir: Path, cell_id: str) -> Path:
    return Path(run_dir) / "cells" / f"{cell_id}.json"


def checkpoint_path(run_dir: Path, cell_id: str) -> Path:
    """Where an unfinished cell keeps its training state (removed once its record is written)."""
    return Path(run_dir) / "checkpoints" / f"{cell_id}.pt"


def write_record(run_dir: Path, record: dict[str, Any], sample_png: bytes | None = None) -> None:
    """Samples first, then the record: a record on disk implies its artifacts are there too."""
    if sample_png is not None:
        atomic_write_bytes(Path(run_dir) / "samples" / f"{record['cell_id']}.png", sample_png)
    atomic_write_json(record_path(run_dir, record["cell_id"]), record)


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
    atomic_write_text(Path(run_dir) / "results.csv", frame.to_csv(index=False))
    atomic_write_text(Path(run_dir) / "curves.csv", curves_frame(records).to_csv(index=False))
    return frame
