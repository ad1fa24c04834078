"""One cell's picture (``ganbench show``, the HTML report): its loss terms, on as many panels as their scales
need, beside its headline metric curve."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ganbench.report.plots import direction, figure_png, pyplot
from ganbench.store.cache import atomic_write_bytes
from ganbench.store.records import headline_column, metric_columns
from ganbench.store.schema import Column
from ganbench.store.series import D_BASE, G_BASE, TOTALS, curve_value, loss_series

LOSS_LABELS = {"d_real": "D real", "d_fake": "D fake", "d_total": "D total", "g_adv": "G adversarial",
               "g_total": "G total"}  # fmt: skip
SCALE_APART = 10.0  # a strategy term whose typical size is this many times off its side's own: a panel of its own
LOG_RANGE = 30.0  # a panel of positive values whose lines' typical sizes span more than this: log scale
EQUILIBRIUM = math.log(2)  # softplus losses when D cannot tell real from fake (D(x) = 0)


def loss_label(name: str) -> str:
    """How a loss term reads: ``D real``, ``G total``; a strategy's ``g_ewc`` is ``G ewc``."""
    if name in LOSS_LABELS:
        return LOSS_LABELS[name]
    side, _, term = name.partition("_")
    return f"{side.upper()} {term}" if side in ("d", "g") and term else name


def _typical(values: list[float]) -> float:
    finite = [abs(v) for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _span(values: list[float]) -> tuple[float, float] | None:
    """The 2nd to 98th percentile of the finite values (what a panel must show of them); None without any."""
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return None
    return finite[int(0.02 * (len(finite) - 1))], finite[math.ceil(0.98 * (len(finite) - 1))]


def _fits(values: list[float], base: list[list[float]]) -> bool:
    """Whether a line can share a panel with the ``base`` lines without flattening them: its typical size is
    within SCALE_APART of theirs and the panel's range grows at most threefold with it."""
    spans = [s for s in map(_span, base) if s is not None]
    own = _span(values)
    if not spans or own is None:
        return True  # nothing to flatten, or nothing to draw: keep it with its side
    lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
    size = _typical(values)
    base_size = max(_typical(line) for line in base)
    if base_size > 0 and not 1 / SCALE_APART <= size / base_size <= SCALE_APART:
        return False
    width = max(hi - lo, 1e-12)
    return max(hi, own[1]) - min(lo, own[0]) <= 3 * width


def loss_panels(terms: dict[str, list[float]]) -> list[tuple[str, list[str]]]:
    """(title, term names) per panel: D's terms, G's terms, and on a panel of their own the strategy terms (and
    totals) whose scale is far off their side's adversarial terms, which they would flatten."""
    sides = {"d": ("Discriminator", D_BASE), "g": ("Generator", G_BASE)}
    panels: dict[str, list[str]] = {"d": [], "g": [], "apart": []}
    totals = {"d_total", "g_total"}
    extra = {n[0] for n in terms if n[:2] in ("d_", "g_") and n not in totals and n not in (*D_BASE, *G_BASE)}
    for name in sorted(terms, key=lambda n: n in totals):  # strategy terms first, then the totals
        if name in totals and name[0] not in extra:
            continue  # without a strategy term a total is just the sum of the adversarial terms drawn already
        side = name[0] if name[:2] in ("d_", "g_") else None
        base = [terms[b] for b in sides[side][1] if b in terms] if side else []
        # a total follows its side's strategy terms: apart only when one of them is, and it does not fit either
        moved = any(n[0] == side for n in panels["apart"])
        if side is not None and (name in sides[side][1] or _fits(terms[name], base) or name in totals and not moved):
            panels[side].append(name)
        else:
            panels["apart"].append(name)
    order = list(terms)
    panels = {k: sorted(v, key=order.index) for k, v in panels.items()}
    titled = [(f"{sides[k][0]} losses", panels[k]) for k in ("d", "g")]
    return [p for p in [*titled, ("Strategy terms (on their own scale)", panels["apart"])] if p[1]]


def _running_mean(values: list[float], window: int) -> list[float]:
    """The mean of the finite values among the last ``window`` (NaN where there are none)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, x, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    lo = np.maximum(np.arange(1, len(x) + 1) - window, 0)
    hi = np.arange(1, len(x) + 1)
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[hi] - sums[lo]) / n
    return np.where(n > 0, mean, np.nan).tolist()


def _set_scale(ax, lines: list[list[float]]) -> str:
    """Log scale when every value is positive and the lines' sizes lie far apart (or one spans decades);
    symmetric log when signs mix over such a range; else linear. Returns the scale set."""
    finite = [v for line in lines for v in line if math.isfinite(v)]
    typical = [t for t in (_typical(line) for line in lines) if math.isfinite(t) and t > 0]
    if not finite or not typical:
        return "linear"
    spread = max(typical) / min(typical)
    if min(finite) > 0 and (spread > LOG_RANGE or max(finite) / min(finite) > LOG_RANGE * 10):
        ax.set_yscale("log")
        return "log"
    if spread > LOG_RANGE:
        ax.set_yscale("symlog", linthresh=min(typical))
        return "symlog"
    return "linear"


def _mark_non_finite(ax, steps: list[float], values: list[float], color: str, row: int) -> tuple[int, float | None]:
    """Crosses along the panel's bottom edge (one row per line) at the steps whose value is NaN or infinite;
    (how many, the first such step)."""
    bad = [s for s, v in zip(steps, values) if not math.isfinite(v)]
    if bad:
        ax.scatter(bad, [0.04 + 0.05 * row] * len(bad), marker="x", s=36, color=color, linewidths=1.8,
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)  # fmt: skip
    return len(bad), (bad[0] if bad else None)


def _draw_losses(ax, steps: list[float], terms: dict[str, list[float]], names: list[str], thinned: bool) -> str:
    """Draw the named terms on ``ax``; returns how the lines were made (every step, running mean, bin means)."""
    colors = iter(f"C{i}" for i in range(10))
    first_bad: list[float] = []
    window = max(3, len(steps) // 40)
    smooth = not thinned and len(steps) > 60
    marked = 0
    for name in names:
        values = terms[name]
        color = "0.2" if name in TOTALS else next(colors)
        width = 1.2 if name in TOTALS else 1.6
        style = "--" if name in TOTALS else "-"
        count, first = _mark_non_finite(ax, steps, values, color, marked)
        marked += bool(count)
        label = loss_label(name)
        if count:
            label += f"  (× NaN/inf at {count} step{'s' if count > 1 else ''}, first {first:g})"
            first_bad.append(first)
        if smooth:
            ax.plot(steps, values, color=color, lw=0.6, alpha=0.25)
            ax.plot(steps, _running_mean(values, window), color=color, lw=width, ls=style, label=label)
        else:
            ax.plot(steps, values, color=color, lw=width, ls=style, label=label)
    scale = _set_scale(ax, [terms[n] for n in names])
    if any(n in (*D_BASE, *G_BASE) for n in names):
        ax.axhline(EQUILIBRIUM, color="0.5", lw=0.8, ls=":", label="log 2: D cannot tell real from fake")
    if first_bad:
        ax.axvline(min(first_bad), color="red", lw=1, alpha=0.6, label=f"first NaN/inf: step {min(first_bad):g}")
    ax.set_ylabel("loss" + ("" if scale == "linear" else f" ({scale} scale)"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    if smooth:
        return f"running mean of {window} steps; faint: every step"
    return (
        f"means of {len(steps)} bins of ~{(steps[-1] - steps[0]) / max(len(steps) - 1, 1):.0f} steps"
        if thinned
        else "every step"
    )


def _draw_metric(ax, record: dict[str, Any], column: Column | None) -> None:
    curve = [p for p in record.get("curve") or [] if isinstance(p, dict) and "step" in p]
    points = [(float(p["step"]), curve_value(p, column.name)) for p in curve] if column else []
    points = [(s, v) for s, v in points if v is not None]
    if not points:
        why = (
            "no metric column is scored"
            if column is None
            else f"no {column.label} was recorded (the cell {record.get('status', '?')})"
        )
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3")
        ax.set_yticks([])
        return
    steps, values = zip(*points)
    against = f" (reference: {record['reference']})" if record.get("reference") else ""
    ax.plot(steps, values, marker="o", color="C3", lw=1.6, label=f"{column.label}{against}")
    val = [(float(p["step"]), curve_value(p, f"val_{column.name}")) for p in curve]
    val = [(s, v) for s, v in val if v is not None]
    if val:
        ax.plot(*zip(*val), marker="s", ms=4, color="C4", lw=1.2, ls="--", label=f"{column.label} (validation split)")
    best = (min if column.lower_is_better else max)(points, key=lambda p: p[1])
    ax.scatter([best[0]], [best[1]], marker="*", s=160, color="gold", edgecolor="k", zorder=5,
               label=f"best {best[1]:.{column.digits}f} at step {best[0]:g}")  # fmt: skip
    if best != points[-1]:
        ax.annotate(f"final {values[-1]:.{column.digits}f}", (steps[-1], values[-1]), textcoords="offset points",
                    xytext=(-6, 8), ha="right", fontsize=8)  # fmt: skip
    if record.get("selected_step") is not None:
        ax.axvline(float(record["selected_step"]), color="C4", lw=1, ls=":",
                   label=f"selected on validation: step {record['selected_step']}")  # fmt: skip
    if min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")
    ax.set_ylabel(f"{column.label} ({direction(column)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)


def cell_title(record: dict[str, Any]) -> str:
    """What a cell is, in one line: strategy (+ augmentation) on architecture, source → target, shots, seed."""
    r = {k: record.get(k, "?") for k in ("strategy", "arch", "source", "target", "shots", "seed")}
    plus = "" if record.get("augment") in (None, "none") else f" + {record['augment']}"
    return (f"{r['strategy']}{plus} on {r['arch']}: {r['source']} → {r['target']}, {r['shots']} shots, "
            f"seed {r['seed']}")  # fmt: skip


def cell_png(record: dict[str, Any], column: Column | None = None, dpi: int = 110) -> bytes | None:
    """One cell's picture: its loss terms over fine-tuning steps (D's, G's, and strategy terms far off their
    scale on a panel of their own; log scale where sizes span decades; NaN/inf marked with crosses along the
    top and a red line at the first) beside its headline metric (FID, else the first score) at every evaluation,
    x axes shared; ``column`` picks another metric. A record without loss curves gets the metric panel only.
    None when it has neither."""
    steps, terms = loss_series(record)
    column = column or headline_column(metric_columns([record]))
    has_curve = column is not None and any(
        isinstance(p, dict) and curve_value(p, column.name) is not None for p in record.get("curve") or []
    )
    if not terms and not has_curve:
        return None
    plt = pyplot()
    panels = loss_panels(terms)
    status = record.get("status", "?")
    subtitle = f"cell {record.get('cell_id', '?')} · {status if status == 'ok' else status.upper()}"
    subtitle += f" · {record['device']}" if record.get("device") else ""
    if panels:
        rows = max(len(panels), 2)
        fig = plt.figure(figsize=(13, 1.2 + 2.6 * rows), layout="constrained")
        grid = fig.add_gridspec(rows, 2, width_ratios=[1.55, 1])
        loss_axes: list[Any] = []
        for i in range(len(panels)):
            span = grid[i, 0] if i < len(panels) - 1 else grid[i:, 0]  # the last loss panel fills what is left
            loss_axes.append(fig.add_subplot(span, sharex=loss_axes[0] if loss_axes else None))
        metric_ax = fig.add_subplot(grid[:, 1], sharex=loss_axes[0])
        thinned = len(steps) > 1 and (steps[-1] - steps[0]) > len(steps) - 1
        for ax, (title, names) in zip(loss_axes, panels):
            how = _draw_losses(ax, steps, terms, names, thinned)
            ax.set_title(f"{title}  ({how})", fontsize=9, loc="left")
            ax.tick_params(labelbottom=ax is loss_axes[-1])
        loss_axes[-1].set_xlabel("fine-tuning step")
    else:
        fig = plt.figure(figsize=(7.5, 4.8), layout="constrained")
        metric_ax = fig.add_subplot(1, 1, 1)
        subtitle += "\nno loss curves in this record (written before ganbench kept them): the metric only"
    _draw_metric(metric_ax, record, column)
    metric_ax.set_title(f"{column.label if column else 'metric'} at each evaluation", fontsize=9, loc="left")
    metric_ax.set_xlabel("fine-tuning step")
    evaluated = [float(p["step"]) for p in record.get("curve") or [] if isinstance(p, dict) and "step" in p]
    end = max([float(record.get("finetune_steps") or 0), *steps, *evaluated])
    if end > 0:
        metric_ax.set_xlim(0, end * 1.02)
    fig.suptitle(f"{cell_title(record)}\n{subtitle}", fontsize=10, x=0.01, ha="left",
                 color="black" if status == "ok" else "firebrick")  # fmt: skip
    return figure_png(fig, dpi=dpi)


def plot_cell(record: dict[str, Any], path: Path, fix: str | None = None) -> bool:
    """Write :func:`cell_png` to ``path``; False (nothing written) when the record has nothing to draw. A failing
    write is one line naming the path, ending in ``fix`` (what to do) when given."""
    png = cell_png(record)
    if png is None:
        return False
    atomic_write_bytes(path, png, "cell plot", fix)
    return True
