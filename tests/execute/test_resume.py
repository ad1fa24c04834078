"""Nothing lost: cells and pretraining resume from checkpoints to the uninterrupted numbers, a failing source
model fails only its cells, one process runs a run folder at a time, a failing write keeps what was written,
and each record keeps its loss curves and its time and memory split."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest
import torch
from tiny_settings import FIXTURE_PLUGINS, TINY_GRID, TINY_OPTIONS

import ganbench.store.records as records_module
from ganbench.context import CheckpointPolicy, RunContext
from ganbench.execute.checkpoint import Checkpoints
from ganbench.execute.driver import run_matrix
from ganbench.execute.training import thin_losses
from ganbench.store.runs import load_records

# EWC (state from adapt), CDC (a frozen anchor) and DiffAugment (draws from torch's global generator)
HARD_TO_RESUME = {"strategy": "ewc:fisher_samples=8,cdc", "augment": "diffaugment", "finetune_steps": 6,
                  "eval_every": 3, "metrics": "fid,kid", "baseline": False, "pretrain_steps": 6}  # fmt: skip


def _context(**policy) -> RunContext:
    return RunContext.from_environment(plugins_dirs=[FIXTURE_PLUGINS]).replace(checkpoint=CheckpointPolicy(**policy))


def _interrupt_at(monkeypatch, n: int) -> None:
    """KeyboardInterrupt (Ctrl-C) at the n-th optimizer step from now."""
    original, calls = torch.optim.Adam.step, itertools.count(1)

    def step(self, *args, **kwargs):
        if next(calls) == n:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)


@pytest.fixture(scope="module")
def hard_grid(tiny_grid):
    from ganbench.grid.config import make_grid

    return make_grid(None, **{**TINY_GRID, **HARD_TO_RESUME})


def test_resumed_cells_end_with_the_uninterrupted_numbers(hard_grid, tmp_path, monkeypatch):
    whole = run_matrix(hard_grid, tmp_path / "whole", context=_context(every_steps=2), progress=False)
    _interrupt_at(monkeypatch, 12 + 9)  # the second cell's step 5 (the first cell makes optimizer steps 1-12)
    cut = run_matrix(hard_grid, tmp_path / "cut", context=_context(every_steps=2), progress=False)
    assert cut.interrupted and len(cut.records) == 1
    assert len(list((cut.run_dir / "checkpoints").glob("*.pt"))) == 1  # the first cell's went with its record
    monkeypatch.undo()
    resumed = run_matrix(hard_grid, tmp_path / "cut", context=_context(every_steps=2), progress=False)
    assert not resumed.interrupted and resumed.skipped == 1
    expected = {r["cell_id"]: r for r in whole.records}
    for record in resumed.records:
        want = expected[record["cell_id"]]
        assert record["status"] == want["status"] == "ok", record.get("error")
        for key in ("fid", "kid", "curve", "losses", "loss"):
            assert record[key] == want[key], (record["strategy"], key)
    second = next(r for r in resumed.records if r["resumes"])
    assert second["resumed_from"] == [3] and second["steps_redone"] >= 0
    assert second["checkpoint_every"] == "2 steps or 600 s"
    assert not list((cut.run_dir / "checkpoints").glob("*.pt"))  # removed once the records were written


def test_keep_checkpoints_keeps_them_and_they_hold_the_whole_state(tiny_run, tiny_grid, tmp_path):
    grid = tiny_grid(strategy="finetune", baseline=False, metrics="fid")
    summary = run_matrix(grid, tmp_path, context=_context(every_steps=0, every_seconds=0, keep=True), progress=False)
    (record,) = summary.records
    path = summary.run_dir / "checkpoints" / f"{record['cell_id']}.pt"
    state = torch.load(path, weights_only=True)
    assert state["step"] == 4 and {"G", "D", "opt_g", "opt_d", "rng", "losses", "evaluations"} <= set(state)
    assert [p["step"] for p in json.loads(state["evaluations"])] == [2, 4]
    assert len(state["losses"]["d_total"]) == 4 and len(state["step_ms"]) == 4
    assert record["resumes"] == 0 and record["resumed_from"] == [] and record["checkpoint_every"] == "evaluations only"


def test_a_checkpoint_of_other_code_or_a_damaged_one_is_set_aside(tmp_path):
    policy = CheckpointPolicy(every_steps=1)
    ours = Checkpoints(tmp_path / "c.pt", policy, {"cell": "a", "code": "1"}, progress=False)
    ours.save({"step": 3})
    assert Checkpoints(tmp_path / "c.pt", policy, {"cell": "a", "code": "1"}, progress=False).load()["step"] == 3
    assert Checkpoints(tmp_path / "c.pt", policy, {"cell": "a", "code": "2"}, progress=False).load() is None
    assert (tmp_path / "c.pt.discarded").is_file() and not (tmp_path / "c.pt").exists()
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    assert Checkpoints(tmp_path / "c.pt", policy, {"cell": "a", "code": "1"}, progress=False).load() is None


def test_the_progress_note_counts_the_steps_redone(tmp_path):
    policy = CheckpointPolicy(every_steps=10)
    first = Checkpoints(tmp_path / "c.pt", policy, {"cell": "a"}, progress=False)
    first.save({"step": 10})
    first.note(17)  # the process got to step 17, then died
    again = Checkpoints(tmp_path / "c.pt", policy, {"cell": "a"}, progress=False)
    assert again.load()["step"] == 10
    assert (again.resumed.resumes, again.resumed.from_steps, again.resumed.steps_redone) == (1, (10,), 7)
    again.save({"step": 20})  # resumed again later: the account adds up
    third = Checkpoints(tmp_path / "c.pt", policy, {"cell": "a"}, progress=False)
    third.load()
    assert third.resumed.resumes == 2 and third.resumed.from_steps == (10, 20)


@pytest.mark.parametrize(
    ("text", "steps", "seconds"),
    [("500", 500, 0.0), ("30s", 0, 30.0), ("10m", 0, 600.0), ("2h", 0, 7200.0), ("500,10m", 500, 600.0),
     ("0", 0, 0.0), (None, 0, 600.0)],
)  # fmt: skip
def test_checkpoint_every_parses_steps_and_times(text, steps, seconds):
    policy = CheckpointPolicy.parse(text)
    assert (policy.every_steps, policy.every_seconds) == (steps, seconds)


def test_a_diverging_source_model_fails_only_its_cells(tmp_path, tiny_run):
    summary = tiny_run(tmp_path, arch="dcgan:width=8,nan-d", strategy="finetune", metrics="fid")
    status = {(r["arch"], r["strategy"]): r for r in summary.records}
    assert status[("dcgan:width=8", "scratch")]["status"] == "ok"
    assert status[("dcgan:width=8", "finetune")]["status"] == "ok"
    assert status[("nan-d", "scratch")]["status"] == "diverged"  # it trains, and diverges itself
    failed = status[("nan-d", "finetune")]
    assert failed["status"] == "failed" and "\n" not in failed["error"]
    assert failed["error"].startswith("pretraining architecture nan-d on source digits:classes=2-4 diverged")
    manifest = json.loads((summary.run_dir / "manifest.json").read_text())
    assert manifest["finished_at"] and manifest["complete"] == 3


def test_the_cli_exit_code_says_a_source_model_failed(tmp_path, invoke):
    result = invoke("run", "matrix", *TINY_OPTIONS, "--arch", "nan-d", "--strategy", "finetune", "--no-baseline",
                    "--metrics", "fid", "--plugins-dir", FIXTURE_PLUGINS, "--out", tmp_path, "--quiet")  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "failed: pretraining architecture nan-d on source digits:classes=2-4 diverged" in result.output


HOLD_LOCK = """
import sys, time
from ganbench.store.locks import FileLock
FileLock(sys.argv[1], "run folder").acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_run_folder_is_run_by_one_process_at_a_time(tmp_path, tiny_grid, invoke, assert_one_line_error):
    from ganbench.execute.plan import plan_matrix

    grid = tiny_grid(strategy="finetune", baseline=False, metrics="fid")
    run_dir = plan_matrix(grid, tmp_path, context=_context()).run_dir
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir / ".lock"), "3"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        options = [*TINY_OPTIONS, "--strategy", "finetune", "--no-baseline", "--metrics", "fid",
                   "--plugins-dir", FIXTURE_PLUGINS, "--out", tmp_path, "--quiet"]  # fmt: skip
        refused = invoke("run", "matrix", *options)
        assert_one_line_error(refused, f"process {holder.pid} on ", "--wait")
        assert not (run_dir / "cells").exists()  # nothing written by the refused run
        started = time.monotonic()
        waited = invoke("run", "matrix", *options, "--wait")
        assert waited.exit_code == 0, waited.output
        assert holder.poll() is not None and time.monotonic() - started > 0.5  # it ran after the holder left
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_write_keeps_earlier_records_and_says_so_in_one_line(tmp_path, monkeypatch, invoke,
                                                                       assert_one_line_error):  # fmt: skip
    original, writes = records_module.atomic_write_json, []

    def full_disk(path, data, *what):
        if path.parent.name == "cells":
            writes.append(path)
            if len(writes) == 2:
                raise OSError(28, "No space left on device")
        return original(path, data, *what)

    monkeypatch.setattr(records_module, "atomic_write_json", full_disk)
    options = [*TINY_OPTIONS, "--strategy", "finetune", "--metrics", "fid", "--plugins-dir", FIXTURE_PLUGINS,
               "--out", tmp_path, "--quiet"]  # fmt: skip
    result = invoke("run", "matrix", *options)
    assert_one_line_error(result, "the disk is full", "records already written are kept", "rerun")
    (run_dir,) = tmp_path.iterdir()
    (kept,) = load_records(run_dir)
    assert kept["status"] == "ok" and kept["cell_id"] == writes[0].stem
    assert not (run_dir / ".lock").exists()  # released on the way out
    monkeypatch.undo()
    again = invoke("run", "matrix", *options)
    assert again.exit_code == 0 and "(1 run, 1 already complete)" in again.output


def test_records_keep_loss_curves_and_split_time_and_memory(tmp_path, tiny_run):
    summary = tiny_run(tmp_path, strategy="ewc:fisher_samples=8", baseline=False, metrics="fid")
    (record,) = summary.records
    losses = record["losses"]
    assert losses["step"] == [1, 2, 3, 4]
    assert {"d_real", "d_fake", "g_adv", "g_ewc", "d_total", "g_total"} == set(losses) - {"step"}
    for i in range(4):  # the totals are the sums of their terms
        assert losses["d_total"][i] == pytest.approx(losses["d_real"][i] + losses["d_fake"][i], rel=1e-6)
        assert losses["g_total"][i] == pytest.approx(losses["g_adv"][i] + losses["g_ewc"][i], rel=1e-6)
    assert record["loss"]["d_final"] == losses["d_total"][-1]
    assert record["adapt_s"] > 0 and record["finetune_s"] > 0 and record["eval_s"] > 0
    assert record["peak_train_mb"] > 0 and record["peak_eval_mb"] > 0
    assert record["peak_mem_mb"] == max(record["peak_train_mb"], record["peak_eval_mb"])


def test_loss_curves_are_thinned_to_bin_means():
    thinned = thin_losses({"d": [float(i) for i in range(1, 1001)]}, points=4)
    assert thinned["step"] == [250, 500, 750, 1000]
    assert thinned["d"] == [125.5, 375.5, 625.5, 875.5]
    assert thin_losses({"d": [1.0, float("nan")]})["d"][1] != thin_losses({"d": [1.0, 2.0]})["d"][1]


def test_a_damaged_source_model_is_reported_and_trained_again(tmp_path, tiny_grid, capsys):
    from ganbench.execute.plan import plan_matrix
    from ganbench.execute.pretrain import ensure_pretrained, load_pretrained

    grid = tiny_grid(strategy="finetune", baseline=False, pretrain_steps=5)
    context = _context().replace(cache_root=str(tmp_path / "cache"))
    (job,) = set(plan_matrix(grid, tmp_path, context=context).pretrain.values())
    first, info = ensure_pretrained(job, context, progress=False)
    assert not info["pretrain_cache_hit"]
    checkpoint = job.folder(context) / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a copy cut short
    assert load_pretrained(job, context) is None  # never trusted
    again, info = ensure_pretrained(job, context, progress=True)
    assert not info["pretrain_cache_hit"] and again.sha256 == first.sha256  # rebuilt, bit for bit
    said = capsys.readouterr()
    lines = [line for line in (said.out + said.err).splitlines() if "damaged" in line]
    assert len(lines) == 1 and "sha256 mismatch" in lines[0] and "training it again" in lines[0]


@pytest.mark.parametrize("text", ["5x", "1.5", "-3", "10m,"])
def test_a_bad_checkpoint_interval_is_one_line(text, invoke, assert_one_line_error):
    result = invoke("run", "matrix", "--checkpoint-every", text, "--dry-run")
    assert_one_line_error(result, f"--checkpoint-every {text!r}", "10m")
