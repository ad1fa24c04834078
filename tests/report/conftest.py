"""Synthetic cell records and run directories, as the runner writes them, for the leaderboard's tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from ganbench.report.comparability import SETTING_FIELDS

SOURCE, TARGET = "mnist5k:classes=0-4", "mnist5k:classes=5-9"
# strategy -> per seed: (final FID, FID at step 100); the final FID is also the curve's point at step 200
FIDS = {
    "scratch": [(300.0, 350.0), (310.0, 360.0), (320.0, 370.0)],
    "finetune": [(200.0, 290.0), (210.0, 320.0), (220.0, 310.0)],
    "adapter": [(250.0, 340.0), (250.0, 305.0), (340.0, 400.0)],
}


def make_record(strategy: str, seed: int, fid: float | None, first: float | None = None, **changes) -> dict:
    """A cell record as the runner writes it (every field the leaderboard reads), ``changes`` applied."""
    r = {
        "schema_version": 1, "status": "ok", "arch": "dcgan", "strategy": strategy, "augment": "none",
        "source": SOURCE, "target": TARGET, "shots": 100, "seed": seed,
        "fid": fid, "kid": None if fid is None else fid / 1000,
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


def write_run_folder(folder: Path, records: list[dict]) -> Path:
    """A run directory: cells/<id>.json plus a small sample grid per cell."""
    for r in records:
        (folder / "cells").mkdir(parents=True, exist_ok=True)
        (folder / "samples").mkdir(exist_ok=True)
        (folder / "cells" / f"{r['cell_id']}.json").write_text(json.dumps(r))
        Image.new("L", (34, 34), color=(r["seed"] * 40 + 60)).save(folder / "samples" / f"{r['cell_id']}.png")
    return folder


def make_standard_cells(**changes) -> list[dict]:
    cells = [
        make_record(s, seed, fid, first, **changes)
        for s, runs in FIDS.items()
        for seed, (fid, first) in enumerate(runs)
    ]
    cells.append(make_record("adapter", 3, None, status="diverged", error="non-finite loss", **changes))
    cells.append(make_record("finetune", 3, None, status="failed", error="boom", **changes))
    return cells


@pytest.fixture
def record():
    """``record(strategy, seed, fid, fid_at_step_100, **changes)``: a schema-1 cell record (FID and KID)."""
    return make_record


@pytest.fixture
def write_run():
    """``write_run(folder, records)``: a run directory of those records, with a sample grid per cell."""
    return write_run_folder


@pytest.fixture
def standard_cells():
    """``standard_cells(**changes)``: scratch, finetune, adapter over seeds 0-2 (``FIDS``), plus a diverged
    adapter cell and a failed finetune cell."""
    return make_standard_cells


@pytest.fixture
def fids():
    return FIDS


@pytest.fixture
def run(tmp_path) -> Path:
    """A run directory of the standard cells."""
    return write_run_folder(tmp_path / "runs" / "default-0001", make_standard_cells())
