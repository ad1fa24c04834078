"""Terminal listings and tables for the CLI: plugin and dataset listings (text and JSON), the planned cells,
a run's results table and footer, a leaderboard's summary, ``ganbench score``'s and ``datasets prepare``'s
lines. One cell's view (``ganbench show``) is :mod:`ganbench.report.cell_view`."""

from __future__ import annotations

import math
from typing import Any

from ganbench.plugin.options import format_value
from ganbench.plugin.registry import Registry
from ganbench.report.formatting import (
    DEVICE_MARK,
    comparison_groups,
    device_note,
    gain_cell,
    gain_ci_cell,
    group_title,
    integer,
    marked,
    mean_std,
    next_cell,
    rank_label,
    settings_text,
    shared_settings,
    status_cell,
    steps_cell,
)
from ganbench.report.leaderboard import CONFIDENCE, row_label
from ganbench.store.records import headline_column, metric_columns, scored_columns
from ganbench.store.schema import Column

PLURAL = {
    "architecture": "architectures",
    "strategy": "strategies",
    "dataset": "datasets",
    "metric": "metrics",
    "augmentation": "augmentations",
}


#: what ``ganbench plugins KIND`` accepts: each kind by its plural and its singular
KIND_NAMES = {**{plural: kind for kind, plural in PLURAL.items()}, **{kind: kind for kind in PLURAL}}


def _card(entry: Any) -> dict[str, Any] | None:
    card = getattr(entry.cls, "card", None) if entry.kind == "strategy" else None
    return card.describe() if card is not None else None


def plugins_json(registry: Registry, kind: str | None = None) -> list[dict[str, Any]]:
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
            **({"card": _card(e)} if e.kind == "strategy" else {}),
        }
        for e in registry.entries(kind)
    ]


def strategy_cards_text(registry: Registry) -> str:
    """Every strategy's method card: paper and year, what trains, its extra losses, the code it was checked
    against and its parity test (``-`` where there is none)."""
    lines = ["strategies:"]
    for e in registry.entries("strategy"):
        card = _card(e)
        lines.append(f"  {e.name:<14} {e.description}")
        if card is None:
            lines.append(f"  {'':<14} no method card (not a published method); from {e.origin}")
            continue
        lines.append(f"  {'':<14} paper:    {card['paper']} ({card['year']})")
        lines.append(f"  {'':<14} trains:   {card['trains']}")
        lines.append(f"  {'':<14} losses:   {card['losses']}")
        lines.append(f"  {'':<14} code:     {card['code'] or '-'}; parity test: {card['parity'] or 'none'}")
    return "\n".join(lines)


def plugins_text(registry: Registry, only: str | None = None) -> str:
    lines = []
    for kind in [only] if only else PLURAL:
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


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
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
    listing = table(["cell", "arch", "strategy", "source", "target", "shots", "seed"], rows, {5, 6})
    b = plan.grid.budget()
    return (
        f"{listing}\n\n{len(plan.cells)} cells -> {plan.run_dir} (device {plan.device}); budgets: pretrain "
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


def _record_columns(records: list[dict[str, Any]]) -> list[tuple[str, Any, bool]]:
    """(header, value, right-aligned) of the results table; the first five are folded into a title line when
    every row shares them. Every metric column the records score comes after the strategy."""

    def metric(column: Column):
        return column.label, lambda r: _num(r.get(column.name), column.digits), True

    scored = scored_columns(metric_columns(records))
    return [
        ("arch", lambda r: r["arch"], False),
        ("source -> target", lambda r: f"{r['source']} -> {r['target']}", False),
        ("shots", lambda r: str(r["shots"]), True),
        ("seed", lambda r: str(r["seed"]), True),
        ("augment", lambda r: r.get("augment") or "none", False),
        ("strategy", lambda r: r["strategy"], False),
        *(metric(c) for c in scored),
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


def _sort_key(records: list[dict[str, Any]]):
    """Failures last; then by FID (else the first scored column), best first."""
    by = headline_column(metric_columns(records))

    def key(r: dict[str, Any]) -> tuple[bool, float]:
        value = r.get(by.name) if by else None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return r.get("status") != "ok", math.inf
        return r.get("status") != "ok", value if by.lower_is_better else -value

    return key


def results_table(records: list[dict[str, Any]]) -> str:
    """Cells sorted by FID (or the first scored column) at the final step, best first, failures last;
    columns every row shares become a title."""
    ordered = sorted(records, key=_sort_key(records))
    columns = _record_columns(records)
    shared = [
        (h, get(ordered[0])) for h, get, _ in columns[:SHAREABLE] if len({get(r) for r in ordered}) == 1
    ] if len(ordered) > 1 else []  # fmt: skip
    columns = [c for c in columns if c[0] not in dict(shared)]
    rows = [[get(r) for _, get, _ in columns] for r in ordered]
    text = table([h for h, _, _ in columns], rows, right={i for i, c in enumerate(columns) if c[2]})
    shown = [(h, v) for h, v in shared if (h, v) != ("augment", "none")]  # no augmentation: nothing to say
    if not shown:
        return text
    title = ", ".join(
        value if header in ("arch", "source -> target") else f"{header} {value}" for header, value in shown
    )
    return f"{title}\n\n{text}"


def run_footer(summary, seconds: float) -> str:
    new = len(summary.cells) - summary.skipped
    device = next((r["device"] for r in summary.records if r.get("device")), "?")
    return (
        f"\n{len(summary.cells)} cells ({new} run, {summary.skipped} already complete) in {seconds:.0f} s on {device}\n"
        f"results: {summary.run_dir / 'results.csv'}   samples: {summary.run_dir / 'samples'}   "
        f"curves: {summary.run_dir / 'curves.png'}"
    )


def leaderboard_summary(frame) -> str:
    """A short plain-text view of a leaderboard for the terminal: one small table per comparison group."""
    settings = shared_settings(frame)
    ranked = frame.attrs.get("rank_by")
    label, digits = rank_label(frame), ranked.digits if ranked else 2
    blocks = [settings_text(settings)] if settings else []
    for values, group in comparison_groups(frame):
        rows = [
            [integer(row["rank"]), row_label(row) + (f" {DEVICE_MARK}" if marked(row) else ""),
             mean_std(row, ranked.name, digits) if ranked else "-", gain_cell(row, digits),
             gain_ci_cell(row, digits), next_cell(row, digits), steps_cell(row),
             mean_std(row, "device_s_per_cell", 1), status_cell(row)]
            for _, row in group.iterrows()
        ]  # fmt: skip
        ci = f"{CONFIDENCE:.0%} CI"
        headers = ["rank", "strategy", label, "gain vs scratch", f"gain {ci}", f"vs next rank ({ci})",
                   f"steps to scratch {label}", "device s/cell", "seeds"]  # fmt: skip
        blocks.append(group_title(values, group, settings) + "\n" + table(headers, rows, right={0, *range(2, 8)}))
    note = device_note(frame)
    return "\n\n".join([*blocks, *([note] if note else [])])


def dataset_rows_text(rows: list[dict[str, Any]], roots: list[Any]) -> str:
    """``ganbench datasets``: one line per dataset, then the data roots in search order."""
    headers = ["dataset", "images", "labels", "data"]
    cells = [
        [r["name"], "-" if r["images"] is None else f"{r['images']:,}", "yes" if r["labels"] else "no", r["where"]]
        for r in rows
    ]
    lines = [table(headers, cells, right={1}), f"\nData roots, in order: {', '.join(str(r) for r in roots)}"]
    return "\n".join(lines)


def prepared_text(item: dict[str, Any]) -> str:
    """``ganbench datasets prepare``: what was prepared, its shape and classes, and where it is cached."""
    c, h, w = item["shape"]
    classes = f", classes {item['classes']}" if item["classes"] else ""
    how = "already cached" if item["was_cached"] else f"prepared in {item['seconds']:.1f} s"
    lines = [f"{item['dataset']}: {item['images']:,} images ({c}x{h}x{w}{classes}), {how} -> {item['cache_file']}"]
    for key, value in sorted(item["provenance"].items()):
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def score_text(result: dict[str, Any]) -> str:
    """``ganbench score``'s output: one line per metric column, then what was compared."""
    skip = {"n_gen", "n_ref", "n_shots", "n_heldout", "metrics", "features_s", "seconds", "device"}
    values = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and k not in skip and not k.endswith("_version")}  # fmt: skip
    width = max(map(len, values), default=0)
    lines = [f"{name:<{width}}  {value:.6g}" for name, value in values.items()]
    shots = f", {result['n_shots']} shots ({result['n_heldout']} held out)" if result.get("n_shots") else ""
    lines.append(f"({result['n_gen']} generated vs {result['n_ref']} reference images{shots}; {result['device']}, "
                 f"{result['seconds']:.1f} s)")  # fmt: skip
    return "\n".join(lines)
