"""Executes a grid: pretrain (once per source, cached) -> adapt with each strategy -> fine-tune ->
evaluate. No click here: the CLI and the Python API both call :func:`run_matrix`.

Running a cell is a function of (cell, cache) alone (:func:`run_cell`): it rebuilds the registry from
the cell's plugin dirs, loads or trains its source model through the cache, and returns its record and
sample grid instead of writing shared files. The runner hands cells to an executor, so a distributed
executor can replace :class:`LocalExecutor` without touching this module; pretraining jobs are scheduled
first, once per key, and the cells that need them fan out after.
"""

from __future__ import annotations

import io
import json
import statistics
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from ganbench.cache import atomic_torch_save, atomic_write_json, cache_root, stable_hash
from ganbench.data import PreparedData, prepare_dataset, select_shots
from ganbench.errors import Diverged, GanbenchError
from ganbench.matrix import Grid, expand, run_id
from ganbench.plugins import load_registry
from ganbench.provenance import git_revision, now, versions
from ganbench.records import SCHEMA_VERSION, completed_ids, load_records, write_record, write_tables
from ganbench.registry import Registry
from ganbench.timing import PeakMemory, device_name
from ganbench.training import TrainConfig, generate, train_gan
from ganbench.types import Cell, EvalContext, Nets, SourceCheckpoint, Strategy

EVAL_SEED = 1_000_003  # latents for evaluation and sample grids: identical across strategies
SAMPLE_GRID = 64


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise GanbenchError(f"unknown device '{spec}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GanbenchError(f"device '{spec}' requested but CUDA is not available; use --device cpu")
        if (device.index or 0) >= torch.cuda.device_count():
            raise GanbenchError(f"device '{spec}' does not exist; {torch.cuda.device_count()} CUDA device(s) found")
    elif device.type != "cpu":
        raise GanbenchError(f"unsupported device '{spec}'; use auto, cpu, cuda or cuda:N")
    return device


# --------------------------------------------------------------------------------------------------
# Pretraining (a dependency of the cells that use a source model)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainJob:
    arch: str
    source: str
    resolution: int
    channels: int
    steps: int
    batch_size: int
    lr: float
    seed: int
    plugins_dirs: tuple[str, ...] = field(default=(), compare=False)
    # the architecture's own weights (a pretrained backbone), as canonical JSON; "" for plain nets
    arch_weights: str = ""

    @classmethod
    def for_cell(cls, cell: Cell) -> PretrainJob:
        b = cell.budget
        registry = load_registry(cell.plugins_dirs)
        weights = registry.create(registry.resolve("architecture", cell.arch)).provenance()
        return cls(cell.arch, cell.source, cell.resolution, cell.channels, b.pretrain_steps, b.batch_size, b.lr,
                   cell.seed, cell.plugins_dirs, json.dumps(weights, sort_keys=True) if weights else "")  # fmt: skip

    @property
    def key(self) -> str:
        identity = asdict(self)
        identity.pop("plugins_dirs")
        if not identity["arch_weights"]:  # keeps the keys of plain architectures as they were
            identity.pop("arch_weights")
        return stable_hash({"pretrain": identity, "version": 1})[:20]


def ensure_pretrained(
    job: PretrainJob, cache_dir=None, device: str = "auto", progress: bool = True
) -> tuple[SourceCheckpoint, dict[str, Any]]:
    """The source checkpoint for ``job`` from the cache, training and caching it first if needed.
    Returns it with ``{"pretrain_s": seconds it took to train, "pretrain_cache_hit": bool}``."""
    folder = cache_root(cache_dir) / "pretrain" / job.key
    ckpt_path, meta_path = folder / "checkpoint.pt", folder / "meta.json"
    if meta_path.is_file() and ckpt_path.is_file():
        loaded = _load_checkpoint(ckpt_path, meta_path, job.key)
        if loaded is not None:
            return loaded, {"pretrain_s": loaded.meta["seconds"], "pretrain_cache_hit": True, "pretrain_key": job.key}
    dev = resolve_device(device)
    registry = load_registry(job.plugins_dirs)
    source = prepare_dataset(registry.resolve("dataset", job.source), registry, job.resolution, job.channels, cache_dir)
    torch.manual_seed(job.seed)
    G, D = registry.create(registry.resolve("architecture", job.arch)).build(job.resolution, job.channels)
    nets = Nets(G.to(dev), D.to(dev))
    config = TrainConfig(job.steps, job.batch_size, job.lr, job.seed)
    result = train_gan(
        nets,
        Strategy(),
        source.images.to(dev),
        config,
        desc=f"pretrain on {job.source.split(':')[0]}",
        progress=progress,
    )
    state = {"generator": _cpu_state(nets.G), "discriminator": _cpu_state(nets.D)}
    data = atomic_torch_save(ckpt_path, state)
    meta = {"key": job.key, "job": asdict(job), "sha256": _sha256(data), "seconds": result.train_seconds,
            "step_ms": statistics.median(result.step_ms) if result.step_ms else None,
            "device": device_name(dev), "created_at": now(), **versions()}  # fmt: skip
    atomic_write_json(meta_path, meta)
    checkpoint = SourceCheckpoint(state["generator"], state["discriminator"], job.key, meta["sha256"], meta)
    return checkpoint, {"pretrain_s": result.train_seconds, "pretrain_cache_hit": False, "pretrain_key": job.key}


def _load_checkpoint(ckpt_path: Path, meta_path: Path, key: str) -> SourceCheckpoint | None:
    meta = json.loads(meta_path.read_text())
    data = ckpt_path.read_bytes()
    if meta.get("sha256") != _sha256(data):  # damaged or partial: retrain rather than trust it
        return None
    state = torch.load(io.BytesIO(data), weights_only=True)
    return SourceCheckpoint(state["generator"], state["discriminator"], key, meta["sha256"], meta)


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------------------


@dataclass
class CellOutput:
    record: dict[str, Any]
    sample_png: bytes | None = None


def run_cell(cell: Cell, cache_dir=None, device: str = "auto", progress: bool = True) -> CellOutput:
    """Run one cell; never raises for a failing cell (its record says ``failed`` or ``diverged``)."""
    base = _cell_fields(cell)
    if cell.broken:
        return CellOutput({**base, "status": "failed", "error": cell.broken, "finished_at": now()})
    try:
        return _run_cell(cell, cache_dir, device, progress, base)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Diverged as exc:
        return CellOutput({**base, "status": "diverged", "error": str(exc), "finished_at": now()})
    except Exception as exc:
        return CellOutput(
            {
                **base,
                "status": "failed",
                "error": _describe_failure(exc, cell),
                "traceback": traceback.format_exc(),
                "finished_at": now(),
            }  # fmt: skip
        )


def _describe_failure(exc: Exception, cell: Cell) -> str:
    """One line naming the plugin whose code raised (kind, name, origin), when it was a plugin's."""
    message = str(exc) if isinstance(exc, GanbenchError) else f"{type(exc).__name__}: {exc}"
    entry = load_registry(cell.plugins_dirs).blame(exc.__traceback__)
    if entry is None or isinstance(exc, GanbenchError) and entry.name in message:
        return message
    return f"{entry.kind} '{entry.name}' ({entry.origin}) raised {message}"


def _cell_fields(cell: Cell) -> dict[str, Any]:
    b = cell.budget
    return {
        "schema_version": SCHEMA_VERSION, "cell_id": cell.id,
        "arch": cell.labels.get("arch", cell.arch), "strategy": cell.labels.get("strategy", cell.strategy),
        "source": cell.labels.get("source", cell.source), "target": cell.labels.get("target", cell.target),
        "augment": cell.labels.get("augment", cell.augment), "shots": cell.shots, "seed": cell.seed,
        "resolution": cell.resolution, "channels": cell.channels,
        "pretrain_steps": b.pretrain_steps, "finetune_steps": b.finetune_steps, "batch_size": b.batch_size,
        "lr": b.lr, "eval_samples": b.eval_samples, "eval_every": b.eval_every,
        "spec": cell.identity(), "git_revision": git_revision(), **versions(),
    }  # fmt: skip


def _run_cell(cell: Cell, cache_dir, device_spec: str, progress: bool, base: dict[str, Any]) -> CellOutput:
    device = resolve_device(device_spec)
    registry = load_registry(cell.plugins_dirs)
    strategy: Strategy = registry.create(registry.resolve("strategy", cell.strategy))
    augment = registry.create(registry.resolve("augmentation", cell.augment))
    metrics = [registry.create(registry.resolve("metric", m)) for m in cell.metrics]
    target = prepare_dataset(
        registry.resolve("dataset", cell.target), registry, cell.resolution, cell.channels, cache_dir
    )
    shots = target.images[select_shots(len(target), cell.shots, cell.seed)]
    source, pretrain = None, {"pretrain_s": None, "pretrain_cache_hit": None, "pretrain_key": None}
    if strategy.uses_source:
        source, pretrain = ensure_pretrained(PretrainJob.for_cell(cell), cache_dir, device_spec, progress)

    with PeakMemory(device) as memory:
        torch.manual_seed(cell.seed)
        arch = registry.create(registry.resolve("architecture", cell.arch))
        G, D = arch.build(cell.resolution, cell.channels)
        nets = strategy.adapt(Nets(G.to(device), D.to(device)), source)
        nets = Nets(nets.G.to(device), nets.D.to(device))  # adapters a strategy added may be on the CPU
        counts = _parameter_counts(nets)
        provenance: dict[str, Any] = {}
        for metric in metrics:
            provenance.update(metric.prepare(device, cache_root(cache_dir)))
        evaluate = partial(_evaluate, metrics=metrics, target=target, cell=cell, cache_dir=cache_root(cache_dir))
        config = TrainConfig(cell.budget.finetune_steps, cell.budget.batch_size, cell.budget.lr, cell.seed,
                             cell.budget.eval_every)  # fmt: skip
        desc = f"{cell.labels.get('strategy', cell.strategy)} seed {cell.seed}"
        result = train_gan(
            nets, strategy, shots.to(device), config, evaluate=evaluate, augment=augment, desc=desc, progress=progress
        )
    final = result.evaluations[-1]
    record = {
        **base, "status": "ok", "error": None,
        **{k: v for k, v in final.items() if k != "step"},
        **counts, **pretrain, **provenance, "arch_weights": _flat(arch.provenance()),
        "finetune_s": result.train_seconds, "step_ms": statistics.median(result.step_ms),
        "images_per_s": cell.budget.batch_size * len(result.step_ms) / result.train_seconds,
        "eval_s": result.eval_seconds, "peak_mem_mb": memory.peak_mb, "peak_mem_kind": memory.kind,
        "device": device_name(device), "n_gen": cell.budget.eval_samples, "n_ref": len(target),
        "source_checkpoint": source.sha256 if source else None,
        "curve": result.evaluations, "finished_at": now(),
        "loss": {"d_final": result.d_loss[-1], "g_final": result.g_loss[-1]},
    }  # fmt: skip
    return CellOutput(record, _sample_grid_png(nets.G, cell.seed))


def _evaluate(nets: Nets, step: int, *, metrics, target: PreparedData, cell: Cell, cache_dir: Path) -> dict[str, Any]:
    device = next(nets.G.parameters()).device
    images = generate(nets.G, cell.budget.eval_samples, EVAL_SEED + cell.seed)
    ctx = EvalContext(images, target.images, target.content_key, device, cache_dir)
    values: dict[str, Any] = {}
    for metric in metrics:
        values.update(metric.compute(ctx))
    return values


def _flat(info: dict[str, Any]) -> str | None:
    """``{"backbone": "x", "weights": "random"}`` -> ``"backbone=x;weights=random"`` (one CSV cell)."""
    return ";".join(f"{k}={v}" for k, v in sorted(info.items())) or None


def _parameter_counts(nets: Nets) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for name, net in (("g", nets.G), ("d", nets.D)):
        params = list(net.parameters())
        counts[f"total_{name}"] = sum(p.numel() for p in params)
        counts[f"trainable_{name}"] = sum(p.numel() for p in params if p.requires_grad)
    counts["total_params"] = counts["total_g"] + counts["total_d"]
    counts["trainable_params"] = counts["trainable_g"] + counts["trainable_d"]
    counts["trainable_fraction"] = counts["trainable_params"] / max(counts["total_params"], 1)
    return counts


def _sample_grid_png(G: torch.nn.Module, seed: int) -> bytes:
    from PIL import Image
    from torchvision.utils import make_grid

    images = generate(G, SAMPLE_GRID, EVAL_SEED + seed)
    grid = make_grid(images, nrow=8, padding=2, pad_value=255)
    buffer = io.BytesIO()
    array = grid.permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------------


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """Apply ``fn`` to every item, yielding results (in any order) as they finish."""


class LocalExecutor:
    """Runs tasks one after another in this process."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield fn(item)


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


@dataclass
class Plan:
    """A validated grid: everything resolved and checked, nothing trained yet."""

    grid: Grid
    cells: list[Cell]
    run_dir: Path
    device: torch.device
    registry: Registry

    def uses_source(self, cell: Cell) -> bool:
        return not cell.broken and self.registry.get("strategy", cell.strategy.split(":")[0]).cls.uses_source

    @property
    def runnable(self) -> list[Cell]:
        """Cells whose plugins all loaded (the others are recorded as failed without running)."""
        return [c for c in self.cells if not c.broken]


def plan_matrix(grid: Grid, out: str | Path = "results/runs", *, cache_dir=None, device: str = "auto",
                plugins_dirs: Iterable[str] = ()) -> Plan:  # fmt: skip
    """Resolve and check the whole grid (names, options, resolutions, shots, metric resources)."""
    dirs = tuple(str(Path(d).resolve()) for d in plugins_dirs)
    registry = load_registry(dirs)
    cells = expand(grid, registry, dirs)
    dev = resolve_device(device)
    return Plan(grid, cells, Path(out) / run_id(grid, cells), dev, registry)


def check_plan(plan: Plan, cache_dir=None) -> tuple[dict[str, PreparedData], dict[str, Any]]:
    """Load every dataset (cached) and prepare every metric, so bad input fails before any training.
    Returns the prepared datasets by spec and the metrics' provenance (weights hashes)."""
    datasets: dict[str, PreparedData] = {}
    for cell in plan.runnable:
        for spec in (cell.source, cell.target):
            if spec not in datasets:
                ref = plan.registry.resolve("dataset", spec)
                datasets[spec] = prepare_dataset(ref, plan.registry, cell.resolution, cell.channels, cache_dir)
        if cell.shots > len(datasets[cell.target]):
            raise GanbenchError(
                f"{cell.shots} shots requested but target {cell.labels['target']} has only "
                f"{len(datasets[cell.target])} images; use --shots {len(datasets[cell.target])} or fewer"
            )
        if cell.budget.pretrain_steps < 1 and plan.uses_source(cell):
            raise GanbenchError("pretrain_steps must be at least 1 for strategies that use a source model")
    provenance: dict[str, Any] = {}
    for spec in sorted({m for c in plan.runnable for m in c.metrics}):
        metric = plan.registry.create(plan.registry.resolve("metric", spec))
        provenance.update(metric.prepare(plan.device, cache_root(cache_dir)))
    return datasets, provenance


def run_matrix(grid: Grid | None = None, out: str | Path = "results/runs", *, cache_dir=None, device: str = "auto",
               plugins_dirs: Iterable[str] = (), executor: Executor | None = None, progress: bool = True,
               on_record: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:  # fmt: skip
    """Run (or resume) a grid; returns the records of every cell of the grid, old and new."""
    plan = plan_matrix(grid or Grid(), out, cache_dir=cache_dir, device=device, plugins_dirs=plugins_dirs)
    datasets, provenance = check_plan(plan, cache_dir)
    executor = executor or LocalExecutor()
    run_dir = plan.run_dir
    manifest = _manifest(plan, provenance)
    atomic_write_json(run_dir / "manifest.json", manifest)
    done = completed_ids(run_dir)
    pending = [c for c in plan.cells if c.id not in done]
    interrupted = False
    try:
        _reference_phase(plan, pending, datasets, cache_dir, progress)
        jobs = list(dict.fromkeys(PretrainJob.for_cell(c) for c in pending if plan.uses_source(c)))
        pretrain = partial(ensure_pretrained, cache_dir=cache_dir, device=str(plan.device), progress=progress)
        # keys trained by this invocation: their cells report pretrain_cache_hit=False (this run paid for them)
        trained_now = set()
        bar = tqdm(total=len(jobs), desc="pretrain", disable=not progress or not jobs, unit="model")
        for _, info in executor.map(pretrain, jobs):
            if not info["pretrain_cache_hit"]:
                trained_now.add(info["pretrain_key"])
            bar.update()
        bar.close()
        cell_fn = partial(run_cell, cache_dir=cache_dir, device=str(plan.device), progress=progress)
        bar = tqdm(total=len(pending), desc="cells", disable=not progress, unit="cell")
        for output in executor.map(cell_fn, pending):
            if output.record.get("pretrain_key") in trained_now:
                output.record["pretrain_cache_hit"] = False
            write_record(run_dir, output.record, output.sample_png)
            write_tables(run_dir)
            bar.update()
            if on_record:
                on_record(output.record)
        bar.close()
    except KeyboardInterrupt:
        interrupted = True
    records = [r for r in load_records(run_dir) if r["cell_id"] in {c.id for c in plan.cells}]
    write_tables(run_dir)
    if records:
        from ganbench.plots import plot_curves

        plot_curves(records, run_dir / "curves.png")
    manifest.update(
        finished_at=now(), cells=len(plan.cells), complete=len(completed_ids(run_dir)), interrupted=interrupted
    )
    atomic_write_json(run_dir / "manifest.json", manifest)
    return RunSummary(run_dir, plan.cells, records, skipped=len(plan.cells) - len(pending), interrupted=interrupted)


def _reference_phase(
    plan: Plan, cells: list[Cell], datasets: dict[str, PreparedData], cache_dir, progress: bool
) -> None:
    """Reference statistics of every target, once, before any cell (cached by content)."""
    pairs = {(c.target, m) for c in cells if not c.broken for m in c.metrics}
    for target, metric_spec in sorted(pairs):
        data = datasets[target]
        metric = plan.registry.create(plan.registry.resolve("metric", metric_spec))
        ctx = EvalContext(
            data.images[:0], data.images, data.content_key, plan.device, cache_root(cache_dir), progress=progress
        )
        metric.reference(ctx)


def _manifest(plan: Plan, provenance: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": plan.run_dir.name,
        "grid": asdict(plan.grid),
        "cell_ids": [c.id for c in plan.cells],
        "device": device_name(plan.device),
        "git_revision": git_revision(),
        "plugins": [{"kind": e.kind, "name": e.name, "origin": str(e.origin)} for e in plan.registry.entries()],
        "started_at": now(),
        **versions(),
        **provenance,
    }
