"""Executors decide where tasks run, nothing else.

The driver hands an executor a :class:`Work`: the source models to pretrain and the cells, each cell with the
job of the source model it needs. The executor runs them (a cell only once its source model exists; a cell
whose source model failed is not run but reported as :class:`CellBlocked`) and yields what finishes, as it
finishes. It never writes the run folder: the driver stores every result.

:class:`LocalExecutor` runs everything one after another in this process (the default; needs nothing).
:class:`~ganbench.execute.ray_executor.RayExecutor` runs tasks on a Ray cluster.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ganbench.context import RunContext
from ganbench.execute.cell import CellOutput, run_cell
from ganbench.execute.pretrain import PretrainJob, pretrain_task
from ganbench.grid.cells import Cell
from ganbench.store.records import checkpoint_path


@dataclass(frozen=True)
class Work:
    """What the driver hands an executor."""

    #: distinct source models to pretrain, in the order cells first need them
    jobs: list[PretrainJob]
    #: the cells to run, each with the job of its source model (None: the strategy uses none)
    cells: list[tuple[Cell, PretrainJob | None]]
    context: RunContext
    run_dir: Path
    progress: bool = True


@dataclass
class PretrainDone:
    key: str
    info: dict[str, Any] | None  # pretrain_s, pretrain_cache_hit, pretrain_key; None when it failed
    error: str | None  # one line naming the architecture and source; None when it succeeded


@dataclass
class CellDone:
    output: CellOutput


@dataclass
class CellBlocked:
    """A cell that was not run because its source model failed (``reason`` says which and why)."""

    cell: Cell
    reason: str


@dataclass
class Running:
    """How many cells are training right now (executors that run several at once say so as it changes)."""

    cells: int


Event = PretrainDone | CellDone | CellBlocked | Running


class Executor(Protocol):
    #: recorded in every record's ``executor`` column
    name: str

    def context_for(self, context: RunContext) -> RunContext:
        """The context the tasks run under, given the planner's (raises GanbenchError for a bad combination)."""

    def start(self, context: RunContext) -> RunContext:
        """Get ready to run (connect to a cluster, check its resources); returns :meth:`context_for`'s context."""

    def stop(self) -> None:
        """Release what :meth:`start` took."""

    def run(self, work: Work) -> Iterator[Event]:
        """Run ``work``'s jobs and cells, yielding a :class:`PretrainDone` per job and a :class:`CellDone` or
        :class:`CellBlocked` per cell, as they finish. Must not raise for a failing task."""


def this_host() -> str:
    return socket.gethostname()


def run_one_cell(cell: Cell, job: PretrainJob | None, context: RunContext, run_dir: Path, progress: bool) -> CellOutput:
    """Run a cell with its checkpoint in the run folder, and say where it ran (host, threads)."""
    output = run_cell(cell, context, job, progress, checkpoint=checkpoint_path(run_dir, cell.id))
    output.record.update(host=this_host(), threads=torch.get_num_threads())
    return output


@dataclass(frozen=True)
class LocalExecutor:
    """Everything one after another in this process: source models first, then the cells. ``threads``: the
    CPU threads torch uses meanwhile (default: as it is; on the CPU the last digits of a result depend on it)."""

    threads: int | None = None

    name = "local"

    def context_for(self, context: RunContext) -> RunContext:
        return context

    def start(self, context: RunContext) -> RunContext:
        return context

    def stop(self) -> None:
        pass

    def run(self, work: Work) -> Iterator[Event]:
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            yield from self._run(work)
        finally:
            torch.set_num_threads(before)

    def _run(self, work: Work) -> Iterator[Event]:
        failed: dict[str, str] = {}
        for job in work.jobs:
            key, info, error = pretrain_task(job, work.context, work.progress)
            if error is not None:
                failed[key] = error
            yield PretrainDone(key, info, error)
        for cell, job in work.cells:
            if job is not None and job.key in failed:
                yield CellBlocked(cell, failed[job.key])
                continue
            yield Running(1)
            output = run_one_cell(cell, job, work.context, work.run_dir, work.progress)
            output.record["device_shared_by"] = 1  # one cell at a time
            yield CellDone(output)
        yield Running(0)
