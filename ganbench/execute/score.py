"""``ganbench score``: any set of metrics between folders of images, through the pipeline cells evaluate with
(the same evaluation context, feature spaces, caches and checks). Folders are read as ``ganbench fid`` and the
folder dataset read them (:func:`ganbench.metrics.folders.load_image_folder`, the shared image loader)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganbench.context import RunContext, resolve_device
from ganbench.errors import GanbenchError
from ganbench.execute.evaluation import checked
from ganbench.files import show_path
from ganbench.metrics.folders import load_image_folder
from ganbench.plugin.contracts import EvalContext
from ganbench.plugin.manager import load_registry
from ganbench.store.cache import tensor_hash
from ganbench.store.provenance import versions

DEFAULT_METRICS = ("fid", "kid", "prdc")
WITH_SHOTS = ("memorization",)


def folder_tensor(folder: str | Path) -> torch.Tensor:
    """Every image of a folder as one uint8 N x 3 x H x W tensor, decoded by the shared loader at their own size
    (they must share one size)."""
    arrays = load_image_folder(folder)
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise GanbenchError(
            f"the images under {show_path(folder)} have {len(sizes)} sizes ({', '.join(f'{h}x{w}' for h, w in sizes[:3])}...); "
            "`ganbench score` needs one size per folder (`ganbench fid` takes mixed sizes)"
        )
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _digests(images: torch.Tensor) -> list[str]:
    return [hashlib.sha1(im.numpy().tobytes()).hexdigest() for im in images]


def score_folders(
    generated_dir: str | Path,
    reference_dir: str | Path,
    *,
    context: RunContext,
    shots_dir: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Every column of ``metrics`` (default: FID, KID, PRDC, and memorization when shots are given) for the
    generated folder against the reference folder. The shots' byte-identical copies in the reference are left
    out of the held-out set memorization compares with."""
    if metrics is not None and not list(metrics):
        raise GanbenchError("no metric named: give at least one, e.g. --metrics fid,kid (or leave --metrics out)")
    specs = list(metrics or (*DEFAULT_METRICS, *(WITH_SHOTS if shots_dir else ())))
    with context.active():
        device = resolve_device(context.device)
        registry = load_registry(context=context)
        plugins = [registry.create(registry.resolve("metric", spec)) for spec in specs]
        # every folder read before any metric loads its networks: a bad folder fails first, and cheaply
        generated, reference = folder_tensor(generated_dir), folder_tensor(reference_dir)
        shots = folder_tensor(shots_dir) if shots_dir is not None else None
        provenance: dict[str, Any] = {}
        for metric in plugins:
            provenance.update(metric.prepare(device, context.cache))
        heldout = None
        if shots is not None:
            seen = set(_digests(shots))
            keep = [i for i, d in enumerate(_digests(reference)) if d not in seen]
            heldout = reference[keep]
        ctx = EvalContext(generated, reference, tensor_hash(reference), device, context.cache, progress=progress,
                          shots=shots, heldout=heldout)  # fmt: skip
        values: dict[str, Any] = {}
        start = time.perf_counter()
        for metric in plugins:
            values.update(checked(metric, metric.compute(ctx)))
        seconds = time.perf_counter() - start
    return {
        **values,
        "n_gen": len(generated), "n_ref": len(reference), "n_shots": None if shots is None else len(shots),
        "n_heldout": None if heldout is None else len(heldout), "metrics": specs,
        "features_s": ctx.timings.get("features", 0.0), "seconds": seconds, "device": str(device),
        **provenance, **versions(),
    }  # fmt: skip
