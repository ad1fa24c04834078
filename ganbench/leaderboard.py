"""Leaderboards: the cell records of one or more runs, aggregated over seeds, ranked, with provenance.

One row per (arch, source, target, shots, augment, strategy): mean, sample std and n over seeds of FID,
KID and the cost columns, a rank within (arch, source, target, shots) by mean FID, and what the strategy
gained over the scratch baseline trained on the same seeds. Rows are only put side by side when their
cells were evaluated and budgeted identically (``SETTING_FIELDS``); otherwise ``build_leaderboard``
refuses, unless ``allow_mixed`` splits the rows (and their ranks) by the differing settings.

Columns are documented in docs/results-schema.md ("Leaderboard CSV"); they always come in the order of
``LEADERBOARD_COLUMNS``. Bump ``LEADERBOARD_SCHEMA_VERSION`` when a column's meaning changes.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.errors import GanbenchError
from ganbench.records import COMPLETE, read_record

LEADERBOARD_SCHEMA_VERSION = 1

RANK_WITHIN = ["arch", "source", "target", "shots"]  # a comparison group: ranks are computed inside one
GROUP_COLUMNS = [*RANK_WITHIN, "augment", "strategy"]  # one leaderboard row
# per-cell values averaged over seeds: `<name>_mean` and `<name>_std` columns
STAT_METRICS = ["fid", "kid", "device_s_per_cell", "finetune_s", "step_ms", "images_per_s", "eval_s",
                "peak_mem_mb", "pretrain_s"]  # fmt: skip
# Settings that change what a number means. Rows are only ranked side by side when these agree: across the
# whole table, except the reference-set fields, which must agree among rows of the same target, and the
# weights an architecture brings itself, which must agree among rows of the same architecture.
SETTING_FIELDS = ["eval_samples", "n_gen", "n_ref", "reference_key", "fid_mode", "inception_sha1", "resolution",
                  "channels", "pretrain_steps", "finetune_steps", "batch_size", "lr", "eval_every",
                  "arch_weights"]  # fmt: skip
PER_TARGET_SETTINGS = {"n_ref", "reference_key"}
PER_ARCH_SETTINGS = {"arch_weights"}  # e.g. a pretrained vs a random backbone: must agree within one architecture
PROVENANCE_FIELDS = ["ganbench_version", "torch_version", "cleanfid_version", "device", "git_revision"]

LEADERBOARD_COLUMNS = [
    "schema_version", *GROUP_COLUMNS, "rank", "rank_within",
    "n", "seeds", "n_diverged", "n_failed",
    "fid_mean", "fid_std", "kid_mean", "kid_std",
    "fid_gain_vs_scratch", "fid_gain_vs_scratch_std", "gain_n", "steps_to_scratch_fid", "reached_n",
    "trainable_fraction",
    "device_s_per_cell_mean", "device_s_per_cell_std", "finetune_s_mean", "finetune_s_std",
    "step_ms_mean", "step_ms_std", "images_per_s_mean", "images_per_s_std", "eval_s_mean", "eval_s_std",
    "peak_mem_mb_mean", "peak_mem_mb_std", "peak_mem_kind", "pretrain_s_mean", "pretrain_s_std",
    *SETTING_FIELDS,
    *PROVENANCE_FIELDS, "date", "runs", "cell_ids",
]  # fmt: skip
INT_COLUMNS = ["schema_version", "shots", "rank", "n", "n_diverged", "n_failed", "gain_n", "reached_n",
               "eval_samples", "n_gen", "n_ref", "resolution", "channels", "pretrain_steps", "finetune_steps",
               "batch_size", "eval_every"]  # fmt: skip
FLOAT_COLUMNS = [*(f"{m}_{s}" for m in STAT_METRICS for s in ("mean", "std")), "fid_gain_vs_scratch",
                 "fid_gain_vs_scratch_std", "steps_to_scratch_fid", "trainable_fraction", "lr"]  # fmt: skip

SCRATCH = "scratch"
RUN_KEY = "_run"  # the run directory a loaded record came from (never written out)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Cells:
    """The records of the given runs, one per cell id, and what was noticed while loading them."""

    records: list[dict[str, Any]]
    runs: list[Path]
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _record_files(path: Path) -> list[tuple[Path, Path]]:
    """(record file, run directory) pairs: a run directory, a folder of run directories, or one record."""
    if path.is_file():
        return [(path, path.parent.parent)]
    if (path / "cells").is_dir():
        return [(f, path) for f in sorted((path / "cells").glob("*.json"))]
    return [(f, f.parent.parent) for f in sorted(path.glob("*/cells/*.json"))]


def _finished(record: dict[str, Any]) -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(str(record.get("finished_at")))
    except ValueError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _more(items: list[str], shown: int = 3) -> str:
    return ", ".join(items[:shown]) + (f" (+{len(items) - shown} more)" if len(items) > shown else "")


def load_cells(run_dirs: str | os.PathLike | Iterable[str | os.PathLike]) -> Cells:
    """Every record under ``run_dirs``; a cell id found in several runs is kept once (the latest
    ``finished_at`` among its ok/diverged records; a failed one only when it has no other), with a note."""
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    paths = list(dict.fromkeys(Path(p).resolve() for p in run_dirs))
    if not paths:
        raise GanbenchError("no run directory given")
    loaded, notes, runs = [], [], []
    for path in paths:
        if not path.exists():
            raise GanbenchError(f"{path} does not exist (expected a run directory holding cells/*.json)")
        files = _record_files(path)
        if not files:
            raise GanbenchError(f"no cell records under {path} (expected {path / 'cells'}/*.json)")
        unreadable = []
        for file, run in files:
            record = read_record(file)
            if not isinstance(record, dict) or "cell_id" not in record:
                unreadable.append(str(file))
                continue
            loaded.append({**record, RUN_KEY: run})
            runs.append(run)
        if unreadable:
            notes.append(f"note: skipped {len(unreadable)} unreadable record(s): {_more(unreadable)}")
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in loaded:
        by_id[record["cell_id"]].append(record)
    kept, replaced = [], []
    for cell_id, copies in sorted(by_id.items()):
        best = max(copies, key=lambda r: (r.get("status") in COMPLETE, _finished(r)))
        kept.append(best)
        others = sorted({r[RUN_KEY].name for r in copies if r is not best} - {best[RUN_KEY].name})
        if len(copies) > 1:
            also = f" over {', '.join(others)}" if others else ""
            replaced.append(f"{cell_id} from {best[RUN_KEY].name}{also}")
    if replaced:
        notes.append(
            f"note: {len(replaced)} cell(s) appear in more than one run; kept the latest finished_at of each "
            "(a failed record only when the cell has no other): "
            f"{_more(replaced)}"
        )
    _fill_settings(kept)
    return Cells(kept, list(dict.fromkeys(runs)), notes)


def _fill_settings(records: list[dict[str, Any]]) -> None:
    """Diverged and failed cells never reached an evaluation: take their evaluation settings from the ok
    cells of the same run (of the same target, for the reference set), so that they group with them."""
    by_run: dict[Path, dict[str, Any]] = {}
    by_target: dict[tuple, dict[str, Any]] = {}
    for r in records:
        r["augment"] = r.get("augment") or "none"
        if r.get("status") == "ok":
            by_run.setdefault(r[RUN_KEY], r)
            by_target.setdefault((r[RUN_KEY], r.get("target")), r)
    for r in records:
        if r.get("status") == "ok":
            continue
        if r.get("n_gen") is None:
            r["n_gen"] = r.get("eval_samples")
        for names, other in ((("fid_mode", "inception_sha1"), by_run.get(r[RUN_KEY])),
                             (PER_TARGET_SETTINGS, by_target.get((r[RUN_KEY], r.get("target"))))):  # fmt: skip
            for name in names if other else ():
                if r.get(name) is None:
                    r[name] = other.get(name)


# --------------------------------------------------------------------------------------------------
# Refusing to compare what was measured differently
# --------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    return "missing" if value is None else str(value)


def _same(value: Any) -> Any:
    """A key under which equal settings meet (``1`` and ``1.0`` too); unhashable values by their text."""
    try:
        hash(value)
    except TypeError:
        return _show(value)
    return value


def _differing(records: list[dict[str, Any]], name: str) -> dict[str, list[dict[str, Any]]]:
    values: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        value = r.get(name)
        if value is None and r.get("status") != "ok":
            continue  # not recorded by a cell that never evaluated: unknown, not different
        values[_same(value)].append(r)
    return {_show(v): rs for v, rs in values.items()} if len(values) > 1 else {}


def _comparison_label(record: dict[str, Any], keys: list[str] = RANK_WITHIN) -> str:
    values = {k: record.get(k) for k in keys}
    label = f"{values['arch']}: {values['source']} -> {values['target']}, {values['shots']} shots"
    extra = [f"{k}={_show(v)}" for k, v in values.items() if k not in RANK_WITHIN]
    return label + (f" ({', '.join(extra)})" if extra else "")


def _check_settings(records: list[dict[str, Any]], allow_mixed: bool) -> list[str]:
    """The setting fields that differ where rows would sit side by side; raises unless ``allow_mixed``."""
    scored = [r for r in records if r.get("status") in COMPLETE]
    found: list[tuple[str, dict[str, list[dict[str, Any]]]]] = []
    for name in SETTING_FIELDS:
        scopes: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in scored:
            scope = ("target", r.get("target")) if name in PER_TARGET_SETTINGS else None
            scope = ("arch", r.get("arch")) if name in PER_ARCH_SETTINGS else scope
            scopes[scope].append(r)
        for scope_records in scopes.values():
            values = _differing(scope_records, name)
            if values:
                found.append((name, values))
                break
    if found and not allow_mixed:
        raise GanbenchError(_refusal(found))
    return [name for name, _ in found]


def _refusal(found: list[tuple[str, dict[str, list[dict[str, Any]]]]]) -> str:
    name, values = found[0]
    groups: dict[tuple, set[str]] = defaultdict(set)
    for value, rs in values.items():
        for r in rs:
            groups[tuple(r.get(k) for k in RANK_WITHIN)].add(value)
    inside = [key for key, seen in groups.items() if len(seen) > 1]
    if inside:
        example = next(r for rs in values.values() for r in rs if tuple(r.get(k) for k in RANK_WITHIN) == inside[0])
        where = f"within the comparison group {_comparison_label(example)}"
    else:
        where = "between rows of the same table"
    parts = []
    for value, rs in sorted(values.items()):
        runs = sorted({r[RUN_KEY].name for r in rs})
        cells = [r["cell_id"] for r in sorted(rs, key=lambda r: r["cell_id"])]
        parts.append(f"{name}={value} in run {', '.join(runs)} (cells {_more(cells)})")
    others = [n for n, _ in found[1:]]
    also = f"; also differing: {', '.join(others)}" if others else ""
    return (
        f"refusing to rank side by side cells measured differently: {name} differs {where}: "
        f"{' vs '.join(parts)}{also}. Compare runs made with identical settings, or pass --allow-mixed to split "
        f"rows and ranks by {', '.join(n for n, _ in found)}"
    )


# --------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------


def _finite(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _mean_std(values: Iterable[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; None for fewer than two values)."""
    xs = _finite(values)
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def device_seconds(record: dict[str, Any]) -> float | None:
    """Device-seconds one cell used: fine-tuning plus its evaluations. Pretraining is reported apart
    (``pretrain_s``): it is paid once per (architecture, source, seed) and shared by every strategy."""
    if record.get("finetune_s") is None or record.get("eval_s") is None:
        return None
    return float(record["finetune_s"]) + float(record["eval_s"])


def _joined(values: Iterable[Any]) -> str | None:
    unique = sorted({str(v) for v in values if v is not None and v != ""})
    return ";".join(unique) or None


def _first_reaching(curve: list[dict[str, Any]], threshold: float) -> int | None:
    for point in sorted(curve or [], key=lambda p: p.get("step", 0)):
        fid = point.get("fid")
        if fid is not None and math.isfinite(float(fid)) and float(fid) <= threshold:
            return int(point["step"])
    return None


def _scratch_index(records: list[dict[str, Any]], rank_keys: list[str]) -> dict[tuple, dict[str, Any]]:
    """Ok scratch cells by (comparison group, augment, seed); the plain ``scratch`` spec wins over variants."""
    index: dict[tuple, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r.get("strategy") != SCRATCH, str(r.get("strategy")), r["cell_id"])):
        if r.get("status") == "ok" and str(r.get("strategy", "")).partition(":")[0] == SCRATCH:
            index.setdefault((*(r.get(k) for k in rank_keys), r.get("augment"), r.get("seed")), r)
    return index


def _row(
    rows: list[dict[str, Any]], key_fields: list[str], rank_keys: list[str], scratch: dict[tuple, dict[str, Any]]
) -> dict[str, Any]:
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: (r.get("seed"), r["cell_id"]))
    first = rows[0]
    out: dict[str, Any] = {"schema_version": LEADERBOARD_SCHEMA_VERSION}
    out.update({k: first.get(k) for k in key_fields})
    out["rank_within"] = ";".join(rank_keys)
    out["n"] = len(ok)
    out["seeds"] = ";".join(str(s) for s in sorted({r.get("seed") for r in ok})) or None
    out["n_diverged"] = sum(r.get("status") == "diverged" for r in rows)
    out["n_failed"] = sum(r.get("status") not in COMPLETE for r in rows)
    for metric in STAT_METRICS:
        values = [device_seconds(r) for r in ok] if metric == "device_s_per_cell" else [r.get(metric) for r in ok]
        out[f"{metric}_mean"], out[f"{metric}_std"] = _mean_std(values)
    gains, steps, paired = [], [], 0
    for r in ok:
        group = tuple(r.get(k) for k in rank_keys)
        base = scratch.get((*group, r.get("augment"), r.get("seed"))) or scratch.get((*group, "none", r.get("seed")))
        if base is None or not _finite([base.get("fid")]) or not _finite([r.get("fid")]):
            continue
        paired += 1
        gains.append(float(base["fid"]) - float(r["fid"]))
        reached = _first_reaching(r.get("curve", []), float(base["fid"]))
        if reached is not None:
            steps.append(reached)
    out["fid_gain_vs_scratch"], out["fid_gain_vs_scratch_std"] = _mean_std(gains)
    out["gain_n"] = paired
    out["steps_to_scratch_fid"] = statistics.fmean(steps) if steps else None
    out["reached_n"] = len(steps)
    out["trainable_fraction"] = _mean_std(r.get("trainable_fraction") for r in ok)[0]
    described = ok or [r for r in rows if r.get("status") == "diverged"] or rows
    for name in SETTING_FIELDS:
        out[name] = next((r.get(name) for r in described if r.get(name) is not None), None)
    out["peak_mem_kind"] = _joined(r.get("peak_mem_kind") for r in ok)
    for name in PROVENANCE_FIELDS:
        out[name] = _joined(r.get(name) for r in described)
    latest = max(described, key=_finished)
    out["date"] = latest.get("finished_at")
    out["runs"] = _joined(r[RUN_KEY].name for r in rows)
    out["cell_ids"] = ";".join(r["cell_id"] for r in ok) or None
    return out


def _rank(frame: pd.DataFrame, rank_keys: list[str]) -> pd.Series:
    """1 = lowest mean FID within each comparison group; ties share the better rank; no FID, no rank."""
    ranks = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    for _, group in frame.groupby([frame[k].astype(str) for k in rank_keys], sort=False):
        scored = group["fid_mean"].dropna()
        ranks.loc[scored.index] = scored.rank(method="min").astype(int)
    return ranks


def leaderboard_frame(cells: Cells, allow_mixed: bool = False) -> pd.DataFrame:
    """The leaderboard of loaded cells; raises GanbenchError when settings differ (see ``build_leaderboard``)."""
    if not cells.records:
        raise GanbenchError("no readable cell records in " + ", ".join(str(p) for p in cells.runs))
    mixed = _check_settings(cells.records, allow_mixed)
    key_fields = [*GROUP_COLUMNS, *mixed]
    rank_keys = [*RANK_WITHIN, *mixed]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in cells.records:
        groups[tuple(_same(r.get(k)) for k in key_fields)].append(r)
    scratch = _scratch_index(cells.records, rank_keys)
    frame = pd.DataFrame(
        [_row(rows, key_fields, rank_keys, scratch) for rows in groups.values()], columns=LEADERBOARD_COLUMNS
    )
    for name in FLOAT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in INT_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    if len(frame):
        frame["rank"] = _rank(frame, rank_keys)
        frame = frame.assign(_fid=frame["fid_mean"].fillna(math.inf))
        frame = frame.sort_values([*rank_keys, "_fid", "augment", "strategy"], kind="stable", na_position="last")
        frame = frame.drop(columns=["_fid"]).reset_index(drop=True)
    notes = list(cells.notes)
    if mixed:
        notes.append(
            f"note: --allow-mixed: {', '.join(mixed)} differ; rows are split by them and ranked only among rows "
            "with identical settings"
        )
    frame.attrs.update(notes=notes, mixed=mixed, runs=[str(p) for p in cells.runs])
    return frame


def build_leaderboard(
    run_dirs: str | os.PathLike | Iterable[str | os.PathLike], allow_mixed: bool = False
) -> pd.DataFrame:
    """The leaderboard of one or more run directories as a DataFrame with ``LEADERBOARD_COLUMNS``.

    Cell records of every run are pooled (a cell id present in several runs counts once: its latest
    record); ok cells are averaged over seeds, diverged and failed ones counted. Raises GanbenchError
    when rows that would sit side by side were evaluated or budgeted differently (``SETTING_FIELDS``),
    unless ``allow_mixed``: then those fields split the rows and their ranks. ``frame.attrs["notes"]``
    says what was deduplicated or split.
    """
    return leaderboard_frame(load_cells(run_dirs), allow_mixed=allow_mixed)


# --------------------------------------------------------------------------------------------------
# Output: CSV and Markdown
# --------------------------------------------------------------------------------------------------


def escape_formula(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading ``'``; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """The frame as CSV; text cells escaped against formula injection, numbers written as numbers."""
    safe = frame.copy()
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]):  # object or string dtype: text (and missing values)
            safe[name] = safe[name].map(escape_formula).astype(object)
    return safe.to_csv(index=False, lineterminator="\n")


def _num(value: Any, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _pm(row: pd.Series, metric: str, digits: int) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if pd.isna(mean):
        return "-"
    return _num(mean, digits) + (f" ± {_num(std, digits)}" if not pd.isna(std) else "")


def _percent(value: Any) -> str:
    if pd.isna(value):
        return "-"
    return f"{value * 100:.3g}%"


def _int(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _gain(row: pd.Series) -> str:
    if pd.isna(row["fid_gain_vs_scratch"]):
        return "-"
    std = row["fid_gain_vs_scratch_std"]
    text = _num(row["fid_gain_vs_scratch"], 1) + (f" ± {_num(std, 1)}" if not pd.isna(std) else "")
    return text + (f" (n={row['gain_n']})" if row["gain_n"] != row["n"] else "")


def _steps(row: pd.Series) -> str:
    if pd.isna(row["steps_to_scratch_fid"]):
        return "never" if row["gain_n"] else "-"
    return f"{row['steps_to_scratch_fid']:.0f} ({row['reached_n']}/{row['gain_n']})"


def _status(row: pd.Series) -> str:
    parts = [f"{row['n']} ok"]
    if row["n_diverged"]:
        parts.append(f"{row['n_diverged']} diverged")
    if row["n_failed"]:
        parts.append(f"{row['n_failed']} failed")
    return ", ".join(parts)


# (header, value of a row, is text from the records): text is escaped; formatted numbers never are
DISPLAY_COLUMNS = [
    ("rank", lambda r: _int(r["rank"]), False),
    ("augment", lambda r: r["augment"], True),
    ("strategy", lambda r: r["strategy"], True),
    ("FID ↓", lambda r: _pm(r, "fid", 1), False),
    ("KID", lambda r: _pm(r, "kid", 4), False),
    ("FID gain vs scratch", _gain, False),
    ("steps to scratch FID", _steps, False),
    ("trainable", lambda r: _percent(r["trainable_fraction"]), False),
    ("device s/cell", lambda r: _pm(r, "device_s_per_cell", 1), False),
    ("fine-tune s", lambda r: _pm(r, "finetune_s", 1), False),
    ("step ms", lambda r: _pm(r, "step_ms", 1), False),
    ("img/s", lambda r: _pm(r, "images_per_s", 0), False),
    ("eval s", lambda r: _pm(r, "eval_s", 1), False),
    ("peak MB", lambda r: _pm(r, "peak_mem_mb", 0), False),
    ("pretrain s", lambda r: _pm(r, "pretrain_s", 1), False),
    ("seeds", _status, False),
]


def _settings_text(values: dict[str, Any]) -> str:
    """The settings every row shares, as a sentence fragment."""
    v = {k: _show(x) for k, x in values.items()}
    parts = []
    if "resolution" in v:
        channels = f", {v['channels']} channel{'' if v['channels'] == '1' else 's'}" if "channels" in v else ""
        parts.append(f"{v['resolution']} px{channels}")
    budget = [f"{label} {v[k]}" for k, label in (("pretrain_steps", "pretrain steps"),
              ("finetune_steps", "fine-tune steps"), ("batch_size", "batch"), ("lr", "lr"),
              ("eval_every", "eval every")) if k in v]  # fmt: skip
    if budget:
        parts.append(", ".join(budget))
    if "n_gen" in v or "n_ref" in v:
        parts.append(
            f"FID/KID of {v.get('n_gen', 'varying')} generated vs {v.get('n_ref', 'per-target')} reference images"
        )
    if "fid_mode" in v:
        parts.append(f"{v['fid_mode']} mode")
    if "inception_sha1" in v:
        parts.append(f"Inception sha1 {v['inception_sha1']}")
    return "; ".join(parts)


def shared_settings(frame: pd.DataFrame) -> dict[str, Any]:
    """Setting fields with one value over the whole table (the others are shown per comparison group)."""
    return {k: frame[k].iloc[0] for k in SETTING_FIELDS if len(frame) and frame[k].nunique(dropna=False) == 1}


def comparison_groups(frame: pd.DataFrame) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(key values, rows) per comparison group, in table order."""
    keys = RANK_WITHIN + list(frame.attrs.get("mixed", []))
    out: list[tuple[dict[str, Any], pd.DataFrame]] = []
    seen: dict[tuple, int] = {}
    for index, row in frame.iterrows():
        key = tuple(_show(row[k]) for k in keys)
        if key not in seen:
            seen[key] = len(out)
            out.append(({k: row[k] for k in keys}, []))
        out[seen[key]][1].append(index)
    return [(values, frame.loc[rows]) for values, rows in out]


def display_rows(rows: pd.DataFrame, escape) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of a comparison group's rows; ``escape`` is applied to text cells."""
    columns = [c for c in DISPLAY_COLUMNS if c[0] != "augment" or (rows["augment"] != "none").any()]
    cells = [[escape(str(get(row))) if text else get(row) for _, get, text in columns] for _, row in rows.iterrows()]
    return [c[0] for c in columns], cells


def group_title(values: dict[str, Any], rows: pd.DataFrame, settings: dict[str, Any]) -> str:
    """``arch: source → target, shots``, plus the settings this group does not share with the table."""
    title = f"{values['arch']}: {values['source']} → {values['target']}, {values['shots']} shots"
    extra = [f"{k} {_show(v)}" for k, v in values.items() if k not in RANK_WITHIN]
    extra += [_setting_text(k, rows[k].iloc[0]) for k in SETTING_FIELDS
              if k not in settings and k not in values and rows[k].nunique(dropna=False) == 1
              and not pd.isna(rows[k].iloc[0])]  # fmt: skip
    return title + (f" ({', '.join(extra)})" if extra else "")


def _setting_text(name: str, value: Any) -> str:
    if name != "arch_weights":
        return f"{name} {_show(value)}"
    # "backbone=x;backbone_sha256=<64 hex>;..." -> "backbone=x, backbone_sha256=579344248a93…, ..."
    parts = [p.partition("=") for p in str(value).split(";")]
    return ", ".join(f"{k}={v[:12] + '…' if k.endswith('sha256') else v}" for k, _, v in parts)


def provenance_lines(frame: pd.DataFrame) -> list[str]:
    def union(name: str) -> str:
        values = {v for cell in frame[name].dropna() for v in str(cell).split(";")}
        return ", ".join(sorted(values)) or "unknown"

    return [
        f"ganbench {union('ganbench_version')}, torch {union('torch_version')}, clean-fid {union('cleanfid_version')}",
        f"device: {union('device')}",
        f"git revision: {union('git_revision')}",
        f"latest cell finished: {frame['date'].dropna().max() if frame['date'].notna().any() else 'unknown'}",
        f"runs: {union('runs')}",
    ]


DEFINITIONS = (
    "Mean ± sample standard deviation (ddof=1) over the seeds whose cell finished ok; diverged and failed cells "
    "are counted, never averaged. FID and KID at the final fine-tuning step. Rank 1 = lowest mean FID within "
    "the comparison group. FID gain vs scratch: mean over seeds of (scratch FID − this FID), paired by seed. "
    "Steps to scratch FID: first evaluated step at which this strategy's FID is at or below the paired scratch "
    "cell's final FID, mean over the seeds that reached it (reached/paired). Device s/cell: fine-tuning plus "
    "evaluation seconds of one cell; pretraining is shown apart, shared by every strategy of a source."
)


def _md_text(value: str) -> str:
    return escape_formula(value).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def to_markdown(frame: pd.DataFrame, command: str | None = None) -> str:
    """Readable tables, one per comparison group, under a title line of the settings every row shares."""
    settings = shared_settings(frame)
    lines = ["# ganbench leaderboard", ""]
    if settings:
        lines += [_md_text(_settings_text(settings)), ""]
    for values, rows in comparison_groups(frame):
        headers, cells = display_rows(rows, _md_text)
        lines += [f"## {_md_text(group_title(values, rows, settings))}", ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" if h in ("augment", "strategy", "seeds") else "---:" for h in headers) + "|")
        lines += ["| " + " | ".join(c or "-" for c in row) + " |" for row in cells]
        lines.append("")
    lines.append(_md_text(DEFINITIONS))
    lines.append("")
    lines += [f"- {_md_text(line)}" for line in provenance_lines(frame)]
    if command:
        lines.append(f"- made with: `{command.replace('`', '')}`")
    return "\n".join(lines) + "\n"


def summary_table(frame: pd.DataFrame) -> str:
    """A short plain-text view for the terminal: one small table per comparison group."""
    from ganbench.report import _table

    settings = shared_settings(frame)
    blocks = [_settings_text(settings)] if settings else []
    for values, group in comparison_groups(frame):
        rows = [
            [_int(row["rank"]), row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}"),
             _pm(row, "fid", 1), _gain(row), _steps(row), _pm(row, "device_s_per_cell", 1), _status(row)]
            for _, row in group.iterrows()
        ]  # fmt: skip
        headers = ["rank", "strategy", "FID", "gain vs scratch", "steps to scratch FID", "device s/cell", "seeds"]
        blocks.append(group_title(values, group, settings) + "\n" + _table(headers, rows, right={0, 2, 3, 4, 5}))
    return "\n\n".join(blocks)
