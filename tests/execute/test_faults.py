"""Fault injection: a tiny grid killed (SIGKILL) or interrupted (SIGINT) at chosen points, then rerun with the
same command. Every cell must complete exactly once, no record may be torn or duplicated, and every number
must equal the uninterrupted run's (on the CPU, bit for bit): checkpoints make a rerun continue, not redo.

The faults are injected by ``fault_run.py`` in a real child process (see its docstring for the points)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_settings import FIXTURE_PLUGINS, TINY_OPTIONS

from ganbench.store.runs import load_records

FAULT_RUN = Path(__file__).with_name("fault_run.py")
# the tiny grid, 6 fine-tuning steps evaluated at 3 and 6, checkpoints every 2 steps: pretraining makes optimizer
# steps 1-20 (10 steps, D and G), the scratch cell 21-32, the finetune cell 33-44
OPTIONS = [*TINY_OPTIONS, "--strategy=finetune", "--finetune-steps=6", "--eval-every=3", "--metrics=fid,kid",
           "--checkpoint-every=2", f"--plugins-dir={FIXTURE_PLUGINS}", "--quiet"]  # fmt: skip
COMPARED = ("fid", "kid", "curve", "losses", "status", "trainable_params")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, invoke):
    """The grid run once without faults: its records by cell id, and the cache it warmed (datasets, features)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    result = invoke("run", "matrix", *OPTIONS, "--out", root / "runs", "--cache", root / "cache")
    assert result.exit_code == 0, result.output
    return {r["cell_id"]: r for r in load_records(_run_dir(root / "runs"))}, root / "cache"


def _run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def _fresh_cache(warm: Path, target: Path) -> Path:
    """A cache with the prepared datasets and reference features, but no source model (so pretraining runs)."""
    for part in ("data", "fid-ref"):
        shutil.copytree(warm / part, target / part)
    return target


def _faulty_run(point: str, n: int, out: Path, cache: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(FAULT_RUN), point, str(n), "--", "run", "matrix", *OPTIONS, "--out", str(out),
               "--cache", str(cache)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _assert_complete_and_equal(run_dir: Path, expected: dict[str, dict]) -> dict[str, dict]:
    files = sorted((run_dir / "cells").iterdir())
    assert [f.name for f in files] == sorted(f"{cid}.json" for cid in expected), "one record per cell, nothing torn"
    records = {r["cell_id"]: r for r in (json.loads(f.read_text()) for f in files)}
    for cid, want in expected.items():
        for key in COMPARED:
            assert records[cid][key] == want[key], (cid, key)
    rows = (run_dir / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + len(expected)
    assert not list((run_dir / "checkpoints").glob("*")) if (run_dir / "checkpoints").exists() else True
    assert not (run_dir / ".lock").exists()
    return records


@pytest.mark.parametrize(
    ("point", "n", "resumed"),
    [
        ("step", 7, {}),  # during pretraining (its checkpoint at step 2)
        ("step", 22, {}),  # in the first cell's first step, before its first checkpoint
        ("step", 27, {"scratch": [3]}),  # between the checkpoint at step 3 (an evaluation) and the next
        ("checkpoint", 8, {"scratch": [3]}),  # while writing a checkpoint (pretraining writes 5, then step 5's)
        ("record", 1, {"scratch": [6]}),  # while writing the first record
        ("after-record", 2, {}),  # after the second record, before its checkpoint was removed
    ],
)
def test_a_killed_grid_resumes_to_the_uninterrupted_numbers(point, n, resumed, uninterrupted, tmp_path, invoke):
    expected, warm = uninterrupted
    cache = _fresh_cache(warm, tmp_path / "cache")
    killed = _faulty_run(point, n, tmp_path / "runs", cache)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    again = invoke("run", "matrix", *OPTIONS, "--out", tmp_path / "runs", "--cache", cache)
    assert again.exit_code == 0, again.output
    records = _assert_complete_and_equal(_run_dir(tmp_path / "runs"), expected)
    for record in records.values():
        assert record["resumed_from"] == resumed.get(record["strategy"], []), record["strategy"]
        assert record["resumes"] == len(resumed.get(record["strategy"], []))
    (meta,) = (cache / "pretrain").glob("*/meta.json")
    source = json.loads(meta.read_text())
    warm_meta = json.loads(next((warm / "pretrain").glob("*/meta.json")).read_text())
    assert source["sha256"] == warm_meta["sha256"]  # the same source model, bit for bit
    assert source["resumed_from"] == ([2] if (point, n) == ("step", 7) else [])
    assert not list((cache / "pretrain").glob("*/resume.pt"))


def test_sigint_exits_130_and_the_same_command_resumes(uninterrupted, tmp_path, invoke):
    expected, warm = uninterrupted
    cache = _fresh_cache(warm, tmp_path / "cache")
    interrupted = _faulty_run("sigint", 39, tmp_path / "runs", cache)  # the finetune cell's step 4
    assert interrupted.returncode == 130, interrupted.stderr[-2000:]
    assert "Interrupted: rerun the same command to resume" in interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    run_dir = _run_dir(tmp_path / "runs")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["interrupted"] is True and manifest["finished_at"]
    again = invoke("run", "matrix", *OPTIONS, "--out", tmp_path / "runs", "--cache", cache)
    assert again.exit_code == 0, again.output
    assert "(1 run, 1 already complete)" in again.output
    records = _assert_complete_and_equal(run_dir, expected)
    finetune = next(r for r in records.values() if r["strategy"] == "finetune")
    assert finetune["resumed_from"] == [3]
