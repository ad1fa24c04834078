"""One guard for writes: no command writes into a run folder or the cache it did not create; every failing write
names its path and cause in one line and leaves what was written as it was; silent repairs say one line each.

Faults are simulated by monkeypatching the OS calls (tests run as root in CI, and root ignores chmod)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
from tiny_settings import FIXTURE_PLUGINS, TINY_OPTIONS

from ganbench.context import CheckpointPolicy
from ganbench.execute.checkpoint import Checkpoints
from ganbench.files import UserFileError
from ganbench.store.cache import atomic_write_bytes
from ganbench.store.runs import load_records, set_aside_damaged

# one cheap cell: no source model, no Inception (the fixture plugins' brightness metric)
CELL = [*TINY_OPTIONS, "--strategy", "scratch", "--metrics", "brightness-match", "--plugins-dir", FIXTURE_PLUGINS,
        "--quiet"]  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def fail_os(monkeypatch, name: str, code: int, when) -> None:
    """``os.<name>`` raises ``OSError(code)`` for the calls whose first argument satisfies ``when``."""
    original = getattr(os, name)

    def failing(*args, **kwargs):
        if when(args[0]):
            raise OSError(code, os.strerror(code))
        return original(*args, **kwargs)

    monkeypatch.setattr(os, name, failing)


@pytest.fixture
def run(tmp_path, write_run, record) -> Path:
    return write_run(tmp_path / "runs" / "tiny-0001", [record("scratch", 0, 200.0, 250.0, losses={
        "step": [1, 2], "d_total": [1.0, 0.8], "g_total": [2.0, 1.5]})])  # fmt: skip


# ----------------------------------------------------------------------------------------------- the guard


def test_show_never_writes_its_png_over_the_record(run, invoke, assert_one_line_error):
    (cell,) = (p.stem for p in (run / "cells").glob("*.json"))
    before = snapshot(run)
    result = invoke("show", run, cell, "--json", "-o", run / "cells" / f"{cell}.json")
    assert_one_line_error(result, f"-o {run}/cells/{cell}.json points into run tiny-0001's cells",
                          "write it outside the run directories and the cache")  # fmt: skip
    assert snapshot(run) == before and load_records(run)[0]["cell_id"] == cell


def test_show_writes_only_into_its_own_plots_folder(run, tmp_path, invoke, assert_one_line_error):
    (cell,) = (p.stem for p in (run / "cells").glob("*.json"))
    assert invoke("show", run, cell).exit_code == 0  # the default, RUN/plots/CELL.png, is show's own
    assert invoke("show", run, cell, "-o", run / "plots" / "mine.png").exit_code == 0
    assert sorted(p.name for p in (run / "plots").iterdir()) == [f"{cell}.png", "mine.png"]
    other = tmp_path / "other-run"  # a run just started: a manifest, no record yet; found from a deep path
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"run_id": "other-run", "cell_ids": []}))
    result = invoke("show", run, cell, "-o", other / "a" / "b" / "x.png")
    assert_one_line_error(result, "points into run other-run's a")
    assert not (other / "a").exists()
    for name in ("samples", "results.csv"):
        assert_one_line_error(invoke("show", run, cell, "-o", run / name / "x.png"), f"run tiny-0001's {name}")


def test_nothing_is_written_into_the_cache(run, session_cache, invoke, assert_one_line_error):
    (cell,) = (p.stem for p in (run / "cells").glob("*.json"))
    for args in (["show", run, cell, "-o", session_cache / "x.png"],
                 ["leaderboard", run, "-o", session_cache / "sub" / "board.csv"],
                 ["new", "strategy", "mine", "--dir", session_cache / "plugins"],
                 ["run", "matrix", *CELL, "--out", session_cache / "runs"],
                 ["run", "matrix", *CELL, "--out", session_cache / "runs", "--dry-run"]):  # fmt: skip
        result = invoke(*args)
        assert_one_line_error(result, f"points into the cache {session_cache.resolve()}", "write it outside")
    assert not any((session_cache / name).exists() for name in ("x.png", "sub", "plugins", "runs"))


def test_other_run_folders_are_refused_and_other_manifests_are_not(run, tmp_path, invoke, assert_one_line_error):
    before = snapshot(run)
    result = invoke("leaderboard", tmp_path / "runs", "-o", run / "board.md")  # a run it was not given by name
    assert_one_line_error(result, "-o ", "points into run tiny-0001's board.md")
    assert_one_line_error(invoke("new", "strategy", "mine", "--dir", run / "plugins"), "--dir ", "run tiny-0001's")
    assert_one_line_error(invoke("run", "matrix", *CELL, "--out", run), "--out ", "the run directory tiny-0001")
    assert snapshot(run) == before
    project = tmp_path / "webapp"  # a manifest.json of another tool is not a run's
    project.mkdir()
    (project / "manifest.json").write_text('{"name": "webapp", "version": "1.0"}')
    assert invoke("leaderboard", run, "-o", project / "board.csv").exit_code == 0
    assert (project / "board.csv").read_text().startswith("schema_version,arch,")


# ------------------------------------------------------------------------------------------- failing writes


def test_a_full_disk_names_the_file_keeps_the_old_one_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    atomic_write_bytes(path, b"old")
    fail_os(monkeypatch, "fsync", errno.ENOSPC, lambda fd: True)
    with pytest.raises(UserFileError) as caught:
        atomic_write_bytes(path, b"new", "checkpoint")
    assert (
        str(caught.value)
        == f"cannot write checkpoint {path}: the disk is full; free some space or choose another folder"
    )
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["state.pt"]


def test_a_file_too_large_for_its_file_system_fails_the_checkpoint_in_words(tmp_path, monkeypatch):
    checkpoints = Checkpoints(tmp_path / "c.pt", CheckpointPolicy(every_steps=1), {"cell": "a"}, progress=False)
    checkpoints.save({"step": 1})
    original = os.fdopen

    class TooLarge:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: TooLarge(original(fd, mode, *a, **k)))
    with pytest.raises(UserFileError, match=r"cannot write checkpoint .*c\.pt: the file is too large for its file "
                                            "system; choose a folder on another file system"):  # fmt: skip
        checkpoints.save({"step": 2})
    monkeypatch.undo()
    assert Checkpoints(tmp_path / "c.pt", CheckpointPolicy(), {"cell": "a"}, progress=False).load()["step"] == 1
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


def test_a_read_only_run_folder_is_one_line_saying_what_to_do(tmp_path, tiny_grid, write_run, record, monkeypatch,
                                                              invoke, assert_one_line_error):  # fmt: skip
    from ganbench.execute.plan import plan_matrix

    run_dir = plan_matrix(tiny_grid(strategy="scratch", metrics="brightness-match"), tmp_path,
                          plugins_dirs=[FIXTURE_PLUGINS]).run_dir  # fmt: skip
    write_run(run_dir, [record("scratch", 0, 200.0)])  # a finished run, published read-only
    before = snapshot(run_dir)
    fail_os(monkeypatch, "open", errno.EROFS, lambda path: str(path) == str(run_dir / ".lock"))
    result = invoke("run", "matrix", *CELL, "--out", tmp_path)
    assert_one_line_error(result, f"cannot write lock file {run_dir}/.lock: the file system is read-only",
                          f"make the run folder writable to resume it, or read its results with `ganbench leaderboard "
                          f"{run_dir}`")  # fmt: skip
    assert snapshot(run_dir) == before
    monkeypatch.undo()
    fail_os(monkeypatch, "mkdir", errno.EACCES, lambda path: Path(path).parent == tmp_path / "ro")
    (tmp_path / "ro").mkdir()
    result = invoke("run", "matrix", *CELL, "--out", tmp_path / "ro")  # a read-only --out
    assert_one_line_error(result, "cannot write run folder ", "permission denied; make it writable or choose another "
                          "folder, then rerun the same command")  # fmt: skip


def test_a_full_disk_in_a_cell_fails_that_cell_in_one_line(tmp_path, monkeypatch, invoke):
    fail_os(monkeypatch, "replace", errno.ENOSPC, lambda src: "/checkpoints/" in str(src))
    result = invoke("run", "matrix", *CELL, "--checkpoint-every", "1", "--out", tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    (run_dir,) = tmp_path.iterdir()
    (record,) = load_records(run_dir)
    checkpoint = run_dir / "checkpoints" / f"{record['cell_id']}.pt"
    assert record["status"] == "failed"
    assert record["error"] == f"cannot write checkpoint {checkpoint}: the disk is full; free some space or choose " \
                              "another folder"  # fmt: skip
    assert record["error"] in result.output
    assert not list((run_dir / "checkpoints").iterdir())  # no temp file left behind


def test_an_unwritable_run_folder_stops_the_run_resumably_and_damaged_records_are_kept_aside(
    tmp_path, monkeypatch, invoke, assert_one_line_error
):
    in_run = ("/checkpoints/", "/cells/")
    fail_os(monkeypatch, "replace", errno.EROFS, lambda src: any(part in str(src) for part in in_run))
    stopped = invoke("run", "matrix", *CELL, "--checkpoint-every", "1", "--out", tmp_path)
    (run_dir,) = tmp_path.iterdir()
    assert_one_line_error(stopped, f"cannot write cell record {run_dir}/cells/", "the file system is read-only",
                          "then rerun the same command to continue (the records already written are kept)")  # fmt: skip
    assert not (run_dir / ".lock").exists() and not list(run_dir.rglob(".*.tmp"))
    monkeypatch.undo()
    assert invoke("run", "matrix", *CELL, "--out", tmp_path).exit_code == 0  # resumed: the cell runs now
    (record,) = load_records(run_dir)
    path = run_dir / "cells" / f"{record['cell_id']}.json"
    path.write_text(json.dumps({**record, "seed": "zero"}))  # hand-edited: a field of the wrong type
    damaged = path.read_bytes()
    again = invoke("run", "matrix", *CELL, "--out", tmp_path)
    assert again.exit_code == 0, again.output
    assert (f"warning: the cell record {path} is damaged (seed is 'zero', not an integer): kept it as "
            f"{path.name}.damaged and running that cell again") in again.output.splitlines()  # fmt: skip
    assert (run_dir / "cells" / f"{path.name}.damaged").read_bytes() == damaged
    assert load_records(run_dir)[0]["seed"] == 0


def test_damaged_records_and_manifests_are_set_aside_never_overwritten(run):
    (path,) = (run / "cells").glob("*.json")
    record = json.loads(path.read_text())
    newer = run / "cells" / "newer.json"
    newer.write_text(json.dumps({**record, "cell_id": "newer", "schema_version": 99}))
    (run / "manifest.json").write_text("[1]")
    (run / "cells" / f"{path.name}.damaged").write_text("an earlier one")
    path.write_text("{")
    lines = set_aside_damaged(run)
    assert lines == [
        f"warning: the manifest {run}/manifest.json is damaged (a JSON list, not an object): kept it as "
        "manifest.json.damaged and writing a new one",
        f"warning: the cell record {path} is damaged (not valid JSON (Expecting property name enclosed in double "
        f"quotes at line 1 column 2)): kept it as {path.name}.damaged-2 and running that cell again",
    ]
    assert (run / "cells" / f"{path.name}.damaged").read_text() == "an earlier one"
    assert (run / "cells" / f"{path.name}.damaged-2").read_text() == "{"
    assert newer.is_file() and (run / "manifest.json.damaged").read_text() == "[1]"


def test_a_checkpoint_set_aside_says_so_and_keeps_the_earlier_one(tmp_path, capsys):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "c.pt.discarded").write_bytes(b"earlier")
    assert Checkpoints(tmp_path / "c.pt", CheckpointPolicy(), {"cell": "a"}, progress=False).load() is None
    (line,) = capsys.readouterr().out.splitlines()  # said even without progress bars: a file was moved
    assert line.startswith("warning: checkpoint c.pt is damaged (")
    assert line.endswith("): kept it as c.pt.discarded-2 and starting this job from the beginning")
    assert (tmp_path / "c.pt.discarded").read_bytes() == b"earlier"
