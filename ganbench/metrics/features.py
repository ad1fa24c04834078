"""Feature spaces, and the one feature pass per (space, image set) an evaluation shares between its metrics.

A :class:`FeatureSpace` maps uint8 images to (N, d) float features on the evaluation device: NVIDIA's
Inception (FID, KID, PRDC, memorization), raw pixels (memorization), a timm backbone (``fd``). Metrics ask for
features with :func:`eval_features` ``(ctx, space, which)``; the first ask computes them, later asks in the
same evaluation get the memo. Sets that index the target (reference, held-out, validation images) are slices of
one pass over the target's featurized pool, cached on disk by content, so adding a metric or a held-out set
never featurizes the target twice.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ganbench.errors import one_line
from ganbench.metrics.inception import EXTRACTOR, MODE, InceptionWeights, get_extractor, resolve_inception_weights
from ganbench.plugin.contracts import EvalContext, Metric
from ganbench.store.cache import atomic_write_bytes, atomic_write_text, stable_hash, tensor_hash
from ganbench.store.locks import entry_lock

CACHE_FOLDER = "fid-ref"  # reference features of every space (the name predates other spaces)


class FeatureSpace:
    """Images -> features. ``identity()`` names everything that changes the features (extractor, weights hash,
    preprocessing): it keys the caches. ``provenance()`` is what records say about the space."""

    name: str = "features"

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, device: torch.device, desc: str | None = None) -> torch.Tensor:
        """uint8 (N, C, H, W) on any device -> float32 (N, d) on ``device``."""
        raise NotImplementedError

    def provenance(self) -> dict[str, Any]:
        return {}

    @property
    def key(self) -> str:
        return stable_hash(self.identity())[:16]


class InceptionSpace(FeatureSpace):
    """2048-d pool features of NVIDIA's Inception, clean-fid "clean" preprocessing."""

    name = "inception"

    def __init__(self, weights: InceptionWeights | None = None, cache_dir: str | os.PathLike | None = None) -> None:
        self.weights = weights or resolve_inception_weights(cache_dir)

    def identity(self) -> dict[str, Any]:
        # the keys reference features were cached under before other spaces existed: old caches stay valid
        return {"extractor": EXTRACTOR, "sha1": self.weights.sha1, "mode": MODE}

    def __call__(self, images: torch.Tensor, device: torch.device, desc: str | None = None) -> torch.Tensor:
        return get_extractor(self.weights, device).features_tensor(images, desc=desc)

    def provenance(self) -> dict[str, Any]:
        return self.weights.provenance()


class PixelSpace(FeatureSpace):
    """Raw pixels in [0, 1], flattened: distances between images as stored (a copy is at distance 0)."""

    name = "pixels"

    def identity(self) -> dict[str, Any]:
        return {"extractor": "pixels"}

    def __call__(self, images: torch.Tensor, device: torch.device, desc: str | None = None) -> torch.Tensor:
        return images.to(device).flatten(1).float().div_(255.0)


def eval_features(ctx: EvalContext, space: FeatureSpace, which: str) -> torch.Tensor:
    """Features of one image set of the evaluation (``generated``, ``reference``, ``shots``, ``heldout``,
    ``val``) in ``space``, on ``ctx.device``: computed once per evaluation, target sets cached on disk."""
    # the reference's key is part of the memo's: a validation context plays "reference" with other images
    memo_key = f"features:{space.key}:{which}" + (f":{ctx.reference_key}" if which == "reference" else "")
    if memo_key not in ctx.memo:
        start = _now(ctx.device)
        ctx.memo[memo_key] = _features(ctx, space, which)
        ctx.timings["features"] = ctx.timings.get("features", 0.0) + _now(ctx.device) - start
    return ctx.memo[memo_key]


def _features(ctx: EvalContext, space: FeatureSpace, which: str) -> torch.Tensor:
    parts = ctx.parts
    if parts is not None and which in parts.index:
        index = parts.index[which]
        pool = parts.index.get("pool")
        if pool is not None and bool(torch.isin(index, pool).all()):
            pooled = _pool_features(ctx, space)
            row = torch.full((len(parts.images),), -1, dtype=torch.long)
            row[pool] = torch.arange(len(pool))
            return pooled[row[index].to(pooled.device)]
        key = stable_hash([parts.key, tensor_hash(index)])
        return cached_features(space, parts.images[index], key, ctx.device, ctx.cache_dir, ctx.progress, which)
    if which == "reference":
        return cached_features(space, ctx.reference, ctx.reference_key, ctx.device, ctx.cache_dir, ctx.progress)
    return space(ctx.images(which), ctx.device)


def _pool_features(ctx: EvalContext, space: FeatureSpace) -> torch.Tensor:
    memo_key = f"features:{space.key}:pool"
    if memo_key not in ctx.memo:
        parts = ctx.parts
        pool = parts.index["pool"]
        everything = len(pool) == len(parts.images)
        key = parts.key if everything else stable_hash([parts.key, tensor_hash(pool)])
        images = parts.images if everything else parts.images[pool]
        ctx.memo[memo_key] = cached_features(space, images, key, ctx.device, ctx.cache_dir, ctx.progress)
    return ctx.memo[memo_key]


def cached_features(
    space: FeatureSpace,
    images: torch.Tensor,
    content_key: str,
    device: torch.device | str,
    cache_dir: str | os.PathLike,
    progress: bool = False,
    what: str = "reference",
) -> torch.Tensor:
    """Features of a fixed image set, cached under ``cache_dir`` by (content, space identity): a ``.npy`` file and
    the sha256 of its bytes beside it (``.sha256``), computed by one process at a time."""
    device = torch.device(device)
    key = stable_hash({"content": content_key, **space.identity()})
    path = Path(cache_dir) / CACHE_FOLDER / f"{key[:20]}.npy"
    feats, _ = _read_features(path, len(images))
    if feats is None:  # the others wait for the process computing them, then read what it wrote
        with entry_lock(path.with_suffix(".lock"), f"{what} features ({space.name}, {path.name})", notify=tqdm.write):
            feats, damage = _read_features(path, len(images))
            if feats is None:
                if damage:
                    tqdm.write(f"warning: the feature cache file {path} is damaged ({damage}); rebuilding it")
                    path.unlink(missing_ok=True)
                desc = f"{what} features ({space.name}, {len(images)} images)" if progress else None
                feats = space(images, device, desc=desc)
                _write_features(path, feats)
                return feats
    return torch.from_numpy(feats).to(device)


def _write_features(path: Path, feats: torch.Tensor) -> None:
    """The checksum first: a reader that finds the new checksum beside an old file sees damage and waits."""
    buffer = io.BytesIO()
    np.save(buffer, feats.float().cpu().numpy())
    data = buffer.getvalue()
    atomic_write_text(_checksum_path(path), hashlib.sha256(data).hexdigest() + "\n")
    atomic_write_bytes(path, data)


def _read_features(path: Path, n: int) -> tuple[np.ndarray | None, str | None]:
    """The cached (n, d) float32 features at ``path`` if they are whole; else (None, what is wrong with the file),
    or (None, None) when there is none. Files from before checksums (no ``.sha256``) are trusted when they load
    with that shape."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        expected = _checksum_path(path).read_text().strip()
    except FileNotFoundError:
        expected = None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        return None, "its bytes do not match their sha256"
    try:
        feats = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:  # truncated or overwritten: rebuilt, never trusted
        return None, f"unreadable: {one_line(str(e) or type(e).__name__, 80)}"
    if feats.ndim != 2 or len(feats) != n or feats.dtype != np.float32:
        return None, f"it holds {feats.dtype} {feats.shape} features, not {n} rows of float32"
    return feats, None


def _checksum_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def reference_features(
    images: torch.Tensor,
    content_key: str,
    weights: InceptionWeights,
    device: torch.device | str,
    cache_dir: str | os.PathLike,
    progress: bool = False,
) -> np.ndarray:
    """Inception features of a reference set, cached by (content, extractor, weights, mode), as NumPy."""
    return cached_features(InceptionSpace(weights), images, content_key, device, cache_dir, progress).cpu().numpy()


def inception_features(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated, reference) Inception features of one evaluation, float32 tensors on ``ctx.device``, computed
    once and shared by every metric of that evaluation."""
    space = InceptionSpace(cache_dir=ctx.cache_dir)
    return eval_features(ctx, space, "generated"), eval_features(ctx, space, "reference")


def _now(device: torch.device) -> float:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class InceptionMetric(Metric):
    """The base of every metric on Inception features (FID, KID, PRDC, memorization; subclass it for yours):
    weights resolved up front, the reference's features computed before any cell, the network loaded and run
    once before the first cell, and one feature pass per evaluation shared by all of them."""

    def prepare(self, device, cache_dir):
        return resolve_inception_weights(cache_dir).provenance()

    def reference(self, ctx):
        eval_features(ctx, InceptionSpace(cache_dir=ctx.cache_dir), "reference")

    def warm_up(self, device, cache_dir):
        space = InceptionSpace(cache_dir=cache_dir)
        space(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.device(device))

    def features(self, ctx, which):
        return eval_features(ctx, InceptionSpace(cache_dir=ctx.cache_dir), which)
