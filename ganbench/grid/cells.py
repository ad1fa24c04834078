"""Grid cells: one point of a grid each, with a stable id (the hash of everything that changes its result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.store.cache import stable_hash

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
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # set when a plugin the cell needs failed to load: the cell is recorded as failed, the grid goes on
    broken: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        for local in ("labels", "broken"):
            data.pop(local)
        if self.protocol == EvalProtocol():  # the protocol every cell had before it could change: same ids
            data.pop("protocol")
        return data

    @property
    def id(self) -> str:
        return stable_hash(self.identity())[:12]
