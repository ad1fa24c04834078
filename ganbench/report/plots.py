"""Pictures: a run's curves (``curves.png``) and a leaderboard's curves and cost plots (the HTML report); the
matplotlib setup every picture shares (one cell's picture is :mod:`ganbench.report.cell_plots`).

Every picture is of one metric column, the ranking one: FID unless the records or the user say otherwise.
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.store.cache import atomic_write_bytes
from ganbench.store.records import headline_column, metric_columns
from ganbench.store.schema import Column
from ganbench.store.series import curve_value

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def pyplot():
    """matplotlib's pyplot, on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return buffer.getvalue()


def direction(column: Column) -> str:
    """Which way the column is better, for an axis label."""
    return "lower is better" if column.lower_is_better else "higher is better"


def draw_run(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """The pictures of a run folder (``curves.png``): what ``run_matrix(on_finish=...)`` is given by the CLI."""
    plot_curves(records, Path(run_dir) / "curves.png")


def plot_curves(records: list[dict[str, Any]], path: Path, column: Column | None = None) -> bool:
    """A run's ``curves.png``: the metric column against fine-tuning step, one panel per (architecture, pair,
    shots), one line per cell (strategy, seed). Returns False when no record has a curve to draw."""
    column = column or headline_column(metric_columns(records))
    if column is None:
        return False
    panels: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("status") == "ok" and any(column.name in p for p in r.get("curve", [])):
            panels[(r["arch"], r["source"], r["target"], r["shots"])].append(r)
    if not panels:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, ((arch, source, target, shots), rows) in zip(axes[0], sorted(panels.items())):
        for r in sorted(rows, key=lambda r: (r["strategy"], r["seed"])):
            steps = [p["step"] for p in r["curve"] if column.name in p]
            values = [p[column.name] for p in r["curve"] if column.name in p]
            ax.plot(steps, values, marker="o", label=f"{r['strategy']} (seed {r['seed']})")
        ax.set_title(f"{arch}: {source} → {target}, {shots} shots", fontsize=9)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel(f"{column.label} ({direction(column)})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig, dpi=110), "curves plot")
    return True


def curves_png(title: str, records: list[dict[str, Any]], column: Column) -> bytes | None:
    """The column against step, one line per (strategy, augment): the mean over seeds, shaded ± one std."""
    lines: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        label = r["strategy"] + ("" if r.get("augment") in (None, "none") else f" +{r['augment']}")
        for point in r.get("curve") or []:
            if (value := curve_value(point, column.name)) is not None:
                lines[label][int(point["step"])].append(value)
    if not lines:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, by_step in sorted(lines.items()):
        steps = sorted(by_step)
        means = [statistics.fmean(by_step[s]) for s in steps]
        stds = [statistics.stdev(by_step[s]) if len(by_step[s]) > 1 else 0.0 for s in steps]
        seeds = max(len(v) for v in by_step.values())
        (line,) = ax.plot(steps, means, marker="o", label=f"{label} (n={seeds})")
        ax.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                        color=line.get_color(), alpha=0.2)  # fmt: skip
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel(f"{column.label} (mean ± std over seeds; {direction(column)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def cost_png(title: str, rows: pd.DataFrame, column: Column) -> bytes | None:
    """Mean of the column against mean device-seconds per cell, error bars of one std, a marker per
    architecture."""
    mean, std = f"{column.name}_mean", f"{column.name}_std"
    rows = rows.dropna(subset=[mean, "device_s_per_cell_mean"])
    if rows.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, arch in enumerate(sorted(rows["arch"].astype(str).unique())):
        part = rows[rows["arch"].astype(str) == arch]
        ax.errorbar(part["device_s_per_cell_mean"], part[mean], xerr=part["device_s_per_cell_std"].fillna(0),
                    yerr=part[std].fillna(0), fmt=MARKERS[i % len(MARKERS)], capsize=3, label=arch)  # fmt: skip
        for _, row in part.iterrows():
            label = row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}")
            ax.annotate(label, (row["device_s_per_cell_mean"], row[mean]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)  # fmt: skip
    spread = rows["device_s_per_cell_mean"]
    if spread.min() > 0 and spread.max() / spread.min() > 10:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("device seconds per cell (fine-tuning + evaluation)")
    ax.set_ylabel(f"{column.label} (mean over seeds; {direction(column)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="architecture", title_fontsize=8)
    fig.tight_layout()
    return figure_png(fig)
