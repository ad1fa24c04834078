"""The driver end to end on tiny budgets: records, tables, pretraining cache, failures, resume."""

import json

import pandas as pd
import pytest

import ganbench.execute.executors as executors
from ganbench.store.records import SCHEMA_VERSION, result_columns
from ganbench.store.runs import load_records

# a pretraining budget no other test uses, so this module's first run is the one that trains its source
OWN_SOURCE = {"pretrain_steps": 12}


@pytest.fixture(scope="module")
def default_strategies_run(tmp_path_factory, session_cache, tiny_run):
    import os

    os.environ["GANBENCH_CACHE"] = str(session_cache)
    out = tmp_path_factory.mktemp("runs")
    return tiny_run(out, **OWN_SOURCE)


def test_every_cell_has_a_scored_timed_record(default_strategies_run):
    summary = default_strategies_run
    records = {r["strategy"]: r for r in summary.records}
    assert set(records) == {"scratch", "finetune", "freeze-d", "adapter"}
    for r in records.values():
        assert r["status"] == "ok", r.get("error")
        assert r["fid"] > 0 and 0 < abs(r["kid"]) < 10
        assert r["finetune_s"] > 0 and r["step_ms"] > 0 and r["images_per_s"] > 0 and r["eval_s"] > 0
        assert r["peak_mem_mb"] > 0 and r["device"].startswith("cpu")
        assert r["n_gen"] == 8 and r["n_ref"] == 48 and r["kid_subset_size"] == 8
        assert [p["step"] for p in r["curve"]] == [2, 4]
        assert r["fid"] == r["curve"][-1]["fid"]  # the headline is the final step, not the best
        assert r["inception_sha1"] and r["torch_version"] and r["cleanfid_version"]
    assert records["scratch"]["trainable_params"] == records["scratch"]["total_params"]
    assert records["scratch"]["pretrain_s"] is None
    assert records["finetune"]["trainable_params"] == records["finetune"]["total_params"]
    assert records["freeze-d"]["trainable_params"] < records["freeze-d"]["total_params"]
    assert records["adapter"]["trainable_fraction"] < 0.25
    assert records["finetune"]["source_checkpoint"] == records["adapter"]["source_checkpoint"] is not None


def test_pretraining_happens_once_per_source(default_strategies_run, session_cache):
    transfer = [r for r in default_strategies_run.records if r["strategy"] != "scratch"]
    assert len({r["source_checkpoint"] for r in transfer}) == 1
    # the first run trained the source model itself, so none of its cells counts as a cache hit
    assert not any(r["pretrain_cache_hit"] for r in transfer)
    assert len({r["pretrain_key"] for r in transfer}) == 1
    assert len({r["pretrain_s"] for r in transfer}) == 1  # the original training time, reported by every user


def test_run_directory_layout(default_strategies_run):
    run_dir = default_strategies_run.run_dir
    results = pd.read_csv(run_dir / "results.csv")
    assert list(results.columns) == result_columns(default_strategies_run.records) and len(results) == 4
    assert list(results.columns[10:13]) == ["fid", "kid", "kid_subset_size"]  # the metric columns, as declared
    assert (results["schema_version"] == SCHEMA_VERSION).all()
    curves = pd.read_csv(run_dir / "curves.csv")
    assert set(curves["metric"]) >= {"fid", "kid"} and len(curves[curves.metric == "fid"]) == 8
    for cell_id in results["cell_id"]:
        assert (run_dir / "samples" / f"{cell_id}.png").stat().st_size > 0
    assert (run_dir / "curves.png").stat().st_size > 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["grid"]["shots"] == [8] and len(manifest["cell_ids"]) == 4
    assert manifest["inception_sha1"] and manifest["torch_version"] and "device" in manifest
    assert manifest["complete"] == 4


def test_rerun_skips_complete_cells(default_strategies_run, monkeypatch, tiny_run):
    run_dir = default_strategies_run.run_dir
    before = {r["cell_id"]: r["finished_at"] for r in load_records(run_dir)}
    monkeypatch.setattr(executors, "run_cell", lambda *a, **k: pytest.fail("a complete cell ran again"))
    summary = tiny_run(run_dir.parent, **OWN_SOURCE)
    assert summary.run_dir == run_dir and summary.skipped == 4
    assert {r["cell_id"]: r["finished_at"] for r in summary.records} == before


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch, tiny_run):
    real = executors.run_cell
    calls = []

    def interrupt_second(cell, *args, **kwargs):
        calls.append(cell.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(executors, "run_cell", interrupt_second)
    first = tiny_run(tmp_path, strategy="finetune,freeze-d")
    assert first.interrupted and len(first.records) == 1
    kept = first.records[0]
    monkeypatch.setattr(executors, "run_cell", real)
    second = tiny_run(tmp_path, strategy="finetune,freeze-d")
    assert not second.interrupted and second.skipped == 1 and len(second.records) == 3
    assert next(r for r in second.records if r["cell_id"] == kept["cell_id"]) == kept


def test_failing_and_diverging_cells_are_recorded_and_the_grid_goes_on(tmp_path, tiny_run):
    summary = tiny_run(tmp_path, strategy="explodes,diverges,finetune")
    status = {r["strategy"]: r for r in summary.records}
    assert status["explodes"]["status"] == "failed" and "boom in adapt" in status["explodes"]["error"]
    assert "RuntimeError" in status["explodes"]["traceback"]
    assert status["diverges"]["status"] == "diverged" and "non-finite" in status["diverges"]["error"]
    assert status["finetune"]["status"] == "ok" and status["scratch"]["status"] == "ok"
    assert {r["strategy"] for r in summary.failed} == {"explodes", "diverges"}
    # a failed cell is retried by the next run; a diverged one is a result and is kept
    again = tiny_run(tmp_path, strategy="explodes,diverges,finetune")
    assert again.skipped == 3


def test_a_broken_plugin_fails_only_its_cells(tmp_path, tiny_run):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "ghost.py").write_text("import ganbench\nraise ImportError('ghost needs a missing package')\n")
    (plugins / "wrong.py").write_text(
        "import ganbench\n\nclass Wrong:\n    name = 'wrong'\n\n"
        "@ganbench.hookimpl\ndef register_strategies(register):\n    register(Wrong)\n"
    )
    summary = tiny_run(tmp_path / "runs", plugins_dirs=[plugins], strategy="finetune,ghost,wrong")
    status = {r["strategy"]: r for r in summary.records}
    assert status["finetune"]["status"] == status["scratch"]["status"] == "ok"
    assert status["ghost"]["status"] == "failed"
    assert (
        "unknown strategy 'ghost'" in status["ghost"]["error"] and "ghost.py failed to load" in status["ghost"]["error"]
    )
    assert "ghost needs a missing package" in status["ghost"]["error"]
    assert status["wrong"]["status"] == "failed"
    assert (
        "wrong.py registered" in status["wrong"]["error"]
        and "not a subclass of ganbench.Strategy" in status["wrong"]["error"]
    )


def test_augmentation_axis_runs_and_is_recorded(tmp_path, tiny_run):
    summary = tiny_run(tmp_path, strategy="finetune", augment="none,diffaugment")
    assert sorted((r["strategy"], r["augment"]) for r in summary.records) == [
        ("finetune", "diffaugment"), ("finetune", "none"), ("scratch", "diffaugment"), ("scratch", "none")
    ]  # fmt: skip
    assert all(r["status"] == "ok" for r in summary.records)
    by_aug = {(r["strategy"], r["augment"]): r["fid"] for r in summary.records}
    assert by_aug[("finetune", "none")] != by_aug[("finetune", "diffaugment")]


def test_tables_are_rebuilt_at_most_once_per_interval_and_always_at_the_end(tmp_path, monkeypatch, tiny_grid):
    """Records are written as cells finish; results.csv is not rewritten per record (hundreds of short Ray
    cells would rewrite it hundreds of times) but at most once per TABLES_EVERY_S, and at the end."""
    from tiny_settings import FIXTURE_PLUGINS

    import ganbench.execute.driver as driver

    monkeypatch.setattr(driver, "TABLES_EVERY_S", 3600.0)
    seen = []

    def on_record(record):
        (results,) = tmp_path.glob("*/results.csv")
        seen.append((len(list(results.parent.glob("cells/*.json"))), len(pd.read_csv(results))))

    summary = driver.run_matrix(tiny_grid(**OWN_SOURCE), tmp_path, plugins_dirs=[FIXTURE_PLUGINS], progress=False,
                                on_record=on_record)  # fmt: skip
    assert seen == [(1, 1), (2, 1), (3, 1), (4, 1)]  # every record at once; the table only after the first
    assert len(pd.read_csv(summary.run_dir / "results.csv")) == 4
