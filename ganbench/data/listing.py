"""What ``ganbench datasets`` does: every dataset with where its data is, and preparing (fetch, decode,
cache) datasets ahead of a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ganbench.context import RunContext, current_context
from ganbench.data.prepare import prepare_dataset, prepared_path
from ganbench.data.roots import DataNotFound
from ganbench.errors import GanbenchError
from ganbench.plugin.options import format_int_set
from ganbench.plugin.registry import Registry


def dataset_rows(registry: Registry, context: RunContext | None = None) -> list[dict[str, Any]]:
    """Every registered dataset at its default options: image count when known, whether it has labels, and
    where its data is (``found``: False, with how to get it, when it is not on this machine)."""
    rows = []
    with (context or current_context()).active():
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


def _check_size(registry: Registry, resolution: int, channels: int) -> None:
    """Refuse, before loading anything, sizes no run could use: channels other than 1 or 3, and a resolution
    no loaded architecture supports (a run at it would be refused)."""
    if channels not in (1, 3):
        raise GanbenchError(f"channels must be 1 (grey) or 3 (RGB), got {channels}; use --channels 1 or 3")
    supported = sorted({r for entry in registry.entries("architecture") for r in entry.cls.resolutions})
    if supported and resolution not in supported:
        raise GanbenchError(
            f"no architecture supports resolution {resolution} (they support {', '.join(map(str, supported))}): "
            "prepare at the --resolution the run will use"
        )


def prepare_datasets(
    specs: Sequence[str], registry: Registry, resolution: int, channels: int, context: RunContext | None = None
) -> list[dict[str, Any]]:
    """Resolve, load and cache each dataset spec at ``resolution`` and ``channels`` (what a run with the same
    settings will find in the cache). Returns what was done for each."""
    ctx = context or current_context()
    _check_size(registry, resolution, channels)
    refs = [registry.resolve("dataset", spec) for spec in specs]  # every spec checked before any loading
    done = []
    for ref in refs:
        path = prepared_path(ref, registry, resolution, channels, ctx)
        cached = path.is_file()
        started = time.perf_counter()
        data = prepare_dataset(ref, registry, resolution, channels, ctx)
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
