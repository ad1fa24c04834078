"""Runs (or resumes) a grid: plan -> reference statistics -> source models -> cells, through an executor.
No click here: the CLI and the Python API both call :func:`run_matrix`.

The driver is the only writer of a run directory: executors return each cell's record and sample grid, and
the driver writes them (record last, atomically) and rebuilds the tables. Pretraining jobs are scheduled
once per key, before the cells that need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ganbench.data.prepare import PreparedData
from ganbench.execute.cell import CellOutput, run_cell
from ganbench.execute.context import RunContext
from ganbench.execute.evaluation import SMALL_REFERENCE, context_for, target_parts
from ganbench.execute.executors import Executor, LocalExecutor
from ganbench.execute.plan import Plan, check_plan, plan_matrix, reference_work
from ganbench.execute.pretrain import PretrainJob, ensure_pretrained
from ganbench.execute.timing import device_name
from ganbench.grid.cells import Cell
from ganbench.grid.config import Grid
from ganbench.report.plots import plot_curves
from ganbench.store.cache import atomic_write_json
from ganbench.store.provenance import now, versions
from ganbench.store.records import SCHEMA_VERSION, completed_ids, write_record, write_tables
from ganbench.store.runs import load_records


@dataclass
class RunSummary:
    run_dir: Path
    cells: list[Cell]
    records: list[dict[str, Any]]
    skipped: int
    interrupted: bool = False

    @property
    def failed(self) -> list[dict[str, Any]]:
        ids = {c.id for c in self.cells}
        return [r for r in self.records if r["cell_id"] in ids and r["status"] != "ok"]


def run_matrix(
    grid: Grid | None = None,
    out: str | Path = "results/runs",
    *,
    context: RunContext | None = None,
    cache_dir=None,
    device: str = "auto",
    plugins_dirs: Iterable[str] = (),
    data_roots: Iterable[str] = (),
    executor: Executor | None = None,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Run (or resume) a grid; returns the records of every cell of the grid, old and new. The run context is
    ``context``, else one built from ``cache_dir``, ``device``, ``plugins_dirs``, ``data_roots`` and the
    environment."""
    plan = plan_matrix(grid or Grid(), out, context=context, cache_dir=cache_dir, device=device,
                       plugins_dirs=plugins_dirs, data_roots=data_roots)  # fmt: skip
    datasets, provenance = check_plan(plan)
    executor = executor or LocalExecutor()
    run_dir = plan.run_dir
    manifest = _manifest(plan, provenance)
    atomic_write_json(run_dir / "manifest.json", manifest)
    done = completed_ids(run_dir)
    pending = [c for c in plan.cells if c.id not in done]
    interrupted = False
    try:
        work = reference_work(plan, datasets)
        for item in work:
            if progress and not item.cached:
                tqdm.write(item.describe())
        manifest["evaluation_setup"] = {
            "reference_images": {w.target: w.images for w in work},
            **_reference_phase(plan, pending, datasets, progress),
        }
        atomic_write_json(run_dir / "manifest.json", manifest)
        trained_now = _pretrain_phase(plan, plan.jobs(pending), executor, progress)
        cell_task = partial(_run_planned_cell, context=plan.context, progress=progress)
        bar = tqdm(total=len(pending), desc="cells", disable=not progress, unit="cell")
        for output in executor.map(cell_task, [(c, plan.pretrain.get(c.id)) for c in pending]):
            if output.record.get("pretrain_key") in trained_now:
                output.record["pretrain_cache_hit"] = False
            write_record(run_dir, output.record, output.sample_png)
            write_tables(run_dir, load_records(run_dir))
            bar.update()
            if on_record:
                on_record(output.record)
        bar.close()
    except KeyboardInterrupt:
        interrupted = True
    on_disk = load_records(run_dir)
    write_tables(run_dir, on_disk)
    records = [r for r in on_disk if r["cell_id"] in {c.id for c in plan.cells}]
    if records:
        plot_curves(records, run_dir / "curves.png")
    manifest.update(
        finished_at=now(), cells=len(plan.cells), complete=len(completed_ids(run_dir)), interrupted=interrupted
    )
    atomic_write_json(run_dir / "manifest.json", manifest)
    return RunSummary(run_dir, plan.cells, records, skipped=len(plan.cells) - len(pending), interrupted=interrupted)


def _run_planned_cell(task: tuple[Cell, PretrainJob | None], *, context: RunContext, progress: bool) -> CellOutput:
    cell, job = task
    return run_cell(cell, context, job, progress)


def _pretrain_phase(plan: Plan, jobs: list[PretrainJob], executor: Executor, progress: bool) -> set[str]:
    """Every source model the pending cells need, once each; returns the keys trained by this invocation
    (their cells report ``pretrain_cache_hit=False``: this run paid for them)."""
    trained_now = set()
    task = partial(ensure_pretrained, context=plan.context, progress=progress)
    bar = tqdm(total=len(jobs), desc="pretrain", disable=not progress or not jobs, unit="model")
    for _, info in executor.map(task, jobs):
        if not info["pretrain_cache_hit"]:
            trained_now.add(info["pretrain_key"])
        bar.update()
    bar.close()
    return trained_now


def _reference_phase(
    plan: Plan, cells: list[Cell], datasets: dict[str, PreparedData], progress: bool
) -> dict[str, Any]:
    """Reference features of every target, once, before any cell (cached by content), and every metric's
    models loaded and warmed up: what the manifest says evaluation cost before the first cell."""
    setup: dict[str, Any] = {"reference_s": 0.0, "warm_up_s": 0.0, "warnings": []}
    pairs = {(c.target, c.protocol, m) for c in cells if not c.broken for m in c.metrics}
    no_shots = torch.zeros(0, dtype=torch.long)
    warned: set[str] = set()
    with plan.context.active():
        for target, protocol, metric_spec in sorted(pairs, key=repr):
            data = datasets[target]
            metric = plan.registry.create(plan.registry.resolve("metric", metric_spec))
            parts = target_parts(protocol, data, no_shots)
            n_ref = len(parts.index["reference"])
            if n_ref < SMALL_REFERENCE and target not in warned:
                warned.add(target)
                setup["warnings"].append(
                    f"the reference of {target} holds {n_ref} images, fewer than {SMALL_REFERENCE}: FID's covariance "
                    "estimate is rank-deficient there, so compare FIDs only at equal reference and sample counts"
                )
                if progress:
                    tqdm.write(f"warning: {setup['warnings'][-1]}")
            ctx = context_for(parts, data.images[:0], plan.device, plan.context.cache, progress=progress)
            start = time.perf_counter()
            metric.reference(ctx)
            setup["reference_s"] += time.perf_counter() - start
        for metric_spec in sorted({m for c in cells if not c.broken for m in c.metrics}):
            metric = plan.registry.create(plan.registry.resolve("metric", metric_spec))
            start = time.perf_counter()
            metric.warm_up(plan.device, plan.context.cache)
            setup["warm_up_s"] += time.perf_counter() - start
    return setup


def _manifest(plan: Plan, provenance: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": plan.run_dir.name,
        "grid": asdict(plan.grid),
        "cell_ids": [c.id for c in plan.cells],
        "device": device_name(plan.device),
        "git_revision": plan.context.git_revision,
        "context": plan.context.describe(),
        "plugins": [{"kind": e.kind, "name": e.name, "origin": str(e.origin)} for e in plan.registry.entries()],
        "started_at": now(),
        **versions(),
        **provenance,
    }
