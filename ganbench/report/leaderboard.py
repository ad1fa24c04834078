"""Leaderboards: the cell records of one or more runs, aggregated over seeds, ranked, with provenance.

One row per (arch, source, target, shots, augment, strategy): mean, sample std and n over seeds of every
metric column the records declare (FID, KID, and any metric plugin's) and of the cost columns; a rank within
(arch, source, target, shots) by the mean of one metric column (``rank_by``, FID by default) in that column's
declared direction; and what the strategy gained on that column over the scratch baseline trained on the same
seeds. Rows are only put side by side when their cells were evaluated and budgeted identically
(:mod:`ganbench.report.comparability`), unless ``allow_mixed`` splits the rows and ranks by what differs.

Whether the seeds settle an ordering is said per row: the gain over scratch and the difference to the next
row of the ranking are paired by seed, with a Student-t confidence interval of their mean and a verdict
(resolved when the interval excludes 0). A seed is one training run on one device: the same code and seed
train a different trajectory on another CPU type or GPU, so rows whose cells, or whose comparison group's
cells, ran on more than one device are flagged (``mixed_devices``).

Columns are documented in docs/results-schema.md ("Leaderboard CSV"), in the order of
:func:`leaderboard_columns`. Bump ``LEADERBOARD_SCHEMA_VERSION`` when a column's meaning changes.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ganbench.errors import GanbenchError
from ganbench.report.comparability import RANK_WITHIN, RUN, SETTING_FIELDS, check_settings, fill_settings, same_key
from ganbench.store.records import COMPLETE, headline_column, metric_columns, scored_columns
from ganbench.store.runs import RunRecords, finished_at, load_runs
from ganbench.store.schema import Column

LEADERBOARD_SCHEMA_VERSION = 3

GROUP_COLUMNS = [*RANK_WITHIN, "augment", "strategy"]  # one leaderboard row
# per-cell costs averaged over seeds: `<name>_mean` and `<name>_std` columns
COST_STATS = ["device_s_per_cell", "finetune_s", "step_ms", "images_per_s", "eval_s", "peak_mem_mb", "pretrain_s"]
PROVENANCE_FIELDS = ["ganbench_version", "torch_version", "cleanfid_version", "device", "git_revision"]
TRANSFER_COLUMNS = ["gain_vs_scratch", "gain_vs_scratch_std", "gain_n", "gain_ci_low", "gain_ci_high",
                    "gain_resolved", "steps_to_scratch", "reached_n"]  # fmt: skip
# this row against the next ranked row of its comparison group, paired by seed
NEXT_COLUMNS = ["vs_next", "vs_next_diff", "vs_next_ci_low", "vs_next_ci_high", "vs_next_n", "vs_next_resolved"]
DEVICE_COLUMNS = ["n_devices", "mixed_devices", "device_shared_max"]
SCRATCH = "scratch"
CONFIDENCE = 0.95  # of the paired intervals


def metric_stat_columns(column: str) -> list[str]:
    return [f"{column}_mean", f"{column}_std", f"{column}_n"]


def leaderboard_columns(scored: Iterable[str]) -> list[str]:
    """Every column of a leaderboard whose records score ``scored`` metric columns, in order."""
    return [
        "schema_version", *GROUP_COLUMNS, "rank", "rank_by", "rank_within", "n", "seeds", "n_diverged", "n_failed",
        *(name for column in scored for name in metric_stat_columns(column)),
        *TRANSFER_COLUMNS, *NEXT_COLUMNS, "trainable_fraction",
        *(f"{cost}_{s}" for cost in COST_STATS[:-1] for s in ("mean", "std")), "peak_mem_kind",
        "pretrain_s_mean", "pretrain_s_std",
        *SETTING_FIELDS, *PROVENANCE_FIELDS, *DEVICE_COLUMNS, "date", "runs", "cell_ids",
    ]  # fmt: skip


INT_COLUMNS = ["schema_version", "shots", "rank", "n", "n_diverged", "n_failed", "gain_n", "reached_n",
               "vs_next_n", "n_devices", "device_shared_max", "eval_samples", "n_gen", "n_ref", "resolution", "channels",
               "pretrain_steps", "finetune_steps", "batch_size", "eval_every"]  # fmt: skip


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


def paired_interval(differences: list[float], confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Student-t confidence interval of the mean of paired differences: mean ± t(n-1) * std / sqrt(n), with
    the sample std (ddof=1); (None, None) for fewer than two differences."""
    if len(differences) < 2:
        return None, None
    from scipy import stats  # imported here: it takes longer to import than everything else a leaderboard needs

    mean, std = statistics.fmean(differences), statistics.stdev(differences)
    half = float(stats.t.ppf((1 + confidence) / 2, len(differences) - 1)) * std / math.sqrt(len(differences))
    return mean - half, mean + half


def resolved(low: float | None, high: float | None) -> bool | None:
    """Whether an interval settles the ordering (it excludes 0); None when there is no interval."""
    if low is None or high is None:
        return None
    return low > 0 or high < 0


def device_seconds(record: dict[str, Any]) -> float | None:
    """Device-seconds one cell used: its probing phase (if any), fine-tuning and its evaluations. Pretraining is
    reported apart (``pretrain_s``): it is paid once per (architecture, source, seed) and shared by every strategy."""
    if record.get("finetune_s") is None or record.get("eval_s") is None:
        return None
    return float(record.get("probe_s") or 0.0) + float(record["finetune_s"]) + float(record["eval_s"])


def _joined(values: Iterable[Any]) -> str | None:
    unique = sorted({str(v) for v in values if v is not None and v != ""})
    return ";".join(unique) or None


def gain(value: float, baseline: float, rank_by: Column) -> float:
    """How much better ``value`` is than ``baseline`` in the column's direction (positive: better)."""
    return baseline - value if rank_by.lower_is_better else value - baseline


def _first_reaching(curve: list[dict[str, Any]], threshold: float, rank_by: Column) -> int | None:
    """The first evaluated step whose value is at least as good as ``threshold``."""
    for point in sorted(curve or [], key=lambda p: p.get("step", 0)):
        value = _finite([point.get(rank_by.name)])
        if value and gain(value[0], threshold, rank_by) >= 0:
            return int(point["step"])
    return None


def _scratch_index(records: list[dict[str, Any]], rank_keys: list[str]) -> dict[tuple, dict[str, Any]]:
    """Ok scratch cells by (comparison group, augment, seed); the plain ``scratch`` spec wins over variants."""
    index: dict[tuple, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r.get("strategy") != SCRATCH, str(r.get("strategy")), r["cell_id"])):
        if r.get("status") == "ok" and str(r.get("strategy", "")).partition(":")[0] == SCRATCH:
            index.setdefault((*(r.get(k) for k in rank_keys), r.get("augment"), r.get("seed")), r)
    return index


def _transfer(ok: list[dict[str, Any]], rank_keys: list[str], scratch: dict[tuple, dict[str, Any]],
              rank_by: Column) -> dict[str, Any]:  # fmt: skip
    """Gain over the paired scratch cells on the ranking column, and the steps taken to reach their value."""
    gains, compared, steps, paired = [], [], [], 0
    for r in ok:
        group = tuple(r.get(k) for k in rank_keys)
        base = scratch.get((*group, r.get("augment"), r.get("seed"))) or scratch.get((*group, "none", r.get("seed")))
        mine, theirs = _finite([r.get(rank_by.name)]), _finite([base.get(rank_by.name)] if base else [])
        if not mine or not theirs:
            continue
        paired += 1
        gains.append(gain(mine[0], theirs[0], rank_by))
        if base["cell_id"] != r["cell_id"]:  # the scratch row pairs with itself: nothing to resolve
            compared.append(gains[-1])
        reached = _first_reaching(r.get("curve", []), theirs[0], rank_by)
        if reached is not None:
            steps.append(reached)
    mean, std = _mean_std(gains)
    low, high = paired_interval(compared)
    return {"gain_vs_scratch": mean, "gain_vs_scratch_std": std, "gain_n": paired, "gain_ci_low": low,
            "gain_ci_high": high, "gain_resolved": resolved(low, high),
            "steps_to_scratch": statistics.fmean(steps) if steps else None, "reached_n": len(steps)}  # fmt: skip


def _described(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells a row's settings and provenance are read from: its ok cells, else its diverged ones, else all."""
    ok = [r for r in rows if r.get("status") == "ok"]
    return ok or [r for r in rows if r.get("status") == "diverged"] or rows


def _devices(rows: list[dict[str, Any]]) -> set[str]:
    """The device strings (CPU model or GPU name included) a row's described cells ran on."""
    return {str(r["device"]) for r in _described(rows) if r.get("device")}


def _scores_by_seed(rows: list[dict[str, Any]], rank_by: Column | None) -> dict[Any, float]:
    """A row's ok cells' finite values of the ranking column, by seed (the first cell id of a seed wins)."""
    out: dict[Any, float] = {}
    for r in sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: r["cell_id"]):
        value = _finite([r.get(rank_by.name)]) if rank_by else []
        if value:
            out.setdefault(r.get("seed"), value[0])
    return out


def _row(rows: list[dict[str, Any]], key_fields: list[str], rank_keys: list[str], scratch: dict[tuple, dict[str, Any]],
         scored: list[Column], rank_by: Column | None) -> dict[str, Any]:  # fmt: skip
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: (r.get("seed"), r["cell_id"]))
    out: dict[str, Any] = {"schema_version": LEADERBOARD_SCHEMA_VERSION, **{k: rows[0].get(k) for k in key_fields}}
    out["rank_by"] = rank_by.name if rank_by else None
    out["rank_within"] = ";".join(rank_keys)
    out["n"] = len(ok)
    out["seeds"] = ";".join(str(s) for s in sorted({r.get("seed") for r in ok})) or None
    out["n_diverged"] = sum(r.get("status") == "diverged" for r in rows)
    out["n_failed"] = sum(r.get("status") not in COMPLETE for r in rows)
    for column in scored:
        values = [r.get(column.name) for r in ok]
        mean_col, std_col, n_col = metric_stat_columns(column.name)
        out[mean_col], out[std_col] = _mean_std(values)
        out[n_col] = len(_finite(values))
    for cost in COST_STATS:
        values = [device_seconds(r) for r in ok] if cost == "device_s_per_cell" else [r.get(cost) for r in ok]
        out[f"{cost}_mean"], out[f"{cost}_std"] = _mean_std(values)
    out.update(_transfer(ok, rank_keys, scratch, rank_by) if rank_by else dict.fromkeys(TRANSFER_COLUMNS))
    out["trainable_fraction"] = _mean_std(r.get("trainable_fraction") for r in ok)[0]
    described = _described(rows)
    for name in SETTING_FIELDS:
        out[name] = next((r.get(name) for r in described if r.get(name) is not None), None)
    out["peak_mem_kind"] = _joined(r.get("peak_mem_kind") for r in ok)
    for name in PROVENANCE_FIELDS:
        out[name] = _joined(r.get(name) for r in described)
    out["n_devices"] = len(_devices(rows))
    shared = [int(r["device_shared_by"]) for r in ok if isinstance(r.get("device_shared_by"), int)]
    out["device_shared_max"] = max(shared) if shared else None  # >1: timings of a device shared by cells
    out["date"] = max(described, key=finished_at).get("finished_at")
    out["runs"] = _joined(r[RUN].name for r in rows)
    out["cell_ids"] = ";".join(r["cell_id"] for r in ok) or None
    return out


def _order_key(frame: pd.DataFrame, rank_by: Column | None) -> pd.Series:
    """The ranking column's mean, oriented so that smaller is better; missing values last."""
    if rank_by is None:
        return pd.Series(math.inf, index=frame.index)
    mean = frame[f"{rank_by.name}_mean"]
    return (mean if rank_by.lower_is_better else -mean).fillna(math.inf)


def _rank(frame: pd.DataFrame, rank_keys: list[str], rank_by: Column | None) -> pd.Series:
    """1 = best mean of the ranking column within each comparison group; ties share the better rank."""
    ranks = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    order = _order_key(frame, rank_by).replace(math.inf, math.nan)
    for _, group in frame.groupby([frame[k].astype(str) for k in rank_keys], sort=False):
        scored = order.loc[group.index].dropna()
        ranks.loc[scored.index] = scored.rank(method="min").astype(int)
    return ranks


def _groups(frame: pd.DataFrame, rank_keys: list[str]):
    """The frame's comparison groups, each in the frame's row order."""
    return frame.groupby([frame[k].astype(str) for k in rank_keys], sort=False)


def _mixed_devices(frame: pd.DataFrame, devices: list[set[str]], rank_keys: list[str]) -> pd.Series:
    """True on every row of a comparison group whose cells ran on more than one device (``devices``: per row,
    aligned with the frame's index)."""
    mixed = pd.Series(False, index=frame.index, dtype="boolean")
    for _, group in _groups(frame, rank_keys):
        mixed.loc[group.index] = len(set().union(*(devices[i] for i in group.index))) > 1
    return mixed


def row_label(row: pd.Series) -> str:
    """A row's name within its comparison group: the strategy, and its augmentation when there is one."""
    return row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}")


def _versus_next(frame: pd.DataFrame, scores: list[dict[Any, float]], rank_keys: list[str],
                 rank_by: Column | None) -> None:  # fmt: skip
    """Fill ``NEXT_COLUMNS``: each ranked row against the next ranked row of its group (in table order), on the
    seeds both have; the difference is how much better this row is (positive: better)."""
    if rank_by is None:
        return
    for _, group in _groups(frame, rank_keys):
        ranked = [i for i in group.index if not pd.isna(frame.at[i, "rank"])]
        for i, j in zip(ranked, ranked[1:]):
            common = sorted(scores[i].keys() & scores[j].keys(), key=str)
            diffs = [gain(scores[i][s], scores[j][s], rank_by) for s in common]
            low, high = paired_interval(diffs)
            frame.at[i, "vs_next"] = row_label(frame.loc[j])
            frame.at[i, "vs_next_n"] = len(diffs)
            if diffs:
                frame.at[i, "vs_next_diff"] = statistics.fmean(diffs)
            if low is not None:
                frame.at[i, "vs_next_ci_low"], frame.at[i, "vs_next_ci_high"] = low, high
                frame.at[i, "vs_next_resolved"] = resolved(low, high)


def ranking_column(columns: list[Column], rank_by: str | None) -> Column | None:
    """The column to rank by: ``rank_by``, else ``fid`` when the records have it, else their first score
    (None when they have none: no rank, no gain)."""
    if rank_by is None:
        return headline_column(columns)
    scored = {c.name: c for c in scored_columns(columns)}
    name = rank_by
    if name not in scored:
        details = [c.name for c in columns if c.lower_is_better is None]
        why = f"'{name}' is not a score (it has no better direction)" if name in details else f"no column '{name}'"
        raise GanbenchError(f"cannot rank by {name}: {why}; the records' scores are {', '.join(scored) or 'none'}")
    return scored[name]


def leaderboard_frame(loaded: RunRecords, allow_mixed: bool = False, rank_by: str | None = None) -> pd.DataFrame:
    """The leaderboard of loaded records; raises GanbenchError when settings differ (see ``build_leaderboard``)."""
    if not loaded.records:
        where = f" in {', '.join(str(p) for p in loaded.runs)}" if loaded.runs else ""
        raise GanbenchError(f"no readable cell records{where}: give run directories holding cells/*.json")
    records = [{**r, RUN: loaded.run_of[r["cell_id"]]} for r in loaded.records]
    fill_settings(records)
    columns = metric_columns(records)
    ranked = ranking_column(columns, rank_by)
    scored = scored_columns(columns)
    mixed = check_settings(records, allow_mixed)
    key_fields = [*GROUP_COLUMNS, *mixed]
    rank_keys = [*RANK_WITHIN, *mixed]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[tuple(same_key(r.get(k)) for k in key_fields)].append(r)
    scratch = _scratch_index(records, rank_keys)
    rows = [_row(rs, key_fields, rank_keys, scratch, scored, ranked) for rs in groups.values()]
    frame = pd.DataFrame(rows, columns=leaderboard_columns(c.name for c in scored))
    _set_types(frame, scored)
    frame["mixed_devices"] = _mixed_devices(frame, [_devices(rs) for rs in groups.values()], rank_keys)
    frame["rank"] = _rank(frame, rank_keys, ranked)
    frame = frame.assign(_order=_order_key(frame, ranked))
    frame = frame.sort_values([*rank_keys, "_order", "augment", "strategy"], kind="stable", na_position="last")
    _versus_next(frame, [_scores_by_seed(rs, ranked) for rs in groups.values()], rank_keys, ranked)
    frame = frame.drop(columns=["_order"]).reset_index(drop=True)
    notes = list(loaded.notes)
    methods = sorted({(str(r["strategy"]).partition(":")[0], r["method"]) for r in records if r.get("method")})
    notes += [f"method {name}: {card}" for name, card in methods]
    if mixed:
        notes.append(
            f"note: --allow-mixed: {', '.join(mixed)} differ; rows are split by them and ranked only among rows "
            "with identical settings"
        )
    frame.attrs.update(notes=notes, mixed=mixed, runs=[str(p) for p in loaded.runs], metric_columns=scored,
                       rank_by=ranked)  # fmt: skip
    return frame


def _set_types(frame: pd.DataFrame, scored: list[Column]) -> None:
    floats = [*(f"{c.name}_{s}" for c in scored for s in ("mean", "std")),
              *(f"{cost}_{s}" for cost in COST_STATS for s in ("mean", "std")),
              "gain_vs_scratch", "gain_vs_scratch_std", "gain_ci_low", "gain_ci_high", "vs_next_diff",
              "vs_next_ci_low", "vs_next_ci_high", "steps_to_scratch", "trainable_fraction", "lr"]  # fmt: skip
    for name in floats:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in [*INT_COLUMNS, *(f"{c.name}_n" for c in scored)]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
    for name in ("gain_resolved", "vs_next_resolved", "mixed_devices"):
        frame[name] = frame[name].astype("boolean")
    frame["vs_next"] = frame["vs_next"].astype(object)


def build_leaderboard(
    run_dirs: str | os.PathLike | Iterable[str | os.PathLike], allow_mixed: bool = False, rank_by: str | None = None
) -> pd.DataFrame:
    """The leaderboard of one or more run directories as a DataFrame (columns: :func:`leaderboard_columns`).

    Cell records of every run are pooled (a cell id present in several runs counts once: its latest
    record); ok cells are averaged over seeds, diverged and failed ones counted. Rows are ranked by the
    metric column ``rank_by`` (default ``fid`` when present) in its declared direction. Raises GanbenchError
    when rows that would sit side by side were evaluated or budgeted differently (``SETTING_FIELDS``), unless
    ``allow_mixed``: then those fields split the rows and their ranks. ``frame.attrs["notes"]`` says what was
    deduplicated or split.
    """
    return leaderboard_frame(load_runs(run_dirs), allow_mixed=allow_mixed, rank_by=rank_by)
