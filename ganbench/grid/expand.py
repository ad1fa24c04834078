"""A :class:`~ganbench.grid.config.Grid` expanded into its cells: every spec resolved through the registry,
so bad names, options and resolutions fail before anything runs; and the run id of the grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ganbench.errors import GanbenchError
from ganbench.grid.cells import Cell
from ganbench.grid.config import Grid
from ganbench.grid.sources import is_checkpoint_spec, parse_checkpoint_spec
from ganbench.plugin.registry import BrokenPluginError, Registry
from ganbench.store.cache import stable_hash


@dataclass(frozen=True)
class _Spec:
    """A spec resolved for a cell: canonical text, display label, and why it is unusable (if it is)."""

    canonical: str
    label: str
    name: str
    broken: str | None = None


def _resolve(registry: Registry, kind: str, text: str) -> _Spec:
    try:
        ref = registry.resolve(kind, text)
    except BrokenPluginError as exc:  # only the cells using this plugin fail; the grid goes on
        return _Spec(text, text, text.partition(":")[0], str(exc))
    return _Spec(ref.canonical, ref.label, ref.name)


def _resolve_source(registry: Registry, text: str) -> tuple[_Spec, str | None]:
    """A source: a dataset, or a checkpoint file (``checkpoint:path=FILE``, keyed by its sha256)."""
    if is_checkpoint_spec(text):
        spec = parse_checkpoint_spec(text)
        return _Spec(spec.canonical, spec.label, "checkpoint"), spec.path
    return _resolve(registry, "dataset", text), None


def expand(grid: Grid, registry: Registry) -> list[Cell]:
    """Every cell of the grid, with specs resolved: unknown names, options and values fail here, before
    anything runs; a plugin that failed to load only marks the cells that use it as broken."""
    archs = [_resolve(registry, "architecture", a) for a in grid.arch]
    strategies = [_resolve(registry, "strategy", s) for s in grid.strategies()]
    resolved = {s: _resolve_source(registry, s) for s in dict.fromkeys(s for s, _ in grid.pair_list())}
    pairs = [(resolved[s][0], _resolve(registry, "dataset", t)) for s, t in grid.pair_list()]
    files = {spec.canonical: path for spec, path in resolved.values() if path}
    augments = [_resolve(registry, "augmentation", a) for a in grid.augment]
    metrics = [_resolve(registry, "metric", m) for m in grid.metrics]
    for arch in archs:
        supported = () if arch.broken else registry.get("architecture", arch.name).cls.resolutions
        if not arch.broken and grid.resolution not in supported:
            raise GanbenchError(
                f"architecture '{arch.name}' supports resolutions {', '.join(map(str, supported))}, not {grid.resolution}; "
                "set --resolution to one of them"
            )
    budget = grid.budget()
    metric_specs = tuple(m.canonical for m in metrics)
    metric_broken = next((m.broken for m in metrics if m.broken), None)
    cells: list[Cell] = []
    for arch, (source, target), shots, seed, augment, strategy in itertools.product(
        archs, pairs, grid.shots, grid.seeds, augments, strategies
    ):
        specs = {"arch": arch, "strategy": strategy, "source": source, "target": target, "augment": augment}
        broken = next((sp.broken for sp in specs.values() if sp.broken), metric_broken)
        cells.append(
            Cell(arch.canonical, strategy.canonical, source.canonical, target.canonical, shots, seed,
                 grid.resolution, grid.channels, budget, metric_specs, augment.canonical, grid.protocol(), grid.recipe(),
                 labels={k: sp.label for k, sp in specs.items()}, broken=broken,
                 source_file=files.get(source.canonical))
        )  # fmt: skip
    return list({c.id: c for c in cells}.values())  # "freeze-d" and "freeze-d:layers=2" are one cell


def run_id(grid: Grid, cells: list[Cell]) -> str:
    """Stable for the same grid: running the same command again finds (and resumes) the same directory."""
    return f"{grid.name}-{stable_hash(sorted(c.id for c in cells))[:8]}"
