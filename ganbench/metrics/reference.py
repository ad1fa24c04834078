"""Features an evaluation needs: the reference set's, cached by content, and one pass over the generated
images shared by every metric of one evaluation."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from ganbench.metrics.inception import EXTRACTOR, MODE, InceptionWeights, get_extractor, resolve_inception_weights
from ganbench.plugin.contracts import EvalContext
from ganbench.store.cache import atomic_write_bytes, stable_hash


def reference_features(
    images: torch.Tensor,
    content_key: str,
    weights: InceptionWeights,
    device: torch.device | str,
    cache_dir: str | os.PathLike,
    progress: bool = False,
) -> np.ndarray:
    """Features of a reference set, cached under ``cache_dir`` by (content, extractor, weights, mode)."""
    key = stable_hash({"content": content_key, "extractor": EXTRACTOR, "sha1": weights.sha1, "mode": MODE})
    path = Path(cache_dir) / "fid-ref" / f"{key[:20]}.npy"
    if path.is_file():
        return np.load(path)
    desc = f"reference features ({len(images)} images)" if progress else None
    feats = get_extractor(weights, device).features(images, desc=desc)
    buffer = io.BytesIO()
    np.save(buffer, feats)
    atomic_write_bytes(path, buffer.getvalue())
    return feats


def inception_features(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """(generated, reference) Inception features of one evaluation, computed once and shared by every
    metric of that evaluation through ``ctx.memo``."""
    if "inception" not in ctx.memo:
        weights = resolve_inception_weights(ctx.cache_dir)
        ref = reference_features(ctx.reference, ctx.reference_key, weights, ctx.device, ctx.cache_dir)
        gen = get_extractor(weights, ctx.device).features(ctx.generated)
        ctx.memo["inception"] = (gen, ref)
    return ctx.memo["inception"]
