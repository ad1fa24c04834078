"""Whether the seeds run resolve each comparison (paired Student-t intervals over seeds, against scratch and
against the next rank), and the rows whose cells ran on more than one device, in the frame, the CSV and every
renderer."""

from __future__ import annotations

import csv
import html
import io
import math

import pandas as pd
import pytest
from scipy import stats

from ganbench import build_leaderboard
from ganbench.report.csv import to_csv
from ganbench.report.formatting import DEVICE_MARK, REPRODUCIBILITY
from ganbench.report.leaderboard import paired_interval, resolved
from ganbench.report.listings import leaderboard_summary
from ganbench.report.markdown import to_markdown

# strategy -> final FID of seeds 0-3; gains over scratch: finetune 100/80/75/65, adapter 10/-10/10/-5,
# worse -100/-110/-120/-100
FOUR_SEEDS = {
    "scratch": [300.0, 310.0, 290.0, 305.0],
    "finetune": [200.0, 230.0, 215.0, 240.0],
    "adapter": [290.0, 320.0, 280.0, 310.0],
    "worse": [400.0, 420.0, 410.0, 405.0],
}
EPYC, XEON = "cpu (AMD EPYC, 2 threads)", "cpu (Intel(R) Xeon(R) Platinum, 2 threads)"


def rows_of(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["strategy"]: row for _, row in frame.iterrows()}


def mean_difference(a: list[float], b: list[float]) -> float:
    return sum(x - y for x, y in zip(a, b)) / len(a)


def four_seed_board(tmp_path, record, write_run, **changes) -> pd.DataFrame:
    cells = [
        record(s, seed, fid, fid + 50, **changes) for s, fids in FOUR_SEEDS.items() for seed, fid in enumerate(fids)
    ]
    return build_leaderboard(write_run(tmp_path / "r", cells))


def test_the_paired_interval_is_students_t_over_seeds():
    diffs = [100.0, 80.0, 75.0, 65.0]
    low, high = paired_interval(diffs)
    # by hand: mean 80, sample std sqrt(650 / 3), t(0.975, 3) = 3.1824...
    half = stats.t.ppf(0.975, 3) * math.sqrt(650 / 3) / 2
    assert (low, high) == pytest.approx((80 - half, 80 + half))
    assert stats.t.ppf(0.975, 3) == pytest.approx(3.182446305)
    scipy_ci = stats.ttest_rel(FOUR_SEEDS["scratch"], FOUR_SEEDS["finetune"]).confidence_interval(0.95)
    assert (low, high) == pytest.approx((scipy_ci.low, scipy_ci.high))
    assert paired_interval([5.0]) == (None, None) and paired_interval([]) == (None, None)
    assert paired_interval([3.0, 3.0]) == (3.0, 3.0)  # no spread: the interval is the mean
    assert (resolved(1.0, 2.0), resolved(-2.0, -1.0), resolved(-1.0, 2.0), resolved(None, None)) == (
        True, True, False, None)  # fmt: skip


def test_gain_over_scratch_says_whether_the_seeds_resolve_it(tmp_path, record, write_run):
    rows = rows_of(four_seed_board(tmp_path, record, write_run))
    ft, ad, worse, sc = rows["finetune"], rows["adapter"], rows["worse"], rows["scratch"]
    for row, strategy in ((ft, "finetune"), (ad, "adapter"), (worse, "worse")):
        ci = stats.ttest_rel(FOUR_SEEDS["scratch"], FOUR_SEEDS[strategy]).confidence_interval(0.95)
        assert (row["gain_ci_low"], row["gain_ci_high"]) == pytest.approx((ci.low, ci.high))
        assert row["gain_n"] == 4
    assert ft["gain_vs_scratch"] == pytest.approx(80.0) and ft["gain_resolved"] is True  # [56.6, 103.4]
    assert ad["gain_vs_scratch"] == pytest.approx(1.25) and ad["gain_resolved"] is False  # the CI holds 0
    assert worse["gain_vs_scratch"] == pytest.approx(-107.5) and worse["gain_resolved"] is True  # resolvably worse
    # scratch pairs with itself: a gain of 0, nothing to resolve
    assert sc["gain_vs_scratch"] == 0.0 and pd.isna(sc["gain_ci_low"]) and pd.isna(sc["gain_resolved"])


def test_each_rank_is_compared_with_the_next_on_common_seeds(tmp_path, record, write_run):
    frame = four_seed_board(tmp_path, record, write_run)
    assert list(frame["strategy"]) == ["finetune", "adapter", "scratch", "worse"]
    rows = rows_of(frame)
    # finetune vs adapter: adapter - finetune = 90/90/65/70; adapter vs scratch: 10/-10/10/-5; scratch vs worse
    for this, nxt, verdict in (
        ("finetune", "adapter", True),
        ("adapter", "scratch", False),
        ("scratch", "worse", True),
    ):
        row = rows[this]
        ci = stats.ttest_rel(FOUR_SEEDS[nxt], FOUR_SEEDS[this]).confidence_interval(0.95)
        assert row["vs_next"] == nxt and row["vs_next_n"] == 4
        assert row["vs_next_diff"] == pytest.approx(mean_difference(FOUR_SEEDS[nxt], FOUR_SEEDS[this]))
        assert (row["vs_next_ci_low"], row["vs_next_ci_high"]) == pytest.approx((ci.low, ci.high))
        assert row["vs_next_resolved"] is verdict
    last = rows["worse"]
    assert pd.isna(last["vs_next"]) and pd.isna(last["vs_next_diff"]) and pd.isna(last["vs_next_resolved"])


def test_a_single_seed_gives_no_verdict(tmp_path, record, write_run):
    cells = [record("scratch", s, 300.0 + s, 350.0) for s in (0, 1, 2)]
    cells += [record("finetune", s, 200.0 + 10 * s, 250.0) for s in (0, 1, 2)]
    cells += [record("freeze-d", 1, 250.0, 260.0, augment="diffaug")]  # one seed only, with an augmentation
    frame = build_leaderboard(write_run(tmp_path / "r", cells))
    rows = {(r["strategy"], r["augment"]): r for _, r in frame.iterrows()}
    ft, fd = rows[("finetune", "none")], rows[("freeze-d", "diffaug")]
    assert fd["gain_n"] == 1 and fd["gain_vs_scratch"] == pytest.approx(51.0)  # paired with scratch of no augment
    assert pd.isna(fd["gain_ci_low"]) and pd.isna(fd["gain_ci_high"]) and pd.isna(fd["gain_resolved"])
    # finetune's next rank has seed 1 only: one common seed, a difference and no verdict
    assert ft["vs_next"] == "freeze-d +diffaug" and ft["vs_next_n"] == 1
    assert ft["vs_next_diff"] == pytest.approx(40.0) and pd.isna(ft["vs_next_resolved"])
    assert ft["gain_resolved"] is True and fd["vs_next"] == "scratch"
    written = {r["strategy"]: r for r in csv.DictReader(io.StringIO(to_csv(frame)))}
    assert written["finetune"]["gain_resolved"] == "True" and written["finetune"]["vs_next_resolved"] == ""
    assert written["freeze-d"]["gain_resolved"] == "" and written["freeze-d"]["gain_ci_low"] == ""
    md = to_markdown(frame)
    assert "| 1 seed | 51.00 (1 seed) |" in md  # freeze-d: no interval for its gain, nor against scratch
    assert "| 40.00 (1 seed) |" in md and "| 0.00 ± 0.00 | - | - |" in md  # finetune; the scratch row


def test_rows_whose_cells_ran_on_several_devices_are_flagged(tmp_path, record, write_run, standard_cells):
    cells = standard_cells(device=EPYC)
    adapter_1 = next(r for r in cells if (r["strategy"], r["seed"]) == ("adapter", 1))
    adapter_1["device"] = XEON
    # another comparison group, all on one device; and one where each row ran on its own machine
    for target, devices in (("digits", {"scratch": EPYC, "finetune": EPYC}),
                            ("fonts", {"scratch": XEON, "finetune": EPYC})):  # fmt: skip
        cells += [record(s, seed, 300.0 - 100 * (s == "finetune") + seed, 320.0, target=target, device=device)
                  for s, device in devices.items() for seed in (0, 1)]  # fmt: skip
    frame = build_leaderboard(write_run(tmp_path / "r", cells))
    by_target = {t: rows_of(group) for t, group in frame.groupby("target")}
    mixed = by_target["mnist5k:classes=5-9"]
    assert mixed["adapter"]["n_devices"] == 2 and mixed["finetune"]["n_devices"] == mixed["scratch"]["n_devices"] == 1
    assert all(row["mixed_devices"] is True for row in mixed.values())  # ranked and paired against adapter
    assert all(row["mixed_devices"] is False and row["n_devices"] == 1 for row in by_target["digits"].values())
    apart = by_target["fonts"]
    assert all(row["mixed_devices"] is True and row["n_devices"] == 1 for row in apart.values())
    assert mixed["adapter"]["device"] == f"{EPYC};{XEON}"
    written = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert {(r["target"], r["mixed_devices"]) for r in written} == {
        ("mnist5k:classes=5-9", "True"), ("digits", "False"), ("fonts", "True")}  # fmt: skip


def test_renderers_mark_mixed_device_rows_and_explain_the_mark_once(tmp_path, record, write_run, invoke):
    cells = [record(s, seed, fid, fid + 50, device=XEON if (s, seed) == ("finetune", 0) else EPYC)
             for s, fids in FOUR_SEEDS.items() for seed, fid in enumerate(fids)]  # fmt: skip
    cells += [record(s, 0, 300.0 - 100 * (s == "finetune"), 320.0, target="digits", device=EPYC)
              for s in ("scratch", "finetune")]  # fmt: skip
    run = write_run(tmp_path / "runs" / "mixed", cells)
    md = to_markdown(build_leaderboard(run))
    assert f"| 1 | finetune {DEVICE_MARK} |" in md and f"| 4 | worse {DEVICE_MARK} |" in md
    assert "| 1 | finetune | 200.00 |" in md  # the digits group ran on one device: unmarked
    assert md.count(f"{DEVICE_MARK} The cells of this row") == 1 and md.count(DEVICE_MARK) == 4 + 1
    assert f"{EPYC}; {XEON}" in md
    html_out = tmp_path / "report"
    assert invoke("leaderboard", run, "--format", "html", "-o", html_out).exit_code == 0
    page = (html_out / "index.html").read_text()
    assert f"<td>finetune {DEVICE_MARK}</td>" in page and "<td>finetune</td>" in page
    assert page.count('id="device-note"') == 1 and page.count(f"{DEVICE_MARK} The cells of this row") == 1
    result = invoke("leaderboard", run, "-o", tmp_path / "board.csv")  # the terminal summary
    assert result.exit_code == 0, result.output
    assert f"finetune {DEVICE_MARK}" in result.output
    assert result.output.count(f"{DEVICE_MARK} The cells of this row") == 1
    plain = write_run(tmp_path / "runs" / "plain", [{**c, "device": EPYC} for c in cells])
    frame = build_leaderboard(plain)
    assert DEVICE_MARK not in to_markdown(frame) and DEVICE_MARK not in leaderboard_summary(frame)


def test_markdown_and_html_say_what_reproduces_and_when_more_seeds_are_needed(tmp_path, record, write_run, invoke):
    cells = [record(s, seed, fid, fid + 50) for s, fids in FOUR_SEEDS.items() for seed, fid in enumerate(fids)]
    run = write_run(tmp_path / "runs" / "four", cells)
    md = to_markdown(build_leaderboard(run))
    assert "| [56.58, 103.42] resolved |" in md  # finetune's gain
    assert "| 1.25 ± 10.31 | [-15.15, 17.65] unresolved | 1.25 [-15.15, 17.65] unresolved |" in md  # adapter
    html_out = tmp_path / "report"
    assert invoke("leaderboard", run, "--format", "html", "-o", html_out).exit_code == 0
    page = (html_out / "index.html").read_text()
    assert "[56.58, 103.42] resolved" in page and "[-15.15, 17.65] unresolved" in page
    assert REPRODUCIBILITY in md and html.escape(REPRODUCIBILITY) in page
    for text in (md, page):
        assert "Bit-identical reruns hold on one machine only" in text
        assert "Across machines only the distribution over seeds reproduces" in text
        assert "results/README.md" in text  # where the numbers behind it are, not one machine's FIDs in every report
        assert "140.0" not in text and "Intel Xeon" not in text
        assert "An unresolved verdict (or a single seed)" in text and "run more seeds" in text
        assert "Student-t confidence interval" in text and "resolved when it excludes 0" in text
