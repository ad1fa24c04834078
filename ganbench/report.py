"""Text and JSON views for the CLI: plugin listings, the planned cells, the results table."""

from __future__ import annotations

import math
from typing import Any

from ganbench.registry import Registry, format_value

PLURAL = {
    "architecture": "architectures",
    "strategy": "strategies",
    "dataset": "datasets",
    "metric": "metrics",
    "augmentation": "augmentations",
}


def plugins_json(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": e.name,
            "kind": e.kind,
            "origin": str(e.origin),
            "module": e.origin.module,
            "distribution": e.origin.distribution,
            "version": e.origin.version,
            "file": e.origin.file,
            "description": e.description,
            "options": [o.describe() for o in e.options],
        }
        for e in registry.entries()
    ]


def plugins_text(registry: Registry) -> str:
    lines = []
    for kind in PLURAL:
        entries = registry.entries(kind)
        if not entries:
            continue
        lines.append(f"{PLURAL[kind]}:")
        for e in entries:
            opts = ", ".join(f"{o.name}={format_value(o.default) or '-'} ({o.type_name})" for o in e.options)
            lines.append(f"  {e.name:<14} {e.description}")
            lines.append(f"  {'':<14} from {e.origin}" + (f"; options: {opts}" if opts else ""))
        lines.append("")
    return "\n".join(lines).rstrip()


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def plan_table(plan) -> str:
    rows = []
    for c in plan.cells:
        uses_source = plan.uses_source(c)
        rows.append([c.id, c.labels["arch"], c.labels["strategy"], c.labels["source"] if uses_source else "-",
                     c.labels["target"], str(c.shots), str(c.seed)])  # fmt: skip
    table = _table(["cell", "arch", "strategy", "source", "target", "shots", "seed"], rows, {5, 6})
    b = plan.grid.budget()
    return (
        f"{table}\n\n{len(plan.cells)} cells -> {plan.run_dir} (device {plan.device}); budgets: pretrain "
        f"{b.pretrain_steps} steps, fine-tune {b.finetune_steps} steps, batch {b.batch_size}, "
        f"{b.eval_samples} samples per evaluation every {b.eval_every or b.finetune_steps} steps. Nothing was run."
    )


def _num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def _pretrain(r: dict[str, Any]) -> str:
    if r.get("pretrain_s") is None:
        return "-"
    return _num(r["pretrain_s"], 1) + (" (cached)" if r.get("pretrain_cache_hit") else "")


# (header, value, right-aligned); the first five are folded into a title line when every row shares them
RESULT_COLUMNS = [
    ("arch", lambda r: r["arch"], False),
    ("source -> target", lambda r: f"{r['source']} -> {r['target']}", False),
    ("shots", lambda r: str(r["shots"]), True),
    ("seed", lambda r: str(r["seed"]), True),
    ("augment", lambda r: r.get("augment") or "none", False),
    ("strategy", lambda r: r["strategy"], False),
    ("FID", lambda r: _num(r.get("fid"), 2), True),
    ("KID", lambda r: _num(r.get("kid"), 4), True),
    ("trainable/total", lambda r: f"{_count(r.get('trainable_params'))}/{_count(r.get('total_params'))}", True),
    ("pretrain s", _pretrain, True),
    ("finetune s", lambda r: _num(r.get("finetune_s"), 1), True),
    ("step ms", lambda r: _num(r.get("step_ms"), 1), True),
    ("img/s", lambda r: _num(r.get("images_per_s"), 0), True),
    ("eval s", lambda r: _num(r.get("eval_s"), 1), True),
    ("peak MB", lambda r: _num(r.get("peak_mem_mb"), 0), True),
    ("status", lambda r: r["status"], False),
]
SHAREABLE = 5


def results_table(records: list[dict[str, Any]]) -> str:
    """Cells sorted by FID at the final step (failures last); columns every row shares become a title."""
    ordered = sorted(
        records, key=lambda r: (r.get("status") != "ok", r.get("fid") if r.get("fid") is not None else math.inf)
    )
    shared = [
        (h, get(ordered[0])) for h, get, _ in RESULT_COLUMNS[:SHAREABLE] if len({get(r) for r in ordered}) == 1
    ] if len(ordered) > 1 else []  # fmt: skip
    columns = [c for c in RESULT_COLUMNS if c[0] not in dict(shared)]
    rows = [[get(r) for _, get, _ in columns] for r in ordered]
    table = _table([h for h, _, _ in columns], rows, right={i for i, c in enumerate(columns) if c[2]})
    shown = [(h, v) for h, v in shared if (h, v) != ("augment", "none")]  # no augmentation: nothing to say
    if not shown:
        return table
    title = ", ".join(
        value if header in ("arch", "source -> target") else f"{header} {value}" for header, value in shown
    )
    return f"{title}\n\n{table}"


def run_footer(summary, seconds: float) -> str:
    new = len(summary.cells) - summary.skipped
    device = summary.records[0].get("device", "?") if summary.records else "?"
    return (
        f"\n{len(summary.cells)} cells ({new} run, {summary.skipped} already complete) in {seconds:.0f} s on {device}\n"
        f"results: {summary.run_dir / 'results.csv'}   samples: {summary.run_dir / 'samples'}   "
        f"curves: {summary.run_dir / 'curves.png'}"
    )
