"""What ``ganbench datasets`` does: list every dataset with where its data is, and prepare (fetch, decode,
cache) datasets ahead of a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ganbench.data import prepare_dataset, prepared_path
from ganbench.dataroots import DataNotFound, data_roots, using_cache
from ganbench.registry import Registry, format_int_set


def dataset_rows(registry: Registry, cache_dir=None) -> list[dict[str, Any]]:
    """Every registered dataset at its default options: image count when known, whether it has labels, and
    where its data is (``found``: False, with how to get it, when it is not on this machine)."""
    rows = []
    with using_cache(cache_dir):
        for entry in registry.entries("dataset"):
            dataset = entry.cls()
            try:
                where, found = dataset.locate(), True
            except DataNotFound as exc:
                where, found = f"not found ({exc.hint})", False
            try:
                size = dataset.size_hint()
            except DataNotFound:
                size = None
            rows.append(
                {
                    "name": entry.name,
                    "images": size,
                    "labels": bool(entry.cls.has_labels),
                    "found": found,
                    "where": "built in" if where is None else where,
                    "description": entry.description,
                    "origin": str(entry.origin),
                }
            )
    return rows


def rows_text(rows: list[dict[str, Any]]) -> str:
    headers = ["dataset", "images", "labels", "data"]
    table = [
        [r["name"], "-" if r["images"] is None else f"{r['images']:,}", "yes" if r["labels"] else "no", r["where"]]
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i == 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(t) for t in table)]
    lines.append(f"\nData roots, in order: {', '.join(str(r) for r in data_roots())}")
    return "\n".join(lines)


def prepare(
    specs: Sequence[str], registry: Registry, resolution: int, channels: int, cache_dir=None
) -> list[dict[str, Any]]:
    """Resolve, load and cache each dataset spec at ``resolution`` and ``channels`` (what a run with the same
    settings will find in the cache). Returns what was done for each."""
    refs = [registry.resolve("dataset", spec) for spec in specs]  # every spec checked before any loading
    done = []
    for ref in refs:
        path = prepared_path(ref, registry, resolution, channels, cache_dir)
        cached = path.is_file()
        started = time.perf_counter()
        data = prepare_dataset(ref, registry, resolution, channels, cache_dir)
        classes = sorted(set(data.labels.tolist())) if data.labels is not None else []
        done.append(
            {
                "dataset": ref.label,
                "images": len(data),
                "shape": list(data.images.shape[1:]),
                "classes": format_int_set(classes) if classes else "",
                "cache_file": str(path),
                "was_cached": cached,
                "seconds": round(time.perf_counter() - started, 2),
                "provenance": data.provenance,
            }
        )
    return done


def prepared_text(item: dict[str, Any]) -> str:
    c, h, w = item["shape"]
    classes = f", classes {item['classes']}" if item["classes"] else ""
    how = "already cached" if item["was_cached"] else f"prepared in {item['seconds']:.1f} s"
    lines = [f"{item['dataset']}: {item['images']:,} images ({c}x{h}x{w}{classes}), {how} -> {item['cache_file']}"]
    for key, value in sorted(item["provenance"].items()):
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)
