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
