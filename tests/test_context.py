"""The run context: read once by the planner, passed to every job. A cell (and a pretraining job) runs from
its cell, its context and its source model's job alone: in another process without the environment it was
planned in, with the same numbers; it never recomputes a pretraining key nor trains a missing source model."""

import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import ganbench.execute.pretrain as pretrain_module
from ganbench.context import ENVIRONMENT, RunContext
from ganbench.execute.cell import run_cell
from ganbench.execute.plan import plan_matrix
from ganbench.execute.pretrain import PretrainJob, ensure_pretrained

WORKER = """
import pickle, sys
from ganbench.execute.cell import run_cell
from ganbench.execute.pretrain import ensure_pretrained

context, cell, job = pickle.loads(open(sys.argv[1], "rb").read())
ensure_pretrained(job, context, progress=False)
output = run_cell(cell, context, job, progress=False)
open(sys.argv[2], "wb").write(pickle.dumps(output.record))
"""


def test_the_context_takes_every_setting_from_the_options_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANBENCH_CACHE", "cache")
    monkeypatch.setenv("GANBENCH_DATA_ROOTS", os.pathsep.join(["roots-a", "roots-b"]))
    monkeypatch.setenv("GANBENCH_PLUGINS_DIR", "env-plugins")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench, Other-Dist")
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    monkeypatch.setenv("GANBENCH_INCEPTION", "weights/inception.pt")
    monkeypatch.setenv("GANBENCH_GIT_REVISION", "feedbeef")
    ctx = RunContext.from_environment(data_roots=["cli-root"], plugins_dirs=["cli-plugins"], device="cpu")
    assert ctx.cache_root == str(tmp_path / "cache") and ctx.download_root == str(tmp_path / "cache" / "data-downloads")
    assert ctx.data_roots == (
        str(tmp_path / "cache" / "data-downloads"), str(tmp_path / "cli-root"), str(tmp_path / "roots-a"),
        str(tmp_path / "roots-b"), "/usr/share/datasets",
    )  # fmt: skip
    assert ctx.plugins_dirs == (str(tmp_path / "cli-plugins"), str(tmp_path / "env-plugins"))
    assert ctx.load_plugins == ("ganbench", "other-dist") and ctx.offline is True and ctx.device == "cpu"
    assert ctx.inception_weights == str(tmp_path / "weights" / "inception.pt") and ctx.git_revision == "feedbeef"
    # an option beats the environment; the context is a value: frozen, picklable, equal to its copy
    assert RunContext.from_environment(cache_dir="elsewhere").cache_root == str(tmp_path / "elsewhere")
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.device = "cuda"
    assert set(ENVIRONMENT) == {f"GANBENCH_{n}" for n in ("CACHE", "DATA", "DATA_ROOTS", "PLUGINS_DIR",
                                "LOAD_PLUGINS", "OFFLINE", "INCEPTION", "GIT_REVISION")}  # fmt: skip


def test_a_grid_planned_with_the_environment_runs_where_it_is_absent(tmp_path, monkeypatch, fixture_plugins,
                                                                      tiny_grid, tiny_run):  # fmt: skip
    """Planned with GANBENCH_PLUGINS_DIR (which alone provides the target) and a cache given in the
    environment; run in a process whose environment has no GANBENCH_* variable at all, from another folder."""
    monkeypatch.setenv("GANBENCH_PLUGINS_DIR", str(fixture_plugins))
    grid = tiny_grid(strategy="finetune", baseline=False, pretrain_steps=11)
    plan = plan_matrix(grid, tmp_path / "runs")
    assert str(fixture_plugins) in plan.context.plugins_dirs
    [cell] = plan.cells
    task = tmp_path / "task.pkl"
    task.write_bytes(pickle.dumps((plan.context, cell, plan.pretrain[cell.id])))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANBENCH_")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker = subprocess.run([sys.executable, "-c", WORKER, str(task), str(tmp_path / "record.pkl")], env=env,
                            cwd=elsewhere, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-3000:]
    record = pickle.loads((tmp_path / "record.pkl").read_bytes())
    assert record["status"] == "ok", record.get("error")
    assert record["target"] == "tiny-digits" and record["n_ref"] == 48
    # the same cell run here, through the driver, gives the same numbers to the last digit
    [here] = tiny_run(tmp_path / "runs-here", strategy="finetune", baseline=False, pretrain_steps=11).records
    assert here["cell_id"] == record["cell_id"] and here["pretrain_key"] == record["pretrain_key"]
    assert (here["fid"], here["kid"], here["curve"]) == (record["fid"], record["kid"], record["curve"])


def test_cells_use_the_planned_source_model_and_never_train_one(tmp_path, monkeypatch, fixture_plugins, tiny_grid):
    plan = plan_matrix(tiny_grid(strategy="freeze-d", baseline=False, pretrain_steps=9), tmp_path,
                       plugins_dirs=[fixture_plugins])  # fmt: skip
    [cell] = plan.cells
    job = plan.pretrain[cell.id]
    missing = run_cell(cell, plan.context, job, progress=False).record
    assert missing["status"] == "failed" and "traceback" in missing
    assert f"(key {job.key}) is not in the cache" in missing["error"] and "\n" not in missing["error"]
    assert "architecture dcgan:width=8,z_dim=64 on source digits:classes=2-4" in missing["error"]
    assert not job.folder(plan.context).exists()  # nothing was trained behind the driver's back
    ensure_pretrained(job, plan.context, progress=False)

    def recomputed(*args, **kwargs):
        raise AssertionError("a cell recomputed its pretraining key")

    monkeypatch.setattr(pretrain_module.PretrainJob, "for_cell", recomputed)
    record = run_cell(cell, plan.context, job, progress=False).record
    assert record["status"] == "ok" and record["pretrain_key"] == job.key and record["pretrain_cache_hit"] is True
    assert record["source_checkpoint"] == pretrain_module.load_pretrained(job, plan.context).sha256


def test_a_machine_resolving_other_architecture_weights_fails_the_cell(tmp_path, fixture_plugins, tiny_grid):
    plan = plan_matrix(tiny_grid(strategy="finetune", baseline=False), tmp_path, plugins_dirs=[fixture_plugins])
    [cell] = plan.cells
    keyed_for_other = dataclasses.replace(plan.pretrain[cell.id], arch_weights='{"backbone": "x"}')
    record = run_cell(cell, plan.context, keyed_for_other, progress=False).record
    assert record["status"] == "failed" and "brings other weights here (none)" in record["error"]
    assert "backbone=x" in record["error"]


def test_data_roots_reach_the_cells_through_the_context_not_the_environment(tmp_path, fixture_plugins, tiny_grid):
    roots = tmp_path / "my-data"
    roots.mkdir()
    before = dict(os.environ)
    plan = plan_matrix(tiny_grid(), tmp_path, plugins_dirs=[fixture_plugins], data_roots=[roots])
    assert str(roots) in plan.context.data_roots and dict(os.environ) == before
    assert {c.id: job.key for c, job in ((c, plan.pretrain.get(c.id)) for c in plan.cells) if job} == {
        c.id: PretrainJob.for_cell(c, plan.registry).key for c in plan.cells if c.strategy != "scratch"
    }  # the planner's keys are the keys of the cells' jobs; scratch needs none
    assert Path(plan.context.cache_root).is_absolute()
