"""Builders the tests share, importable from any test module (``from builders import ...``: pytest puts this
folder on the path) and behind the conftest fixtures ``record``, ``write_run`` and ``write_images``: cell records
as the runner writes them, run folders of such records, and folders of image files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganbench.report.comparability import SETTING_FIELDS
from ganbench.store.records import SCHEMA_VERSION

SOURCE, TARGET = "mnist5k:classes=0-4", "mnist5k:classes=5-9"

# The columns FID and KID declare (every record of the default metrics declares these).
FID_KID_COLUMNS = [
    {"name": "fid", "metric": "fid", "lower_is_better": True, "label": "FID", "digits": 2},
    {"name": "kid", "metric": "kid", "lower_is_better": True, "label": "KID", "digits": 4},
    {"name": "kid_subset_size", "metric": "kid", "lower_is_better": None, "label": "KID subset", "digits": 0},
]


def make_record(strategy: str, seed: int, fid: float | None, first: float | None = None, **changes) -> dict:
    """A cell record of the current schema as the runner writes it (every field the leaderboard reads), with
    FID (``fid`` at step 200, ``first`` at step 100) and KID, ``changes`` applied. Its ``cell_id`` is the hash
    of what identifies the cell, unless ``changes`` give one."""
    r = {
        "schema_version": SCHEMA_VERSION, "status": "ok", "arch": "dcgan", "strategy": strategy, "augment": "none",
        "source": SOURCE, "target": TARGET, "shots": 100, "seed": seed,
        "fid": fid, "kid": None if fid is None else fid / 1000, "metric_columns": FID_KID_COLUMNS,
        "curve": [] if fid is None else [{"step": 100, "fid": first, "kid": 0.5}, {"step": 200, "fid": fid, "kid": 0.4}],
        "trainable_fraction": 0.05 if strategy == "adapter" else 1.0,
        "pretrain_s": None if strategy == "scratch" else 40.0 + seed, "pretrain_cache_hit": False,
        "finetune_s": 10.0 * (seed + 1), "eval_s": 5.0, "step_ms": 50.0, "images_per_s": 100.0 * (seed + 1),
        "peak_mem_mb": 1000.0, "peak_mem_kind": "cpu_peak_rss", "device": "cpu (test, 2 threads)",
        "resolution": 32, "channels": 1, "pretrain_steps": 2000, "finetune_steps": 200, "batch_size": 64,
        "lr": 0.0002, "eval_samples": 250, "eval_every": 100, "n_gen": 250, "n_ref": 2500, "fid_mode": "clean",
        "inception_sha1": "a" * 40, "ganbench_version": "0.1.0", "torch_version": "2.3.0",
        "cleanfid_version": "0.1.35", "git_revision": "abc123", "error": None,
        "finished_at": f"2026-01-0{seed + 1}T00:00:00+00:00",
    }  # fmt: skip
    r.update(changes)
    identity = {k: r[k] for k in ("arch", "strategy", "augment", "source", "target", "shots", "seed", *SETTING_FIELDS)
                if k in r}  # fmt: skip
    r.setdefault("cell_id", hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12])
    return r


def write_run_folder(folder: Path, records: Iterable[dict]) -> Path:
    """A run directory: ``cells/<id>.json`` plus a small grey sample grid per cell (lighter for higher seeds)."""
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    (folder / "samples").mkdir(exist_ok=True)
    for r in records:
        (folder / "cells" / f"{r['cell_id']}.json").write_text(json.dumps(r))
        Image.new("L", (34, 34), color=(r["seed"] * 40 + 60)).save(folder / "samples" / f"{r['cell_id']}.png")
    return folder


def write_images(folder: Path, images, name: str = "{i:03d}.png") -> Path:
    """``images`` saved one file each into ``folder`` (made if missing), named ``name.format(i=...)``: uint8
    arrays H x W or H x W x C, or uint8 tensors C x H x W (N x C x H x W: one file per image)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        if isinstance(image, torch.Tensor):
            image = image.numpy().transpose(1, 2, 0)
        image = np.asarray(image)
        Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image).save(
            folder / name.format(i=i)
        )
    return folder
