"""Pretraining jobs and cells as Ray tasks, on this machine or across a cluster (``--executor ray``).

Scheduling follows the dependencies, with no barrier: every pretraining job is submitted at once; a cell is
submitted as soon as its source model exists (cells of strategies that need none, at once), and a cell whose
source model failed is reported blocked without running. ``max_concurrent`` caps the tasks in flight; Ray's
resource accounting (``cpus_per_cell``, ``gpus_per_cell``; fractions pack several cells onto one GPU) decides
where and when each one starts. Results come back to the driver as they finish; the driver alone writes.

Tasks carry only small values (the cell, its job, the run context); datasets, weights and reference
statistics are read by the workers from the run context's cache, which like the run folder must lie on storage
every node sees. Each task first checks that it sees both (a token the driver wrote), and fails its cell with
one line naming the path and the host otherwise. A small actor, the device ledger, counts the cells running on
each (host, device) pair, so that every record says how many cells shared its device while it ran.

Connecting is bounded: a ``HOST:PORT`` where nothing listens is refused in one line after a plain TCP probe
(before Ray is asked, whose own client would retry for many minutes), and ``ray.init`` itself runs in a helper
thread that the driver waits on for ``connect_timeout`` seconds at most (``--ray-timeout``), so a server that
accepts but never answers is refused too, and SIGTERM or Ctrl-C stop the wait at once.
"""

from __future__ import annotations

import atexit
import contextlib
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ganbench.context import RunContext, resolve_device
from ganbench.errors import GanbenchError, one_line
from ganbench.execute.cell import CellOutput
from ganbench.execute.executors import (
    CellBlocked,
    CellDone,
    Event,
    PretrainDone,
    Running,
    Work,
    run_one_cell,
    this_host,
)
from ganbench.execute.pretrain import PretrainJob, pretrain_task
from ganbench.grid.cells import Cell, cell_fields
from ganbench.net import connect_problem
from ganbench.plugin.manager import load_registry
from ganbench.store.provenance import now

RAY_MISSING = "the ray executor needs Ray, which is not installed: pip install 'ganbench[ray]'"
PROBE = ".shared-check"  # in the run folder, and (one per run) in the cache root's PROBE folder
POLL_S = 1.0  # how often the driver looks at the cluster while waiting for results
CONNECT_TIMEOUT_S = 60.0  # ray.init may take this long to join a cluster (--ray-timeout)
PROBE_TIMEOUT_S = 3.0  # the TCP probe of --ray-address HOST:PORT before Ray is asked


def import_ray():
    try:
        import ray
    except ImportError:
        raise GanbenchError(RAY_MISSING) from None
    return ray


@dataclass
class RayExecutor:
    """Run a grid's tasks on a Ray cluster.

    ``address``: None joins the Ray cluster ``ray start`` runs on this machine, or else starts one for the run
    (and stops it after); ``"auto"`` joins the cluster running here, and fails without one; ``"HOST:PORT"``
    joins that one. When Ray is already
    initialised in this process, that cluster is used as it is. ``cpus_per_cell``: the CPUs Ray reserves for
    each task, and the threads a CPU cell uses. ``gpus_per_cell``: the GPUs it reserves (0.25 packs four cells
    onto a GPU). ``max_concurrent``: at most this many tasks in flight (default: as many as the resources allow).
    ``connect_timeout``: seconds joining a cluster may take before the run is refused (starting one here is not
    bounded: Ray must do that in the main thread).
    """

    address: str | None = None
    cpus_per_cell: int = 1
    gpus_per_cell: float = 0.0
    max_concurrent: int | None = None
    connect_timeout: float = CONNECT_TIMEOUT_S

    name = "ray"
    _stop_ray: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.cpus_per_cell, int) or self.cpus_per_cell < 1:
            raise GanbenchError(f"--cpus-per-cell must be a whole number of at least 1, not {self.cpus_per_cell!r}")
        gpus = self.gpus_per_cell
        if gpus < 0 or (gpus > 1 and gpus != int(gpus)):
            raise GanbenchError(
                f"--gpus-per-cell must be 0, a fraction of one GPU (0.25 packs four cells onto a GPU) or a whole "
                f"number, not {gpus!r}"
            )
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise GanbenchError(f"--max-concurrent must be at least 1, not {self.max_concurrent!r}")
        if not 0 < self.connect_timeout < 1e6:  # nor NaN, nor infinite (a wait has an end)
            raise GanbenchError(
                f"--ray-timeout must be a finite number of seconds above 0, not {self.connect_timeout!r}"
            )

    def context_for(self, context: RunContext) -> RunContext:
        """The context tasks run under: with GPUs reserved, cells use the GPU Ray gives them (``cuda``)."""
        if self.gpus_per_cell > 0:
            if context.device.startswith("cuda:"):
                raise GanbenchError(
                    f"--device {context.device} names one GPU, but with --executor ray Ray assigns the GPUs: "
                    "use --device cuda"
                )
            return context.replace(device="cuda")
        if context.device.startswith("cuda"):
            raise GanbenchError(
                "--device cuda with --executor ray needs --gpus-per-cell (1, or a fraction such as 0.25): Ray "
                "shows a task only the GPUs it reserved for it"
            )
        return context

    def start(self, context: RunContext) -> RunContext:
        """Connect to the cluster (or start one here) and check that it can hold a task."""
        ray = import_ray()
        if not ray.is_initialized():
            self._connect(ray)
            self._stop_ray = True
        try:
            self._check_resources(ray)
            return self.context_for(context)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Disconnect, and stop the cluster if :meth:`start` started it; a Ray initialised before is left as it was."""
        if self._stop_ray:
            import_ray().shutdown()
            self._stop_ray = False

    def run(self, work: Work) -> Iterator[Event]:
        ray = import_ray()
        probe = SharedProbe.write(work.context, work.run_dir)
        try:
            yield from _Schedule(ray, self, work, probe.token).events()
        finally:
            probe.remove()

    def _connect(self, ray) -> None:
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": True}
        self._probe()
        # ray.init replaces this process's SIGTERM handler with its own (a bare sys.exit): ganbench's, which
        # interrupts the run as Ctrl-C does (tasks cancelled, resumable), is put back
        on_sigterm = signal.getsignal(signal.SIGTERM)
        try:
            if self.address is None:  # may start a cluster, which Ray does only in the main thread
                ray.init(**options)
            else:
                self._bounded(lambda: ray.init(address=self.address, **options))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "here" if self.address is None else f"at {self.address}"
            hint = ("start one with 'ray start --head', or leave out --ray-address to start one for this run"
                    if self.address else "check that Ray works on this machine ('ray start --head')")  # fmt: skip
            raise GanbenchError(f"could not connect to a Ray cluster {where} ({one_line(str(exc))}); {hint}") from None
        finally:
            if on_sigterm is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, on_sigterm)

    def _probe(self) -> None:
        """An explicit HOST:PORT where nothing listens is refused in one line, before Ray retries for minutes."""
        if self.address in (None, "auto"):
            return
        host, sep, port = self.address.split("://")[-1].rpartition(":")
        if not sep or not port.isdigit():
            return  # not HOST:PORT: Ray's own refusal says what is wrong with it
        problem = connect_problem(host.strip("[]"), int(port), min(PROBE_TIMEOUT_S, self.connect_timeout))
        if problem is not None:
            raise GanbenchError(
                f"no Ray cluster answers at {self.address} ({problem}); start one with 'ray start --head' there, "
                "or check --ray-address"
            )

    def _bounded(self, connect) -> None:
        """Run ``connect()`` (a ``ray.init`` joining a cluster) in a helper thread, waiting at most
        ``connect_timeout`` seconds: ray.init blocks in C++, where a signal would wait for it, while the main
        thread only waits here and so stays interruptible. A helper still connecting when the wait ends (timed
        out, or interrupted) is left behind: a daemon thread never holds the process up, and Ray's exit hook, which
        would wait for it, is unhooked."""
        outcome: list[BaseException | None] = []

        def attempt() -> None:
            try:
                connect()
                outcome.append(None)
            except BaseException as exc:  # handed to the main thread
                outcome.append(exc)

        thread = threading.Thread(target=attempt, name="ganbench-ray-connect", daemon=True)
        thread.start()
        try:
            thread.join(self.connect_timeout)
        finally:
            if thread.is_alive():
                with contextlib.suppress(Exception):
                    atexit.unregister(import_ray().shutdown)
        if not outcome:
            if self.address == "auto":
                what, check = "the Ray cluster running here (--ray-address auto)", "check it with 'ray status'"
            else:
                what = f"the Ray cluster at {self.address} accepted a connection but"
                check = "check that it is a Ray head's address ('ray start --head' prints it; port 6379 by default)"
            raise GanbenchError(
                f"{what} did not answer within {self.connect_timeout:g} s; {check} and that the head is not "
                "overloaded, or wait longer with --ray-timeout SECONDS"
            )
        if outcome[0] is not None:
            raise outcome[0]

    def _check_resources(self, ray) -> None:
        """A task that no node can hold would wait forever: refuse up front instead."""
        resources = ray.cluster_resources()
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        if cpus < self.cpus_per_cell:
            raise GanbenchError(
                f"the Ray cluster has {cpus:g} CPUs, fewer than --cpus-per-cell {self.cpus_per_cell}; "
                "lower --cpus-per-cell or add nodes"
            )
        if gpus < self.gpus_per_cell:
            raise GanbenchError(
                f"the Ray cluster has {gpus:g} GPUs, fewer than --gpus-per-cell {self.gpus_per_cell:g}; "
                "start the workers on GPU nodes ('ray start --address=... --num-gpus=N') or use --gpus-per-cell 0"
            )


class _Schedule:
    """One run's tasks on the cluster: submission in dependency order, results as they come, cancellation."""

    def __init__(self, ray, executor: RayExecutor, work: Work, token: str) -> None:
        self.ray, self.executor, self.work, self.token = ray, executor, work, token
        self.ready: deque[tuple[str, Any]] = deque(("job", job) for job in work.jobs)
        self.waiting: dict[str, list[tuple[Cell, PretrainJob]]] = {}
        for cell, job in work.cells:
            if job is None:
                self.ready.append(("cell", (cell, None)))
            else:
                self.waiting.setdefault(job.key, []).append((cell, job))
        self.in_flight: dict[Any, tuple[str, Any]] = {}

    def events(self) -> Iterator[Event]:
        ray, ex = self.ray, self.executor
        options = {"num_cpus": ex.cpus_per_cell, "num_gpus": ex.gpus_per_cell, "max_retries": 0}
        self.pretrain = ray.remote(pretrain_on_worker).options(**options)
        self.cell = ray.remote(cell_on_worker).options(**options)
        self.ledger = ray.remote(DeviceLedger).options(num_cpus=0).remote()
        running = None
        try:
            while self.ready or self.in_flight:
                self._submit()
                done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=POLL_S)
                for ref in done:
                    yield from self._finished(ref)
                now_running = self._ask(self.ledger.running, default=running)
                if now_running != running:
                    running = now_running
                    yield Running(running)
        except BaseException:  # Ctrl-C, or the driver stopped listening: nothing may keep running
            self._cancel()
            raise
        finally:
            with contextlib.suppress(Exception):  # gone already (the cluster shut down under us)
                ray.kill(self.ledger)

    def _ask(self, method, *args, default: Any = None) -> Any:
        """A call to the ledger; ``default`` when it cannot answer (the bookkeeping never fails a run)."""
        try:
            return self.ray.get(method.remote(*args), timeout=30)
        except (self.ray.exceptions.RayError, TimeoutError):
            return default

    def _submit(self) -> None:
        limit = self.executor.max_concurrent
        w = self.work
        while self.ready and (limit is None or len(self.in_flight) < limit):
            kind, item = self.ready.popleft()
            threads = self.executor.cpus_per_cell
            if kind == "job":
                ref = self.pretrain.remote(item, w.context, str(w.run_dir), self.token, threads)
            else:
                cell, job = item
                ref = self.cell.remote(cell, job, w.context, str(w.run_dir), self.token, self.ledger, threads)
            self.in_flight[ref] = (kind, item)

    def _finished(self, ref) -> Iterator[Event]:
        kind, item = self.in_flight.pop(ref)
        try:
            result = self.ray.get(ref)
            crashed = None
        except self.ray.exceptions.RayError as exc:
            result, crashed = None, exc
        if kind == "job":
            job: PretrainJob = item
            if crashed is not None:
                result = (job.key, None, f"pretraining {job.describe()} failed: {_crash_line(crashed, None)}")
            key, info, error = result
            yield PretrainDone(key, info, error)
            for cell, cell_job in self.waiting.pop(key, []):
                if error is None:
                    self.ready.append(("cell", (cell, cell_job)))
                else:
                    yield CellBlocked(cell, error)
            return
        cell, job = item
        if crashed is not None:
            _, host = self._ask(self.ledger.leave, cell.id, default=(None, None))
            result = plain_failure(cell, self.work.context, _crash_line(crashed, host), host)
        yield CellDone(result)

    def _cancel(self) -> None:
        for ref in self.in_flight:
            with contextlib.suppress(Exception):  # already finished, or its worker already gone
                self.ray.cancel(ref, force=True)
        self.in_flight.clear()


def _crash_line(exc: BaseException, host: str | None) -> str:
    where = f" on host {host}" if host else ""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return (
        f"the Ray worker running it{where} died ({type(exc).__name__}: {first[:160]}); rerun the same command "
        "to run it again (a cell continues from its last checkpoint)"
    )


class DeviceLedger:
    """Which cells are training on which device right now, and for each, the most cells its device held at
    once while it ran (itself included). A Ray actor; one per run."""

    def __init__(self) -> None:
        self.active: dict[str, list[Any]] = {}  # cell id -> [device key, most sharing so far, host]

    def enter(self, cell_id: str, device: str, host: str) -> int:
        self.active[cell_id] = [device, 1, host]
        on_device = [entry for entry in self.active.values() if entry[0] == device]
        for entry in on_device:
            entry[1] = max(entry[1], len(on_device))
        return len(on_device)

    def leave(self, cell_id: str) -> tuple[int | None, str | None]:
        entry = self.active.pop(cell_id, None)
        return (entry[1], entry[2]) if entry else (None, None)

    def running(self) -> int:
        return len(self.active)


@dataclass(frozen=True)
class SharedProbe:
    """A token the driver writes into the run folder and the cache; a worker that cannot read it back does not
    see the same storage (a node without the NFS mount, or with another path)."""

    token: str
    paths: tuple[Path, ...]

    @classmethod
    def write(cls, context: RunContext, run_dir: Path) -> SharedProbe:
        token = secrets.token_hex(8)
        in_cache = context.cache / PROBE / token
        in_cache.parent.mkdir(parents=True, exist_ok=True)
        paths = (run_dir / PROBE, in_cache)
        for path in paths:
            path.write_text(token)
        return cls(token, paths)

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


def check_shared(context: RunContext, run_dir: str | Path, token: str, host: str) -> None:
    """Raise one line naming the path and host when this machine does not see the driver's storage."""
    places = ((Path(run_dir), Path(run_dir) / PROBE, "the run folder"),
              (context.cache, context.cache / PROBE / token, "the cache"))  # fmt: skip
    for folder, path, what in places:
        try:
            seen = path.read_text().strip()
        except OSError:
            seen = None
        if seen != token:
            raise GanbenchError(
                f"host {host} does not see {what} of this run at {folder}: "
                "every Ray node must mount the cache and the run folder at the same path (for example on NFS, "
                "with GANBENCH_CACHE and --out pointing there)"
            )


def _device_key(context: RunContext, host: str) -> str:
    if context.device.startswith("cuda") and torch.cuda.is_available():
        ray = import_ray()
        ids = ",".join(str(i) for i in ray.get_gpu_ids()) or str(torch.cuda.current_device())
        return f"{host}/cuda:{ids}"
    return f"{host}/cpu"


def plain_failure(cell: Cell, context: RunContext, reason: str, host: str | None) -> CellOutput:
    """The record of a cell that failed before it could start (no plugin needs to load to write it)."""
    record = {**cell_fields(cell, context.git_revision), "metric_columns": [], "status": "failed", "error": reason,
              "finished_at": now()}  # fmt: skip
    if host:
        record["host"] = host
    return CellOutput(record)


# -- what runs on the workers ------------------------------------------------------------------------------


def pretrain_on_worker(job: PretrainJob, context: RunContext, run_dir: str, token: str, threads: int):
    torch.set_num_threads(threads)
    try:
        check_shared(context, run_dir, token, this_host())
    except GanbenchError as exc:
        return job.key, None, f"pretraining {job.describe()} failed: {exc}"
    return pretrain_task(job, context, progress=False)


def cell_on_worker(cell: Cell, job: PretrainJob | None, context: RunContext, run_dir: str, token: str, ledger,
                   threads: int) -> CellOutput:  # fmt: skip
    import ray

    torch.set_num_threads(threads)
    host = this_host()
    try:
        check_shared(context, run_dir, token, host)
    except GanbenchError as exc:
        return plain_failure(cell, context, str(exc), host)
    warm_up_s = warm_up_metrics(cell, context)
    # not awaited: a task blocked in ray.get lends its CPUs back to Ray, which may then start a third cell on a
    # 2-CPU node meanwhile (seen under load: device_shared_by 3 with 1 CPU per cell); the leave below follows it
    ledger.enter.remote(cell.id, _device_key(context, host), host)
    try:
        output = run_one_cell(cell, job, context, Path(run_dir), progress=False)
    finally:
        shared, _ = ray.get(ledger.leave.remote(cell.id))
    output.record.update(device_shared_by=shared, worker_warm_up_s=warm_up_s)
    return output


_WARM: set[tuple[str, str]] = set()  # (metric spec, device) warmed up in this worker process


def warm_up_metrics(cell: Cell, context: RunContext) -> float:
    """Load and run the cell's metrics' networks once per worker process, before its first cell, as the driver
    does for the local executor: a cell's evaluation time never pays for it. Returns the seconds it took here
    (0 when this worker was warm). A failure is left to the cell, which reports it in its record."""
    todo = [m for m in cell.metrics if (m, context.device) not in _WARM]
    if not todo or cell.broken:
        return 0.0
    start = time.perf_counter()
    try:
        with context.active():
            registry = load_registry(context=context)
            device = resolve_device(context.device)
            for spec in todo:
                registry.create(registry.resolve("metric", spec)).warm_up(device, context.cache)
                _WARM.add((spec, context.device))
    except Exception:  # the cell meets the same failure and records it in one line
        pass
    return time.perf_counter() - start
