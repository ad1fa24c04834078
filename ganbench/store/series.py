"""What a record's curves and loss curves hold, as series: a curve point's metric value, and the loss terms of
``losses`` as (steps, {term: values}) in reading order. No drawing and no text here: the plots and the
terminal views both read records through these."""

from __future__ import annotations

import math
from typing import Any

# The adversarial terms of each side and the sides' totals; every other ``d_*`` / ``g_*`` term is a strategy's.
D_BASE, G_BASE, TOTALS = ("d_real", "d_fake"), ("g_adv",), ("d_total", "g_total")


def curve_value(point: dict[str, Any], name: str) -> float | None:
    """A curve point's value of the metric column ``name`` as a float; None when missing or not finite."""
    value = point.get(name)
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _floats(values: Any) -> list[float]:
    """A record's list of numbers as floats; anything that is not a number (null, text) is NaN."""
    out = []
    for v in values if isinstance(values, list) else []:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def loss_series(record: dict[str, Any]) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {term: values}) of a record's ``losses``, each list as long as the steps; empty when it has none.
    Terms in reading order: D's (real, fake, strategy terms, total), then G's (adversarial, terms, total)."""
    losses = record.get("losses")
    if not isinstance(losses, dict):
        return [], {}
    terms = {name: _floats(v) for name, v in losses.items() if name != "step" and isinstance(v, list) and v}
    n = max((len(v) for v in terms.values()), default=0)
    if n == 0:
        return [], {}
    steps = _floats(losses.get("step"))
    if len(steps) != n:
        steps = [float(s) for s in range(1, n + 1)]
    terms = {name: v + [math.nan] * (n - len(v)) for name, v in terms.items()}

    def order(name: str) -> tuple:
        side = 0 if name.startswith("d_") else 1 if name.startswith("g_") else 2
        place = 0 if name in (*D_BASE, *G_BASE) else 2 if name in TOTALS else 1
        base = (*D_BASE, *G_BASE)
        return side, place, base.index(name) if name in base else 0, name

    return steps, {name: terms[name] for name in sorted(terms, key=order)}
