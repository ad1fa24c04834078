"""The README's examples are code: run them."""

import re
from pathlib import Path

from ganbench.grid.config import load_config, make_grid
from ganbench.grid.expand import expand
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy

README = (Path(__file__).parents[1] / "README.md").read_text()


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quick_start_is_two_commands_install_and_test():
    section = README.split("## Quick start", 1)[1]
    commands = [line for line in _blocks("bash")[0].splitlines() if line.strip()]
    assert section.index("```bash") < section.index("##")
    assert len(commands) == 2
    assert "ganbench run matrix" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1]


def test_readme_strategy_plugin_loads_and_passes_the_checks(tmp_path):
    [code] = _blocks("python")
    (tmp_path / "head_only.py").write_text(code)
    registry = load_registry([tmp_path])
    entry = registry.get("strategy", "head-only")
    counts = check_strategy(entry.cls())
    assert 0 < counts["trainable"] < counts["total"] / 10


def test_readme_grid_toml_expands(tmp_path, registry):
    [toml] = _blocks("toml")
    path = tmp_path / "grid.toml"
    path.write_text(toml)
    cells = expand(make_grid(load_config(path)), registry)
    # 5 strategies (scratch added) x 2 pairs x 2 shot counts x 3 seeds
    assert len(cells) == 5 * 2 * 2 * 3
