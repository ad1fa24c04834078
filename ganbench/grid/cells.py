"""Grid cells: one point of a grid each, with a stable id (the hash of everything that changes its result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ganbench.store.cache import stable_hash


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
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # set when a plugin the cell needs failed to load: the cell is recorded as failed, the grid goes on
    broken: str | None = field(default=None, compare=False)

    def identity(self) -> dict[str, Any]:
        data = asdict(self)
        for local in ("labels", "broken"):
            data.pop(local)
        return data

    @property
    def id(self) -> str:
        return stable_hash(self.identity())[:12]
