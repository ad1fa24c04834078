"""Runs (or resumes) a grid: plan -> reference statistics -> source models -> cells, through an executor.
No click here: the CLI and the Python API both call :func:`run_matrix`.

The driver is the only writer of a run directory: executors return each cell's record and sample grid, and
the driver writes them (record last, atomically) and rebuilds the tables. Pretraining jobs are scheduled
once per key, before the cells that need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ganbench.context import RunContext
from ganbench.data.prepare import PreparedData
from ganbench.execute.cell import CellOutput, failed_output
from ganbench.execute.evaluation import SMALL_REFERENCE, context_for, target_parts
from ganbench.execute.executors import CellDone, Executor, LocalExecutor, PretrainDone, Running, Work
from ganbench.execute.plan import Plan, check_plan, plan_matrix, reference_work
from ganbench.execute.timing import device_name
from ganbench.files import UserFileError, os_cause, show_path, writing
from ganbench.grid.cells import Cell
from ganbench.grid.config import Grid
from ganbench.plugin.manager import describe_failure
from ganbench.store.cache import atomic_write_json
from ganbench.store.locks import FileLock, waiting_line
from ganbench.store.provenance import now, versions
from ganbench.store.records import (
    COMPLETE,
    SCHEMA_VERSION,
    checkpoint_path,
    completed_ids,
    write_record,
    write_tables,
)
from ganbench.store.runs import load_records, refuse_output_inside, set_aside_damaged

LOCK_FILE = ".lock"
TABLES_EVERY_S = 30.0  # results.csv and curves.csv are rebuilt at most this often while a grid runs


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
    on_finish: Callable[[Path, list[dict[str, Any]]], None] | None = None,
    wait: bool | float = False,
) -> RunSummary:
    """Run (or resume) a grid; returns the records of every cell of the grid, old and new. The run context is
    ``context``, else one built from ``cache_dir``, ``device``, ``plugins_dirs``, ``data_roots`` and the
    environment. The run folder is locked while it runs: another process running it makes this one refuse
    (:class:`~ganbench.store.locks.Locked`), or, with ``wait`` (True or seconds), wait for it.

    ``on_record(record)`` is called as each record is written; ``on_finish(run_dir, records)`` once at the end,
    while the run folder is still locked, with the grid's records: what draws the run's pictures (the CLI passes
    one that writes ``curves.png``; the driver itself never imports the report layer)."""
    plan = plan_matrix(grid or Grid(), out, context=context, cache_dir=cache_dir, device=device,
                       plugins_dirs=plugins_dirs, data_roots=data_roots)  # fmt: skip
    refuse_output_inside(out, "--out", cache=plan.context.cache)  # never inside another run folder or the cache
    datasets, provenance = check_plan(plan)
    executor = executor or LocalExecutor()
    run_dir = plan.run_dir
    with _writing(run_dir, "create the run folder"), writing(run_dir, "run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
    unwritable = (f"make the run folder writable to resume it, or read its results with `ganbench leaderboard "
                  f"{show_path(run_dir)}`")  # fmt: skip
    lock = FileLock(run_dir / LOCK_FILE, f"run folder {run_dir}", unwritable=unwritable)
    lock.acquire(wait=wait, on_wait=partial(_say_waiting, progress=progress))
    try:
        task_context = executor.start(plan.context)  # what tasks run under there (e.g. the GPU Ray assigns)
        try:
            return _run_locked(plan, datasets, provenance, executor, task_context, progress, on_record, on_finish)
        finally:
            executor.stop()
    finally:
        lock.release()


def _run_locked(plan: Plan, datasets: dict[str, PreparedData], provenance: dict[str, Any], executor: Executor,
                task_context: RunContext, progress: bool, on_record: Callable[[dict[str, Any]], None] | None,
                on_finish: Callable[[Path, list[dict[str, Any]]], None] | None) -> RunSummary:  # fmt: skip
    run_dir = plan.run_dir
    manifest = _manifest(plan, provenance, executor)
    with _writing(run_dir, "set aside its damaged files"):
        for line in set_aside_damaged(run_dir):  # said whatever --quiet says: files were moved
            tqdm.write(line)
    with _writing(run_dir, "write the manifest"):
        atomic_write_json(run_dir / "manifest.json", manifest, "manifest")
    done = completed_ids(run_dir)
    _tidy(run_dir, done, plan.context)
    pending = [c for c in plan.cells if c.id not in done]
    interrupted = False
    try:
        references = reference_work(plan, datasets)
        for item in references:
            if progress and not item.cached:
                tqdm.write(item.describe())
        setup, blocked = _reference_phase(plan, pending, datasets, progress)
        manifest["evaluation_setup"] = {"reference_images": {w.target: w.images for w in references}, **setup}
        with _writing(run_dir, "write the manifest"):
            atomic_write_json(run_dir / "manifest.json", manifest, "manifest")
        runnable = [c for c in pending if c.id not in blocked]
        tables = _Tables(run_dir)
        for cell in pending:
            if cell.id in blocked:
                _store(run_dir, failed_output(cell, plan.context, blocked[cell.id]), plan.context, executor, tables,
                       on_record)  # fmt: skip
        work = Work(plan.jobs(runnable), [(c, plan.pretrain.get(c.id)) for c in runnable], task_context, run_dir,
                    progress)  # fmt: skip
        _execute(work, executor, len(pending) - len(runnable), progress, tables, on_record)
    except KeyboardInterrupt:
        interrupted = True
    on_disk = load_records(run_dir)
    with _writing(run_dir, "write results.csv and curves.csv"):
        write_tables(run_dir, on_disk)
    records = [r for r in on_disk if r["cell_id"] in {c.id for c in plan.cells}]
    if records and on_finish is not None:
        with _writing(run_dir, "draw the run's pictures"):
            on_finish(run_dir, records)
    manifest.update(
        finished_at=now(), cells=len(plan.cells), complete=len(completed_ids(run_dir)), interrupted=interrupted
    )
    with _writing(run_dir, "write the manifest"):
        atomic_write_json(run_dir / "manifest.json", manifest, "manifest")
    return RunSummary(run_dir, plan.cells, records, skipped=len(plan.cells) - len(pending), interrupted=interrupted)


def _tidy(run_dir: Path, done: set[str], context: RunContext) -> None:
    """What a killed process left: half-written temp files (atomic writes rename only complete files, and with
    the run folder locked nobody is writing them any more), and checkpoints of cells whose record it wrote."""
    for pattern in ("cells/.*.tmp", "samples/.*.tmp", "checkpoints/.*.tmp", ".*.tmp"):
        for path in run_dir.glob(pattern):
            path.unlink(missing_ok=True)
    for cell_id in done:
        _remove_checkpoint(run_dir, cell_id, context)


def _remove_checkpoint(run_dir: Path, cell_id: str, context: RunContext) -> None:
    checkpoint = checkpoint_path(run_dir, cell_id)
    if not context.checkpoint.keep:
        checkpoint.unlink(missing_ok=True)
    checkpoint.with_name(checkpoint.name + ".progress").unlink(missing_ok=True)


def _store(run_dir: Path, output: CellOutput, context: RunContext, executor: Executor, tables: _Tables,
           on_record: Callable[[dict[str, Any]], None] | None) -> None:  # fmt: skip
    """Write one cell's record (samples first, record last); then its checkpoint may go. The tables are
    rebuilt from the records now and then (:class:`_Tables`), and always at the end of the run."""
    record = output.record
    record.setdefault("executor", executor.name)
    with _writing(run_dir, f"write the record of cell {record['cell_id']}"):
        write_record(run_dir, record, output.sample_png)
    tables.written()
    if record["status"] in COMPLETE:
        _remove_checkpoint(run_dir, record["cell_id"], context)
    if on_record:
        on_record(record)


class _Tables:
    """results.csv and curves.csv are rebuilt from every record of the run folder: after a record, at most once
    per :data:`TABLES_EVERY_S` (a grid of hundreds of short cells does not rewrite them per record), and at the
    end of the run. The records themselves are written at once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.last = run_dir, float("-inf")

    def written(self) -> None:
        if time.monotonic() - self.last >= TABLES_EVERY_S:
            with _writing(self.run_dir, "write results.csv and curves.csv"):
                write_tables(self.run_dir, load_records(self.run_dir))
            self.last = time.monotonic()


def _execute(work: Work, executor: Executor, already: int, progress: bool, tables: _Tables,
             on_record: Callable[[dict[str, Any]], None] | None) -> None:  # fmt: skip
    """Run the work through the executor and store what comes back, showing pretraining and cell progress
    (cells running, done and failed across every machine the executor uses)."""
    run_dir, context = work.run_dir, work.context
    trained_now: set[str] = set()
    failed = already
    total = len(work.cells) + already
    jobs_bar = tqdm(total=len(work.jobs), desc="pretrain", disable=not progress or not work.jobs, unit="model")
    cells_bar = tqdm(total=total, initial=already, desc="cells", disable=not progress, unit="cell")
    running = 0

    def show() -> None:
        cells_bar.set_postfix_str(f"running {running}, failed {failed}", refresh=True)

    show()
    try:
        # closing: should storing a result fail (or Ctrl-C land here), the executor cancels what is still running
        with closing(executor.run(work)) as events:
            for event in events:
                if isinstance(event, Running):
                    running = event.cells
                elif isinstance(event, PretrainDone):
                    if event.error is not None:
                        if progress:
                            tqdm.write(event.error)
                    elif not event.info["pretrain_cache_hit"]:
                        trained_now.add(event.key)
                    jobs_bar.update()
                    if jobs_bar.n == jobs_bar.total:
                        jobs_bar.close()  # every source model is there: only the cells' bar goes on
                else:
                    blocked = not isinstance(event, CellDone)
                    output = failed_output(event.cell, context, event.reason) if blocked else event.output
                    if output.record.get("pretrain_key") in trained_now:
                        output.record["pretrain_cache_hit"] = False  # this run paid for its source model
                    _store(run_dir, output, context, executor, tables, on_record)
                    failed += output.record["status"] != "ok"
                    cells_bar.update()
                show()
    finally:
        jobs_bar.close()
        cells_bar.close()


@contextmanager
def _writing(run_dir: Path, what: str) -> Iterator[None]:
    """A failing write (read-only folder, full disk) stops the run in one line naming the file and the cause;
    what is already written stays, and rerunning the same command resumes."""
    resume = "then rerun the same command to continue (the records already written are kept)"
    try:
        yield
    except UserFileError as exc:  # worded where it failed: the file, the cause, what to do
        raise UserFileError(f"{exc}, {resume}", exc.path) from None
    except OSError as exc:
        where = f" ({show_path(exc.filename)})" if exc.filename and Path(exc.filename) != run_dir else ""
        raise UserFileError(
            f"could not {what} in {show_path(run_dir)}{where}: {os_cause(exc)}; free space or fix the folder's "
            f"permissions, {resume}",
            exc.filename,
        ) from None


def _say_waiting(holder: dict[str, Any], *, progress: bool) -> None:
    """``--wait``: whom this process waits for, and since when (it waits as long as that one runs; Ctrl-C or
    SIGTERM stop the wait)."""
    if progress:
        tqdm.write(waiting_line(holder, "this grid", "running"))


def _reference_phase(
    plan: Plan, cells: list[Cell], datasets: dict[str, PreparedData], progress: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Reference features of every target, once, before any cell (cached by content), and every metric's
    models loaded and warmed up: what the manifest says evaluation cost before the first cell. Returns that
    account and the cells that cannot run (cell id -> one line: a metric's reference or warm-up failed)."""
    setup: dict[str, Any] = {"reference_s": 0.0, "warm_up_s": 0.0, "warnings": []}
    runnable = [c for c in cells if not c.broken]
    pairs = {(c.target, c.protocol, m) for c in runnable for m in c.metrics}
    no_shots = torch.zeros(0, dtype=torch.long)
    warned: set[str] = set()
    failed: dict[tuple, str] = {}
    with plan.context.active():
        for target, protocol, metric_spec in sorted(pairs, key=repr):
            data = datasets[target]
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
            error = _plugin_call(plan, metric_spec, partial(_reference, ctx=ctx), f"reference statistics of {target}")
            setup["reference_s"] += time.perf_counter() - start
            if error:
                failed[(target, protocol, metric_spec)] = error
        for metric_spec in sorted({m for c in runnable for m in c.metrics}):
            start = time.perf_counter()
            error = _plugin_call(plan, metric_spec, lambda m: m.warm_up(plan.device, plan.context.cache), "warm-up")
            setup["warm_up_s"] += time.perf_counter() - start
            if error:
                failed[metric_spec] = error
    blocked = {}
    for cell in runnable:
        for m in cell.metrics:
            reason = failed.get((cell.target, cell.protocol, m)) or failed.get(m)
            if reason:
                blocked[cell.id] = reason
                break
    for reason in dict.fromkeys(failed.values()):
        setup["warnings"].append(reason)
        if progress:
            tqdm.write(f"error: {reason}")
    return setup, blocked


def _reference(metric: Any, ctx: Any) -> None:
    metric.reference(ctx)


def _plugin_call(plan: Plan, spec: str, call: Callable[[Any], Any], what: str) -> str | None:
    """Run ``call(metric)``; a failure is one line naming the metric (and its plugin's origin), never a raise."""
    try:
        call(plan.registry.create(plan.registry.resolve("metric", spec)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        return f"metric {spec}: {what} failed: {describe_failure(exc, plan.context)}"
    return None


def _manifest(plan: Plan, provenance: dict[str, Any], executor: Executor) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": plan.run_dir.name,
        "grid": asdict(plan.grid),
        "cell_ids": [c.id for c in plan.cells],
        "device": device_name(plan.device),
        "executor": describe_executor(executor),
        "git_revision": plan.context.git_revision,
        "context": plan.context.describe(),
        "plugins": [{"kind": e.kind, "name": e.name, "origin": str(e.origin)} for e in plan.registry.entries()],
        "started_at": now(),
        **versions(),
        **provenance,
    }


def describe_executor(executor: Executor) -> dict[str, Any]:
    """The executor and its settings, for the manifest."""
    settings = {f.name: getattr(executor, f.name) for f in fields(executor) if f.init} if is_dataclass(executor) else {}
    return {"name": executor.name, **settings}
