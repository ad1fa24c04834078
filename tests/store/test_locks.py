"""Lock files between real processes: one holder at a time, locks of killed processes taken over (by one
taker), live and other hosts' locks refused in one line, unwritten lock files given a grace period, waiting
with a time limit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import ganbench
from ganbench.errors import GanbenchError
from ganbench.store import locks
from ganbench.store.locks import GRACE_S, LEASE_S, FileLock, Locked, entry_lock, renew_held

PACKAGE = Path(ganbench.__file__).parent
# ganbench/__init__.py imports torch (seconds); the lock module needs none of it, so the helper processes
# import ganbench.store.locks under an empty ganbench package
PRELUDE = """
import json, os, sys, time, types
from pathlib import Path
package = types.ModuleType("ganbench")
package.__path__ = [sys.argv[1]]
sys.modules["ganbench"] = package
from ganbench.store.locks import FileLock, Locked
"""
# holds the lock at argv[2] until a line arrives on stdin, then releases it argv[3] seconds later
HOLD = """
lock = FileLock(sys.argv[2], "run folder x")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[3]))
lock.release()
"""
# once argv[3] exists: six times, append start/end lines to argv[4] while holding the lock at argv[2]
TAKE_TURNS = """
print("ready", flush=True)
while not Path(sys.argv[3]).exists():
    time.sleep(0.002)
for _ in range(6):
    lock = FileLock(sys.argv[2], "shared entry")
    lock.acquire(wait=True)
    try:
        for mark in ("start", "end"):
            with open(sys.argv[4], "a") as f:
                f.write(f"{mark} {os.getpid()}\\n")
            time.sleep(0.02)
    finally:
        lock.release()
    time.sleep(0.01)
"""
# once argv[3] exists: try the lock at argv[2] once; say whether it was won, hold a winner's for a second
TRY_ONCE = """
print("ready", flush=True)
while not Path(sys.argv[3]).exists():
    time.sleep(0.001)
try:
    lock = FileLock(sys.argv[2], "stale entry").acquire()
except Locked:
    print("lost", flush=True)
else:
    print("won", flush=True)
    time.sleep(1.0)
    lock.release()
"""


def python(code: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(PACKAGE), *map(str, args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


@contextmanager
def holder(path: Path, release_after: float = 0.0) -> Iterator[subprocess.Popen]:
    """Another process holding the lock at ``path``; writing a line to its stdin makes it release the lock
    ``release_after`` seconds later."""
    proc = python(HOLD, path, release_after)
    try:
        assert proc.stdout.readline() == "held\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def started_together(procs: list[subprocess.Popen], go: Path) -> None:
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    go.touch()


def test_one_process_holds_the_lock_at_a_time(tmp_path):
    log = tmp_path / "log.txt"
    procs = [python(TAKE_TURNS, tmp_path / "entry.lock", tmp_path / "go", log) for _ in range(2)]
    started_together(procs, tmp_path / "go")
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 24 and {line.split()[1] for line in lines} == {str(p.pid) for p in procs}
    for start, end in zip(lines[::2], lines[1::2]):  # no process starts while the other is inside
        assert start.split() == ["start", end.split()[1]] and end.startswith("end"), lines
    assert not (tmp_path / "entry.lock").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    path = tmp_path / "run.lock"
    with holder(path) as proc:
        assert json.loads(path.read_text())["pid"] == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert path.exists()  # SIGKILL runs no clean-up
    lock = FileLock(path, "run folder x").acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_a_live_holder_is_refused_in_one_line_naming_it(tmp_path):
    path = tmp_path / "run.lock"
    with holder(path) as proc:
        lock = FileLock(path, "run folder results/runs/x")
        for attempt in (lock.acquire, lock.__enter__):  # `with FileLock(...)` does not wait either
            with pytest.raises(Locked) as refused:
                attempt()
            message = str(refused.value)
            assert isinstance(refused.value, GanbenchError) and "\n" not in message
            assert message.startswith(
                f"run folder results/runs/x is locked by process {proc.pid} on {socket.gethostname()} since "
            )
            assert message.endswith("; wait for it, or rerun with --wait")
        assert json.loads(path.read_text())["pid"] == proc.pid


def test_waiting_gives_up_after_its_time_and_otherwise_gets_the_lock_once_released(tmp_path):
    path = tmp_path / "run.lock"
    with holder(path, release_after=0.5) as proc:
        start = time.monotonic()
        with pytest.raises(Locked, match=r"still after waiting 0\.5 s; wait for it"):
            FileLock(path, "run folder x").acquire(wait=0.5)
        assert 0.5 <= time.monotonic() - start < 2.0
        proc.stdin.write("release\n")
        proc.stdin.flush()
        waits: list[dict] = []
        lock = FileLock(path, "run folder x").acquire(wait=True, on_wait=waits.append)
        assert proc.wait(timeout=10) == 0
    assert [(w["pid"], w["host"], w["path"]) for w in waits] == [(proc.pid, socket.gethostname(), str(path))]
    assert "token" not in waits[0]
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_a_lock_naming_a_reused_pid_is_stale(tmp_path):
    path = tmp_path / "run.lock"
    with holder(path) as proc:
        info = json.loads(path.read_text())
        if info["started"] is None:
            pytest.skip("no /proc: process start times are unknown here")
        path.write_text(json.dumps({**info, "started": info["started"] - 1}))  # an earlier process of that pid
        lock = FileLock(path, "run folder x").acquire()
        assert json.loads(path.read_text())["pid"] == os.getpid() and proc.poll() is None
        lock.release()


def test_a_renewed_lock_of_another_host_is_refused_and_an_unrenewed_one_taken_over(tmp_path):
    path = tmp_path / "run.lock"
    text = json.dumps({"pid": os.getpid(), "host": "node-7.example.org", "started": 0,
                       "created_at": "2024-05-01T09:30:00+00:00", "what": "run folder x", "token": "feed"})  # fmt: skip
    path.write_text(text)
    renewed = time.time() - LEASE_S / 2  # its holder renewed it within the lease: it may be alive
    os.utime(path, (renewed, renewed))
    for wait in (False, 0.3):
        with pytest.raises(Locked) as refused:
            FileLock(path, "run folder x").acquire(wait=wait)
        message = str(refused.value)
        assert "\n" not in message
        assert f"locked by process {os.getpid()} on node-7.example.org since 2024-05-01T09:30:00+00:00" in message
        assert f"taken over once it goes {LEASE_S:.0f} s unrenewed" in message
        assert message.endswith(f"or delete the lock file {path} if that process is gone")
    assert path.read_text() == text
    lapsed = time.time() - LEASE_S - 5  # its holder stopped renewing it (killed, or its node lost)
    os.utime(path, (lapsed, lapsed))
    lock = FileLock(path, "run folder x").acquire(wait=False)
    assert json.loads(path.read_text())["host"] == socket.gethostname()
    lock.release()


def test_a_held_lock_is_renewed(tmp_path):
    path = tmp_path / "entry.lock"
    with FileLock(path, "source model abc"):
        old = time.time() - 1000
        os.utime(path, (old, old))
        renew_held()  # what the renewing thread does every RENEW_S seconds
        assert time.time() - path.stat().st_mtime < 60
    assert not path.exists()
    assert any(t.name == "ganbench-lock-renewal" and t.daemon for t in threading.enumerate())


@pytest.mark.parametrize("content", [b"", b'{"pid": 12'], ids=["empty", "cut-short"])
def test_an_unwritten_lock_file_is_respected_for_the_grace_period_then_taken_over(tmp_path, content):
    path = tmp_path / "entry.lock"
    path.write_bytes(content)
    waits: list[dict] = []
    for wait in (False, 0.3):
        with pytest.raises(Locked, match="is being locked by another process.*not written yet"):
            FileLock(path, "source model abc").acquire(wait=wait, on_wait=waits.append)
    assert path.read_bytes() == content
    assert waits == []  # announced only once the file names its holder, or after a second
    os.utime(path, (time.time() - GRACE_S - 1, time.time() - GRACE_S - 1))
    lock = FileLock(path, "source model abc").acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_only_one_of_several_processes_takes_over_a_stale_lock(tmp_path):
    path = tmp_path / "entry.lock"
    path.write_bytes(b"")
    os.utime(path, (time.time() - GRACE_S - 1, time.time() - GRACE_S - 1))
    procs = [python(TRY_ONCE, path, tmp_path / "go") for _ in range(4)]
    started_together(procs, tmp_path / "go")
    said = sorted(p.stdout.readline().strip() for p in procs)
    assert [p.wait(timeout=30) for p in procs] == [0] * 4
    assert said == ["lost", "lost", "lost", "won"]


def test_a_taker_that_judged_a_lock_stale_too_late_leaves_the_new_holder_alone(tmp_path):
    # the step between "this lock is stale" and removing it: meanwhile another taker may have removed it and a
    # live process locked anew; the removal judges again, under the takers' side lock
    path = tmp_path / "entry.lock"
    with holder(path) as proc:
        assert not locks._take_over(path, str(path.resolve()))
        assert json.loads(path.read_text())["pid"] == proc.pid


def test_the_lock_this_thread_holds_raises_instead_of_waiting_and_other_threads_wait(tmp_path):
    path = tmp_path / "run.lock"
    with FileLock(path, "run folder x"):
        with pytest.raises(RuntimeError, match="run folder x is already locked by this thread.*not re-entrant"):
            FileLock(tmp_path / "." / "run.lock", "run folder x").acquire(wait=True)
        refused: list[BaseException] = []

        def other_thread() -> None:
            try:
                FileLock(path, "run folder x").acquire(wait=0.3)
            except Locked as e:
                refused.append(e)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert len(refused) == 1 and f"process {os.getpid()}" in str(refused[0])
    assert not path.exists()


def test_the_lock_is_released_on_interrupts_and_only_while_it_is_ours(tmp_path):
    path = tmp_path / "run.lock"
    with pytest.raises(KeyboardInterrupt), FileLock(path, "run folder x"):
        assert path.exists()
        raise KeyboardInterrupt
    assert not path.exists()
    lock = FileLock(path, "run folder x").acquire()
    path.write_text(json.dumps({**json.loads(path.read_text()), "token": "someone else's"}))
    lock.release()
    assert path.exists()  # not ours any more: left alone


def test_a_process_exiting_without_releasing_removes_its_lock(tmp_path):
    path = tmp_path / "run.lock"
    proc = python("FileLock(sys.argv[2], 'x').acquire()\nprint('held', flush=True)", path)
    assert proc.stdout.readline() == "held\n" and proc.wait(timeout=10) == 0
    assert not path.exists()


def test_cache_entries_are_waited_for_and_the_wait_is_announced(tmp_path, capsys):
    path = tmp_path / "entry.lock"
    with holder(path, release_after=0.3) as proc:
        proc.stdin.write("release\n")
        proc.stdin.flush()
        with entry_lock(path, "source model abc123", notify=print) as lock:
            assert lock.held and json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(
        f"waiting for process {proc.pid} on {socket.gethostname()}, which is building source model abc123 (since "
    )  # when it took the lock
    assert line.endswith("); Ctrl-C stops waiting ...")
