"""Text and JSON views for the CLI: plugin and dataset listings, the planned cells, a run's results table,
a leaderboard's summary."""

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
from ganbench.report.plots import loss_label, loss_series
from ganbench.store.records import (
    IDENTITY_COLUMNS,
    MetricColumn,
    headline_column,
    metric_columns,
    scored_columns,
)

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

    def metric(column: MetricColumn):
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


MEMORY_KINDS = {"cuda_max_allocated": "torch's allocator peak", "cpu_peak_rss": "process resident set"}
TIMING_FIELDS = ["adapt_s", "finetune_s", "eval_s", "eval_generate_s", "eval_features_s", "eval_metrics_s",
                 "pretrain_s", "step_ms", "images_per_s"]  # fmt: skip
BUDGET_FIELDS = ["finetune_steps", "batch_size", "lr", "eval_every", "eval_samples", "resolution", "channels",
                 "pretrain_steps", "reference", "select_on"]  # fmt: skip


def _finite(value: Any) -> float | None:
    """A number as JSON can hold it: None when missing, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _step(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _loss_summary(record: dict[str, Any]) -> dict[str, Any] | None:
    steps, terms = loss_series(record)
    if not terms:
        return None
    every = len(steps) < 2 or steps[-1] - steps[0] == len(steps) - 1
    summary: dict[str, Any] = {"points": len(steps), "first_step": _step(steps[0]), "last_step": _step(steps[-1]),
                               "every_step": every, "terms": {}}  # fmt: skip
    for name, values in terms.items():
        finite = [v for v in values if math.isfinite(v)]
        bad = [s for s, v in zip(steps, values) if not math.isfinite(v)]
        summary["terms"][name] = {
            "label": loss_label(name), "last": _finite(values[-1]),
            "min": min(finite) if finite else None, "max": max(finite) if finite else None,
            "non_finite": len(bad), "first_non_finite_step": _step(bad[0]) if bad else None,
        }  # fmt: skip
    return summary


def cell_summary(record: dict[str, Any], plot: str | None = None, samples: str | None = None) -> dict[str, Any]:
    """``ganbench show --json``: one cell as plain JSON (NaN and infinities become null; the loss terms say how
    many they had): what it is, its outcome, every metric column (with the best point of its curve), the time,
    memory and resumption it cost, its loss terms, and the files to look at."""
    columns = metric_columns([record])
    headline = headline_column(columns)
    curve = [p for p in record.get("curve") or [] if isinstance(p, dict) and "step" in p]
    selected = record.get("selected") if isinstance(record.get("selected"), dict) else {}
    metrics = []
    for c in columns:
        entry: dict[str, Any] = {"name": c.name, "label": c.label, "value": _finite(record.get(c.name)),
                                 "lower_is_better": c.lower_is_better, "digits": c.digits}  # fmt: skip
        points = [(p["step"], v) for p in curve if (v := _finite(p.get(c.name))) is not None]
        if c.lower_is_better is not None and points:
            step, value = (min if c.lower_is_better else max)(points, key=lambda p: p[1])
            entry["best"] = {"step": step, "value": value}
        if c.name in selected:
            entry["selected"] = _finite(selected[c.name])
        metrics.append(entry)
    timing: dict[str, Any] = {k: _finite(record.get(k)) for k in TIMING_FIELDS if k in record}
    if "pretrain_cache_hit" in record:
        timing["pretrain_cache_hit"] = record["pretrain_cache_hit"]
    memory = {k: _finite(record.get(k)) for k in ("peak_train_mb", "peak_eval_mb", "peak_mem_mb") if k in record}
    if memory:
        memory["kind"] = record.get("peak_mem_kind")
    keys = ("resumes", "resumed_from", "steps_redone", "checkpoint_every")
    losses = _loss_summary(record)
    return {
        **{k: record.get(k) for k in ("cell_id", "status", "error", *IDENTITY_COLUMNS[3:])},
        "budget": {k: record[k] for k in BUDGET_FIELDS if k in record},
        "final_step": curve[-1]["step"] if curve else None,
        "selected_step": record.get("selected_step"),
        "headline": headline.name if headline else None,
        "metrics": metrics,
        "timing": timing,
        "memory": memory,
        "resumption": {k: record[k] for k in keys if k in record},
        "device": record.get("device"),
        "ran": {k: record[k] for k in ("host", "executor", "threads", "device_shared_by") if k in record},
        "losses": losses,
        "final_loss": None if losses else record.get("loss"),
        "has_traceback": bool(record.get("traceback")),
        "plot": plot,
        "samples": samples,
    }


def _where(ran: dict[str, Any]) -> str:
    """`` on host h (ray executor; 2 cells on this device at most)``: where a cell ran, as its record says."""
    parts = [f" on host {ran['host']}" if ran.get("host") else ""]
    details = [f"{ran['executor']} executor"] if ran.get("executor") else []
    shared = ran.get("device_shared_by")
    if isinstance(shared, int):
        details.append("the device to itself" if shared == 1 else f"{shared} cells on this device at most")
    return parts[0] + (f" ({'; '.join(details)})" if details else "")


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MiB" if value >= 10 else f"{value:.1f} MiB"


def _time_lines(t: dict[str, Any]) -> list[str]:
    parts = [(label, t.get(k)) for label, k in (("adapt", "adapt_s"), ("train", "finetune_s"), ("eval", "eval_s"))]
    shown = [(label, v) for label, v in parts if v is not None]
    if not shown:
        return []
    line = " + ".join(f"{label} {_s(v)}" for label, v in shown)
    if len(shown) > 1:
        line = f"{_s(sum(v for _, v in shown))} = {line}"
    split = [(label, t.get(f"eval_{label}_s")) for label in ("generate", "features", "metrics")]
    if any(v is not None for _, v in split):
        line += " (eval: " + ", ".join(f"{label} {_s(v)}" for label, v in split if v is not None) + ")"
    lines = [line]
    speed = [f"{t['step_ms']:.1f} ms/step" if t.get("step_ms") is not None else "",
             f"{t['images_per_s']:,.0f} images/s" if t.get("images_per_s") is not None else ""]  # fmt: skip
    if t.get("pretrain_s") is not None:
        how = {True: "from the cache", False: "trained by this run"}.get(t.get("pretrain_cache_hit"), "")
        speed.append(f"source model {_s(t['pretrain_s'])}" + (f" ({how})" if how else ""))
    if any(speed):
        lines.append(", ".join(p for p in speed if p))
    return lines


def _loss_lines(losses: dict[str, Any]) -> list[str]:
    how = "every step" if losses["every_step"] else f"{losses['points']} bin means, each at its bin's last step"
    head = f"{losses['points']} points over steps {losses['first_step']}-{losses['last_step']} ({how})"

    def g(value: float | None) -> str:
        return "nan/inf" if value is None else f"{value:.4g}"

    rows = [[t["label"], g(t["last"]), g(t["min"]), g(t["max"]),
             f"{t['non_finite']}, first at step {t['first_non_finite_step']}" if t["non_finite"] else ""]
            for t in losses["terms"].values()]  # fmt: skip
    listing = table(["term", "last", "min", "max", "non-finite (NaN/inf)"], rows, right={1, 2, 3})
    return [head, *listing.splitlines()]


def _metric_lines(summary: dict[str, Any]) -> list[str]:
    rows = []
    for m in summary["metrics"]:
        value = "-" if m["value"] is None else f"{m['value']:.{m['digits']}f}"
        if m["lower_is_better"] is None:
            note = "detail"
        else:
            note = "lower is better" if m["lower_is_better"] else "higher is better"
            if "best" in m:
                note += f"; best {m['best']['value']:.{m['digits']}f} at step {m['best']['step']}"
            if m.get("selected") is not None:
                note += f"; {m['selected']:.{m['digits']}f} at the step validation selected"
        rows.append([m["label"], value, note])
    return table(["metric", "value", ""], rows, right={1}).splitlines()


def cell_text(summary: dict[str, Any]) -> str:
    """``ganbench show``: a cell's :func:`cell_summary` for the terminal, its metric columns last."""
    s = summary
    plus = "" if s.get("augment") in (None, "none") else f" + {s['augment']}"
    lines = [f"cell {s['cell_id']}: {s.get('strategy')}{plus} on {s.get('arch')}, {s.get('source')} -> "
             f"{s.get('target')}, {s.get('shots')} shots, seed {s.get('seed')}"]  # fmt: skip
    rows: list[tuple[str, list[str]]] = [("status", [str(s["status"]) + (f": {s['error']}" if s.get("error") else "")])]
    if s["has_traceback"]:
        rows[0][1].append("(the traceback is in the record's `traceback` field)")
    b = s["budget"]
    if "finetune_steps" in b:
        every = f"every {b['eval_every']} steps" if b.get("eval_every") else "at the last step"
        rows.append(("budget", [f"{b['finetune_steps']} steps x batch {b.get('batch_size')}, lr {b.get('lr')}; "
                                f"{b.get('eval_samples')} samples per evaluation {every}; {b.get('resolution')} px, "
                                f"{b.get('channels')} channel{'' if b.get('channels') == 1 else 's'}"]))  # fmt: skip
    if time := _time_lines(s["timing"]):
        rows.append(("time", time))
    m = s["memory"]
    if m:
        kind = m.get("kind")
        kind_text = f" ({kind}: {MEMORY_KINDS.get(kind, 'as the device reports it')})" if kind else ""
        if m.get("peak_train_mb") is not None or m.get("peak_eval_mb") is not None:
            peak = f"peak train {_mib(m.get('peak_train_mb'))}, eval {_mib(m.get('peak_eval_mb'))}"
        else:
            peak = f"peak {_mib(m.get('peak_mem_mb'))}"
        rows.append(("memory", [peak + kind_text]))
    r = s["resumption"]
    if "resumes" in r:
        every = f"checkpoints every {r['checkpoint_every']}" if r.get("checkpoint_every") else "no checkpoints"
        if r["resumes"]:
            times = "once" if r["resumes"] == 1 else f"{r['resumes']} times"
            text = f"{times}, from steps {r.get('resumed_from')}; {r.get('steps_redone', 0)} steps redone ({every})"
        else:
            text = f"never ({every})"
        rows.append(("resumed", [text]))
    if s.get("device"):
        rows.append(("device", [s["device"] + _where(s.get("ran") or {})]))
    if s["losses"]:
        rows.append(("losses", _loss_lines(s["losses"])))
    else:
        final = s.get("final_loss") or {}
        d, g = _finite(final.get("d_final")), _finite(final.get("g_final"))
        old = f"; final D {d:.4g}, G {g:.4g}" if d is not None and g is not None else ""
        why = "written before ganbench kept loss curves" if final else f"the cell {s['status']} before any were kept"
        then = "; the plot shows the metric curve only" if s["plot"] else ""
        rows.append(("losses", [f"not in this record ({why}{old}){then}"]))
    rows.append(("plot", [s["plot"] or "none: the record has neither loss curves nor a metric curve to draw"]))
    if s["samples"]:
        rows.append(("samples", [s["samples"]]))
    if any(m["value"] is not None for m in s["metrics"]):
        at = f" at the final step, {s['final_step']}" if s.get("final_step") is not None else ""
        rows.append((f"metrics{at}", _metric_lines(s)))
    else:
        rows.append(("metrics", [f"none recorded (the cell {s['status']})"]))
    for label, body in rows:
        if label.startswith("metrics") and len(body) > 1:  # the table of metric columns
            lines += [f"{label}:", *(f"  {line}" for line in body)]
            continue
        lines.append(f"{label:<9} {body[0]}")
        lines += [f"{'':<9} {line}" for line in body[1:]]
    return "\n".join(lines)
