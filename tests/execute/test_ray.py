"""The Ray executor on a real local Ray cluster (2 CPUs, started once per test session: ``ray_cluster``).

A grid run through Ray must give the local executor's records (to the last digit, at equal thread counts),
train each source model once, fail only the cell whose worker was killed (and continue it from its checkpoint
on the rerun), stop every task when the driver is interrupted (and resume on the rerun), and fail a cell in
one line on a worker that cannot see the run's storage."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_settings import FIXTURE_PLUGINS, TINY_GRID, TINY_OPTIONS

from ganbench.context import RunContext
from ganbench.execute import ray_executor
from ganbench.execute.driver import run_matrix
from ganbench.execute.executors import LocalExecutor
from ganbench.execute.ray_executor import DeviceLedger, RayExecutor
from ganbench.grid.config import make_grid
from ganbench.store.records import checkpoint_path
from ganbench.store.runs import load_records

# what must not depend on where a cell ran: its scores, curves, loss curves, parameter counts and identity
SAME = ("status", "fid", "kid", "kid_subset_size", "curve", "losses", "trainable_params", "total_params", "spec",
        "n_ref", "reference_key", "source_checkpoint", "pretrain_key")  # fmt: skip


def _run(executor, out: Path, data_roots=(), checkpoint=None, **changes):
    context = RunContext.from_environment(plugins_dirs=[FIXTURE_PLUGINS], data_roots=data_roots)
    if checkpoint is not None:
        context = context.replace(checkpoint=checkpoint)
    grid = make_grid(None, **{**TINY_GRID, "metrics": "fid,kid", **changes})
    return run_matrix(grid, out, context=context, executor=executor, progress=False)


def test_a_grid_on_ray_gives_the_local_records_and_trains_each_source_once(ray_cluster, tmp_path):
    # pretrain_steps of this test's own: the source model is not in the session cache, so the Ray run trains it
    on_ray = _run(RayExecutor(cpus_per_cell=1), tmp_path / "ray", pretrain_steps=13)
    local = _run(LocalExecutor(threads=1), tmp_path / "local", pretrain_steps=13)
    assert len(on_ray.records) == len(local.records) == 4 and not on_ray.failed and not local.failed
    by_id = {r["cell_id"]: r for r in local.records}
    for record in on_ray.records:
        twin = by_id[record["cell_id"]]
        for field in SAME:
            assert record.get(field) == twin.get(field), (record["strategy"], field)
        assert record["executor"] == "ray" and twin["executor"] == "local"
        assert record["host"] == socket.gethostname() and record["threads"] == twin["threads"] == 1
        assert record["device_shared_by"] in (1, 2) and twin["device_shared_by"] == 1  # 2 CPUs: at most 2 at once
        assert record["worker_warm_up_s"] >= 0 and "worker_warm_up_s" not in twin  # Inception loaded before it
    transfer = [r for r in on_ray.records if r["strategy"] != "scratch"]
    assert len(transfer) == 3 and len({r["pretrain_key"] for r in transfer}) == 1
    assert all(r["pretrain_cache_hit"] is False for r in transfer)  # trained once, by this run, for all three
    assert all(r["pretrain_cache_hit"] is True for r in local.records if r["strategy"] != "scratch")
    manifest = json.loads((on_ray.run_dir / "manifest.json").read_text())
    assert manifest["executor"] == {"name": "ray", "address": None, "cpus_per_cell": 1, "gpus_per_cell": 0.0,
                                    "max_concurrent": None, "connect_timeout": 60.0}  # fmt: skip
    assert manifest["complete"] == 4 and not manifest["interrupted"]
    assert ray_cluster.is_initialized()  # a cluster the executor did not start is left running


def test_a_killed_worker_fails_its_cell_only_and_the_rerun_continues_it(ray_cluster, tmp_path):
    faults = tmp_path / "faults"
    (faults / "dies-once").mkdir(parents=True)
    (faults / "dies-once" / "armed").touch()
    # dies-once trains exactly like scratch (same seed, no extra loss) and is SIGKILLed in step 4 of 6, once;
    # checkpoints every 2 steps and at the evaluation of step 3, so its rerun continues from step 3
    settings = {"strategy": "dies-once:at=4", "finetune_steps": 6, "eval_every": 3, "max_concurrent": 1}
    policy = _policy("2")
    executor = RayExecutor(cpus_per_cell=1, max_concurrent=settings.pop("max_concurrent"))
    first = _run(executor, tmp_path / "runs", data_roots=[faults], checkpoint=policy, **settings)
    status = {r["strategy"]: r for r in first.records}
    assert status["scratch"]["status"] == "ok"
    killed = status["dies-once:at=4"]
    assert killed["status"] == "failed" and len(first.failed) == 1
    assert f"the Ray worker running it on host {socket.gethostname()} died" in killed["error"]
    assert "\n" not in killed["error"] and "rerun the same command" in killed["error"]
    assert checkpoint_path(first.run_dir, killed["cell_id"]).is_file()  # kept for the rerun

    second = _run(executor, tmp_path / "runs", data_roots=[faults], checkpoint=policy, **settings)
    assert second.skipped == 1 and not second.failed
    resumed = next(r for r in second.records if r["cell_id"] == killed["cell_id"])
    assert resumed["status"] == "ok" and resumed["resumes"] == 1 and resumed["resumed_from"] == [3]
    scratch = status["scratch"]
    for field in ("fid", "kid", "curve"):  # the same training as scratch: resuming changed no digit
        assert resumed[field] == scratch[field], field
    assert not checkpoint_path(first.run_dir, killed["cell_id"]).exists()


def _policy(spec: str):
    from ganbench.context import CheckpointPolicy

    return CheckpointPolicy.parse(spec)


def test_interrupting_the_driver_cancels_its_tasks_and_the_same_command_resumes(ray_cluster, tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    command = [sys.executable, "-m", "ganbench.cli", "run", "matrix", *TINY_OPTIONS, "--metrics=fid,kid",
               f"--plugins-dir={FIXTURE_PLUGINS}", "--strategy=dies-once:sleep=0.5", "--no-baseline",
               "--finetune-steps=16", "--eval-every=16", "--checkpoint-every=1", "--executor=ray",
               f"--ray-address={address}", "--out", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    # SIGTERM (as a scheduler stops a job) takes Ctrl-C's path: a KeyboardInterrupt in the driver's main thread. It is
    # the signal to test here, because ray.init replaces the driver's SIGTERM handler (ganbench puts its own back)
    # and joining an address runs ray.init in a helper thread (--ray-timeout)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        checkpoints = tmp_path / "runs"
        deadline = time.monotonic() + 180
        while not list(checkpoints.glob("*/checkpoints/*.pt")):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 143, err
    assert time.monotonic() - stopped < 20  # tasks cancelled, tables and manifest written: seconds
    assert "Interrupted: rerun the same command to resume" in err and "Traceback" not in err
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["interrupted"] and manifest["complete"] == 0
    (checkpoint,) = (run_dir / "checkpoints").glob("*.pt")
    stamp = checkpoint.stat().st_mtime_ns
    time.sleep(3)  # a task still running would checkpoint again within a second (one step: 0.5 s)
    assert checkpoint.stat().st_mtime_ns == stamp, "a cancelled task kept training"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    (record,) = load_records(run_dir)
    assert record["status"] == "ok" and record["resumes"] == 1 and record["steps_redone"] <= 1


def test_a_worker_that_cannot_see_the_cache_fails_its_cell_in_one_line(ray_cluster, tmp_path, monkeypatch):
    real = ray_executor.SharedProbe.write

    def run_folder_only(context, run_dir):  # as if the cache were another folder on the workers' machines
        probe = real(context, run_dir)
        probe.paths[1].unlink()
        return probe

    monkeypatch.setattr(ray_executor.SharedProbe, "write", staticmethod(run_folder_only))
    summary = _run(RayExecutor(cpus_per_cell=1), tmp_path / "runs", strategy="finetune", pretrain_steps=14)
    assert len(summary.records) == 2 and len(summary.failed) == 2
    host, cache = socket.gethostname(), RunContext.from_environment().cache
    for record in summary.records:
        assert f"host {host} does not see the cache of this run at {cache}" in record["error"], record["error"]
        assert "NFS" in record["error"] and "\n" not in record["error"]
    finetune = next(r for r in summary.records if r["strategy"] == "finetune")
    assert finetune["error"].startswith(
        "pretraining architecture dcgan:width=8,z_dim=64 on source digits:classes=2-4 failed"
    )


def test_a_cluster_too_small_for_a_cell_is_refused_before_anything_runs(ray_cluster, tmp_path):
    from ganbench.errors import GanbenchError

    with pytest.raises(GanbenchError, match="the Ray cluster has 2 CPUs, fewer than --cpus-per-cell 4"):
        _run(RayExecutor(cpus_per_cell=4), tmp_path / "runs")
    with pytest.raises(GanbenchError, match="the Ray cluster has 0 GPUs, fewer than --gpus-per-cell 0.5"):
        _run(RayExecutor(gpus_per_cell=0.5), tmp_path / "runs")
    assert ray_cluster.is_initialized()


def test_the_device_ledger_counts_the_most_cells_sharing_each_device():
    ledger = DeviceLedger()
    assert ledger.enter("a", "h/cuda:0", "h") == 1
    assert ledger.enter("b", "h/cuda:0", "h") == 2
    assert ledger.enter("c", "h/cpu", "h") == 1  # another device of the same host is not shared
    assert ledger.running() == 3
    assert ledger.leave("b") == (2, "h")
    assert ledger.enter("d", "h/cuda:0", "h") == 2
    assert ledger.enter("e", "h/cuda:0", "h") == 3
    assert ledger.leave("a") == (3, "h")  # a saw three at once, though never at its start
    assert ledger.leave("c") == (1, "h")
    assert ledger.leave("d") == (3, "h") and ledger.leave("e") == (3, "h")
    assert ledger.leave("gone") == (None, None) and ledger.running() == 0
