"""Method cards: every built-in strategy that is a published method says what it is, and the listing shows it."""

import json
from pathlib import Path

from click.testing import CliRunner

from ganbench.cli import cli
from ganbench.plugin.manager import load_registry

ROOT = Path(__file__).parents[2]
REGISTRY = load_registry()
BUILT_IN = [e for e in REGISTRY.entries("strategy") if e.origin.module.startswith("ganbench_plugins.")]


def test_every_built_in_method_has_a_card_whose_parity_test_exists():
    without = {e.name for e in BUILT_IN if e.cls.card is None}
    assert without == {"scratch"}  # the baseline is not a published method
    for entry in BUILT_IN:
        card = entry.cls.card
        if card is None:
            continue
        assert card.paper and 2014 <= card.year <= 2030 and card.trains, entry.name
        if card.parity is not None:
            assert (ROOT / card.parity).is_file(), f"{entry.name}: {card.parity}"
            assert card.code, f"{entry.name}: a parity test names the code it was checked against"


def test_plugins_strategies_lists_each_card_and_json_carries_it():
    result = CliRunner().invoke(cli, ["plugins", "strategies"])
    assert result.exit_code == 0, result.output
    assert "metrics:" not in result.output  # one kind only
    cdc = REGISTRY.get("strategy", "cdc").cls.card
    assert f"paper:    {cdc.paper} ({cdc.year})" in result.output
    assert "scratch" in result.output and "no method card" in result.output
    for entry in BUILT_IN:
        assert f"  {entry.name} " in result.output
    listed = json.loads(CliRunner().invoke(cli, ["plugins", "strategy", "--json"]).output)
    assert {e["kind"] for e in listed} == {"strategy"}
    assert next(e for e in listed if e["name"] == "cdc")["card"]["year"] == 2021
    assert CliRunner().invoke(cli, ["plugins", "bogus"]).exit_code == 2


def test_records_carry_the_method_card_and_the_leaderboard_names_it(tmp_path, tiny_run):
    from ganbench.report.leaderboard import build_leaderboard
    from ganbench.report.markdown import to_markdown
    from ganbench.store.runs import load_records

    summary = tiny_run(tmp_path / "runs", strategy="cdc:patch=false,finetune", metrics="brightness-match")
    records = {r["strategy"].partition(":")[0]: r for r in load_records(summary.run_dir)}
    cdc = REGISTRY.get("strategy", "cdc").cls.card
    assert records["cdc"]["method"] == cdc.summary() and "utkarshojha/few-shot-gan-adaptation" in cdc.summary()
    assert records["scratch"]["method"] is None  # the baseline has no card
    frame = build_leaderboard([summary.run_dir])
    assert f"method cdc: {cdc.summary()}" in frame.attrs["notes"]
    assert f"- method cdc: {cdc.summary()}" in to_markdown(frame)
