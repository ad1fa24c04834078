"""Nothing waits forever, and a signal stops ganbench within seconds leaving what the same command resumes:
SIGTERM during a cell's training (exit 143, then the same numbers as an uninterrupted run), SIGTERM while
waiting for another process's lock on the run folder (the lock stays its holder's), a Ray address where nothing
listens (one line within seconds, Ray never asked), one that accepts but never answers (one line after
``--ray-timeout``), and a download whose server stops sending mid-transfer. No Ray cluster is started here
(SIGTERM on Ray while tasks run: tests/execute/test_ray.py)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tiny_settings import FIXTURE_PLUGINS, TINY_OPTIONS

import ganbench.net as net
from ganbench.cli import RESUME_LINE
from ganbench.store.locks import FileLock
from ganbench.store.runs import load_records

FAULT_RUN = Path(__file__).with_name("fault_run.py")
# the tiny grid's finetune cell alone, with a metric that needs no Inception, 6 fine-tuning steps evaluated at 3
# and 6, checkpoints every 2 steps: with its source model cached, it makes optimizer steps 1-12 (D, G per step)
OPTIONS = [*TINY_OPTIONS, "--strategy=finetune", "--no-baseline", "--finetune-steps=6", "--eval-every=3",
           "--metrics=brightness-match", "--checkpoint-every=2", f"--plugins-dir={FIXTURE_PLUGINS}"]  # fmt: skip
GANBENCH = [sys.executable, "-c", "from ganbench.cli import main; main()"]  # the console script's entry point


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, invoke):
    """The grid run once without a signal: its records by cell id and its run folder's name. Its datasets and
    source model stay in the session's cache, which the other runs here use too (the child processes inherit
    GANBENCH_CACHE): what they run is only the cell."""
    root = tmp_path_factory.mktemp("uninterrupted")
    result = invoke("run", "matrix", *OPTIONS, "--quiet", "--out", root / "runs")
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "runs").iterdir()
    return {r["cell_id"]: r for r in load_records(run_dir)}, run_dir.name


def test_sigterm_during_training_exits_143_and_the_same_command_resumes(uninterrupted, tmp_path, invoke):
    expected, name = uninterrupted
    args = ["run", "matrix", *OPTIONS, "--quiet", "--out", str(tmp_path / "runs")]
    start = time.monotonic()
    stopped = subprocess.run([sys.executable, str(FAULT_RUN), "sigterm", "7", "--", *args],  # its step 4
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == RESUME_LINE and "Traceback" not in stopped.stderr
    run_dir = tmp_path / "runs" / name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["interrupted"] is True and manifest["complete"] == 0
    assert not (run_dir / ".lock").exists()
    assert time.monotonic() - start < 60

    again = invoke(*args)
    assert again.exit_code == 0, again.output
    records = {r["cell_id"]: r for r in load_records(run_dir)}
    assert records.keys() == expected.keys()
    for cell_id, want in expected.items():
        got = records[cell_id]
        for key in ("status", "curve", "losses", "brightness_match", "brightness_gap", "trainable_params"):
            assert got[key] == want[key], (got["strategy"], key)  # bit for bit on the CPU
    (finetune,) = records.values()
    assert finetune["resumed_from"] == [3]  # its checkpoint at step 3 (an evaluation), not redone from 0


def test_sigterm_ends_a_lock_wait_at_once_and_leaves_the_lock_to_its_holder(uninterrupted, tmp_path):
    _, name = uninterrupted
    lock = FileLock(tmp_path / "runs" / name / ".lock", "run folder").acquire()  # another run holds it
    try:
        with _started([*GANBENCH, "run", "matrix", *OPTIONS, "--wait", "--out", tmp_path / "runs"]) as (proc, lines):
            waiting = _line_with(lines, "waiting for", timeout=60)
            assert waiting.startswith(f"waiting for process {lock_pid(lock)} on {socket.gethostname()}, which is "
                                      f"running this grid (since ")  # fmt: skip
            assert waiting.endswith("); Ctrl-C stops waiting ...")
            proc.send_signal(signal.SIGTERM)
            start = time.monotonic()
            assert proc.wait(timeout=10) == 143
            assert time.monotonic() - start < 3
        assert _rest(lines)[-1] == RESUME_LINE
        assert json.loads(lock.path.read_text())["pid"] == lock_pid(lock)  # still the holder's
    finally:
        lock.release()


def test_a_ray_address_where_nothing_listens_is_one_line_within_seconds(invoke, assert_one_line_error):
    port = _free_port()
    start = time.monotonic()
    result = invoke("run", "matrix", *OPTIONS, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--dry-run")
    assert_one_line_error(
        result, f"no Ray cluster answers at 127.0.0.1:{port} (connection refused); start one with 'ray start --head' "
        "there, or check --ray-address",
    )  # fmt: skip
    assert time.monotonic() - start < 10


def test_a_ray_address_that_accepts_but_never_answers_is_given_up_after_ray_timeout():
    with _silent_server() as port:
        command = [*GANBENCH, "run", "matrix", *OPTIONS, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
                   "--ray-timeout", "1.5", "--dry-run"]  # fmt: skip
        with _started(command) as (proc, lines):
            assert proc.wait(timeout=60) == 2
        errors = [line for line in _rest(lines) if line.startswith("Error: ")]
        assert errors == [
            f"Error: the Ray cluster at 127.0.0.1:{port} accepted a connection but did not answer within 1.5 s; "
            "check that it is a Ray head's address ('ray start --head' prints it; port 6379 by default) and that the "
            "head is not overloaded, or wait longer with --ray-timeout SECONDS"
        ]


def test_a_download_that_stalls_mid_transfer_fails_with_a_reason_and_writes_nothing(monkeypatch, tmp_path):
    for name in ("GANBENCH_OFFLINE", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(net, "DOWNLOAD_TIMEOUT_S", 0.5)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100  # then nothing more
    with _silent_server(greeting=head) as port:
        written: list = []
        start = time.monotonic()
        reason = net.download_bytes(f"http://127.0.0.1:{port}/weights.pt", tmp_path / "w.pt",
                                    lambda dest, data: written.append(dest))  # fmt: skip
    assert reason == "download failed: the server sent nothing for 0.5 s"
    assert time.monotonic() - start < 5 and written == []


def lock_pid(lock: FileLock) -> int:
    return json.loads(lock.path.read_text())["pid"]


def _free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _silent_server(greeting: bytes = b"") -> Iterator[int]:
    """A TCP server that accepts every connection, sends it ``greeting`` once it has read what came, and then
    says nothing more."""
    server = socket.create_server(("", 0), backlog=64)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn = server.accept()[0]
                accepted.append(conn)
                if greeting:
                    conn.recv(65536)  # the request
                    conn.sendall(greeting)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in accepted:
            conn.close()


@contextmanager
def _started(command: list) -> Iterator[tuple[subprocess.Popen, queue.Queue]]:
    """A child process whose stdout and stderr lines arrive, merged, in a queue (None once both are closed)."""
    proc = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _line_with(lines: queue.Queue, fragment: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        line = lines.get(timeout=left)
        assert line is not None, f"the process ended before printing {fragment!r}"
        if fragment in line:
            return line
    raise AssertionError(f"no line with {fragment!r} in {timeout} s")


def _rest(lines: queue.Queue) -> list[str]:
    """The lines still to come, until the process closed its output."""
    rest = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    return rest
