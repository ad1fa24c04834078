"""The leaderboard's standard cells and run directory (records from the shared builders, tests/builders.py,
also behind the ``record`` and ``write_run`` fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_record, write_run_folder

# strategy -> per seed: (final FID, FID at step 100); the final FID is also the curve's point at step 200
FIDS = {
    "scratch": [(300.0, 350.0), (310.0, 360.0), (320.0, 370.0)],
    "finetune": [(200.0, 290.0), (210.0, 320.0), (220.0, 310.0)],
    "adapter": [(250.0, 340.0), (250.0, 305.0), (340.0, 400.0)],
}


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
