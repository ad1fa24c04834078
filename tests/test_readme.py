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


def test_the_command_line_block_lists_every_command_and_every_run_matrix_option():
    from ganbench.cli import cli

    [block] = re.findall(r"## Command line\n\n```text\n(.*?)```", README, flags=re.S)
    for name in cli.commands:
        assert f"ganbench {name}" in block, f"the README's command-line block does not show `ganbench {name}`"
    usage = block.split("ganbench plugins", 1)[0]
    shown = set(re.findall(r"--[a-z0-9-]+", usage))
    for param in cli.commands["run"].commands["matrix"].params:
        flags = set(param.opts) | set(param.secondary_opts)
        if "--help" not in flags:
            assert flags & shown, f"the README's `ganbench run matrix` usage does not show {sorted(flags)}"
