"""The protocol presets in protocols/ load as grids and say what docs/protocols.md says they do."""

from __future__ import annotations

from pathlib import Path

from ganbench.grid.config import load_config, make_grid
from ganbench.grid.expand import expand
from ganbench.plugin.manager import load_registry

PROTOCOLS = Path(__file__).parents[1] / "protocols"
BUILT_IN = {e.name for e in load_registry().entries("strategy") if e.origin.module.startswith("ganbench_plugins.")}


def test_the_ffhq_10shot_protocol_is_the_literature_s():
    grid = make_grid(load_config(PROTOCOLS / "ffhq-10shot.toml"))
    assert grid.arch == ["stylegan2"] and grid.resolution == 256 and grid.channels == 3
    assert grid.source == ["checkpoint:path=checkpoints/stylegan2-ffhq-config-f.pt"]
    assert len(grid.target) == 6 and all(t.startswith("folder:path=") and "size=256" in t for t in grid.target)
    assert grid.shots == [10] and grid.seeds == [0, 1, 2] and grid.eval_samples == 5000
    assert (grid.betas, grid.lr, grid.batch_size) == ([0.0, 0.99], 0.002, 4)  # the stylegan2 preset
    assert grid.ema > 0.99 and grid.r1_gamma == 10.0 and "intra-lpips" in grid.metrics and "ada" in grid.augment
    assert set(grid.strategies()) == BUILT_IN  # every built-in strategy, old and new, and the baseline


def test_the_tiny_protocol_expands_here_with_every_strategy(registry):
    grid = make_grid(load_config(PROTOCOLS / "tiny-stylegan2.toml"))
    cells = expand(grid, registry)
    assert set(grid.strategies()) == BUILT_IN
    assert len(cells) == len(BUILT_IN) and {c.strategy.partition(":")[0] for c in cells} == BUILT_IN
    assert all(
        c.arch.startswith("stylegan2:") and c.recipe.ema == 0.99 and c.recipe.betas == (0.0, 0.99) for c in cells
    )


def test_the_methods_table_of_the_docs_is_made_from_the_strategies(registry):
    from ganbench.report.methods import methods_markdown

    text = (PROTOCOLS.parent / "docs" / "protocols.md").read_text()
    assert methods_markdown(registry) in text, (
        "run `python -m ganbench.report.methods` and paste it into docs/protocols.md"
    )
    for name in ("cdc", "dcl", "rssa", "adam", "rick", "maskdis", "weditgan"):
        assert f"**`{name}`**, deviations from the code read" in text
