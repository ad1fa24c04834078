"""Pictures of a run: FID against fine-tuning step, one panel per (architecture, pair, shots)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ganbench.cache import atomic_write_bytes


def plot_curves(records: list[dict[str, Any]], path: Path, metric: str = "fid") -> bool:
    """One line per cell (strategy, seed). Returns False when no record has a curve to draw."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.get("status") == "ok" and any(metric in p for p in r.get("curve", [])):
            panels[(r["arch"], r["source"], r["target"], r["shots"])].append(r)
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, ((arch, source, target, shots), rows) in zip(axes[0], sorted(panels.items())):
        for r in sorted(rows, key=lambda r: (r["strategy"], r["seed"])):
            steps = [p["step"] for p in r["curve"] if metric in p]
            values = [p[metric] for p in r["curve"] if metric in p]
            ax.plot(steps, values, marker="o", label=f"{r['strategy']} (seed {r['seed']})")
        ax.set_title(f"{arch}: {source} → {target}, {shots} shots", fontsize=9)
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel(metric.upper())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return True
