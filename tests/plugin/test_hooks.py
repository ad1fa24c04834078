"""Every hook is documented with its exact signature, and every hook's documented example is a working
plugin that passes ganbench.testing's checks (datasette-style meta-tests)."""

import inspect
import re
from pathlib import Path

import pytest
import torch

from ganbench.context import RunContext
from ganbench.data.prepare import prepare_dataset
from ganbench.plugin import hookspecs
from ganbench.plugin.manager import HOOKS, load_registry
from ganbench.testing import check_architecture, check_dataset, check_metric, check_strategy

DOC = (Path(__file__).parents[2] / "docs" / "plugin-hooks.md").read_text()
SPECS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("register_") and callable(fn)}


def _section(hook):
    return DOC.split(f"\n## {hook}(", 1)[1].split("\n## ", 1)[0]


def _example(hook, tmp_path):
    [code] = re.findall(r"```python\n(.*?)```", _section(hook), flags=re.S)
    (tmp_path / f"{hook}_example.py").write_text(code)
    return load_registry([tmp_path])


def test_every_hook_spec_is_documented_with_its_signature():
    documented = re.findall(r"^## (register_\w+\(.*\))$", DOC, flags=re.M)
    expected = [f"{name}({', '.join(inspect.signature(fn).parameters)})" for name, fn in SPECS.items()]
    assert sorted(documented) == sorted(expected)


def test_every_hook_spec_is_loaded_by_the_plugin_manager():
    assert set(HOOKS.values()) == set(SPECS)


def check_register_architectures(registry, cache):
    counts = check_architecture(registry.create(registry.resolve("architecture", "mlp")), resolution=16)
    assert counts["params_d"] == 16 * 16 * 128 + 128 + 129


def check_register_strategies(registry, cache):
    strategy = registry.create(registry.resolve("strategy", "slow-g"))
    from ganbench.testing import tiny_nets

    nets = tiny_nets()
    assert [g["lr_mult"] for g in strategy.param_groups(nets.G, "G")] == [0.1]
    assert all(g.get("lr_mult", 1.0) == 1.0 for g in strategy.param_groups(nets.D, "D"))
    check_strategy(strategy)


def check_register_datasets(registry, cache):
    assert check_dataset(registry.create(registry.resolve("dataset", "stripes"))) == {"images": 64, "channels": 1}
    context = RunContext.from_environment(cache_dir=cache)
    data = prepare_dataset(registry.resolve("dataset", "stripes:classes=1"), registry, 32, 3, context)
    assert data.images.shape == (32, 3, 32, 32)


def check_register_metrics(registry, cache):
    values = check_metric(registry.create(registry.resolve("metric", "brightness-gap")), cache)
    assert 0 < values["brightness_gap"] < 1


def check_register_augmentations(registry, cache):
    flip = registry.create(registry.resolve("augmentation", "flip"))
    torch.manual_seed(0)
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    y = flip(x)
    flipped = (y[:, 0, 0, 0] == 3).sum().item()
    assert 10 < flipped < 54 and torch.equal(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


CHECKS = {name: globals()[f"check_{name}"] for name in SPECS}


@pytest.mark.parametrize("hook", sorted(SPECS))
def test_documented_example_of_each_hook_works(hook, tmp_path, session_cache):
    registry = _example(hook, tmp_path)
    assert registry.load_errors == []
    CHECKS[hook](registry, session_cache)
