"""How a cell evaluates: which target images the reference holds, the evaluation context its metrics share,
and the time split between generating images, featurizing them and the metrics' arithmetic.

The sets, all positions in the prepared target:

- ``pool``: the images featurized at all: the whole target, or a seeded subset of ``reference_samples``
  (fixed seed, independent of the cell's seed, so every cell of a target shares one cached feature pass);
- ``shots``: the training images (drawn by the cell's seed from the whole target);
- ``val``: with ``val_samples``, a seeded subset of the pool's non-shot images, for choosing a stopping step
  without looking at the test reference; never part of the reference;
- ``heldout``: the pool's images that are neither shots nor validation images;
- ``reference``: ``all`` (the pool minus validation images, shots included, as the few-shot literature
  measures) or ``heldout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from ganbench.data.prepare import PreparedData
from ganbench.errors import GanbenchError
from ganbench.grid.cells import EvalProtocol
from ganbench.plugin.contracts import EvalContext, Metric, Nets, TargetParts
from ganbench.store.cache import stable_hash, tensor_hash

POOL_SEED = 7_919  # the featurized pool and validation split: fixed, so cells of one target share features
SMALL_REFERENCE = 2048  # below this many images, FID's 2048 x 2048 covariance estimate is rank-deficient


def pool(protocol: EvalProtocol, n_target: int) -> torch.Tensor:
    """Positions of the target images that are featurized at all (independent of shots and seed)."""
    if protocol.reference_samples and protocol.reference_samples < n_target:
        drawn = torch.randperm(n_target, generator=torch.Generator().manual_seed(POOL_SEED))
        return drawn[: protocol.reference_samples].sort().values
    return torch.arange(n_target)


def target_parts(protocol: EvalProtocol, target: PreparedData, shots: torch.Tensor) -> TargetParts:
    """The evaluation's sets for one cell (``shots``: positions of its training images)."""
    pooled = pool(protocol, len(target))
    not_shot = pooled[~torch.isin(pooled, shots)]
    val = not_shot[:0]
    if protocol.val_samples:
        if protocol.val_samples > len(not_shot) - 2:
            raise GanbenchError(
                f"val_samples={protocol.val_samples} leaves fewer than 2 of the target's {len(not_shot)} non-shot "
                "images for the reference; use a smaller validation split"
            )
        order = torch.randperm(len(not_shot), generator=torch.Generator().manual_seed(POOL_SEED + 1))
        val = not_shot[order[: protocol.val_samples]].sort().values
    heldout = not_shot[~torch.isin(not_shot, val)]
    reference = pooled[~torch.isin(pooled, val)] if protocol.reference == "all" else heldout
    index = {"pool": pooled, "reference": reference, "shots": shots, "heldout": heldout}
    if protocol.val_samples:
        index["val"] = val
    return TargetParts(target.images, target.content_key, index)


def describe(protocol: EvalProtocol, parts: TargetParts) -> dict[str, Any]:
    """The record's account of what the reference held."""
    index = parts.index
    return {
        "reference": protocol.reference,
        "reference_samples": protocol.reference_samples or None,
        "n_ref": len(index["reference"]),
        "n_heldout": len(index["heldout"]),
        "n_val": len(index["val"]) if "val" in index else 0,
        "select_on": protocol.select_on,
    }


def set_key(parts: TargetParts, which: str) -> str:
    """Content key of one set: the target's own when the set is the whole target."""
    index = parts.index[which]
    if len(index) == len(parts.images):
        return parts.key
    return stable_hash([parts.key, tensor_hash(index)])


def context_for(
    parts: TargetParts,
    generated: torch.Tensor,
    device: torch.device,
    cache_dir,
    *,
    reference: str = "reference",
    sample: Callable[[int], torch.Tensor] | None = None,
    seed: int = 0,
    memo: dict[str, Any] | None = None,
    progress: bool = False,
) -> EvalContext:
    """The evaluation context of one evaluation: ``reference`` names the set that plays the reference (the
    validation split plays it for step selection)."""
    ref_parts = parts if reference == "reference" else TargetParts(
        parts.images, parts.key, {**parts.index, "reference": parts.index[reference]}
    )  # fmt: skip
    return EvalContext(
        generated, parts.images[ref_parts.index["reference"]], set_key(ref_parts, "reference"), device, cache_dir,
        memo=dict(memo or {}), progress=progress, shots=parts.images[parts.index["shots"]],
        heldout=parts.images[parts.index["heldout"]], sample=sample, seed=seed, parts=ref_parts,
    )  # fmt: skip


@dataclass
class EvalTimes:
    """Seconds of all evaluations of a cell so far, split by what they spent it on."""

    generate: float = 0.0
    features: float = 0.0
    metrics: float = 0.0

    def record(self) -> dict[str, float]:
        return {"eval_generate_s": self.generate, "eval_features_s": self.features, "eval_metrics_s": self.metrics}


def features_memo(memo: dict[str, Any]) -> dict[str, Any]:
    """The features an evaluation computed (metrics' own memo entries stay with their context)."""
    return {k: v for k, v in memo.items() if k.startswith("features:")}


def shared_memo(memo: dict[str, Any]) -> dict[str, Any]:
    """What one evaluation hands the next: the target sets' features (never the generated images') and what
    metrics keep under ``reference:`` keys (things that depend on the reference alone, e.g. k-NN radii)."""
    kept = {k: v for k, v in features_memo(memo).items() if not k.endswith(":generated")}
    return {**kept, **{k: v for k, v in memo.items() if k.startswith("reference:")}}


class Evaluator:
    """Evaluates one cell's generator at each scheduled step: generate on the device, one feature pass per
    space, every metric; with ``select_on = "val"`` also the headline metric against the validation split."""

    def __init__(self, metrics: list[Metric], parts: TargetParts, protocol: EvalProtocol, *, n: int, seed: int,
                 generate: Callable[..., torch.Tensor], cache_dir, headline: str | None) -> None:  # fmt: skip
        self.metrics, self.parts, self.protocol = metrics, parts, protocol
        self.n, self.seed, self.generate, self.cache_dir = n, seed, generate, cache_dir
        self.headline = headline
        self.times = EvalTimes()
        self.memo: dict[str, Any] = {}

    def __call__(self, nets: Nets, step: int) -> dict[str, Any]:
        device = next(nets.G.parameters()).device
        start = _now(device)
        images = self.generate(nets.G, self.n, device_output=True)
        generated_at = _now(device)
        self.times.generate += generated_at - start
        sample = partial(self._sample, nets.G, images)
        ctx = context_for(self.parts, images, device, self.cache_dir, sample=sample, seed=self.seed, memo=self.memo)
        values: dict[str, Any] = {}
        for metric in self.metrics:
            values.update(checked(metric, metric.compute(ctx)))
        if self.protocol.select_on == "val" and self.headline is not None:
            val_ctx = context_for(self.parts, images, device, self.cache_dir, reference="val", sample=sample,
                                  seed=self.seed, memo=features_memo(ctx.memo))  # fmt: skip
            owner = next(m for m in self.metrics if self.headline in {c.name for c in m.columns})
            values[f"val_{self.headline}"] = checked(owner, owner.compute(val_ctx))[self.headline]
            ctx.timings["features"] = ctx.timings.get("features", 0.0) + val_ctx.timings.get("features", 0.0)
        spent = _now(device) - generated_at
        features = min(ctx.timings.get("features", 0.0), spent)
        self.times.features += features
        self.times.metrics += spent - features
        self.memo = shared_memo(ctx.memo)
        return values

    def _sample(self, G: torch.nn.Module, first: torch.Tensor, n: int) -> torch.Tensor:
        """n images from the evaluation's fixed latents (the first ones are those already generated)."""
        if n <= len(first):
            return first[:n]
        # a longer draw from the same seed does not begin with the same latents: keep the evaluated images first
        more = self.generate(G, n, device_output=True)[len(first) :]
        return torch.cat([first, more.to(first.device)])


def checked(metric: Metric, values: dict[str, Any]) -> dict[str, Any]:
    """The values of a metric's declared columns, all of them and nothing else."""
    declared = [c.name for c in metric.columns]
    if not isinstance(values, dict) or set(values) != set(declared):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise GanbenchError(f"metric '{metric.name}' returned {got} but declares the columns {declared}")
    return {name: values[name] for name in declared}


def select_step(curve: list[dict[str, Any]], column: str, lower_is_better: bool) -> dict[str, Any]:
    """The evaluation with the best validation score (the earliest of equals)."""
    key = f"val_{column}"
    scored = [p for p in curve if isinstance(p.get(key), (int, float))]
    if not scored:
        raise GanbenchError(f"no validation {column} on the curve to select a step on")
    best = min if lower_is_better else max
    return best(scored, key=lambda p: p[key])


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
