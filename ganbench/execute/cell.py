"""One cell, end to end: adapt the source model with the strategy, fine-tune on the target shots, evaluate.

Running a cell is a function of (cell, run context, its source model's job) alone: :func:`run_cell` reads
nothing from the environment, loads the source model the planner scheduled (never training one itself), and
returns the record and the sample grid instead of writing shared files: only the driver writes.
"""

from __future__ import annotations

import io
import json
import statistics
import traceback
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from ganbench.data.prepare import prepare_dataset, select_shots
from ganbench.errors import Diverged, GanbenchError
from ganbench.execute.context import RunContext, resolve_device
from ganbench.execute.evaluation import Evaluator, describe, select_step, set_key, target_parts
from ganbench.execute.pretrain import PretrainJob, require_pretrained, weights_text
from ganbench.execute.timing import PeakMemory, device_name
from ganbench.execute.training import TrainConfig, generate, train_gan
from ganbench.grid.cells import Cell
from ganbench.plugin.contracts import Nets, Strategy
from ganbench.plugin.manager import load_registry
from ganbench.store.provenance import now
from ganbench.store.records import MetricColumn, cell_fields, headline_column

EVAL_SEED = 1_000_003  # latents for evaluation and sample grids: identical across strategies
SAMPLE_GRID = 64


@dataclass
class CellOutput:
    record: dict[str, Any]
    sample_png: bytes | None = None


def run_cell(cell: Cell, context: RunContext, pretrain: PretrainJob | None = None, progress: bool = True) -> CellOutput:
    """Run one cell; never raises for a failing cell (its record says ``failed`` or ``diverged``).
    ``pretrain`` is the job of the source model the planner scheduled for it (None for strategies without one)."""
    base = {**cell_fields(cell, context.git_revision), "metric_columns": _declared_columns(cell, context)}
    if cell.broken:
        return CellOutput({**base, "status": "failed", "error": cell.broken, "finished_at": now()})
    with context.active():
        try:
            return _run_cell(cell, context, pretrain, progress, base)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Diverged as exc:
            return CellOutput({**base, "status": "diverged", "error": str(exc), "finished_at": now()})
        except Exception as exc:
            error = _describe_failure(exc, context)
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


def _describe_failure(exc: Exception, context: RunContext) -> str:
    """One line naming the plugin whose code raised (kind, name, origin), when it was a plugin's."""
    message = str(exc) if isinstance(exc, GanbenchError) else f"{type(exc).__name__}: {exc}"
    entry = load_registry(context=context).blame(exc.__traceback__)
    if entry is None or isinstance(exc, GanbenchError) and entry.name in message:
        return message
    return f"{entry.kind} '{entry.name}' ({entry.origin}) raised {message}"


def _run_cell(
    cell: Cell, context: RunContext, job: PretrainJob | None, progress: bool, base: dict[str, Any]
) -> CellOutput:
    device = resolve_device(context.device)
    registry = load_registry(context=context)
    strategy: Strategy = registry.create(registry.resolve("strategy", cell.strategy))
    augment = registry.create(registry.resolve("augmentation", cell.augment))
    metrics = [registry.create(registry.resolve("metric", m)) for m in cell.metrics]
    arch = registry.create(registry.resolve("architecture", cell.arch))
    target = prepare_dataset(registry.resolve("dataset", cell.target), registry, cell.resolution, cell.channels)
    shot_index = select_shots(len(target), cell.shots, cell.seed)
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

    with PeakMemory(device) as memory:
        torch.manual_seed(cell.seed)
        G, D = arch.build(cell.resolution, cell.channels)
        nets = strategy.adapt(Nets(G.to(device), D.to(device)), source)
        nets = Nets(nets.G.to(device), nets.D.to(device))  # adapters a strategy added may be on the CPU
        counts = parameter_counts(nets)
        provenance: dict[str, Any] = {}
        for metric in metrics:
            provenance.update(metric.prepare(device, context.cache))
        headline = headline_column(MetricColumn.from_record(c) for c in base["metric_columns"])
        evaluate = Evaluator(metrics, parts, cell.protocol, n=cell.budget.eval_samples, seed=cell.seed,
                             generate=partial(generate, seed=EVAL_SEED + cell.seed), cache_dir=context.cache,
                             headline=headline.name if headline else None)  # fmt: skip
        config = TrainConfig(cell.budget.finetune_steps, cell.budget.batch_size, cell.budget.lr, cell.seed,
                             cell.budget.eval_every)  # fmt: skip
        desc = f"{cell.labels.get('strategy', cell.strategy)} seed {cell.seed}"
        result = train_gan(
            nets, strategy, shots.to(device), config, evaluate=evaluate, augment=augment, desc=desc, progress=progress
        )
    final = result.evaluations[-1]
    selected = {}
    if cell.protocol.select_on == "val" and headline is not None:
        best = select_step(result.evaluations, headline.name, bool(headline.lower_is_better))
        selected = {"selected_step": best["step"], "selected": best}
    record = {
        **base, "status": "ok", "error": None,
        **{k: v for k, v in final.items() if k != "step"},
        **counts, **pretrain, **provenance, "arch_weights": _flat(weights),
        "finetune_s": result.train_seconds, "step_ms": statistics.median(result.step_ms),
        "images_per_s": cell.budget.batch_size * len(result.step_ms) / result.train_seconds,
        "eval_s": result.eval_seconds, **evaluate.times.record(), "peak_mem_mb": memory.peak_mb,
        "peak_mem_kind": memory.kind, "device": device_name(device), "n_gen": cell.budget.eval_samples,
        **describe(cell.protocol, parts), "n_target": len(target), "reference_key": set_key(parts, "reference"),
        **selected, "source_checkpoint": source.sha256 if source else None,
        "curve": result.evaluations, "finished_at": now(),
        "loss": {"d_final": result.d_loss[-1], "g_final": result.g_loss[-1]},
    }  # fmt: skip
    return CellOutput(record, _sample_grid_png(nets.G, cell.seed))


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


def parameter_counts(nets: Nets) -> dict[str, Any]:
    """Trainable and total parameters of G, D and both, and the trainable fraction (the record's columns)."""
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
