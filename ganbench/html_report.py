"""A leaderboard as a static folder to open in a browser: index.html, the sample grids, the plots.

Everything the page shows is inside the folder, linked relatively (no server, nothing fetched):
``samples/<cell_id>.png`` copied from the runs, ``plots/curves-<n>.png`` (FID against fine-tuning step per
comparison group, one line per strategy, mean over seeds with a band of one std), ``plots/cost-<n>.png``
(mean FID against device-seconds per cell) and the same table as ``leaderboard.csv`` / ``leaderboard.md``.
"""

from __future__ import annotations

import html
import io
import math
import re
import shutil
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.errors import GanbenchError
from ganbench.leaderboard import (
    DEFINITIONS,
    RANK_WITHIN,
    RUN_KEY,
    Cells,
    _settings_text,
    comparison_groups,
    display_rows,
    group_title,
    provenance_lines,
    shared_settings,
    to_csv,
    to_markdown,
)

MARKER = ".ganbench-report"  # a folder holding this file is a report this module may replace
SAFE_ID = re.compile(r"[A-Za-z0-9_.-]+")  # cell ids that are safe as file names (no path separators)
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.plots img { max-width: 48%; vertical-align: top; margin-right: 1%; }
.samples { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; text-align: center; font-size: 0.8em; }
figure img { width: 145px; image-rendering: pixelated; border: 1px solid #ddd; }
.note, footer { color: #555; font-size: 0.85em; }
"""

# Sets data-images on <body> once the page has loaded: "loaded" when every image decoded, else the broken ones.
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var broken = Array.prototype.filter.call(document.images, function (img) {
    return !(img.complete && img.naturalWidth > 0);
  });
  document.body.setAttribute("data-images", broken.length ? "broken:" + broken.map(function (img) {
    return img.getAttribute("src");
  }).join(",") : "loaded");
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return buffer.getvalue()


def _key(record_or_row, keys: list[str]) -> tuple:
    """Comparable across a record (dict) and a frame row: missing values are "None", the rest str()."""
    return tuple("None" if pd.isna(v := record_or_row.get(k)) else str(v) for k in keys)


def curves_png(title: str, records: list[dict[str, Any]]) -> bytes | None:
    """FID against step, one line per (strategy, augment): the mean over seeds, shaded ± one sample std."""
    lines: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        label = r["strategy"] + ("" if r.get("augment") in (None, "none") else f" +{r['augment']}")
        for point in r.get("curve") or []:
            if point.get("fid") is not None and math.isfinite(float(point["fid"])):
                lines[label][int(point["step"])].append(float(point["fid"]))
    if not lines:
        return None
    plt = _pyplot()
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
    ax.set_ylabel("FID (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def cost_png(title: str, rows: pd.DataFrame) -> bytes | None:
    """Mean FID against mean device-seconds per cell, error bars of one std, a marker per architecture."""
    rows = rows.dropna(subset=["fid_mean", "device_s_per_cell_mean"])
    if rows.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    archs = sorted(rows["arch"].astype(str).unique())
    for i, arch in enumerate(archs):
        part = rows[rows["arch"].astype(str) == arch]
        ax.errorbar(part["device_s_per_cell_mean"], part["fid_mean"], xerr=part["device_s_per_cell_std"].fillna(0),
                    yerr=part["fid_std"].fillna(0), fmt=MARKERS[i % len(MARKERS)], capsize=3, label=arch)  # fmt: skip
        for _, row in part.iterrows():
            label = row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}")
            ax.annotate(label, (row["device_s_per_cell_mean"], row["fid_mean"]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)  # fmt: skip
    spread = rows["device_s_per_cell_mean"]
    if spread.min() > 0 and spread.max() / spread.min() > 10:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("device seconds per cell (fine-tuning + evaluation)")
    ax.set_ylabel("FID (mean over seeds; lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="architecture", title_fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _table_html(rows: pd.DataFrame) -> str:
    headers, cells = display_rows(rows, lambda text: text)
    text_columns = {i for i, h in enumerate(headers) if h in ("augment", "strategy", "seeds")}
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{'' if i in text_columns else ' class=num'}>{_e(c or '-')}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in cells
    )
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _prepare_folder(out: Path) -> Path:
    """A fresh temporary folder next to ``out``; ``out`` itself must be new, empty or an earlier report."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise GanbenchError(f"{out} exists and is not an earlier ganbench report; choose a new folder for -o")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp's 0700 would keep a web server or a colleague out of the published folder
    return tmp


def _replace(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_html_report(frame: pd.DataFrame, cells: Cells, out: str | Path, command: str | None = None) -> Path:
    """Write the report folder ``out`` (replaced whole when it is an earlier report); returns index.html."""
    out = Path(out)
    tmp = _prepare_folder(out)
    try:
        _write(frame, cells, tmp, command)
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


def _write(frame: pd.DataFrame, cells: Cells, folder: Path, command: str | None) -> None:
    (folder / MARKER).write_text("written by ganbench leaderboard --format html; replaced by the next one\n")
    (folder / "leaderboard.csv").write_text(to_csv(frame))
    (folder / "leaderboard.md").write_text(to_markdown(frame, command))
    (folder / "plots").mkdir()
    (folder / "samples").mkdir()
    mixed = list(frame.attrs.get("mixed", []))
    rank_keys = RANK_WITHIN + mixed
    by_group: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    by_cell = {r["cell_id"]: r for r in cells.records}
    for r in cells.records:
        if r.get("status") == "ok":
            by_group[_key(r, rank_keys)].append(r)
    settings = shared_settings(frame)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>ganbench leaderboard</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>ganbench leaderboard</h1>",
    ]
    if settings:
        parts.append(f"<p>{_e(_settings_text(settings))}</p>")
    for note in frame.attrs.get("notes", []):
        parts.append(f'<p class="note">{_e(note)}</p>')
    panels: dict[tuple, list[int]] = defaultdict(list)  # cost plots: one per (source, target, shots), all archs
    for i, (values, rows) in enumerate(comparison_groups(frame)):
        title = group_title(values, rows, settings)
        parts.append(f'<section id="group-{i}"><h2>{_e(title)}</h2>')
        parts.append(_table_html(rows))
        parts.append('<div class="plots">')
        curves = curves_png(title, by_group.get(_key(values, rank_keys), []))
        if curves is not None:
            (folder / "plots" / f"curves-{i}.png").write_bytes(curves)
            parts.append(f'<img src="plots/curves-{i}.png" alt="{_e("FID against step: " + title)}">')
        parts.append("</div>")
        panels[_key(values, [k for k in rank_keys if k != "arch"])].extend(rows.index)
        parts.append("<h3>Samples (final generator, 64 fixed latents per seed)</h3>")
        for _, row in rows.iterrows():
            figures = []
            for cell_id in row["cell_ids"].split(";") if isinstance(row["cell_ids"], str) else []:
                record = by_cell.get(cell_id)
                source = record[RUN_KEY] / "samples" / f"{cell_id}.png" if record else None
                fid = f" · FID {record['fid']:.1f}" if record and record.get("fid") is not None else ""
                caption = f"seed {record.get('seed')}{fid} · {cell_id}" if record else cell_id
                if source is not None and SAFE_ID.fullmatch(cell_id) and source.is_file():
                    shutil.copyfile(source, folder / "samples" / f"{cell_id}.png")
                    figures.append(f'<figure><img src="samples/{_e(cell_id)}.png" alt="{_e("samples of " + cell_id)}">'
                                   f"<figcaption>{_e(caption)}</figcaption></figure>")  # fmt: skip
                else:
                    figures.append(f"<figure><figcaption>{_e(caption)}: no sample grid</figcaption></figure>")
            label = row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}")
            parts.append(f"<h4>{_e(label)}</h4>")
            parts.append(f'<div class="samples">{"".join(figures) or "<p>no finished cell</p>"}</div>')
        parts.append("</section>")
    parts.append("<h2>Cost against FID</h2>")
    for j, indexes in enumerate(panels.values()):
        rows = frame.loc[indexes]
        title = f"{rows['source'].iloc[0]} → {rows['target'].iloc[0]}, {rows['shots'].iloc[0]} shots"
        title += "".join(f", {k} {rows[k].iloc[0]}" for k in mixed)
        png = cost_png(title, rows)
        if png is not None:
            (folder / "plots" / f"cost-{j}.png").write_bytes(png)
            parts.append(
                f'<div class="plots"><img src="plots/cost-{j}.png" alt="{_e("cost against FID: " + title)}"></div>'
            )
        else:
            parts.append(f"<p>{_e(title)}: no row with both a FID and a cost</p>")
    parts.append(f"<footer><p>{_e(DEFINITIONS)}</p><ul>")
    parts += [f"<li>{_e(line)}</li>" for line in provenance_lines(frame)]
    if command:
        parts.append(f"<li>made with: <code>{_e(command)}</code></li>")
    parts.append(
        '</ul><p>The table as <a href="leaderboard.csv">CSV</a> and <a href="leaderboard.md">Markdown</a>.</p>'
    )
    parts.append(f"</footer><script>{CHECK_IMAGES}</script></body></html>")
    (folder / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
