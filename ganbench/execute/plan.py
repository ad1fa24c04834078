"""Planning: a grid resolved and checked into cells, each with the source model it needs, before anything
trains. The planner is where the run context is fixed; everything it hands on depends on nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ganbench.context import RunContext
from ganbench.data.prepare import PreparedData, prepare_dataset
from ganbench.errors import GanbenchError
from ganbench.execute.pretrain import PretrainJob, load_pretrained
from ganbench.files import as_user_file_error
from ganbench.grid.cells import Cell
from ganbench.grid.config import Grid
from ganbench.grid.expand import expand, run_id
from ganbench.grid.sources import is_checkpoint_spec
from ganbench.plugin.contracts import EvalSizes, Metric, Nets, Strategy, TargetParts
from ganbench.plugin.manager import describe_failure, load_registry
from ganbench.plugin.registry import Registry
from ganbench.store.records import CORE_COLUMNS, headline_column


@dataclass
class Plan:
    """A validated grid: everything resolved and checked, nothing trained yet."""

    grid: Grid
    cells: list[Cell]
    run_dir: Path
    context: RunContext
    registry: Registry
    #: cell id -> the job of the source model that cell needs (cells of strategies without one are absent)
    pretrain: dict[str, PretrainJob] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return torch.device(self.context.device)

    def uses_source(self, cell: Cell) -> bool:
        return cell.id in self.pretrain

    @property
    def runnable(self) -> list[Cell]:
        """Cells whose plugins all loaded (the others are recorded as failed without running)."""
        return [c for c in self.cells if not c.broken]

    def jobs(self, cells: Iterable[Cell]) -> list[PretrainJob]:
        """The distinct source models ``cells`` need, in the order cells first need them."""
        return list(dict.fromkeys(self.pretrain[c.id] for c in cells if c.id in self.pretrain))


def plan_matrix(
    grid: Grid,
    out: str | Path = "results/runs",
    *,
    context: RunContext | None = None,
    cache_dir=None,
    device: str = "auto",
    plugins_dirs: Iterable[str] = (),
    data_roots: Iterable[str] = (),
) -> Plan:
    """Resolve and check the whole grid (names, options, resolutions) and plan each cell's source model.
    The run context is ``context``, else one built here from the other options and the environment."""
    ctx = context or RunContext.from_environment(
        cache_dir=cache_dir, data_roots=tuple(data_roots), plugins_dirs=tuple(plugins_dirs), device=device
    )
    if grid.channels_last or grid.compile:
        ctx = ctx.replace(channels_last=grid.channels_last or ctx.channels_last, compile=grid.compile or ctx.compile)
    with ctx.active():
        registry = load_registry(context=ctx)
        cells = expand(grid, registry)
        pretrain = {
            c.id: PretrainJob.for_cell(c, registry)
            for c in cells
            if not c.broken and registry.get("strategy", c.strategy.partition(":")[0]).cls.uses_source
        }
    _check_metric_columns(registry, {m for c in cells if not c.broken for m in c.metrics})
    return Plan(grid, cells, Path(out) / run_id(grid, cells), ctx, registry, pretrain)


def _check_metric_columns(registry: Registry, specs: set[str]) -> None:
    """Metric columns share the record with the core's fields and each other: every name must be unique."""
    owner: dict[str, str] = {}
    for spec in sorted(specs):
        ref = registry.resolve("metric", spec)
        for column in registry.get("metric", ref.name).cls.columns:
            if column.name in CORE_COLUMNS:
                raise GanbenchError(
                    f"metric '{ref.name}' declares a column '{column.name}', a field every record already has; "
                    "rename the column"
                )
            if owner.get(column.name, ref.label) != ref.label:
                raise GanbenchError(
                    f"metrics '{owner[column.name]}' and '{ref.label}' both write the column '{column.name}'; "
                    "run them in separate grids or rename one's column"
                )
            owner[column.name] = ref.label


def check_plan(plan: Plan) -> tuple[dict[str, PreparedData], dict[str, Any]]:
    """Load every dataset (cached) and prepare every metric, so bad input fails before any training.
    Returns the prepared datasets by spec and the metrics' provenance (weights hashes)."""
    try:
        return _check_plan(plan)
    except (GanbenchError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a plugin's bug, before anything trained: one line naming the plugin
        file_error = as_user_file_error(exc)  # ... unless it is a file the user gave that cannot be read
        if file_error is not None:
            raise file_error from None
        raise GanbenchError(
            f"{describe_failure(exc, plan.context)} while checking the grid; fix or remove that plugin"
        ) from None


def _check_plan(plan: Plan) -> tuple[dict[str, PreparedData], dict[str, Any]]:
    datasets: dict[str, PreparedData] = {}
    with plan.context.active():
        for job in {j.key: j for j in plan.pretrain.values() if j.checkpoint}.values():
            load_pretrained(job, plan.context)  # the file is there, unchanged, and fits the architecture
        for cell in plan.runnable:
            for spec in (cell.source, cell.target):
                if spec not in datasets and not is_checkpoint_spec(spec):
                    ref = plan.registry.resolve("dataset", spec)
                    datasets[spec] = prepare_dataset(ref, plan.registry, cell.resolution, cell.channels, plan.context)
            if cell.shots > len(datasets[cell.target]):
                raise GanbenchError(
                    f"{cell.shots} shots requested but target {cell.labels['target']} has only "
                    f"{len(datasets[cell.target])} images; use --shots {len(datasets[cell.target])} or fewer"
                )
            if cell.budget.pretrain_steps < 1 and plan.uses_source(cell) and not is_checkpoint_spec(cell.source):
                raise GanbenchError("pretrain_steps must be at least 1 for strategies that use a source model")
        metrics = {
            spec: plan.registry.create(plan.registry.resolve("metric", spec))
            for spec in sorted({m for c in plan.runnable for m in c.metrics})
        }
        for cell in plan.runnable:
            _check_metrics(cell, _check_protocol(cell, datasets[cell.target]), metrics)
        _check_strategies(plan)
        provenance: dict[str, Any] = {}
        for metric in metrics.values():
            provenance.update(metric.prepare(plan.device, plan.context.cache))
    return datasets, provenance


def _check_protocol(cell: Cell, target: PreparedData) -> TargetParts:
    """The cell's evaluation sets drawn as the cell will draw them: a validation split or a reference too large
    or too small for the target fails here, before anything trains, rather than in every cell."""
    from ganbench.data.prepare import shot_positions
    from ganbench.execute.evaluation import target_parts

    parts = target_parts(cell.protocol, target, shot_positions(target, cell.shots, cell.seed))
    n_ref = len(parts.index["reference"])
    if n_ref < 2:
        raise GanbenchError(
            f"the reference of {cell.labels['target']} would hold {n_ref} image(s) with {cell.shots} shots and "
            f"reference={cell.protocol.reference}: FID needs at least 2; use fewer shots, --reference all or a "
            "larger --reference-samples"
        )
    return parts


def _check_metrics(cell: Cell, parts: TargetParts, metrics: dict[str, Metric]) -> None:
    """Each metric's own needs (``Metric.check``) against the sizes of the cell's sets; the metric that owns the
    headline column, with ``select_on = "val"``, also against the validation split (it is scored on it)."""
    index = parts.index
    sizes = EvalSizes(cell.budget.eval_samples, len(index["reference"]), len(index["shots"]), len(index["heldout"]))
    headline = headline_column(c for spec in cell.metrics for c in metrics[spec].columns)
    for spec in cell.metrics:
        metric = metrics[spec]
        metric.check(sizes)
        if "val" in index and cell.protocol.select_on == "val" and headline in metric.columns:
            metric.check(replace(sizes, reference=len(index["val"])))


def _check_strategies(plan: Plan) -> None:
    """Every strategy's options against the nets it will adapt (``Strategy.check``): each (architecture,
    strategy) of the grid's cells built once at their resolution and channels, on the CPU, with the random
    streams left as they were. Strategies that keep the default check build nothing."""
    seen: set[tuple[str, str, int, int]] = set()
    for cell in plan.runnable:
        key = (cell.arch, cell.strategy, cell.resolution, cell.channels)
        strategy = plan.registry.create(plan.registry.resolve("strategy", cell.strategy))
        if key in seen or type(strategy).check is Strategy.check:
            continue
        seen.add(key)
        arch = plan.registry.create(plan.registry.resolve("architecture", cell.arch))
        with torch.random.fork_rng(devices=[]):
            G, D = arch.build(cell.resolution, cell.channels)
            strategy.check(Nets(G, D))


#: rough Inception throughput for the plan's estimate (images/s): measured ~8-14 on 2 CPU threads
CPU_IMAGES_PER_S_PER_THREAD = 5.0
CUDA_IMAGES_PER_S = 1500.0


@dataclass(frozen=True)
class ReferenceWork:
    """What featurizing one target's reference pool will cost before the first cell."""

    target: str
    images: int
    cached: bool
    seconds: float  # rough estimate; 0 when cached

    def describe(self) -> str:
        if self.cached:
            return f"reference features of {self.target}: {self.images} images, cached"
        minutes = self.seconds / 60
        took = f"~{minutes:.0f} min" if minutes >= 1 else f"~{self.seconds:.0f} s"
        return f"reference features of {self.target}: {self.images} images to featurize ({took} on this device)"


def reference_work(plan: Plan, datasets: dict[str, PreparedData]) -> list[ReferenceWork]:
    """Per target (and protocol), how many reference images the Inception metrics featurize, whether they are
    cached, and roughly how long that takes here."""
    from ganbench.execute.evaluation import pool
    from ganbench.metrics.features import CACHE_FOLDER, InceptionSpace
    from ganbench.metrics.inception import resolve_inception_weights
    from ganbench.store.cache import stable_hash, tensor_hash

    inception = {"fid", "kid", "prdc", "memorization"}
    wanted = {(c.target, c.protocol) for c in plan.runnable if {m.partition(":")[0] for m in c.metrics} & inception}
    if not wanted:
        return []
    with plan.context.active():
        space = InceptionSpace(resolve_inception_weights(plan.context.cache))
    device = plan.device
    rate = CUDA_IMAGES_PER_S if device.type == "cuda" else CPU_IMAGES_PER_S_PER_THREAD * torch.get_num_threads()
    work = []
    for target, protocol in sorted(wanted, key=repr):
        data = datasets[target]
        index = pool(protocol, len(data))
        key = data.content_key if len(index) == len(data) else stable_hash([data.content_key, tensor_hash(index)])
        path = plan.context.cache / CACHE_FOLDER / f"{stable_hash({'content': key, **space.identity()})[:20]}.npy"
        label = next(c.labels["target"] for c in plan.cells if c.target == target)
        cached = path.is_file()
        work.append(ReferenceWork(label, len(index), cached, 0.0 if cached else len(index) / rate))
    return work
