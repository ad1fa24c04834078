"""The one loader of run folders: every cell record under one or more run directories, one per cell id.

A path may be a run directory (``cells/*.json``), a folder of run directories, or one record file. A cell id
found in several runs is kept once: its latest ``finished_at`` among ``ok``/``diverged`` records, a
``failed`` one only when there is no other. What was skipped or replaced is said in ``notes``.

Records are checked as they are read (:func:`record_problem`): a damaged or hand-edited record (not JSON, not
an object, a missing or ill-typed field the tables need) is skipped and named in one note; a path whose
records are all damaged is refused, and so is a record of a newer schema than this ganbench reads.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.files import show_path
from ganbench.store.cache import set_aside
from ganbench.store.records import COMPLETE, SCHEMA_VERSION, read_record
from ganbench.store.schema import Column, field_problem


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


STATUSES = ("ok", "diverged", "failed")
TEXT_FIELDS = ("cell_id", "status", "arch", "strategy", "source", "target")  # non-empty text in every record
INT_FIELDS = ("shots", "seed")
# numbers (or null) the tables compute with: the costs averaged over seeds
NUMBER_FIELDS = ("finetune_s", "eval_s", "step_ms", "images_per_s", "peak_mem_mb", "pretrain_s", "trainable_fraction")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read(file: Path) -> tuple[Any, str | None]:
    """The JSON in ``file``, or why there is none."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    if not text.strip():
        return None, "empty file"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def _columns_problem(columns: Any) -> str | None:
    if not isinstance(columns, list):
        return f"metric_columns is {_shown(columns)}, not a list"
    for c in columns:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"]:
            return f"metric_columns holds {_shown(c)}, not an object with a name"
        if c.get("lower_is_better") not in (True, False, None):
            return f"metric column {c['name']}: lower_is_better is {_shown(c['lower_is_better'])}, not true/false/null"
        if "digits" in c and not _is_int(c["digits"]):
            return f"metric column {c['name']}: digits is {_shown(c['digits'])}, not an integer"
        if c.get("label") is not None and not isinstance(c["label"], str):
            return f"metric column {c['name']}: label is {_shown(c['label'])}, not text"
    return None


def record_problem(record: Any) -> str | None:
    """Why a cell record read from disk cannot be tabulated (None: it can), in a few words naming the field.
    Checks what the tables compute with (identity text, shots and seed, the metric columns and their values,
    the costs and the curve) and that every other field of the typed record has its declared type."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    for name in TEXT_FIELDS:
        if name not in record or record[name] is None:
            return f"no {name}"
        if not isinstance(record[name], str) or not record[name]:
            return f"{name} is {_shown(record[name])}, not text"
    if record["status"] not in STATUSES:
        return f"status {_shown(record['status'])} is not one of {', '.join(STATUSES)}"
    if record.get("augment") is not None and not isinstance(record["augment"], str):
        return f"augment is {_shown(record['augment'])}, not text"
    if "schema_version" in record and not _is_int(record["schema_version"]):
        return f"schema_version is {_shown(record['schema_version'])}, not an integer"
    for name in INT_FIELDS:
        if not _is_int(record.get(name)):
            return f"{name} is {_shown(record.get(name))}, not an integer"
    problem = _columns_problem(record.get("metric_columns", []))
    if problem:
        return problem
    names = [c["name"] for c in record.get("metric_columns", [])]
    for name in [*names, *NUMBER_FIELDS]:
        value = record.get(name)
        if value is not None and not _is_number(value):
            return f"{name} is {_shown(value)}, not a number"
    curve = record.get("curve", [])
    if curve is not None and not isinstance(curve, list):
        return f"curve is {_shown(curve)}, not a list"
    for point in curve or []:
        if not isinstance(point, dict) or not _is_number(point.get("step")):
            return f"curve point {_shown(point)} has no numeric step"
        for name in names:
            if point.get(name) is not None and not _is_number(point[name]):
                return f"curve point at step {point['step']}: {name} is {_shown(point[name])}, not a number"
    for name, value in record.items():  # every other field of the typed record (ganbench.store.schema.Record)
        if name not in names and (problem := field_problem(name, value)):
            return problem
    return None


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
        damaged, kept_here = [], 0
        for file, run in files:
            record, problem = _read(file)
            if problem is None and isinstance(record, dict):
                _refuse_newer(record, file)
                record = upgrade(record)
            problem = problem or record_problem(record)
            if problem:
                damaged.append(f"{run.name}/{file.relative_to(run)} ({problem})" if file.is_relative_to(run)
                               else f"{file} ({problem})")  # fmt: skip
                continue
            loaded.append((record, run))
            runs.append(run)
            kept_here += 1
        what_to_do = "restore them, or delete them and rerun their run's command to recompute those cells"
        if damaged and not kept_here and not allow_empty:
            raise GanbenchError(
                f"no readable cell record under {path}: {len(damaged)} damaged: {listed(damaged)}; {what_to_do}"
            )
        if damaged:
            notes.append(
                f"warning: skipped {len(damaged)} damaged cell record(s) under {path} (kept the other {kept_here}): "
                f"{listed(damaged)}; {what_to_do}"
            )
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


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a run directory `ganbench run matrix` wrote, by its contents: cell records in
    ``cells/``, or the run's manifest (``manifest.json`` naming its cells; a plain ``manifest.json`` of another
    tool does not count)."""
    cells = path / "cells"
    if cells.is_dir() and next(cells.glob("*.json"), None) is not None:
        return True
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return cells.is_dir()  # a damaged manifest beside a cells/ folder: a run's still
    return isinstance(data, dict) and "cell_ids" in data and "run_id" in data


def refuse_output_inside(
    output: str | os.PathLike, option: str, *, cache: str | os.PathLike | None = None,
    own: Iterable[str | os.PathLike] = (),
) -> None:  # fmt: skip
    """The one guard of every path a command writes that the user named (``option``: ``-o``, ``--out``, ...):
    raises GanbenchError (one line; the caller has written nothing yet) when ``output`` is a run directory or
    inside one, found by walking up its parents (any run folder, not only those the command reads), or inside
    the ``cache``, unless it is inside one of ``own``: what the command creates itself (``show``'s plots/)."""
    target = Path(output).resolve()
    if any(target == o or o in target.parents for o in (Path(p).resolve() for p in own)):
        return
    shown = f"{option} {show_path(output)}"
    advice = "write it outside the run directories and the cache"
    for folder in (target, *target.parents):
        if is_run_folder(folder):
            inside = target.relative_to(folder).parts
            what = f"run {folder.name}'s {inside[0]}" if inside else f"the run directory {folder.name}"
            raise GanbenchError(f"{shown} points into {what}, which only the run that made it writes; {advice}")
    if cache is not None:
        root = Path(cache).resolve()
        if target == root or root in target.parents:
            raise GanbenchError(
                f"{shown} points into the cache {show_path(root)}, which only ganbench itself writes; {advice}"
            )


def set_aside_damaged(run_dir: str | os.PathLike) -> list[str]:
    """Before a run is resumed: rename every damaged record of ``run_dir`` (not JSON, or failing
    :func:`record_problem`) to ``CELL.json.damaged``, so that rerunning its cell never overwrites it, and a
    manifest that is not a JSON object to ``manifest.json.damaged`` (the run writes a new one); one line each for
    the caller to say (this layer never prints). A record of a newer schema is no damage and stays."""
    lines = []
    manifest = Path(run_dir) / "manifest.json"
    if manifest.is_file():
        data, problem = _read(manifest)
        problem = problem or (None if isinstance(data, dict) else f"a JSON {type(data).__name__}, not an object")
        if problem:
            aside = set_aside(manifest, ".damaged")
            lines.append(f"warning: the manifest {show_path(manifest)} is damaged ({problem}): kept it as "
                         f"{aside.name} and writing a new one")  # fmt: skip
    for file in sorted((Path(run_dir) / "cells").glob("*.json")):
        record, problem = _read(file)
        if problem is None and isinstance(record, dict):
            version = record.get("schema_version")
            if _is_int(version) and version > SCHEMA_VERSION:
                continue
            record = upgrade(record)
        problem = problem or record_problem(record)
        if problem:
            aside = set_aside(file, ".damaged")
            lines.append(
                f"warning: the cell record {show_path(file)} is damaged ({problem}): kept it as {aside.name} and "
                "running that cell again"
            )
    return lines


def load_records(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Every cell record under one or more run directories (or record files), one per cell id, by cell id."""
    return load_runs(paths, allow_empty=True).records


def find_record(run_dir: str | os.PathLike, cell_id: str) -> dict[str, Any]:
    """The record of one cell of a run directory, named by its full id or any prefix of it that only one cell
    has. Raises GanbenchError (one line) for a folder that is not a run directory, an unknown or ambiguous
    prefix (listing up to five ids it could mean, or the run's) and an unreadable record."""
    run = Path(run_dir)
    if not (run / "cells").is_dir():
        what = "does not exist" if not run.exists() else "is not a run directory (it has no cells/ folder)"
        raise GanbenchError(f"{run} {what}: give a run directory `ganbench run matrix` wrote (<out>/<name>-<hash>)")
    ids = sorted(p.stem for p in (run / "cells").glob("*.json"))
    if not ids:
        raise GanbenchError(f"no cell records under {run / 'cells'}: the run has not finished a cell yet")
    wanted = cell_id.strip()
    matches = [wanted] if wanted in ids else [i for i in ids if i.startswith(wanted)]
    if not matches:
        raise GanbenchError(f"no cell {wanted!r} in {run}; its cells: {listed(ids, 5)}")
    if len(matches) > 1:
        raise GanbenchError(
            f"cell {wanted!r} is ambiguous in {run}: {len(matches)} cells start with it ({listed(matches, 5)}); "
            "give more of the id"
        )
    path = run / "cells" / f"{matches[0]}.json"
    record = read_record(path)
    if not isinstance(record, dict) or "cell_id" not in record:
        raise GanbenchError(f"{path} is not a readable cell record (damaged, or still being written?)")
    if record["cell_id"] != matches[0]:
        raise GanbenchError(f"{path} holds cell {record['cell_id']!r}: a record's file is named after its cell id")
    return upgrade(record)


# Records of schema 1 predate declared metric columns; the only metrics then were these (as declared now).
SCHEMA_1_COLUMNS = {
    "fid": [Column("fid", True, "FID", 2, metric="fid")],
    "kid": [
        Column("kid", True, "KID", 4, metric="kid"),
        Column("kid_subset_size", None, "KID subset", 0, metric="kid"),
    ],
}


def _refuse_newer(record: dict[str, Any], file: Path) -> None:
    version = record.get("schema_version")
    if _is_int(version) and version > SCHEMA_VERSION:
        raise GanbenchError(
            f"{file} has schema_version {version}, newer than the {SCHEMA_VERSION} this ganbench reads: upgrade "
            "ganbench to tabulate it (or leave that run out)"
        )


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the current schema: a schema-1 record gets the metric columns of the metrics it ran."""
    if "metric_columns" in record:
        return record
    spec = record.get("spec")
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    if not isinstance(metrics, list):
        metrics = ["fid", "kid"]
    columns = [c.as_record() for m in metrics for c in SCHEMA_1_COLUMNS.get(str(m).partition(":")[0], [])]
    return {**record, "metric_columns": columns}
