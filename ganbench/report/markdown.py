"""The leaderboard as Markdown: one table per comparison group, under the settings every row shares; then
what the device mark, the numbers and their intervals mean, and what reproduces across machines."""

from __future__ import annotations

import pandas as pd

from ganbench.report.csv import escape_formula
from ganbench.report.formatting import (
    REPRODUCIBILITY,
    comparison_groups,
    definitions,
    device_note,
    display_rows,
    group_title,
    provenance_lines,
    settings_text,
    shared_settings,
)


def _md_text(value: str) -> str:
    return escape_formula(value).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def to_markdown(frame: pd.DataFrame, command: str | None = None) -> str:
    """Readable tables, one per comparison group, under a title line of the settings every row shares."""
    settings = shared_settings(frame)
    lines = ["# ganbench leaderboard", ""]
    if settings:
        lines += [_md_text(settings_text(settings)), ""]
    for values, rows in comparison_groups(frame):
        headers, cells = display_rows(frame, rows, _md_text)
        lines += [f"## {_md_text(group_title(values, rows, settings))}", ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" if h in ("augment", "strategy", "seeds") else "---:" for h in headers) + "|")
        lines += ["| " + " | ".join(c or "-" for c in row) + " |" for row in cells]
        lines.append("")
    note = device_note(frame)
    if note:
        lines += [_md_text(note), ""]
    methods = [n for n in frame.attrs.get("notes", []) if n.startswith("method ")]
    if methods:
        lines += [f"- {_md_text(n)}" for n in methods] + [""]
    lines += [_md_text(definitions(frame)), "", _md_text(REPRODUCIBILITY), ""]
    lines += [f"- {_md_text(line)}" for line in provenance_lines(frame)]
    if command:
        lines.append(f"- made with: `{command.replace('`', '')}`")
    return "\n".join(lines) + "\n"
