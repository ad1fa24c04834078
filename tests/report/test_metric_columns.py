"""Metrics are generic end to end: a metric plugin in a --plugins-dir declares its columns and their direction,
and they show up in the records, results.csv, curves.csv, the run's table, the leaderboard (mean ± std, n),
the Markdown and the HTML report; --rank-by ranks by any scored column in its declared direction."""

import json
import re

import pandas as pd
import pytest

from ganbench import build_leaderboard
from ganbench.errors import GanbenchError
from ganbench.execute.plan import plan_matrix
from ganbench.report.markdown import to_markdown
from ganbench.store.records import metric_columns, result_columns

METRICS = "fid,brightness-match"


@pytest.fixture(scope="module")
def brightness_run(tmp_path_factory, tiny_run):
    """The tiny grid with FID and the fixture plugins' brightness metric (higher is better)."""
    return tiny_run(tmp_path_factory.mktemp("runs"), metrics=METRICS, strategy="finetune,adapter")


def test_a_plugin_metric_lands_in_records_and_tables(brightness_run):
    run_dir = brightness_run.run_dir
    records = {r["strategy"]: r for r in brightness_run.records}
    assert set(records) == {"scratch", "finetune", "adapter"} and all(r["status"] == "ok" for r in records.values())
    for r in records.values():
        declared = {c["name"]: c for c in r["metric_columns"]}
        assert list(declared) == ["fid", "brightness_match", "brightness_gap", "brightness_n"]
        assert declared["brightness_match"] == {"name": "brightness_match", "metric": "brightness-match",
                                                "lower_is_better": False, "label": "brightness", "digits": 4}  # fmt: skip
        assert declared["brightness_n"]["lower_is_better"] is None
        assert r["brightness_match"] == pytest.approx(1 - r["brightness_gap"]) and r["brightness_n"] == 8
        assert [set(p) for p in r["curve"]] == [
            {"step", "fid", "brightness_match", "brightness_gap", "brightness_n"}
        ] * 2
        assert "kid" not in r and r["reference_key"] == records["scratch"]["reference_key"]
    results = pd.read_csv(run_dir / "results.csv")
    assert list(results.columns) == result_columns(brightness_run.records)
    assert list(results.columns[10:14]) == ["fid", "brightness_match", "brightness_gap", "brightness_n"]
    assert results["reference_key"].str.fullmatch(r"[0-9a-f]{64}").all()
    curves = pd.read_csv(run_dir / "curves.csv")
    assert set(curves["metric"]) == {"fid", "brightness_match", "brightness_gap", "brightness_n"}


def test_the_run_table_shows_every_scored_column(tmp_path, invoke, fixture_plugins):
    tiny = ["--arch", "dcgan:width=8", "--source", "digits:classes=2-4", "--target", "tiny-digits", "--shots", "8",
            "--pretrain-steps", "10", "--finetune-steps", "4", "--batch-size", "4", "--eval-samples", "8",
            "--eval-every", "2", "--seeds", "0"]  # fmt: skip
    result = invoke("run", "matrix", *tiny, "--metrics", "brightness-match", "--strategy", "finetune",
                    "--plugins-dir", fixture_plugins, "--out", tmp_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("strategy"))
    assert re.match(r"strategy\s+brightness\s+gap\s+trainable/total", header)  # details (images) are not shown
    rows = [line.split() for line in result.output.splitlines() if line.startswith(("finetune", "scratch"))]
    scores = [float(row[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)  # no FID in the grid: sorted by the first score, best first


def test_the_leaderboard_ranks_by_a_higher_is_better_column(brightness_run, invoke, tmp_path):
    by_fid = build_leaderboard(brightness_run.run_dir)
    by_brightness = build_leaderboard(brightness_run.run_dir, rank_by="brightness_match")
    assert (by_fid["rank_by"] == "fid").all() and (by_brightness["rank_by"] == "brightness_match").all()
    for column in ("fid", "brightness_match", "brightness_gap"):
        assert {f"{column}_mean", f"{column}_std", f"{column}_n"} <= set(by_brightness.columns)
    assert "brightness_n_mean" not in by_brightness.columns and "kid_mean" not in by_brightness.columns
    assert by_brightness["brightness_match_mean"].tolist() == sorted(
        by_brightness["brightness_match_mean"], reverse=True
    )
    assert by_brightness["rank"].tolist() == [1, 2, 3]
    assert by_fid["fid_mean"].tolist() == sorted(by_fid["fid_mean"])
    rows = {r["strategy"]: r for _, r in by_brightness.iterrows()}
    for strategy, row in rows.items():
        record = next(r for r in brightness_run.records if r["strategy"] == strategy)
        assert row["brightness_match_mean"] == record["brightness_match"] and row["brightness_match_n"] == 1
        scratch = next(r for r in brightness_run.records if r["strategy"] == "scratch")
        # higher is better: the gain is this - scratch
        assert row["gain_vs_scratch"] == pytest.approx(record["brightness_match"] - scratch["brightness_match"])
    first, second = by_brightness.iloc[0], by_brightness.iloc[1]
    assert first["vs_next"] == second["strategy"] and first["vs_next_n"] == 1
    # against the next rank too, higher is better: this - next, and one seed gives no interval
    assert first["vs_next_diff"] == pytest.approx(first["brightness_match_mean"] - second["brightness_match_mean"])
    assert first["vs_next_diff"] >= 0 and pd.isna(first["vs_next_resolved"])
    lower = build_leaderboard(brightness_run.run_dir, rank_by="brightness_gap")
    assert lower["brightness_gap_mean"].tolist() == sorted(lower["brightness_gap_mean"])  # lower is better
    md = to_markdown(by_brightness)
    assert ("| FID ↓ | brightness ↑ | gap ↓ | brightness gain vs scratch | gain 95% CI | vs next rank (95% CI) "
            "| steps to scratch brightness |") in md  # fmt: skip
    assert "Rank 1 = highest mean brightness" in md and "(this brightness − scratch brightness)" in md
    out = tmp_path / "report"
    result = invoke("leaderboard", brightness_run.run_dir, "--rank-by", "brightness_match", "--format", "html",
                    "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "brightness ↑" in page and "brightness gain vs scratch" in page and "Cost against brightness" in page
    assert (out / "plots" / "curves-0.png").is_file() and (out / "plots" / "cost-0.png").is_file()
    assert "--rank-by brightness_match" in page  # the command that made it
    assert pd.read_csv(out / "leaderboard.csv")["rank_by"].eq("brightness_match").all()


def test_ranking_by_a_column_that_is_not_a_score_is_one_line(brightness_run, invoke, assert_one_line_error):
    assert_one_line_error(invoke("leaderboard", brightness_run.run_dir, "--rank-by", "brightness_n"),
                          "cannot rank by brightness_n", "not a score", "fid, brightness_match, brightness_gap")  # fmt: skip
    assert_one_line_error(
        invoke("leaderboard", brightness_run.run_dir, "--rank-by", "precision"), "no column 'precision'"
    )


def test_synthetic_records_of_a_higher_is_better_metric(tmp_path, record, write_run):
    """Exact aggregates for a score that is better when higher (schema-2 records declare it)."""
    declared = [{"name": "precision", "metric": "prdc", "lower_is_better": False, "label": "precision", "digits": 3}]
    values = {"scratch": [0.2, 0.4], "finetune": [0.6, 0.8], "adapter": [0.5, 0.3]}
    cells = [
        record(s, seed, None, schema_version=2, metric_columns=declared, precision=v, kid=None,
               curve=[{"step": 100, "precision": v - 0.25}, {"step": 200, "precision": v}])
        for s, vs in values.items() for seed, v in enumerate(vs)
    ]  # fmt: skip
    frame = build_leaderboard(write_run(tmp_path / "r", cells))
    assert frame["rank_by"].unique().tolist() == ["precision"]  # no FID in the records: their first score
    assert frame["strategy"].tolist() == ["finetune", "adapter", "scratch"] and frame["rank"].tolist() == [1, 2, 3]
    rows = {r["strategy"]: r for _, r in frame.iterrows()}
    assert rows["finetune"]["precision_mean"] == pytest.approx(0.7) and rows["finetune"]["precision_n"] == 2
    assert rows["finetune"]["gain_vs_scratch"] == pytest.approx(0.4)  # (0.6 - 0.2 + 0.8 - 0.4) / 2
    assert rows["adapter"]["gain_vs_scratch"] == pytest.approx(0.1)  # (0.3, -0.1)
    # first step at or above scratch's final value (0.2, 0.4): finetune at 100 (0.35, 0.55); adapter 100, never
    assert rows["finetune"]["steps_to_scratch"] == 100 and rows["finetune"]["reached_n"] == 2
    assert rows["adapter"]["steps_to_scratch"] == 100 and rows["adapter"]["reached_n"] == 1
    assert "fid_mean" not in frame.columns
    assert metric_columns(cells)[0].label == "precision"


def test_bad_metric_declarations_are_refused_before_anything_runs(tmp_path, fixture_plugins, tiny_grid, tiny_run):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "metrics.py").write_text(
        "import ganbench\n\n"
        "class NoColumns(ganbench.Metric):\n    name = 'no-columns'\n\n"
        "class Seedy(ganbench.Metric):\n    name = 'seedy'\n    columns = (ganbench.Column('seed', True),)\n\n"
        "class Twin(ganbench.Metric):\n    name = 'twin'\n    columns = (ganbench.Column('fid', True),)\n\n"
        "class Liar(ganbench.Metric):\n    name = 'liar'\n    columns = (ganbench.Column('told', True),)\n"
        "    def compute(self, ctx):\n        return {'told': 1.0, 'untold': 2.0}\n\n"
        "@ganbench.hookimpl\ndef register_metrics(register):\n"
        "    for cls in (NoColumns, Seedy, Twin, Liar):\n        register(cls)\n"
    )
    dirs = [fixture_plugins, plugins]
    with pytest.raises(GanbenchError, match="'seedy' declares a column 'seed', a field every record already has"):
        plan_matrix(tiny_grid(metrics="seedy"), tmp_path / "runs", plugins_dirs=dirs)
    with pytest.raises(GanbenchError, match="metrics 'fid' and 'twin' both write the column 'fid'"):
        plan_matrix(tiny_grid(metrics="fid,twin"), tmp_path / "runs", plugins_dirs=dirs)
    [cell] = plan_matrix(tiny_grid(metrics="no-columns", strategy="scratch"), tmp_path, plugins_dirs=dirs).cells
    assert "registered metric 'no-columns' without columns" in cell.broken
    summary = tiny_run(tmp_path / "runs", plugins_dirs=[plugins], metrics="liar", strategy="scratch")
    [failed] = summary.records
    assert failed["status"] == "failed"
    assert "metric 'liar' returned ['told', 'untold'] but declares the columns ['told']" in failed["error"]
    assert json.loads((summary.run_dir / "cells" / f"{failed['cell_id']}.json").read_text())["metric_columns"] == [
        {"name": "told", "metric": "liar", "lower_is_better": True, "label": "told", "digits": 4}
    ]
