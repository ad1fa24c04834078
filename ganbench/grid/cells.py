"""Grid cells: one point of a grid each, with a stable id (the hash of everything that changes its result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.store.cache import stable_hash
from ganbench.store.provenance import versions
from ganbench.store.records import SCHEMA_VERSION
from ganbench.store.schema import Record

REFERENCE_CHOICES = ("all", "heldout")


@dataclass(frozen=True)
class Budget:
    """Everything about training and evaluation effort that changes a cell's result."""

    pretrain_steps: int
    finetune_steps: int
    batch_size: int
    lr: float
    eval_samples: int
    eval_every: int


@dataclass(frozen=True)
class EvalProtocol:
    """What a cell's evaluation compares against. The defaults are the literature's (and ganbench's earlier)
    protocol, and leave a cell's id unchanged."""

    reference: str = "all"  # "all": every target image, shots included; "heldout": the non-shot images
    reference_samples: int = 0  # 0: the whole target; N: a seeded subset of N target images
    select_on: str = "final"  # "final": headline numbers at the last step; "val": also at the step chosen on val
    val_samples: int = 0  # size of the validation split (needed with select_on = "val")

    def check(self) -> None:
        if self.reference not in REFERENCE_CHOICES:
            raise GanbenchError(f"reference must be one of {', '.join(REFERENCE_CHOICES)} (got {self.reference!r})")
        if self.select_on not in ("final", "val"):
            raise GanbenchError(f"select_on must be 'final' or 'val' (got {self.select_on!r})")
        if self.reference_samples < 0 or self.val_samples < 0:
            raise GanbenchError("reference_samples and val_samples must be 0 or more")
        if self.select_on == "val" and self.val_samples < 2:
            raise GanbenchError("select_on = 'val' needs a validation split: set val_samples (e.g. --val-samples 500)")


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Recipe:
    """The training loop's settings beyond the budget, each changing a cell's result. The defaults are the
    loop ganbench always ran (DCGAN's Adam betas, no EMA, no R1, float32) and leave a cell's id unchanged."""

    betas: tuple[float, float] = (0.5, 0.999)
    ema: float = 0.0  # decay of the generator's exponential moving average per step; 0: none
    r1_gamma: float = 0.0  # R1 penalty weight on D's gradient at real images; 0: none
    r1_every: int = 16  # lazy regularization: R1 every this many steps, scaled by it
    precision: str = "fp32"  # "bf16": autocast the nets' forward passes to bfloat16 (CUDA)

    def check(self) -> None:
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise GanbenchError(f"betas must be two numbers in [0, 1), e.g. 0,0.99 (got {list(self.betas)})")
        if not 0.0 <= self.ema < 1.0:
            raise GanbenchError(f"ema must be a decay in [0, 1), e.g. 0.999; 0 turns it off (got {self.ema})")
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise GanbenchError("r1_gamma must be 0 or more and r1_every at least 1")
        if self.precision not in PRECISIONS:
            raise GanbenchError(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")

    def describe(self) -> dict[str, Any]:
        return {"betas": list(self.betas), "ema": self.ema, "r1_gamma": self.r1_gamma, "r1_every": self.r1_every,
                "precision": self.precision}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One point of the grid. Specs are canonical (every option written out), so equal cells hash equal."""

    arch: str
    strategy: str
    source: str
    target: str
    shots: int
    seed: int
    resolution: int
    channels: int
    budget: Budget
    metrics: tuple[str, ...]
    augment: str = "none"
    protocol: EvalProtocol = field(default_factory=EvalProtocol)
    recipe: Recipe = field(default_factory=Recipe)
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # set when a plugin the cell needs failed to load: the cell is recorded as failed, the grid goes on
    broken: str | None = field(default=None, compare=False)
    #: where a checkpoint source (``checkpoint:sha256=...``) lies on the planner's machine; the identity holds
    #: only the file's hash, so the same file elsewhere is the same cell
    source_file: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        for local in ("labels", "broken", "source_file"):
            data.pop(local)
        if self.protocol == EvalProtocol():  # the protocol every cell had before it could change: same ids
            data.pop("protocol")
        if self.recipe == Recipe():  # likewise the training loop's recipe
            data.pop("recipe")
        return data

    @property
    def id(self) -> str:
        return stable_hash(self.identity())[:12]


def cell_fields(cell: Cell, git_revision: str | None) -> Record:
    """The fields every record of ``cell`` has, whatever its outcome: what it is, its budgets, the code."""
    b = cell.budget
    return {
        "schema_version": SCHEMA_VERSION, "cell_id": cell.id,
        "arch": cell.labels.get("arch", cell.arch), "strategy": cell.labels.get("strategy", cell.strategy),
        "source": cell.labels.get("source", cell.source), "target": cell.labels.get("target", cell.target),
        "augment": cell.labels.get("augment", cell.augment), "shots": cell.shots, "seed": cell.seed,
        "resolution": cell.resolution, "channels": cell.channels,
        "pretrain_steps": b.pretrain_steps, "finetune_steps": b.finetune_steps, "batch_size": b.batch_size,
        "lr": b.lr, "eval_samples": b.eval_samples, "eval_every": b.eval_every,
        "reference": cell.protocol.reference, "reference_samples": cell.protocol.reference_samples or None,
        "select_on": cell.protocol.select_on, "betas": ",".join(f"{b:g}" for b in cell.recipe.betas),
        "ema": cell.recipe.ema, "r1_gamma": cell.recipe.r1_gamma, "r1_every": cell.recipe.r1_every,
        "train_precision": cell.recipe.precision, "source_file": cell.source_file, "spec": cell.identity(), "git_revision": git_revision, **versions(),
    }  # fmt: skip
