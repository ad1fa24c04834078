"""``ganbench show RUN_DIR CELL_ID``: one cell's summary (text and JSON), its loss-and-metric picture, the cell id
prefixes it takes and refuses, and the same picture in the HTML report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from ganbench.errors import GanbenchError
from ganbench.report.cell_plots import loss_panels
from ganbench.store.runs import find_record
from ganbench.store.series import loss_series

WITH_LOSSES, OLD, FAILED = "ab12cd34ef56", "ab12cd99aa00", "ff00ee11dd22"


def losses() -> dict:
    """200 steps of loss terms as 40 bin means (5 steps each), with a strategy term (``g_ewc``, ~20x the
    adversarial loss) that was NaN in the third bin (steps 11-15)."""
    s = list(range(1, 41))
    d_real = [0.7 - 0.01 * i for i in s]
    d_fake = [0.6 - 0.005 * i for i in s]
    g_adv = [0.8 + 0.02 * i for i in s]
    g_ewc = [40.0 - 0.5 * i for i in s]
    g_ewc[2] = math.nan
    return {"step": [5 * i for i in s], "d_real": d_real, "d_fake": d_fake, "d_total": [a + b for a, b in zip(d_real, d_fake)],
            "g_adv": g_adv, "g_ewc": g_ewc, "g_total": [a + b for a, b in zip(g_adv, g_ewc)]}  # fmt: skip


@pytest.fixture
def show_run(tmp_path, record, write_run) -> Path:
    """A run of three cells: one with loss curves and every cost field, an older one (only final losses) whose
    id shares the prefix ``ab12cd`` with it, and a failed one that recorded nothing but what it is."""
    curve = [{"step": 50, "fid": 240.0, "kid": 0.2}, {"step": 100, "fid": 190.0, "kid": 0.15},
             {"step": 150, "fid": 160.1, "kid": 0.11}, {"step": 200, "fid": 172.42, "kid": 0.1234}]  # fmt: skip
    full = record(
        "ewc", 0, 172.42, cell_id=WITH_LOSSES, kid=0.1234,
        kid_subset_size=250, curve=curve, eval_every=50, losses=losses(),
        loss={"d_final": 0.3, "g_final": 21.6}, adapt_s=0.42, finetune_s=52.13, eval_s=31.5, eval_generate_s=2.1,
        eval_features_s=27.0, eval_metrics_s=2.4, pretrain_s=120.3, pretrain_cache_hit=True, step_ms=78.2,
        images_per_s=818.4, peak_train_mb=1234.4, peak_eval_mb=2345.6, peak_mem_mb=2345.6, resumes=2,
        resumed_from=[50, 150], steps_redone=8, checkpoint_every="50 steps", device="cpu (test CPU, 2 threads)",
        host="node-7", executor="ray", threads=2, device_shared_by=3,
    )  # fmt: skip
    old = record("scratch", 0, 300.0, 350.0, cell_id=OLD, eval_every=50, loss={"d_final": 1.25, "g_final": 0.875})
    failed = {"cell_id": FAILED, "status": "failed", "error": "RuntimeError: boom", "traceback": "Traceback ...",
              "arch": "dcgan", "strategy": "adapter", "augment": "none", "source": full["source"],
              "target": full["target"], "shots": 100, "seed": 0}  # fmt: skip
    write_run(tmp_path / "run", [full, old])
    (tmp_path / "run" / "cells" / f"{FAILED}.json").write_text(json.dumps(failed))
    return tmp_path / "run"


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # not blank
        return image.size


def test_text_summary_of_a_cell_with_losses(show_run, invoke):
    result = invoke("show", show_run, "ab12cd3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"cell {WITH_LOSSES}: ewc on dcgan, mnist5k:classes=0-4 -> mnist5k:classes=5-9, 100 shots")
    assert "status    ok" in out
    assert (
        "84.1 s = adapt 0.42 s + train 52.1 s + eval 31.5 s (eval: generate 2.1 s, features 27.0 s, metrics 2.4 s)"
        in out
    )
    assert "78.2 ms/step, 818 images/s, source model 120 s (from the cache)" in out
    assert "peak train 1,234 MiB, eval 2,346 MiB (cpu_peak_rss: process resident set)" in out
    assert "resumed   2 times, from steps [50, 150]; 8 steps redone (checkpoints every 50 steps)" in out
    assert "device    cpu (test CPU, 2 threads) on host node-7 (ray executor; 3 cells on this device at most)" in out
    assert "40 points over steps 5-200 (40 bin means, each at its bin's last step)" in out
    [ewc] = [line for line in out.splitlines() if line.split()[:2] == ["G", "ewc"]]
    assert ewc.split()[2:5] == ["20", "20", "39.5"] and ewc.endswith("1, first at step 15")  # last, min, max
    png = show_run / "plots" / f"{WITH_LOSSES}.png"
    assert f"plot      {png}" in out
    # every metric column, with its label, at the end
    *_, fid, kid, subset = out.rstrip().splitlines()
    assert fid.split()[:2] == ["FID", "172.42"] and "best 160.10 at step 150" in fid
    assert kid.split()[:2] == ["KID", "0.1234"] and "best 0.1100 at step 150" in kid
    assert subset.split() == ["KID", "subset", "250", "detail"]
    width, height = png_size(png)
    assert width >= 1200 and height >= 600


def test_the_picture_puts_far_off_strategy_terms_on_their_own_panel_and_keeps_nans():
    steps, terms = loss_series({"losses": losses()})
    assert steps[:3] == [5.0, 10.0, 15.0] and math.isnan(terms["g_ewc"][2])
    assert list(terms) == ["d_real", "d_fake", "d_total", "g_adv", "g_ewc", "g_total"]
    # D has no strategy term: its total is only the sum of the two drawn, so it is left out
    assert [names for _, names in loss_panels(terms)] == [["d_real", "d_fake"], ["g_adv"], ["g_ewc", "g_total"]]
    near = {**terms, "g_ewc": [0.5 * v for v in terms["g_adv"]]}  # the same scale: on G's panel
    near["g_total"] = [a + b for a, b in zip(near["g_adv"], near["g_ewc"])]
    assert [names for _, names in loss_panels(near)] == [["d_real", "d_fake"], ["g_adv", "g_ewc", "g_total"]]
    thinned = loss_series({"losses": {"step": [4, 8], "d_real": [0.5, None], "g_adv": ["x", 1.0]}})
    assert thinned[0] == [4.0, 8.0] and math.isnan(thinned[1]["d_real"][1]) and math.isnan(thinned[1]["g_adv"][0])
    assert loss_series({"loss": {"d_final": 1.0, "g_final": 1.0}}) == ([], {})


def test_json_summary(show_run, invoke):
    result = invoke("show", show_run, WITH_LOSSES, "--json")
    assert result.exit_code == 0, result.output

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    summary = json.loads(result.output, parse_constant=refuse)
    assert summary["cell_id"] == WITH_LOSSES and summary["status"] == "ok" and summary["strategy"] == "ewc"
    assert summary["timing"]["adapt_s"] == 0.42 and summary["timing"]["eval_features_s"] == 27.0
    assert summary["memory"] == {"peak_train_mb": 1234.4, "peak_eval_mb": 2345.6, "peak_mem_mb": 2345.6,
                                 "kind": "cpu_peak_rss"}  # fmt: skip
    assert summary["resumption"] == {"resumes": 2, "resumed_from": [50, 150], "steps_redone": 8,
                                     "checkpoint_every": "50 steps"}  # fmt: skip
    assert summary["ran"] == {"host": "node-7", "executor": "ray", "threads": 2, "device_shared_by": 3}
    fid = summary["metrics"][0]
    assert (fid["name"], fid["label"], fid["value"]) == ("fid", "FID", 172.42)
    assert fid["best"] == {"step": 150, "value": 160.1} and summary["metrics"][2]["lower_is_better"] is None
    assert summary["headline"] == "fid" and summary["final_step"] == 200
    ewc = summary["losses"]["terms"]["g_ewc"]
    assert ewc == {"label": "G ewc", "last": 20.0, "min": 20.0, "max": 39.5, "non_finite": 1,
                   "first_non_finite_step": 15}  # fmt: skip
    assert not summary["losses"]["every_step"] and summary["losses"]["points"] == 40
    assert summary["plot"] == str(show_run / "plots" / f"{WITH_LOSSES}.png")
    assert summary["samples"] == str(show_run / "samples" / f"{WITH_LOSSES}.png")


def test_a_record_without_losses_says_so_and_plots_the_metric_only(show_run, invoke, tmp_path):
    out_png = tmp_path / "elsewhere" / "old.png"
    result = invoke("show", show_run, OLD, "-o", out_png)
    assert result.exit_code == 0, result.output
    assert ("losses    not in this record (written before ganbench kept loss curves; final D 1.25, G 0.875); the "
            "plot shows the metric curve only") in result.output  # fmt: skip
    assert f"plot      {out_png}" in result.output and not (show_run / "plots").exists()
    old_width, _ = png_size(out_png)
    invoke("show", show_run, WITH_LOSSES, "-o", tmp_path / "full.png")
    assert old_width < png_size(tmp_path / "full.png")[0] * 0.7  # one panel, not losses beside the curve


def test_a_failed_cell_shows_its_error_and_draws_nothing(show_run, invoke):
    result = invoke("show", show_run, "ff")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "status    failed: RuntimeError: boom" in out and "`traceback` field" in out
    assert "losses    not in this record (the cell failed before any were kept)\n" in out
    assert "plot      none: the record has neither loss curves nor a metric curve" in out
    assert out.rstrip().endswith("metrics   none recorded (the cell failed)")
    assert not any(line.startswith(("time", "memory", "budget")) for line in out.splitlines())
    assert not (show_run / "plots").exists()


def test_cell_ids_are_prefixes_that_must_name_one_cell(show_run, tmp_path, invoke, assert_one_line_error):
    assert find_record(show_run, WITH_LOSSES)["cell_id"] == WITH_LOSSES
    assert find_record(show_run, "ab12cd9")["cell_id"] == OLD
    assert_one_line_error(invoke("show", show_run, "ab12cd"), "ambiguous", WITH_LOSSES, OLD, "give more of the id")
    assert_one_line_error(invoke("show", show_run, "0123"), "no cell '0123'", f"{WITH_LOSSES}, {OLD}, {FAILED}")
    (tmp_path / "not-a-run").mkdir()
    assert_one_line_error(invoke("show", tmp_path / "not-a-run", "ab"), "is not a run directory", "cells/")
    assert_one_line_error(invoke("show", tmp_path / "missing", "ab"), "does not exist")
    many = tmp_path / "many"
    (many / "cells").mkdir(parents=True)
    for i in range(7):
        (many / "cells" / f"c{i}.json").write_text(json.dumps({"cell_id": f"c{i}"}))
    with pytest.raises(GanbenchError, match=r"cells start with it \(c0, c1, c2, c3, c4 \(\+2 more\)\)"):
        find_record(many, "c")
    with pytest.raises(GanbenchError, match=r"its cells: c0, c1, c2, c3, c4 \(\+2 more\)$"):
        find_record(many, "d")
    (many / "cells" / "c7.json").write_text("{not json")
    with pytest.raises(GanbenchError, match="not a readable cell record"):
        find_record(many, "c7")


def test_html_report_shows_the_loss_picture_of_cells_with_losses(show_run, invoke, tmp_path):
    out = tmp_path / "report"
    result = invoke("leaderboard", show_run, "--format", "html", "-o", out)
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert f'<img src="plots/cell-{WITH_LOSSES}.png"' in page and f'<a href="plots/cell-{WITH_LOSSES}.png">' in page
    assert f"cell-{OLD}" not in page  # no losses recorded: nothing to show beside its samples
    width, height = png_size(out / "plots" / f"cell-{WITH_LOSSES}.png")
    assert width >= 1000 and height >= 500
