"""Bad input on every command, as a user meets it: one line ``Error: ...`` saying what is wrong and what to do,
exit code 2, no traceback, and nothing already on disk touched. Damaged cell records given to ``leaderboard``
are skipped with one warning line while the rest is tabulated (the command's help says so). Unexpected
exceptions are one ``internal error`` line with exit code 1.

The cases here add to those of tests/test_cli.py (unknown plugin names and options, a missing config, a bad
device or plugins folder, invalid TOML, missing weights) and tests/report (runs evaluated differently).
Nothing trains: ``run matrix`` cases refuse before the first step, and run folders are written by hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from builders import make_record, write_images, write_run_folder


@pytest.fixture(scope="session")
def tiny_options(tiny_grid, fixture_plugins) -> list[str]:
    """The tiny grid as command-line options (the settings where it differs from the default grid), with the
    fixture plugins (its target, tiny-digits, is one)."""
    from ganbench.grid.config import Grid

    grid, default = tiny_grid(), Grid()
    changed = {f.name: getattr(grid, f.name) for f in fields(Grid) if getattr(grid, f.name) != getattr(default, f.name)}
    options = [
        f"--{k.replace('_', '-')}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changed.items()
    ]
    return [*options, "--plugins-dir", str(fixture_plugins)]


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path (what "untouched" is checked against)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def files(tmp_path) -> Path:
    """A folder of things to point commands at: a plain file, image folders good and bad, a broken plugin."""
    (tmp_path / "file.txt").write_text("not a folder\n")
    for name in ("empty", "text", "broken", "one", "ok", "mixed", "plugins"):
        (tmp_path / name).mkdir()
    (tmp_path / "text" / "notes.txt").write_text("no image here\n")
    (tmp_path / "broken" / "cut.png").write_bytes(b"\x89PNG not really")
    write_images(tmp_path / "one", [np.full((8, 8, 3), (10, 20, 30), np.uint8)], "a.png")
    write_images(tmp_path / "ok", [np.full((8, 8, 3), (40 * i, 0, 0), np.uint8) for i in range(3)], "{i}.png")
    mixed = [np.full((8 + 4 * (i % 2), 8, 3), (0, 40 * i, 0), np.uint8) for i in range(3)]  # 8x8 and 8x12 px
    write_images(tmp_path / "mixed", mixed, "{i}.png")
    (tmp_path / "plugins" / "typo.py").write_text("def register_strategies(register:\n")
    return tmp_path


def expand(args: list[str], folder: Path) -> list[str]:
    return [a.format(tmp=folder) for a in args]


# ---------------------------------------------------------------------------------------------- run matrix


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(["--finetune-steps", "-1"], ["finetune_steps must be at least 1 (got -1)"], id="finetune-negative"),
        pytest.param(["--finetune-steps", "0"], ["finetune_steps must be at least 1 (got 0)"], id="finetune-zero"),
        pytest.param(["--pretrain-steps", "-5"], ["pretrain_steps must be 0 or more (got -5)"], id="pretrain-negative"),
        pytest.param(["--batch-size", "0"], ["batch_size must be at least 1 (got 0)"], id="batch-size-zero"),
        pytest.param(["--resolution", "17"], ["'dcgan' supports resolutions 16, 32, 64, 128, not 17",
                                              "set --resolution to one of them"], id="resolution-unsupported"),
        pytest.param(["--channels", "2"], ["channels must be 1 or 3 (got 2)"], id="channels-2"),
        pytest.param(["--eval-every", "-1"], ["eval_every must be 0 or more (got -1)"], id="eval-every-negative"),
        pytest.param(["--eval-every", "often"], ["'often' is not a valid integer", "--help"], id="eval-every-text"),
        pytest.param(["--eval-samples", "1"], ["eval_samples must be at least 2"], id="eval-samples-1"),
        pytest.param(["--metrics", "fdi"], ["unknown metric 'fdi'", "did you mean 'fd'?"], id="metric-unknown"),
        pytest.param(["--augment", "diffagment"], ["unknown augmentation 'diffagment'", "did you mean 'diffaugment'?"],
                     id="augment-unknown"),
        pytest.param(["--seeds", "a,b"], ["seeds must be integers (e.g. 0,1,2), got 'a,b'"], id="seeds-letters"),
        pytest.param(["--seeds", ","], ["seeds must list at least one integer", "--seeds 0,1,2"], id="seeds-empty"),
        pytest.param(["--shots", "0"], ["shots must be positive integers", "--shots 10,100"], id="shots-zero"),
        pytest.param(["--strategy", ","], ["strategy is empty"], id="strategy-empty"),
        pytest.param(["--reference-samples", "0"], ["reference_samples must be at least 2 (got 0)",
                                                    "leave it out to compare with the whole target"],
                     id="reference-samples-zero"),
        pytest.param(["--reference", "test"], ["'test' is not one of 'all', 'heldout'", "--help"], id="reference-choice"),
        pytest.param(["--select-on", "val"], ["needs a validation split", "--val-samples 500"], id="val-without-split"),
        pytest.param(["--lr", "0"], ["lr must be a positive number", "--lr 0.0002", "(got 0.0)"], id="lr-zero"),
        pytest.param(["--lr", "nan"], ["lr must be a positive number", "(got nan)"], id="lr-nan"),
        pytest.param(["--name", "../elsewhere"], ["name '../elsewhere' must be a plain folder name", "--name my-grid"],
                     id="name-escapes-out"),
        pytest.param(["--out", "{tmp}/file.txt"], ["'--out'", "is a file", "--help"], id="out-is-a-file"),
        pytest.param(["--config", "{tmp}/empty"], ["'--config'", "is a directory", "--help"], id="config-is-a-folder"),
        pytest.param(["--data-root", "{tmp}/missing"], ["'--data-root'", "does not exist", "--help"],
                     id="data-root-missing"),
        pytest.param(["--stratgy", "finetune"], ["No such option '--stratgy'", "--help"], id="option-misspelt"),
        pytest.param(["--executor", "slurm"], ["'slurm' is not one of 'local', 'ray'", "--help"], id="executor-unknown"),
        pytest.param(["--ray-address", "auto", "--max-concurrent", "2"], ["--ray-address, --max-concurrent only apply "
                     "with --executor ray"], id="ray-option-without-ray"),
        pytest.param(["--executor", "ray", "--cpus-per-cell", "0"], ["--cpus-per-cell must be a whole number of at "
                     "least 1, not 0"], id="cpus-per-cell-zero"),
        pytest.param(["--executor", "ray", "--gpus-per-cell", "1.5"], ["--gpus-per-cell must be 0, a fraction",
                     "not 1.5"], id="gpus-per-cell-fraction-above-1"),
        pytest.param(["--executor", "ray", "--max-concurrent", "0"], ["--max-concurrent must be at least 1"],
                     id="max-concurrent-zero"),
        pytest.param(["--executor", "ray", "--device", "cpu", "--gpus-per-cell", "0.5"], ["--gpus-per-cell asks for "
                     "GPUs but --device is cpu"], id="gpus-on-cpu"),
        pytest.param(["--executor", "ray", "--device", "cuda", "--gpus-per-cell", "0"], ["--device cuda with "
                     "--executor ray needs --gpus-per-cell"], id="cuda-without-gpus"),
    ],
)  # fmt: skip
def test_run_matrix_refuses_bad_options(files, args, fragments, invoke, assert_one_line_error):
    before = snapshot(files)
    result = invoke("run", "matrix", "--dry-run", "--out", files / "runs", *expand(args, files))
    assert_one_line_error(result, *fragments)
    assert not (files / "runs").exists() and snapshot(files) == before


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        pytest.param("arch = 3", ["arch must be a list of NAME[:key=value,...] strings"], id="list-as-number"),
        pytest.param('arch = [{ name = "dcgan" }]', ["arch must be a list of NAME[:key=value,...] strings"],
                     id="list-of-tables"),
        pytest.param("batch_size = 2.5", ["batch_size must be an integer, got 2.5"], id="int-as-fraction"),
        pytest.param("finetune_steps = true", ["finetune_steps must be an integer, got True"], id="int-as-bool"),
        pytest.param('baseline = "yes"', ["baseline must be true or false"], id="bool-as-text"),
        pytest.param('lr = "fast"', ["lr must be float, got 'fast'"], id="float-as-text"),
        pytest.param("seeds = [1.5]", ["seeds must be integers", "got [1.5]"], id="seeds-fraction"),
        pytest.param("pairs = 5", ["pairs must be a list of [source, target]", 'e.g. [["mnist5k'], id="pairs-number"),
        pytest.param("grid = 3", ["grid must be a table of settings"], id="grid-not-a-table"),
        pytest.param("reference_samples = 1", ["reference_samples must be at least 2 (got 1)"], id="reference-of-1"),
    ],
)  # fmt: skip
def test_toml_settings_of_the_wrong_type_are_refused(tmp_path, config, fragments, invoke, assert_one_line_error):
    path = tmp_path / "grid.toml"
    path.write_text(config + "\n")
    result = invoke("run", "matrix", "--config", path, "--dry-run", "--out", tmp_path / "runs")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(["--target", "mnist5k:classes=42"], ["mnist5k:classes=42 selects no images",
                                                          "its classes are 0-9"], id="class-not-in-dataset"),
        pytest.param(["--target", "mnist5k", "--shots", "100000"], ["100000 shots requested", "has only 5000 images",
                                                                     "use --shots 5000 or fewer"], id="shots-too-many"),
        pytest.param(["--shots", "49"], ["49 shots requested", "use --shots 48 or fewer"], id="shots-one-too-many"),
        pytest.param(["--select-on", "val", "--val-samples", "39"], ["val_samples=39 leaves fewer than 2",
                                                                     "use a smaller validation split"],
                     id="validation-split-too-large"),
        pytest.param(["--reference", "heldout", "--shots", "47"], ["reference of tiny-digits would hold 1 image(s)",
                                                                   "use fewer shots"], id="heldout-reference-of-1"),
    ],
)  # fmt: skip
def test_data_errors_are_the_same_with_and_without_dry_run(
    tmp_path, tiny_options, args, fragments, invoke, assert_one_line_error
):
    """What only the data can tell (class sets, sizes) is checked before training: a real run refuses what a dry
    run refuses, with the same line, and writes no run folder."""
    out = tmp_path / "runs"
    assert "--target=tiny-digits" in tiny_options and "--shots=8" in tiny_options
    dry = invoke("run", "matrix", *tiny_options, *args, "--dry-run", "--out", out)
    real = invoke("run", "matrix", *tiny_options, *args, "--quiet", "--out", out)
    assert_one_line_error(dry, *fragments)
    assert_one_line_error(real, *fragments)
    assert dry.output == real.output
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- plugins, new


def test_a_plugin_file_with_a_syntax_error_warns_and_the_rest_is_listed(files, invoke):
    result = invoke("plugins", "--plugins-dir", files / "plugins")
    assert result.exit_code == 0, result.output
    assert "dcgan" in result.stdout and "freeze-d" in result.stdout and "Traceback" not in result.output
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("Warning: file ") and "typo.py failed to load: SyntaxError" in warnings[0]
    assert "fix it or move it out of the plugins folder" in warnings[0]
    assert "does not stop the listing" in invoke("plugins", "--help").output  # the documented behaviour


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(["plugins", "--plugins-dir", "{tmp}/file.txt"], ["'--plugins-dir'", "is a file"],
                     id="plugins-dir-is-a-file"),
        pytest.param(["plugins", "--plugins-dir", "{tmp}/missing"], ["plugins directory", "does not exist",
                                                                     "pass an existing folder"],
                     id="plugins-dir-missing"),
        pytest.param(["plugins", "--verbose"], ["No such option '--verbose'", "plugins --help'"],
                     id="plugins-unknown-option"),
        pytest.param(["new", "strategy", "My_Strategy", "--dir", "{tmp}/new"],
                     ["'My_Strategy' is not a valid plugin name", "e.g. 'my-strategy'"], id="new-invalid-name"),
        pytest.param(["new", "strategy", "finetune", "--dir", "{tmp}/new"],
                     ["a strategy named 'finetune' already exists", "choose another name"], id="new-builtin-name"),
        pytest.param(["new", "strategy", "mine", "--dir", "{tmp}/file.txt"], ["'--dir'", "is a file"],
                     id="new-dir-is-a-file"),
        pytest.param(["new", "strategy", "mine", "--dir", "{tmp}/file.txt/sub"],
                     ["cannot write into", "give --dir a folder you can write to"], id="new-dir-under-a-file"),
        pytest.param(["new", "strategy"], ["Missing argument 'NAME'", "--help"], id="new-without-name"),
        pytest.param(["nosuchcommand"], ["No such command 'nosuchcommand'", "--help'"], id="unknown-command"),
    ],
)  # fmt: skip
def test_plugins_and_new_refuse_bad_input(files, args, fragments, invoke, assert_one_line_error):
    before = snapshot(files)
    assert_one_line_error(invoke(*expand(args, files)), *fragments)
    assert snapshot(files) == before and not (files / "new").exists()


def test_new_strategy_never_overwrites_a_file(tmp_path, invoke, assert_one_line_error):
    mine = tmp_path / "my_strategy.py"
    mine.write_text("# my own work\n")
    result = invoke("new", "strategy", "my-strategy", "--dir", tmp_path)
    assert_one_line_error(result, "my_strategy.py already exists", "remove it or choose another name or --dir")
    assert mine.read_text() == "# my own work\n" and not (tmp_path / "test_my_strategy.py").exists()


# ---------------------------------------------------------------------------------------------- datasets


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(["prepare", "nosuch"], ["unknown dataset 'nosuch'", "Available: "], id="unknown-dataset"),
        pytest.param(["prepare", "digits:size=3"], ["dataset 'digits' has no option 'size'", "its options: classes"],
                     id="unknown-option"),
        pytest.param(["prepare", "digits:classes=a"], ["bad value 'a' for option 'classes'",
                                                       "expected integers like 0-4"], id="bad-option-value"),
        pytest.param(["prepare", "digits:classes=42"], ["digits:classes=42 selects no images", "its classes are 0-9"],
                     id="class-not-in-dataset"),
        pytest.param(["prepare", "digits", "--resolution", "0"], ["0 is not in the range x>=1", "--help"],
                     id="resolution-zero"),
        pytest.param(["prepare", "digits", "--resolution", "100000"],
                     ["no architecture supports resolution 100000", "16, 32, 64, 128",
                      "prepare at the --resolution the run will use"], id="resolution-unsupported"),
        pytest.param(["prepare", "digits", "--channels", "2"], ["channels must be 1 (grey) or 3 (RGB), got 2",
                                                                "use --channels 1 or 3"], id="channels-2"),
        pytest.param(["prepare"], ["Missing argument", "--help"], id="prepare-nothing"),
        pytest.param(["--data-root", "{tmp}/missing"], ["'--data-root'", "does not exist"], id="data-root-missing"),
    ],
)  # fmt: skip
def test_datasets_refuse_bad_input(files, args, fragments, invoke, assert_one_line_error):
    assert_one_line_error(invoke("datasets", *expand(args, files)), *fragments)


# ---------------------------------------------------------------------------------------------- fid, score


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(["fid", "{tmp}/empty", "{tmp}/ok"], ["no images (.bmp", "found under", "empty"], id="fid-empty"),
        pytest.param(["fid", "{tmp}/ok", "{tmp}/text"], ["no images (.bmp", "found under", "text"],
                     id="fid-no-image-files"),
        pytest.param(["fid", "{tmp}/broken", "{tmp}/ok"], ["cannot read image", "cut.png"], id="fid-unreadable-image"),
        pytest.param(["fid", "{tmp}/one", "{tmp}/ok"], ["one holds 1 image", "need at least 2 per folder",
                                                        "add images"], id="fid-one-image"),
        pytest.param(["fid", "{tmp}/missing", "{tmp}/ok"], ["'PATH_A'", "does not exist"], id="fid-missing-folder"),
        pytest.param(["fid", "{tmp}/ok", "{tmp}/ok", "--batch-size", "0"], ["0 is not in the range x>=1"],
                     id="fid-batch-size-zero"),
        pytest.param(["score", "{tmp}/empty", "{tmp}/ok"], ["no images (.bmp", "empty"], id="score-empty"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/mixed"], ["have 2 sizes (8x8, 12x8", "needs one size per folder",
                                                            "`ganbench fid` takes mixed sizes"], id="score-mixed-sizes"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/ok", "--metrics", "fdi"], ["unknown metric 'fdi'",
                                                                             "did you mean 'fd'?"],
                     id="score-unknown-metric"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/ok", "--metrics", "prdc:k=many"], ["bad value 'many'",
                                                                                     "expected an integer"],
                     id="score-bad-metric-option"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/ok", "--metrics", ","], ["no metric named", "--metrics fid,kid"],
                     id="score-metrics-empty"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/ok", "--shots", "{tmp}/empty"], ["no images (.bmp", "empty"],
                     id="score-shots-empty"),
        pytest.param(["score", "{tmp}/ok", "{tmp}/ok", "--metrics", "memorization"],
                     ["no 'shots' images", "--shots DIR"], id="score-memorization-without-shots"),
    ],
)  # fmt: skip
def test_fid_and_score_refuse_bad_folders(files, args, fragments, invoke, assert_one_line_error):
    before = snapshot(files)
    assert_one_line_error(invoke(*expand(args, files)), *fragments)
    assert snapshot(files) == before


# ---------------------------------------------------------------------------------------------- leaderboard

STRATEGIES = {"scratch": [300.0, 310.0, 320.0], "finetune": [200.0, 210.0, 220.0]}


def cell(strategy: str, seed: int, fid: float) -> dict:
    """A record of the current schema with every field the leaderboard reads, in the tiny grid's settings."""
    return make_record(
        strategy, seed, fid, fid + 40, source="digits", target="tiny-digits", shots=8, kid_subset_size=8,
        curve=[{"step": 2, "fid": fid + 40, "kid": 0.5}, {"step": 4, "fid": fid}], finetune_s=1.0, eval_s=0.5,
        step_ms=10.0, images_per_s=400.0, peak_mem_mb=900.0, pretrain_s=None if strategy == "scratch" else 3.0,
        trainable_fraction=1.0, device="cpu (test)", eval_samples=8, n_gen=8, n_ref=48, pretrain_steps=10,
        finetune_steps=4, batch_size=4, eval_every=2,
    )  # fmt: skip


def write_run(folder: Path) -> Path:
    """A run folder as the runner leaves it: records, sample grids, manifest, results table."""
    write_run_folder(folder, [cell(strategy, seed, fid) for strategy, fids in STRATEGIES.items()
                              for seed, fid in enumerate(fids)])  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps({"run_id": folder.name}))
    (folder / "results.csv").write_text("cell_id\n")
    return folder


def damaged_file(run: Path) -> Path:
    """The record of (finetune, seed 0), the one the damage cases edit."""
    return run / "cells" / f"{cell('finetune', 0, 0.0)['cell_id']}.json"


def edit(change):
    """A damage: ``change(record)`` applied to (finetune, seed 0)'s record as JSON."""

    def apply(run: Path) -> None:
        path = damaged_file(run)
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))

    return apply


def write_text(text: str | bytes):
    def apply(run: Path) -> None:
        path = damaged_file(run)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    return apply


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "runs" / "tiny-0001")


def rows_n(csv_text: str) -> dict[str, int]:
    import io

    import pandas as pd

    frame = pd.read_csv(io.StringIO(csv_text))
    return dict(zip(frame["strategy"], frame["n"]))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(write_text('{"schema_version": 2, "cell_id": "ab'), "not valid JSON (Unterminated string",
                     id="truncated-json"),
        pytest.param(write_text(""), "empty file", id="empty-file"),
        pytest.param(write_text(b"\xff\xfe\x00\x01"), "not UTF-8 text", id="binary-file"),
        pytest.param(write_text("[1, 2, 3]"), "a JSON list, not an object", id="json-not-an-object"),
        pytest.param(edit(lambda r: r.pop("cell_id")), "no cell_id", id="missing-cell-id"),
        pytest.param(edit(lambda r: r.pop("status")), "no status", id="missing-status"),
        pytest.param(edit(lambda r: r.update(status="great")), "status 'great' is not one of ok, diverged, failed",
                     id="unknown-status"),
        pytest.param(edit(lambda r: r.update(fid="12.5")), "fid is '12.5', not a number", id="metric-as-string"),
        pytest.param(edit(lambda r: r.update(finetune_s="slow")), "finetune_s is 'slow', not a number",
                     id="cost-as-string"),
        pytest.param(edit(lambda r: r.update(seed=[0])), "seed is [0], not an integer", id="seed-as-list"),
        pytest.param(edit(lambda r: r.update(schema_version="two")), "schema_version is 'two', not an integer",
                     id="schema-version-as-string"),
        pytest.param(edit(lambda r: r.update(metric_columns="fid")), "metric_columns is 'fid', not a list",
                     id="metric-columns-not-a-list"),
        pytest.param(edit(lambda r: r.update(curve=[{"fid": 1.0}])), 'curve point {"fid": 1.0} has no numeric step',
                     id="curve-point-without-step"),
        pytest.param(edit(lambda r: r.update(strategy=None)), "no strategy", id="strategy-null"),
    ],
)  # fmt: skip
def test_a_damaged_record_is_skipped_with_one_warning(run, damage, reason, invoke):
    damage(run)
    before = snapshot(run)
    result = invoke("leaderboard", run)
    assert result.exit_code == 0, result.output
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "Traceback" not in result.output, result.stderr
    assert warning[0].startswith("warning: skipped 1 damaged cell record(s) under ")
    assert "(kept the other 5)" in warning[0]
    assert f"tiny-0001/cells/{damaged_file(run).name} ({reason}" in warning[0]
    assert "restore them, or delete them and rerun their run's command" in warning[0]
    assert rows_n(result.stdout) == {"finetune": 2, "scratch": 3}  # the damaged seed is left out, nothing else
    assert snapshot(run) == before


def test_the_leaderboard_help_says_damaged_records_are_skipped(invoke):
    text = " ".join(invoke("leaderboard", "--help").output.split())
    assert "is skipped with one warning line on stderr naming it, and the others are tabulated" in text


def test_a_manifest_that_is_not_json_changes_nothing(tmp_path, invoke):
    """The records are the source of truth; the leaderboard never reads the manifest."""
    intact, broken = write_run(tmp_path / "a" / "tiny-0001"), write_run(tmp_path / "b" / "tiny-0001")
    (broken / "manifest.json").write_text("{not json")
    before = snapshot(broken)
    expected, result = invoke("leaderboard", intact), invoke("leaderboard", broken)
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == expected.stdout
    assert rows_n(result.stdout) == {"finetune": 3, "scratch": 3} and snapshot(broken) == before


def all_truncated(run: Path) -> None:
    for path in (run / "cells").glob("*.json"):
        path.write_text("{")


def newer_schema(run: Path) -> None:
    edit(lambda r: r.update(schema_version=99))(run)


def empty_cells(run: Path) -> None:
    for path in (run / "cells").glob("*.json"):
        path.unlink()


@pytest.mark.parametrize(
    ("damage", "args", "fragments"),
    [
        pytest.param(all_truncated, ["{run}"], ["no readable cell record under", "6 damaged", "not valid JSON",
                                                "restore them, or delete them and rerun"], id="every-record-damaged"),
        pytest.param(newer_schema, ["{run}"], ["has schema_version 99, newer than the 2 this ganbench reads",
                                               "upgrade ganbench"], id="schema-from-the-future"),
        pytest.param(empty_cells, ["{run}"], ["no cell records under", "(expected ", "cells/*.json)"],
                     id="empty-run-folder"),
        pytest.param(None, ["{run}/samples"], ["no cell records under", "cells/*.json"], id="not-a-run-folder"),
        pytest.param(None, ["{run}/../missing-0002"], ["does not exist", "expected a run directory"],
                     id="missing-run-folder"),
        pytest.param(None, ["{run}", "--rank-by", "fdi"], ["cannot rank by fdi: no column 'fdi'",
                                                           "the records' scores are fid, kid"], id="rank-by-unknown"),
        pytest.param(None, ["{run}", "--rank-by", "kid_subset_size"], ["'kid_subset_size' is not a score"],
                     id="rank-by-a-detail"),
        pytest.param(None, ["{run}", "-o", "{run}/.."], ["is a folder; give a file name"], id="output-is-a-folder"),
        pytest.param(None, ["{run}", "--format", "html"], ["--format html writes a folder: give it with -o DIR"],
                     id="html-without-output"),
        pytest.param(None, ["{run}", "--format", "xls"], ["'xls' is not one of 'csv', 'md', 'html'", "--help"],
                     id="format-unknown"),
        pytest.param(None, ["{run}", "-o", "{run}/cells/board.csv"], ["points into run tiny-0001's cells",
                                                                       "write it outside the run directories"],
                     id="output-into-cells"),
        pytest.param(None, ["{run}", "-o", "{run}/results.csv"], ["points into run tiny-0001's results.csv"],
                     id="output-over-results-csv"),
        pytest.param(None, ["{run}", "--format", "html", "-o", "{run}"], ["points into the run directory tiny-0001"],
                     id="html-into-the-run"),
        pytest.param(None, [], ["Missing argument 'RUN_DIR...'", "--help"], id="no-run-folder"),
    ],
)  # fmt: skip
def test_leaderboard_refusals_touch_nothing(run, damage, args, fragments, invoke, assert_one_line_error):
    if damage is not None:
        damage(run)
    runs = run.parent
    before = snapshot(runs)
    result = invoke("leaderboard", *[a.format(run=run) for a in args])
    assert_one_line_error(result, *fragments)
    assert snapshot(runs) == before and sorted(p.name for p in runs.iterdir()) == ["tiny-0001"]


# ---------------------------------------------------------------------------------------------- internal errors


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_unexpected_exception_is_one_internal_error_line_and_exit_1(run, monkeypatch, debug, invoke):
    import ganbench.report.leaderboard as leaderboard

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom\nsecond line")

    monkeypatch.setattr(leaderboard, "leaderboard_frame", broken)
    result = invoke(*(["--debug"] if debug else []), "leaderboard", run)
    assert result.exit_code == 1, result.output
    line = "Error: internal error: ZeroDivisionError: boom second line (rerun with --debug for the traceback, and please report it)"  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == line
    if debug:
        assert "Traceback" in result.stderr and "raise ZeroDivisionError" in result.stderr
    else:
        assert result.output.strip() == line


def test_help_and_version_still_exit_0(invoke):
    """click's own exits (--help, --version) pass through the error handling untouched."""
    for args in (["leaderboard", "--help"], ["run", "matrix", "--help"], ["--version"]):
        result = invoke(*args)
        assert result.exit_code == 0 and "Error" not in result.output, (args, result.output)
