"""Source models: pretrained once per key, cached with a content hash, shared by every cell that needs them.

The planner computes each cell's :class:`PretrainJob` (and so its key) once; a pretraining job
(:func:`ensure_pretrained`) trains and stores the model, and cells only load it (:func:`load_pretrained`),
failing with a clear message when it is missing rather than training it behind the driver's back.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ganbench.context import RunContext, resolve_device
from ganbench.data.prepare import prepare_dataset
from ganbench.errors import Diverged, GanbenchError
from ganbench.execute.checkpoint import Checkpoints
from ganbench.execute.sources import load_checkpoint_source
from ganbench.execute.timing import device_name
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.files import writing
from ganbench.grid.cells import Cell, Recipe
from ganbench.grid.sources import is_checkpoint_spec
from ganbench.plugin.contracts import Nets, SourceCheckpoint, Strategy
from ganbench.plugin.manager import describe_failure, load_registry
from ganbench.plugin.options import parse_spec
from ganbench.plugin.registry import Registry
from ganbench.store.cache import atomic_torch_save, atomic_write_json, stable_hash
from ganbench.store.locks import entry_lock
from ganbench.store.provenance import now, versions

RESUME_FILE = "resume.pt"  # an unfinished pretraining's checkpoint, inside its entry's folder


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
    #: a checkpoint source: the file on the planner's machine (its sha256 is in ``source``); "" when trained
    checkpoint: str = ""
    #: the grid's training recipe (Adam betas, EMA, R1, precision): a source is trained the way its cells
    #: fine-tune, as the StyleGAN2 papers' sources were; with EMA the source's G is the moving average
    recipe: Recipe = field(default_factory=Recipe)

    @classmethod
    def for_cell(cls, cell: Cell, registry: Registry) -> PretrainJob:
        """The job of ``cell``'s source model; resolves the architecture's weights (so: on the planner)."""
        b = cell.budget
        weights = registry.create(registry.resolve("architecture", cell.arch)).provenance()
        if is_checkpoint_spec(cell.source):  # loaded, never trained: one job per (architecture, file)
            return cls(cell.arch, cell.source, cell.resolution, cell.channels, 0, 0, 0.0, 0, weights_text(weights),
                       checkpoint=cell.source_file or "")  # fmt: skip
        return cls(cell.arch, cell.source, cell.resolution, cell.channels, b.pretrain_steps, b.batch_size, b.lr,
                   cell.seed, weights_text(weights), recipe=cell.recipe)  # fmt: skip

    @property
    def key(self) -> str:
        identity = asdict(self)
        if not identity["arch_weights"]:  # keeps the keys of plain architectures as they were
            identity.pop("arch_weights")
        identity.pop("checkpoint")  # where the file lies is not what it is (its sha256, in ``source``)
        if self.recipe == Recipe():  # keeps the keys of sources trained with the plain loop as they were
            identity.pop("recipe")
        return stable_hash({"pretrain": identity, "version": 1})[:20]

    def folder(self, context: RunContext) -> Path:
        return context.cache / "pretrain" / self.key

    def describe(self) -> str:
        if self.checkpoint:
            return f"architecture {self.arch} from checkpoint {Path(self.checkpoint).name}"
        return f"architecture {self.arch} on source {self.source}"


def weights_text(weights: dict[str, Any]) -> str:
    """An architecture's ``provenance()`` as the canonical text pretraining keys hash ("" when empty)."""
    return json.dumps(weights, sort_keys=True) if weights else ""


def load_pretrained(job: PretrainJob, context: RunContext, repair: bool = False) -> SourceCheckpoint | None:
    """The cached source model of ``job``, or None when it is not in the cache, or is incomplete or damaged
    (a file missing, truncated or failing its sha256: never trusted). With ``repair`` (only under the entry's
    lock) a damaged entry is reported in one line and marked incomplete, to be trained again."""
    if job.checkpoint:
        return _load_checkpoint_file(job, context)
    folder = job.folder(context)
    ckpt_path, meta_path = folder / "checkpoint.pt", folder / "meta.json"
    if not (meta_path.is_file() and ckpt_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        data = ckpt_path.read_bytes()
        if meta.get("sha256") != _sha256(data):
            raise ValueError("sha256 mismatch")
        state = torch.load(io.BytesIO(data), weights_only=True)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        if repair:
            tqdm.write(f"warning: the cached source model {folder} is damaged ({exc}); training it again")
            with writing(meta_path, "source model's meta"):
                meta_path.unlink(missing_ok=True)  # the entry is incomplete from here on, and rebuilt
        return None
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
    Returns it with ``{"pretrain_s": seconds it took to train, "pretrain_cache_hit": bool, "pretrain_key"}``.

    The entry is built under its own lock, so two processes (or machines sharing the cache) never train the
    same source model twice: the second waits, then reads what the first stored. The training checkpoints into
    the entry's folder under the context's policy, so an interrupted pretraining continues where it stopped.
    A checkpoint source is only loaded and checked against the architecture (``pretrain_s`` None)."""
    if job.checkpoint:
        return _load_checkpoint_file(job, context), {"pretrain_s": None, "pretrain_cache_hit": None,
                                                     "pretrain_key": job.key}  # fmt: skip
    cached = load_pretrained(job, context)
    if cached is None:
        folder = job.folder(context)
        with entry_lock(folder.with_name(folder.name + ".lock"), f"source model {job.key}", notify=tqdm.write):
            cached = load_pretrained(job, context, repair=True)  # another process may have built it meanwhile
            if cached is None:
                with context.active():
                    checkpoint = _pretrain(job, context, progress)
                info = {"pretrain_s": checkpoint.meta["seconds"], "pretrain_cache_hit": False, "pretrain_key": job.key}
                return checkpoint, info
    return cached, {"pretrain_s": cached.meta["seconds"], "pretrain_cache_hit": True, "pretrain_key": job.key}


def pretrain_task(job: PretrainJob, context: RunContext, progress: bool = True) -> tuple[str, dict | None, str | None]:
    """:func:`ensure_pretrained` as a task that never raises for a failing job: ``(key, info, None)``, or
    ``(key, None, one line naming the architecture and source and why)`` when it raised or diverged."""
    try:
        return job.key, ensure_pretrained(job, context, progress)[1], None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Diverged as exc:
        return job.key, None, f"pretraining {job.describe()} diverged ({exc})"
    except Exception as exc:
        return job.key, None, f"pretraining {job.describe()} failed: {describe_failure(exc, context)}"


def _load_checkpoint_file(job: PretrainJob, context: RunContext) -> SourceCheckpoint:
    """The checkpoint source of ``job``, checked key for key against freshly built nets (built on the meta
    device: shapes only, no memory, no time)."""
    registry = load_registry(context=context)
    arch = registry.create(registry.resolve("architecture", job.arch))
    with context.active(), torch.device("meta"):
        nets = arch.build(job.resolution, job.channels)
    _, options = parse_spec(job.source)
    return load_checkpoint_source(job.checkpoint, options["sha256"], options.get("generator", "g_ema"), nets,
                                  job.key)  # fmt: skip


def _pretrain(job: PretrainJob, context: RunContext, progress: bool) -> SourceCheckpoint:
    device = resolve_device(context.device)
    registry = load_registry(context=context)
    source = prepare_dataset(registry.resolve("dataset", job.source), registry, job.resolution, job.channels, context)
    torch.manual_seed(job.seed)
    G, D = registry.create(registry.resolve("architecture", job.arch)).build(job.resolution, job.channels)
    nets = Nets(G.to(device), D.to(device))
    config = TrainConfig(job.steps, job.batch_size, job.lr, job.seed, recipe=job.recipe,
                         channels_last=context.channels_last, compile=context.compile)  # fmt: skip
    desc = f"pretrain on {job.source.split(':')[0]}"
    folder = job.folder(context)
    identity = {"pretrain": job.key, "code": context.git_revision or versions()["ganbench_version"]}
    checkpoints = Checkpoints(folder / RESUME_FILE, context.checkpoint, identity, progress=progress)
    result = train_gan(nets, Strategy(), source.images.to(device), config, desc=desc, progress=progress,
                       checkpoints=checkpoints)  # fmt: skip
    generator = result.ema if result.ema is not None else nets.G  # rosinality's g_ema, what cells start from
    state = {"generator": _cpu_state(generator), "discriminator": _cpu_state(nets.D)}
    data = atomic_torch_save(folder / "checkpoint.pt", state, "source model")
    meta = {"key": job.key, "job": asdict(job), "sha256": _sha256(data), "seconds": result.train_seconds,
            "step_ms": statistics.median(result.step_ms) if result.step_ms else None,
            "device": device_name(device), "created_at": now(), **result.resumed.record(),
            "losses": result.loss_curves(), **versions()}  # fmt: skip
    # last: the entry is complete once its meta is there
    atomic_write_json(folder / "meta.json", meta, "source model's meta")
    checkpoints.remove()
    return SourceCheckpoint(state["generator"], state["discriminator"], job.key, meta["sha256"], meta)


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
