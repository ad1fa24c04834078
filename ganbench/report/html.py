"""A leaderboard as a static folder to open in a browser: index.html, the sample grids, the plots.

Everything the page shows is inside the folder, linked relatively (no server, nothing fetched):
``samples/<cell_id>.png`` copied from the runs, ``plots/curves-<n>.png`` (the ranking column, FID by default,
against fine-tuning step per comparison group, one line per strategy, mean over seeds with a band of one std),
``plots/cost-<n>.png`` (its mean against device-seconds per cell), ``plots/cell-<cell_id>.png`` beside the
samples of every cell whose record has loss curves (its losses and ranking-metric curve, as ``ganbench show``
draws them) and the same table as ``leaderboard.csv`` / ``leaderboard.md``.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from ganbench.errors import GanbenchError
from ganbench.files import writing
from ganbench.report.cell_plots import cell_png
from ganbench.report.comparability import RANK_WITHIN
from ganbench.report.csv import to_csv
from ganbench.report.formatting import (
    REPRODUCIBILITY,
    comparison_groups,
    definitions,
    device_note,
    display_rows,
    group_title,
    provenance_lines,
    rank_label,
    settings_text,
    shared_settings,
)
from ganbench.report.markdown import to_markdown
from ganbench.report.plots import cost_png, curves_png
from ganbench.store.runs import RunRecords
from ganbench.store.schema import Column

MARKER = ".ganbench-report"  # a folder holding this file is a report this module may replace
SAFE_ID = re.compile(r"[A-Za-z0-9_.-]+")  # cell ids that are safe as file names (no path separators)

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
figure.losses img { width: 300px; image-rendering: auto; }
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


def _key(record_or_row, keys: list[str]) -> tuple:
    """Comparable across a record (dict) and a frame row: missing values are "None", the rest str()."""
    return tuple("None" if pd.isna(v := record_or_row.get(k)) else str(v) for k in keys)


def _table_html(frame: pd.DataFrame, rows: pd.DataFrame) -> str:
    headers, cells = display_rows(frame, rows, lambda text: text)
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
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:  # the earlier report goes back where it was
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_html_report(frame: pd.DataFrame, loaded: RunRecords, out: str | Path, command: str | None = None) -> Path:
    """Write the report folder ``out`` (replaced whole when it is an earlier report); returns index.html. A
    failing write is one line naming ``out``; an earlier report there stays as it was."""
    out = Path(out)
    with writing(out, "report folder"):
        tmp = _prepare_folder(out)
        try:
            _write(frame, loaded, tmp, command)
            _replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out / "index.html"


def _write(frame: pd.DataFrame, loaded: RunRecords, folder: Path, command: str | None) -> None:
    (folder / MARKER).write_text("written by ganbench leaderboard --format html; replaced by the next one\n")
    (folder / "leaderboard.csv").write_text(to_csv(frame))
    (folder / "leaderboard.md").write_text(to_markdown(frame, command))
    (folder / "plots").mkdir()
    (folder / "samples").mkdir()
    ranked: Column | None = frame.attrs.get("rank_by")
    label = rank_label(frame)
    rank_keys = RANK_WITHIN + list(frame.attrs.get("mixed", []))
    by_group: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in loaded.records:
        if r.get("status") == "ok":
            by_group[_key({**r, "augment": r.get("augment") or "none"}, rank_keys)].append(r)
    settings = shared_settings(frame)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8"><title>ganbench leaderboard</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>ganbench leaderboard</h1>",
    ]
    if settings:
        parts.append(f"<p>{_e(settings_text(settings))}</p>")
    parts += [f'<p class="note">{_e(note)}</p>' for note in frame.attrs.get("notes", [])]
    mark = device_note(frame)
    if mark:
        parts.append(f'<p class="note" id="device-note">{_e(mark)}</p>')
    panels: dict[tuple, list[int]] = defaultdict(list)  # cost plots: one per (source, target, shots), all archs
    for i, (values, rows) in enumerate(comparison_groups(frame)):
        title = group_title(values, rows, settings)
        parts.append(f'<section id="group-{i}"><h2>{_e(title)}</h2>')
        parts.append(_table_html(frame, rows))
        parts.append('<div class="plots">')
        curves = curves_png(title, by_group.get(_key(values, rank_keys), []), ranked) if ranked else None
        if curves is not None:
            (folder / "plots" / f"curves-{i}.png").write_bytes(curves)
            parts.append(f'<img src="plots/curves-{i}.png" alt="{_e(f"{label} against step: {title}")}">')
        parts.append("</div>")
        panels[_key(values, [k for k in rank_keys if k != "arch"])].extend(rows.index)
        parts.append("<h3>Samples (final generator, 64 fixed latents per seed)</h3>")
        parts += _sample_figures(rows, loaded, folder, ranked)
        parts.append("</section>")
    parts.append(f"<h2>Cost against {_e(label)}</h2>")
    for j, indexes in enumerate(panels.values()):
        parts.append(_cost_panel(frame.loc[indexes], j, folder, ranked, list(frame.attrs.get("mixed", []))))
    parts.append(f"<footer><p>{_e(definitions(frame))}</p><p>{_e(REPRODUCIBILITY)}</p><ul>")
    parts += [f"<li>{_e(line)}</li>" for line in provenance_lines(frame)]
    if command:
        parts.append(f"<li>made with: <code>{_e(command)}</code></li>")
    parts.append(
        '</ul><p>The table as <a href="leaderboard.csv">CSV</a> and <a href="leaderboard.md">Markdown</a>.</p>'
    )
    parts.append(f"</footer><script>{CHECK_IMAGES}</script></body></html>")
    (folder / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")


def _sample_figures(rows: pd.DataFrame, loaded: RunRecords, folder: Path, ranked: Column | None) -> list[str]:
    """Per row, the sample grid of every cell it averages (copied into the report), captioned with its score."""
    by_cell = {r["cell_id"]: r for r in loaded.records}
    parts = []
    for _, row in rows.iterrows():
        figures = []
        for cell_id in row["cell_ids"].split(";") if isinstance(row["cell_ids"], str) else []:
            record = by_cell.get(cell_id)
            run = loaded.run_of.get(cell_id)
            source = run / "samples" / f"{cell_id}.png" if record and run else None
            score = record.get(ranked.name) if record and ranked else None
            shown = f" · {ranked.label} {score:.{ranked.digits}f}" if ranked and isinstance(score, (int, float)) else ""
            caption = f"seed {record.get('seed')}{shown} · {cell_id}" if record else cell_id
            if source is not None and SAFE_ID.fullmatch(cell_id) and source.is_file():
                shutil.copyfile(source, folder / "samples" / f"{cell_id}.png")
                figures.append(f'<figure><img src="samples/{_e(cell_id)}.png" alt="{_e("samples of " + cell_id)}">'
                               f"<figcaption>{_e(caption)}</figcaption></figure>")  # fmt: skip
            else:
                figures.append(f"<figure><figcaption>{_e(caption)}: no sample grid</figcaption></figure>")
            if record and SAFE_ID.fullmatch(cell_id) and record.get("losses"):
                figures += _loss_figure(record, cell_id, folder, ranked)
        label = row["strategy"] + ("" if row["augment"] == "none" else f" +{row['augment']}")
        parts.append(f"<h4>{_e(label)}</h4>")
        parts.append(f'<div class="samples">{"".join(figures) or "<p>no finished cell</p>"}</div>')
    return parts


def _loss_figure(record: dict[str, Any], cell_id: str, folder: Path, ranked: Column | None) -> list[str]:
    """The cell's loss curves and ranking-column curve (``plots/cell-<id>.png``), shown small, linked full size."""
    png = cell_png(record, ranked, dpi=90)
    if png is None:
        return []
    name = f"plots/cell-{cell_id}.png"
    (folder / name).write_bytes(png)
    image = f'<a href="{_e(name)}"><img src="{_e(name)}" alt="{_e("loss curves of " + cell_id)}"></a>'
    caption = f"losses and {_e(ranked.label if ranked else 'metric')} · seed {_e(record.get('seed'))} · {_e(cell_id)}"
    return [f'<figure class="losses">{image}<figcaption>{caption}</figcaption></figure>']


def _cost_panel(rows: pd.DataFrame, j: int, folder: Path, ranked: Column | None, mixed: list[str]) -> str:
    title = f"{rows['source'].iloc[0]} → {rows['target'].iloc[0]}, {rows['shots'].iloc[0]} shots"
    title += "".join(f", {k} {rows[k].iloc[0]}" for k in mixed)
    png = cost_png(title, rows, ranked) if ranked else None
    if png is None:
        return f"<p>{_e(title)}: no row with both a score and a cost</p>"
    (folder / "plots" / f"cost-{j}.png").write_bytes(png)
    return f'<div class="plots"><img src="plots/cost-{j}.png" alt="{_e("cost against score: " + title)}"></div>'
