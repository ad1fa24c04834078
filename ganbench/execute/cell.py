"""One cell, end to end: adapt the source model with the strategy, fine-tune on the target shots, evaluate.

Running a cell is a function of (cell, run context, its source model's job) alone: :func:`run_cell` reads
nothing from the environment, loads the source model the planner scheduled (never training one itself), and
returns the record and the sample grid instead of writing shared files: only the driver writes.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import traceback
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import torch

from ganbench.context import RunContext, resolve_device
from ganbench.data.prepare import prepare_dataset, shot_positions
from ganbench.errors import Diverged, GanbenchError
from ganbench.execute.checkpoint import Checkpoints
from ganbench.execute.evaluation import EvalTimes, Evaluator, describe, select_step, set_key, target_parts
from ganbench.execute.passes import build_source_generator
from ganbench.execute.pretrain import PretrainJob, require_pretrained, weights_text
from ganbench.execute.timing import PhaseMemory, PhaseTimer, device_name
from ganbench.execute.training import TrainConfig, generate, train_gan
from ganbench.grid.cells import Cell, cell_fields
from ganbench.plugin.contracts import Nets, Strategy
from ganbench.plugin.manager import describe_failure, load_registry
from ganbench.store.cache import tensor_hash
from ganbench.store.provenance import now, versions
from ganbench.store.records import headline_column
from ganbench.store.schema import Column, Record

EVAL_SEED = 1_000_003  # latents for evaluation and sample grids: identical across strategies
SAMPLE_GRID = 64


@dataclass
class CellOutput:
    record: Record
    sample_png: bytes | None = None


def run_cell(
    cell: Cell,
    context: RunContext,
    pretrain: PretrainJob | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
) -> CellOutput:
    """Run one cell; never raises for a failing cell (its record says ``failed`` or ``diverged``).
    ``pretrain`` is the job of the source model the planner scheduled for it (None for strategies without one).
    ``checkpoint``: the file the cell's training state is checkpointed to (and resumed from, when an earlier
    process left one) under the context's checkpoint policy; the caller removes it once the record is safe."""
    base = {**cell_fields(cell, context.git_revision), "metric_columns": _declared_columns(cell, context)}
    if cell.broken:
        return CellOutput({**base, "status": "failed", "error": cell.broken, "finished_at": now()})
    with context.active():
        try:
            return _run_cell(cell, context, pretrain, progress, base, checkpoint)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Diverged as exc:
            return CellOutput({**base, "status": "diverged", "error": str(exc), "finished_at": now()})
        except Exception as exc:
            error = describe_failure(exc, context)
            failed = {"status": "failed", "error": error, "traceback": traceback.format_exc(), "finished_at": now()}
            return CellOutput({**base, **failed})


def _declared_columns(cell: Cell, context: RunContext) -> list[dict[str, Any]]:
    """The metric columns ``cell`` writes, as records declare them (none when a metric is unusable)."""
    if cell.broken:
        return []
    registry = load_registry(context=context)
    try:
        metrics = [registry.get("metric", registry.resolve("metric", m).name) for m in cell.metrics]
    except GanbenchError:
        return []
    return [column.describe(entry.name) for entry in metrics for column in entry.cls.columns]


def failed_output(cell: Cell, context: RunContext, reason: str) -> CellOutput:
    """The record of a cell that could not run (its source model or a metric's reference failed)."""
    base = {**cell_fields(cell, context.git_revision), "metric_columns": _declared_columns(cell, context)}
    return CellOutput({**base, "status": "failed", "error": reason, "finished_at": now()})


def _run_cell(
    cell: Cell, context: RunContext, job: PretrainJob | None, progress: bool, base: dict[str, Any], checkpoint
) -> CellOutput:
    device = resolve_device(context.device)
    registry = load_registry(context=context)
    strategy: Strategy = registry.create(registry.resolve("strategy", cell.strategy))
    augment = registry.create(registry.resolve("augmentation", cell.augment))
    metrics = [registry.create(registry.resolve("metric", m)) for m in cell.metrics]
    arch = registry.create(registry.resolve("architecture", cell.arch))
    target = prepare_dataset(registry.resolve("dataset", cell.target), registry, cell.resolution, cell.channels)
    shot_index = shot_positions(target, cell.shots, cell.seed)
    shots = target.images[shot_index]
    parts = target_parts(cell.protocol, target, shot_index)
    weights = arch.provenance()
    source, pretrain = None, {"pretrain_s": None, "pretrain_cache_hit": None, "pretrain_key": None}
    if strategy.uses_source:
        if job is None:
            raise GanbenchError(f"strategy {cell.strategy} needs a source model, but none was planned for this cell")
        _check_weights(weights, job)
        source = require_pretrained(job, context)
        pretrain = {"pretrain_s": source.meta["seconds"], "pretrain_cache_hit": True, "pretrain_key": job.key}
    checkpoints = None
    if checkpoint is not None:
        identity = {"cell": cell.id, "code": context.git_revision or versions()["ganbench_version"]}
        checkpoints = Checkpoints(checkpoint, context.checkpoint, identity, progress=progress)

    with PhaseMemory(device) as memory:
        memory.phase("adapt")
        adapt_timer = PhaseTimer(device)
        with adapt_timer:
            torch.manual_seed(cell.seed)
            G, D = arch.build(cell.resolution, cell.channels)
            nets = strategy.adapt(Nets(G.to(device), D.to(device)), source)
            nets = Nets(nets.G.to(device), nets.D.to(device))  # adapters a strategy added may be on the CPU
            source_G = None
            if strategy.needs().source:
                if source is None:
                    raise GanbenchError(f"strategy {cell.strategy} asks for the source generator but uses no source")
                source_G = build_source_generator(arch, source, cell.resolution, cell.channels, device)
        provenance: dict[str, Any] = {}
        for metric in metrics:
            provenance.update(metric.prepare(device, context.cache))
        headline = headline_column(Column.from_record(c) for c in base["metric_columns"])
        evaluate = Evaluator(metrics, parts, cell.protocol, n=cell.budget.eval_samples, seed=cell.seed,
                             generate=partial(generate, seed=EVAL_SEED + cell.seed), cache_dir=context.cache,
                             headline=headline.name if headline else None)  # fmt: skip
        config = TrainConfig(cell.budget.finetune_steps, cell.budget.batch_size, cell.budget.lr, cell.seed,
                             cell.budget.eval_every, cell.recipe, context.channels_last, context.compile)  # fmt: skip
        desc = f"{cell.labels.get('strategy', cell.strategy)} seed {cell.seed}"
        adapt = {"adapt_s": adapt_timer.seconds}

        def saved() -> dict[str, Any]:
            return {**adapt, "eval_times": asdict(evaluate.times), "peaks": dict(memory.peaks)}

        def restore(state: dict[str, Any]) -> None:  # what the interrupted run measured counts, not the redo
            adapt["adapt_s"] = float(state["adapt_s"])
            evaluate.times = EvalTimes(**state["eval_times"])
            memory.restore(state["peaks"])

        result = train_gan(nets, strategy, shots.to(device), config, evaluate=evaluate, augment=augment, desc=desc,
                           progress=progress, checkpoints=checkpoints, extra_state=saved, restore_extra=restore,
                           memory=memory, source_G=source_G)  # fmt: skip
    final = result.evaluations[-1]
    selected = {}
    if cell.protocol.select_on == "val" and headline is not None:
        best = select_step(result.evaluations, headline.name, bool(headline.lower_is_better))
        selected = {"selected_step": best["step"], "selected": best}
    record: Record = {  # type: ignore[typeddict-item]  # + the metric columns and the metrics' provenance
        **base, "status": "ok", "error": None,
        **{k: v for k, v in final.items() if k != "step"},
        **result.counts, **pretrain, **provenance, "arch_weights": _flat(weights), **adapt,
        "probe_s": result.probe_seconds, "finetune_s": result.train_seconds, "step_ms": statistics.median(result.step_ms),
        "images_per_s": cell.budget.batch_size * len(result.step_ms) / result.train_seconds,
        "eval_s": result.eval_seconds, **evaluate.times.record(),
        "peak_mem_mb": memory.peak("adapt", "probe", "train", "eval"),
        "peak_train_mb": memory.peak("adapt", "probe", "train"),
        "peak_eval_mb": memory.peak("eval"), "peak_mem_kind": memory.kind,
        "device": device_name(device), "n_gen": cell.budget.eval_samples,
        **describe(cell.protocol, parts), "n_target": len(target), "reference_key": set_key(parts, "reference"),
        "shots_from": "seed" if target.shots is None else "released", "shots_key": tensor_hash(shots),
        **selected, "source_checkpoint": source.sha256 if source else None,
        "method": strategy.card.summary() if getattr(strategy, "card", None) is not None else None,
        **result.resumed.record(), "checkpoint_every": context.checkpoint.describe() if checkpoints else None,
        "channels_last": context.channels_last, "compiled": context.compile,
        "augment_p": _augment_p(augment), "curve": result.evaluations, "finished_at": now(),
        "loss": {"d_final": result.d_loss[-1], "g_final": result.g_loss[-1]}, "losses": result.loss_curves(),
    }  # fmt: skip
    return CellOutput(record, _sample_grid_png(result.ema if result.ema is not None else nets.G, cell.seed))


def _augment_p(augment: Any) -> float | None:
    """An adaptive augmentation's final probability (ADA's p), when it has one."""
    p = getattr(augment, "p", None)
    return float(p) if p is not None else None


def _check_weights(weights: dict[str, Any], job: PretrainJob) -> None:
    """The architecture must bring the weights its source model was keyed with (it resolves them here too)."""
    if weights_text(weights) != job.arch_weights:
        raise GanbenchError(
            f"{job.arch} brings other weights here ({_flat(weights) or 'none'}) than its source model was planned "
            f"with ({_flat(_loads(job.arch_weights)) or 'none'}); give every machine the same weights "
            "(or run where the planner ran)"
        )


def _loads(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


def _flat(info: dict[str, Any]) -> str | None:
    """``{"backbone": "x", "weights": "random"}`` -> ``"backbone=x;weights=random"`` (one CSV cell)."""
    return ";".join(f"{k}={v}" for k, v in sorted(info.items())) or None


def _sample_grid_png(G: torch.nn.Module, seed: int) -> bytes:
    from PIL import Image
    from torchvision.utils import make_grid

    images = generate(G, SAMPLE_GRID, EVAL_SEED + seed)
    grid = make_grid(images, nrow=8, padding=2, pad_value=255)
    buffer = io.BytesIO()
    array = grid.permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()
