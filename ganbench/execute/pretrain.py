"""Source models: pretrained once per key, cached with a content hash, shared by every cell that needs them.

The planner computes each cell's :class:`PretrainJob` (and so its key) once; a pretraining job
(:func:`ensure_pretrained`) trains and stores the model, and cells only load it (:func:`load_pretrained`),
failing with a clear message when it is missing rather than training it behind the driver's back.
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench.data.prepare import prepare_dataset
from ganbench.errors import GanbenchError
from ganbench.execute.context import RunContext, resolve_device
from ganbench.execute.timing import device_name
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.grid.cells import Cell
from ganbench.plugin.contracts import Nets, SourceCheckpoint, Strategy
from ganbench.plugin.manager import load_registry
from ganbench.plugin.registry import Registry
from ganbench.store.cache import atomic_torch_save, atomic_write_json, stable_hash
from ganbench.store.provenance import now, versions


@dataclass(frozen=True)
class PretrainJob:
    """Everything that makes a source model: its key is the cache entry every cell needing it shares."""

    arch: str
    source: str
    resolution: int
    channels: int
    steps: int
    batch_size: int
    lr: float
    seed: int
    # the architecture's own weights (a pretrained backbone), as canonical JSON; "" for plain nets
    arch_weights: str = ""

    @classmethod
    def for_cell(cls, cell: Cell, registry: Registry) -> PretrainJob:
        """The job of ``cell``'s source model; resolves the architecture's weights (so: on the planner)."""
        b = cell.budget
        weights = registry.create(registry.resolve("architecture", cell.arch)).provenance()
        return cls(cell.arch, cell.source, cell.resolution, cell.channels, b.pretrain_steps, b.batch_size, b.lr,
                   cell.seed, weights_text(weights))  # fmt: skip

    @property
    def key(self) -> str:
        identity = asdict(self)
        if not identity["arch_weights"]:  # keeps the keys of plain architectures as they were
            identity.pop("arch_weights")
        return stable_hash({"pretrain": identity, "version": 1})[:20]

    def folder(self, context: RunContext) -> Path:
        return context.cache / "pretrain" / self.key

    def describe(self) -> str:
        return f"architecture {self.arch} on source {self.source}"


def weights_text(weights: dict[str, Any]) -> str:
    """An architecture's ``provenance()`` as the canonical text pretraining keys hash ("" when empty)."""
    return json.dumps(weights, sort_keys=True) if weights else ""


def load_pretrained(job: PretrainJob, context: RunContext) -> SourceCheckpoint | None:
    """The cached source model of ``job``, or None when it is not in the cache (or fails its hash check)."""
    folder = job.folder(context)
    ckpt_path, meta_path = folder / "checkpoint.pt", folder / "meta.json"
    if not (meta_path.is_file() and ckpt_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    data = ckpt_path.read_bytes()
    if meta.get("sha256") != _sha256(data):  # damaged or partial: never trusted
        return None
    state = torch.load(io.BytesIO(data), weights_only=True)
    return SourceCheckpoint(state["generator"], state["discriminator"], job.key, meta["sha256"], meta)


def require_pretrained(job: PretrainJob, context: RunContext) -> SourceCheckpoint:
    """The cached source model of ``job``; a one-line error when it is missing."""
    checkpoint = load_pretrained(job, context)
    if checkpoint is None:
        raise GanbenchError(
            f"the source model of {job.describe()} (key {job.key}) is not in the cache at {job.folder(context)}: "
            "its pretraining job runs before the cells that need it, so check that this machine sees the run's "
            "cache and that the pretraining did not fail"
        )
    return checkpoint


def ensure_pretrained(
    job: PretrainJob, context: RunContext, progress: bool = True
) -> tuple[SourceCheckpoint, dict[str, Any]]:
    """The source model of ``job`` from the cache, training and caching it first if needed.
    Returns it with ``{"pretrain_s": seconds it took to train, "pretrain_cache_hit": bool, "pretrain_key"}``."""
    cached = load_pretrained(job, context)
    if cached is not None:
        return cached, {"pretrain_s": cached.meta["seconds"], "pretrain_cache_hit": True, "pretrain_key": job.key}
    with context.active():
        checkpoint = _pretrain(job, context, progress)
    info = {"pretrain_s": checkpoint.meta["seconds"], "pretrain_cache_hit": False, "pretrain_key": job.key}
    return checkpoint, info


def _pretrain(job: PretrainJob, context: RunContext, progress: bool) -> SourceCheckpoint:
    device = resolve_device(context.device)
    registry = load_registry(context=context)
    source = prepare_dataset(registry.resolve("dataset", job.source), registry, job.resolution, job.channels, context)
    torch.manual_seed(job.seed)
    G, D = registry.create(registry.resolve("architecture", job.arch)).build(job.resolution, job.channels)
    nets = Nets(G.to(device), D.to(device))
    config = TrainConfig(job.steps, job.batch_size, job.lr, job.seed)
    desc = f"pretrain on {job.source.split(':')[0]}"
    result = train_gan(nets, Strategy(), source.images.to(device), config, desc=desc, progress=progress)
    state = {"generator": _cpu_state(nets.G), "discriminator": _cpu_state(nets.D)}
    folder = job.folder(context)
    data = atomic_torch_save(folder / "checkpoint.pt", state)
    meta = {"key": job.key, "job": asdict(job), "sha256": _sha256(data), "seconds": result.train_seconds,
            "step_ms": statistics.median(result.step_ms) if result.step_ms else None,
            "device": device_name(device), "created_at": now(), **versions()}  # fmt: skip
    atomic_write_json(folder / "meta.json", meta)
    return SourceCheckpoint(state["generator"], state["discriminator"], job.key, meta["sha256"], meta)


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
