"""``ganbench show``: one cell as plain JSON (:func:`cell_summary`) and for the terminal (:func:`cell_text`):
what it is, its outcome, every metric column, the time, memory and resumption it cost, its loss terms."""

from __future__ import annotations

import math
from typing import Any

from ganbench.report.cell_plots import loss_label
from ganbench.report.listings import table
from ganbench.store.records import IDENTITY_COLUMNS, headline_column, metric_columns
from ganbench.store.series import loss_series

MEMORY_KINDS = {"cuda_max_allocated": "torch's allocator peak", "cpu_peak_rss": "process resident set"}
TIMING_FIELDS = ["adapt_s", "probe_s", "finetune_s", "eval_s", "eval_generate_s", "eval_features_s", "eval_metrics_s",
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
    parts = [(label, t.get(k)) for label, k in (("adapt", "adapt_s"), ("probe", "probe_s"), ("train", "finetune_s"),
                                                ("eval", "eval_s"))]  # fmt: skip
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
