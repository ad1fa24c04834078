"""How leaderboard rows read in every renderer (terminal, Markdown, HTML): numbers with their spread,
whether the seeds resolve each comparison, the mark of rows measured on several devices, comparison-group
titles, the settings a table shares, definitions and provenance lines."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from ganbench.report.comparability import RANK_WITHIN, SETTING_FIELDS, show
from ganbench.report.leaderboard import CONFIDENCE, SCRATCH
from ganbench.store.schema import Column

DEVICE_MARK = "†"  # on the rows whose comparison group ran on more than one device
# Said under every rendered leaderboard; the measurements behind it (one seed on several machines) are kept in
# results/README.md, not repeated in reports of other runs.
REPRODUCIBILITY = (
    "Bit-identical reruns hold on one machine only: the same code and seed train a different trajectory on "
    "another CPU type or GPU (results/README.md in the ganbench repository gives the default grid's seed 0 "
    "measured on several machines). Across machines only the distribution over seeds reproduces: compare "
    "means and their intervals, never single seeds. An unresolved verdict (or a single seed) means the seeds "
    "run cannot order the two rows: run more seeds before reading the ranks as an ordering."
)


def number(value: Any, digits: int) -> str:
    """``value`` with ``digits`` decimals; "" when missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def mean_std(row: pd.Series, name: str, digits: int) -> str:
    """``mean ± std`` of a statistic of the row ("-" when missing; no std for a single value)."""
    mean, std = row[f"{name}_mean"], row[f"{name}_std"]
    if pd.isna(mean):
        return "-"
    return number(mean, digits) + (f" ± {number(std, digits)}" if not pd.isna(std) else "")


def metric_cell(row: pd.Series, column: Column) -> str:
    """A metric column's mean ± std, with its count when fewer cells than the row's have it."""
    text = mean_std(row, column.name, column.digits)
    count = row.get(f"{column.name}_n")
    return text + (f" (n={count})" if text != "-" and not pd.isna(count) and count != row["n"] else "")


def percent(value: Any) -> str:
    return "-" if pd.isna(value) else f"{value * 100:.3g}%"


def integer(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))


def gain_cell(row: pd.Series, digits: int) -> str:
    if pd.isna(row["gain_vs_scratch"]):
        return "-"
    std = row["gain_vs_scratch_std"]
    text = number(row["gain_vs_scratch"], digits) + (f" ± {number(std, digits)}" if not pd.isna(std) else "")
    return text + (f" (n={row['gain_n']})" if row["gain_n"] != row["n"] else "")


def verdict(value: Any) -> str:
    return "resolved" if value else "unresolved"


def interval_cell(low: Any, high: Any, resolved: Any, digits: int) -> str:
    """``[low, high] resolved|unresolved``; "" without an interval."""
    return "" if pd.isna(resolved) else f"[{number(low, digits)}, {number(high, digits)}] {verdict(resolved)}"


def gain_ci_cell(row: pd.Series, digits: int) -> str:
    """The gain's paired interval and verdict; ``1 seed`` when one pair gives none; "-" on the scratch row (it
    is the baseline: each of its cells pairs with itself) and when nothing was paired."""
    if row["strategy"] == SCRATCH or pd.isna(row["gain_n"]) or row["gain_n"] == 0:
        return "-"
    return interval_cell(row["gain_ci_low"], row["gain_ci_high"], row["gain_resolved"], digits) or "1 seed"


def next_cell(row: pd.Series, digits: int) -> str:
    """How much better this row is than the next ranked row on their common seeds, its interval and verdict."""
    if pd.isna(row["vs_next"]):
        return "-"
    if pd.isna(row["vs_next_diff"]):
        return "no common seed"
    ci = interval_cell(row["vs_next_ci_low"], row["vs_next_ci_high"], row["vs_next_resolved"], digits)
    return f"{number(row['vs_next_diff'], digits)} {ci or '(1 seed)'}"


def marked(row: pd.Series) -> bool:
    """Whether the row's comparison group ran on more than one device."""
    return not pd.isna(row["mixed_devices"]) and bool(row["mixed_devices"])


def strategy_cell(row: pd.Series) -> str:
    return row["strategy"] + (f" {DEVICE_MARK}" if marked(row) else "")


def device_note(frame: pd.DataFrame) -> str | None:
    """The mark's explanation, once per table; None when no row is marked."""
    rows = frame[[marked(row) for _, row in frame.iterrows()]]
    if rows.empty:
        return None
    devices = sorted({d for cell in rows["device"].dropna() for d in str(cell).split(";")})
    return (
        f"{DEVICE_MARK} The cells of this row, or of the rows it is ranked against, ran on more than one device "
        f"({'; '.join(devices)}): one seed trains a different trajectory on each, so cells of one seed are "
        "independent runs, not reruns; only the distributions over seeds compare."
    )


def steps_cell(row: pd.Series) -> str:
    if pd.isna(row["steps_to_scratch"]):
        return "never" if not pd.isna(row["gain_n"]) and row["gain_n"] else "-"
    return f"{row['steps_to_scratch']:.0f} ({row['reached_n']}/{row['gain_n']})"


def status_cell(row: pd.Series) -> str:
    parts = [f"{row['n']} ok"]
    if row["n_diverged"]:
        parts.append(f"{row['n_diverged']} diverged")
    if row["n_failed"]:
        parts.append(f"{row['n_failed']} failed")
    return ", ".join(parts)


def header(column: Column) -> str:
    """A metric column's table header: its label and which way is better."""
    return f"{column.label} {'↓' if column.lower_is_better else '↑'}"


def rank_label(frame: pd.DataFrame) -> str:
    ranked: Column | None = frame.attrs.get("rank_by")
    return ranked.label if ranked else "score"


# (header, value of a row, is text from the records): text is escaped; formatted numbers never are
Display = tuple[str, Callable[[pd.Series], str], bool]


def display_columns(frame: pd.DataFrame) -> list[Display]:
    """The columns of the readable tables: every metric column the records score, then the transfer and cost
    columns (and, when any record says it, how many cells shared a device)."""
    ranked: Column | None = frame.attrs.get("rank_by")
    label, digits = rank_label(frame), ranked.digits if ranked else 2

    def metric(column: Column) -> Display:
        return header(column), lambda r: metric_cell(r, column), False

    return [
        ("rank", lambda r: integer(r["rank"]), False),
        ("augment", lambda r: r["augment"], True),
        ("strategy", strategy_cell, True),
        *(metric(c) for c in frame.attrs.get("metric_columns", [])),
        (f"{label} gain vs scratch", lambda r: gain_cell(r, digits), False),
        (f"gain {CONFIDENCE:.0%} CI", lambda r: gain_ci_cell(r, digits), False),
        (f"vs next rank ({CONFIDENCE:.0%} CI)", lambda r: next_cell(r, digits), False),
        (f"steps to scratch {label}", steps_cell, False),
        ("trainable", lambda r: percent(r["trainable_fraction"]), False),
        ("device s/cell", lambda r: mean_std(r, "device_s_per_cell", 1), False),
        ("fine-tune s", lambda r: mean_std(r, "finetune_s", 1), False),
        ("step ms", lambda r: mean_std(r, "step_ms", 1), False),
        ("img/s", lambda r: mean_std(r, "images_per_s", 0), False),
        ("eval s", lambda r: mean_std(r, "eval_s", 1), False),
        ("peak MB", lambda r: mean_std(r, "peak_mem_mb", 0), False),
        ("pretrain s", lambda r: mean_std(r, "pretrain_s", 1), False),
        *([("cells/device", lambda r: integer(r.get("device_shared_max")), False)] if _shared(frame) else []),
        ("seeds", status_cell, False),
    ]


def _shared(frame: pd.DataFrame) -> bool:
    return "device_shared_max" in frame and bool(frame["device_shared_max"].notna().any())


def display_rows(frame: pd.DataFrame, rows: pd.DataFrame, escape) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of a comparison group's ``rows``; ``escape`` is applied to text cells."""
    columns = [c for c in display_columns(frame) if c[0] != "augment" or (rows["augment"] != "none").any()]
    cells = [[escape(str(get(row))) if text else get(row) for _, get, text in columns] for _, row in rows.iterrows()]
    return [c[0] for c in columns], cells


def settings_text(values: dict[str, Any]) -> str:
    """The settings every row shares, as a sentence fragment."""
    v = {k: show(x) for k, x in values.items()}
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
            f"metrics of {v.get('n_gen', 'varying')} generated vs {v.get('n_ref', 'per-target')} reference images"
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
    out: list[tuple[dict[str, Any], list[Any]]] = []
    seen: dict[tuple, int] = {}
    for index, row in frame.iterrows():
        key = tuple(show(row[k]) for k in keys)
        if key not in seen:
            seen[key] = len(out)
            out.append(({k: row[k] for k in keys}, []))
        out[seen[key]][1].append(index)
    return [(values, frame.loc[rows]) for values, rows in out]


def group_title(values: dict[str, Any], rows: pd.DataFrame, settings: dict[str, Any]) -> str:
    """``arch: source → target, shots``, plus the settings this group does not share with the table."""
    title = f"{values['arch']}: {values['source']} → {values['target']}, {values['shots']} shots"
    extra = [f"{k} {show(v)}" for k, v in values.items() if k not in RANK_WITHIN]
    extra += [setting_text(k, rows[k].iloc[0]) for k in SETTING_FIELDS
              if k not in settings and k not in values and rows[k].nunique(dropna=False) == 1
              and not pd.isna(rows[k].iloc[0])]  # fmt: skip
    return title + (f" ({', '.join(extra)})" if extra else "")


def setting_text(name: str, value: Any) -> str:
    if name != "arch_weights":
        return f"{name} {show(value)}"
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


def definitions(frame: pd.DataFrame) -> str:
    """What the table's numbers mean, in the terms of its ranking column."""
    ranked: Column | None = frame.attrs.get("rank_by")
    label = rank_label(frame)
    best, sign = ("lowest", f"scratch {label} − this {label}") if not ranked or ranked.lower_is_better else (
        "highest", f"this {label} − scratch {label}")  # fmt: skip
    reach = "at or below" if not ranked or ranked.lower_is_better else "at or above"
    return (
        "Mean ± sample standard deviation (ddof=1) over the seeds whose cell finished ok; diverged and failed "
        "cells are counted, never averaged. Every metric at the final fine-tuning step (↓: lower is better, ↑: "
        f"higher is better). Rank 1 = {best} mean {label} within the comparison group. {label} gain vs scratch: "
        f"mean over seeds of ({sign}), paired by seed, positive when better. Gain {CONFIDENCE:.0%} CI: Student-t "
        f"confidence interval of that mean (n − 1 degrees of freedom); resolved when it excludes 0 (the seeds "
        f"order this row and scratch), unresolved when it does not. Vs next rank: mean over the seeds both rows "
        f"have of how much better this row's {label} is than the next row's, with the same interval and verdict. "
        f"Steps to scratch {label}: first "
        f"evaluated step at which this strategy's {label} is {reach} the paired scratch cell's final {label}, mean "
        "over the seeds that reached it (reached/paired). Device s/cell: fine-tuning plus evaluation seconds of "
        "one cell; pretraining is shown apart, shared by every strategy of a source."
    )
