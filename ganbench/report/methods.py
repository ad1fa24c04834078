"""The methods table of docs/protocols.md, made from the strategies themselves: each one's method card and the
"Deviations" list of its module's docstring, so the documentation says what the code does.

    python -m ganbench.report.methods        # prints the section; tests/test_protocols.py checks the doc holds it
"""

from __future__ import annotations

import sys

from ganbench.plugin.manager import load_registry
from ganbench.plugin.registry import Registry

BEGIN = "<!-- methods: made by `python -m ganbench.report.methods`; edit the strategies' cards and docstrings -->"
END = "<!-- end of methods -->"


def deviations(module_doc: str) -> list[str]:
    """The bullets after the docstring's line that starts with "Deviations", each joined into one line."""
    lines = module_doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Deviations")), None)
    if start is None:
        return []
    bullets: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("* "):
            bullets.append(line[2:].strip())
        elif line.startswith("  ") and bullets:
            bullets[-1] += " " + line.strip()
        elif bullets and line.strip():
            break
    return bullets


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|")


def methods_markdown(registry: Registry) -> str:
    """The table of the built-in strategies that are published methods, then each one's deviations."""
    entries = [
        e
        for e in registry.entries("strategy")
        if e.cls.card is not None and e.origin.module.startswith("ganbench_plugins.")
    ]
    entries.sort(key=lambda e: (e.cls.card.year, e.name))
    lines = [BEGIN, "", "| strategy | year | paper | what trains | extra losses | code read | parity test |",
             "|---|---:|---|---|---|---|---|"]  # fmt: skip
    for e in entries:
        c = e.cls.card
        lines.append(f"| `{e.name}` | {c.year} | {_cell(c.paper)} | {_cell(c.trains)} | {_cell(c.losses)} | "
                     f"{_cell(c.code)} | {_cell(c.parity)} |")  # fmt: skip
    unchecked = [f"`{e.name}`" for e in entries if e.cls.card.code is None]
    if unchecked:
        lines += ["", f"Not checked against code of their authors (no `code` on their cards): {', '.join(unchecked)}."]
    for e in entries:
        listed = deviations(sys.modules[e.cls.__module__].__doc__ or "")
        if e.cls.card.code is None and not listed:
            continue
        lines += ["", f"**`{e.name}`**, deviations from the code read ({_cell(e.cls.card.code)}):", ""]
        lines += [f"- {item}" for item in listed] or ["- none listed"]
    return "\n".join([*lines, "", END])


if __name__ == "__main__":
    print(methods_markdown(load_registry()))
