"""`ganbench new strategy`: the generated plugin runs unchanged and passes the checks."""

import subprocess
import sys

from click.testing import CliRunner

from ganbench.cli import cli
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy


def test_scaffold_writes_a_plugin_that_loads_passes_checks_and_runs(tmp_path):
    folder = tmp_path / "my_plugins"
    result = CliRunner().invoke(cli, ["new", "strategy", "pull-back", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["pull_back.py", "test_pull_back.py"]
    registry = load_registry([folder])
    entry = registry.get("strategy", "pull-back")
    assert entry.origin.file == str(folder / "pull_back.py")
    counts = check_strategy(registry.create(registry.resolve("strategy", "pull-back:freeze=1,weight=0.01")))
    assert counts["trainable"] < counts["total"]
    dry = CliRunner().invoke(
        cli, ["run", "matrix", "--plugins-dir", str(folder), "--strategy", "pull-back", "--dry-run"]
    )
    assert dry.exit_code == 0 and "pull-back" in dry.output


def test_generated_test_file_passes(tmp_path):
    folder = tmp_path / "plugs"
    CliRunner().invoke(cli, ["new", "strategy", "mine", "--dir", str(folder)])
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_scaffold_refuses_to_overwrite(tmp_path):
    first = CliRunner().invoke(cli, ["new", "strategy", "once", "--dir", str(tmp_path)])
    before = (tmp_path / "once.py").read_text()
    (tmp_path / "once.py").write_text(before + "# my edits\n")
    second = CliRunner().invoke(cli, ["new", "strategy", "once", "--dir", str(tmp_path)])
    assert first.exit_code == 0 and second.exit_code == 2
    assert "already exists" in second.output and second.output.count("\n") == 1
    assert (tmp_path / "once.py").read_text().endswith("# my edits\n")


def test_scaffold_rejects_bad_and_taken_names(tmp_path):
    for name, fragment in [
        ("My_Strategy", "not a valid plugin name"),
        ("finetune", "already exists"),
        ("2x", "not a valid"),
    ]:
        result = CliRunner().invoke(cli, ["new", "strategy", name, "--dir", str(tmp_path)])
        assert result.exit_code == 2 and fragment in result.output
    assert not any(tmp_path.iterdir())
