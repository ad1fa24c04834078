import pytest

from ganbench.errors import GanbenchError
from ganbench.grid.config import Grid, load_config, make_grid
from ganbench.grid.expand import expand, run_id


def test_default_grid_is_the_embedded_one(registry):
    cells = expand(Grid(), registry)
    assert [c.labels["strategy"] for c in cells] == ["scratch", "finetune", "freeze-d", "adapter"]
    assert {(c.labels["source"], c.labels["target"]) for c in cells} == {("mnist5k:classes=0-4", "mnist5k:classes=5-9")}
    assert {(c.arch.split(":")[0], c.shots, c.seed, c.resolution, c.channels) for c in cells} == {
        ("dcgan", 100, 0, 32, 1)
    }


def test_toml_then_cli_overrides(tmp_path, registry):
    config = tmp_path / "small.toml"
    config.write_text(
        '[grid]\nstrategy = ["finetune", "freeze-d:layers=1"]\nshots = [10, 20]\nseeds = [0, 1]\n'
        'pairs = [["digits:classes=0-4", "digits:classes=5-9"]]\nfinetune_steps = 50\n'
    )
    grid = make_grid(load_config(config), seeds="3")
    assert grid.name == "small" and grid.seeds == [3] and grid.finetune_steps == 50
    cells = expand(grid, registry)
    assert len(cells) == 3 * 2  # scratch added as the baseline; 2 shot counts; 1 seed
    assert {c.labels["strategy"] for c in cells} == {"scratch", "finetune", "freeze-d:layers=1"}


def test_baseline_can_be_left_out(registry):
    cells = expand(make_grid(strategy="finetune", baseline=False), registry)
    assert [c.labels["strategy"] for c in cells] == ["finetune"]


def test_cell_ids_are_stable_and_dedupe_default_options(registry):
    a = expand(make_grid(strategy="freeze-d,freeze-d:layers=2"), registry)
    b = expand(make_grid(strategy="freeze-d:layers=2"), registry)
    assert [c.id for c in a] == [c.id for c in b] and len(a) == 2
    assert run_id(make_grid(), a) == run_id(make_grid(), b)
    changed = expand(make_grid(strategy="freeze-d:layers=2", finetune_steps=7), registry)
    assert {c.id for c in changed}.isdisjoint({c.id for c in a})


def test_unsupported_resolution(registry):
    with pytest.raises(GanbenchError, match="supports resolutions 16, 32, 64, 128, not 48"):
        expand(make_grid(resolution=48), registry)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"batch_size": 0}, "batch_size must be at least 1"), ({"channels": 2}, "channels must be 1 or 3"),
     ({"shots": "0"}, "shots must be positive"), ({"seeds": "a"}, "seeds must be integers"),
     ({"eval_samples": 1}, "eval_samples must be at least 2")],
)  # fmt: skip
def test_bad_settings(overrides, message):
    with pytest.raises(GanbenchError, match=message):
        make_grid(**overrides)
