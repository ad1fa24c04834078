"""The published leaderboards rebuild from their committed records, byte for byte, with the command each one
says it was made with."""

import re

import pytest

PUBLISHED = ["default-cpu", "archs-cpu", "default-h200"]


@pytest.mark.parametrize("grid", PUBLISHED)
def test_a_published_leaderboard_rebuilds_from_its_records(grid, root, tmp_path, monkeypatch, invoke):
    monkeypatch.chdir(root)
    markdown = (root / "results" / f"leaderboard-{grid}.md").read_text()
    [command] = re.findall(r"made with: `ganbench leaderboard (.*)`", markdown)
    assert command == f"results/records/{grid} --format md -o results/leaderboard-{grid}.md"
    rebuilt = tmp_path / "rebuilt"
    result = invoke("leaderboard", f"results/records/{grid}", "-o", rebuilt / "board.csv")
    assert result.exit_code == 0, result.output
    assert (rebuilt / "board.csv").read_text() == (root / "results" / f"leaderboard-{grid}.csv").read_text()
    result = invoke("leaderboard", f"results/records/{grid}", "--format", "md")
    assert result.exit_code == 0, result.output
    assert result.output == markdown.replace(f" -o results/leaderboard-{grid}.md`", "`")
