"""Third-party discovery, for real: examples/ganbench-l2sp is an installed distribution with an entry point
(the README's install line and .ci/run install it). Nothing in ganbench names it."""

from pathlib import Path

import pytest

from ganbench.execute.driver import run_matrix
from ganbench.grid.config import make_grid
from ganbench.plugin.manager import load_registry

FIXTURES = Path(__file__).parent / "plugins_fixture"


@pytest.fixture
def with_example(monkeypatch):
    from importlib import metadata

    try:
        metadata.distribution("ganbench-l2sp")
    except metadata.PackageNotFoundError:
        pytest.fail("examples/ganbench-l2sp is not installed: pip install -e examples/ganbench-l2sp")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench,ganbench-l2sp")


def test_installed_package_is_discovered_with_its_distribution(with_example):
    entry = load_registry().get("strategy", "l2sp")
    assert entry.origin.distribution == "ganbench-l2sp" and entry.origin.version == "0.1.0"
    assert entry.origin.module == "ganbench_l2sp" and entry.origin.file is None


def test_third_party_strategy_runs_in_a_grid_cell(with_example, tmp_path):
    grid = make_grid(
        arch="dcgan:width=8", strategy="l2sp:alpha=0.1", source="digits:classes=2-4", target="tiny-digits",
        shots="8", pretrain_steps=10, finetune_steps=4, batch_size=4, eval_samples=8, eval_every=0,
    )  # fmt: skip
    summary = run_matrix(grid, tmp_path, plugins_dirs=[FIXTURES], progress=False)
    record = next(r for r in summary.records if r["strategy"] == "l2sp:alpha=0.1")
    assert record["status"] == "ok" and record["fid"] > 0
    assert record["trainable_params"] == record["total_params"]


def test_third_party_plugins_stay_out_unless_allowed():
    assert "l2sp" not in load_registry().names("strategy")  # conftest limits entry points to ganbench's own
