"""Lock files: one writer of a run folder or a cache entry at a time, across processes on this machine and, as
far as the file system allows, across machines sharing it.

A lock is a file created with ``O_CREAT | O_EXCL`` that says who holds it (pid, host, the process's start time,
when, what, a random token). A lock whose holder is dead (same host; no such pid, or a pid reused by a process
started at another time) is stale and taken over. Another host's processes cannot be checked from here, so
every holder renews its locks (their files' modification time) every :data:`RENEW_S` seconds from a
background thread, and a lock of another host left unrenewed for :data:`LEASE_S` seconds is stale too: its
holder died (a killed Ray worker, a lost node) or lost the shared storage. Run folders are refused while
locked (or waited for); cache entries are always waited for (:func:`entry_lock`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.files import writing

GRACE_S = 10.0  # an empty or unreadable lock file younger than this may be one whose holder is writing it
RENEW_S = 15.0  # how often a holder renews its locks
LEASE_S = 120.0  # a lock of another host not renewed for this long is stale (clocks may differ by a little)
POLL_S = (0.2, 1.0)  # waiting polls start this often and slow down to this
RUN_ADVICE = "wait for it, or rerun with --wait"

_HELD: dict[str, tuple[int, int, FileLock]] = {}  # resolved path -> (pid, thread id, lock) of locks held here
_HELD_MUTEX = threading.Lock()


class Locked(GanbenchError):
    """Someone else holds the lock; the message names what, who, since when and what to do."""


class FileLock:
    """A lock file at ``path`` guarding ``what`` (a description for messages: "run folder results/runs/x").
    ``with FileLock(...)`` acquires without waiting; :meth:`acquire` can wait. Not re-entrant: acquiring a lock
    this thread already holds raises instead of waiting for itself."""

    def __init__(self, path: str | os.PathLike, what: str, *, advice: str = RUN_ADVICE,
                 unwritable: str | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self.what = what
        self.advice = advice  # what to do about a live holder on this host
        self.unwritable = unwritable  # what to do when the lock file cannot be written (a read-only folder)
        self._token: str | None = None

    @property
    def held(self) -> bool:
        return self._token is not None

    def acquire(self, wait: bool | float = False, on_wait: Callable[[dict[str, Any]], None] | None = None) -> FileLock:
        """Take the lock. ``wait``: False refuses at once (:class:`Locked`), True waits as long as it takes, a
        number waits that many seconds at most. ``on_wait(holder)`` is called once, when waiting begins, with
        what the lock file says (``pid``, ``host``, ``created_at``, ``what``, ``path``); a lock file still unwritten
        is looked at again first (for a second at most, then ``holder`` holds only ``path``)."""
        key = self._key()
        with _HELD_MUTEX:
            held = _HELD.get(key)
        if held and held[:2] == (os.getpid(), threading.get_ident()):
            raise RuntimeError(f"{self.what} is already locked by this thread ({self.path}); locks are not re-entrant")
        limit = None if wait is True else max(0.0, float(wait or 0))
        start, delay, announced = time.monotonic(), POLL_S[0], False
        with writing(self.path, "lock file", self.unwritable):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            if self._create(key):
                return self
            holder = _read(self.path)
            if holder is None:
                continue  # released between our attempt and the read
            if _stale(holder, key):
                _take_over(self.path, key)
                continue  # free now, or locked afresh by another taker: look again
            waited = time.monotonic() - start
            if limit is not None and waited >= limit:
                raise Locked(self._refusal(holder, waited if limit else None))
            if not announced and on_wait is not None and ("pid" in holder or waited >= 1.0):
                on_wait(_public(holder, self.path))  # an unwritten lock file: after a look that names its holder
                announced = True
            time.sleep(delay if limit is None else min(delay, limit - waited))
            delay = min(delay * 1.5, POLL_S[1])

    def release(self) -> None:
        """Remove the lock file if it is still ours; nothing when this lock is not held."""
        if self._token is None:
            return
        key = self._key()
        with _HELD_MUTEX:
            holder = _read(self.path)
            if holder is not None and holder.get("token") == self._token:
                self.path.unlink(missing_ok=True)
            if _HELD.get(key, (0, 0, None))[2] is self:
                del _HELD[key]
            self._token = None

    def __enter__(self) -> FileLock:
        return self.acquire(wait=False)

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, {self.what!r}{', held' if self.held else ''})"

    def _key(self) -> str:
        return str(self.path.absolute().resolve())

    def _create(self, key: str) -> bool:
        """Create the lock file if there is none; True when it is ours now."""
        token = secrets.token_hex(8)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
                "created_at": datetime.now().astimezone().isoformat(timespec="seconds"), "what": self.what,
                "token": token}  # fmt: skip
        # a lock file naming this process is one of _HELD's, or left over; one that cannot be written (a read-only
        # folder, a full disk) is one line naming it
        with _HELD_MUTEX, writing(self.path, "lock file", self.unwritable):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                return False
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps(info) + "\n")
            except BaseException:
                with contextlib.suppress(OSError):
                    self.path.unlink(missing_ok=True)
                raise
            self._token = token
            _HELD[key] = (os.getpid(), threading.get_ident(), self)
        _start_renewing()
        return True

    def _refusal(self, holder: dict[str, Any], waited: float | None) -> str:
        after = f", still after waiting {waited:.1f} s" if waited is not None else ""
        if "pid" not in holder:
            return (f"{self.what} is being locked by another process{after} (its lock file {self.path} is not "
                    f"written yet); {self.advice}")  # fmt: skip
        since = f" since {holder['created_at']}" if holder.get("created_at") else ""
        who = f"process {holder['pid']} on {holder.get('host')}{since}"
        if holder.get("host") != socket.gethostname():
            return (f"{self.what} is locked by {who}{after}; that host's processes cannot be checked from here, "
                    f"but the lock is taken over once it goes {LEASE_S:.0f} s unrenewed: {self.advice}, or delete "
                    f"the lock file {self.path} if that process is gone")  # fmt: skip
        return f"{self.what} is locked by {who}{after}; {self.advice}"


@contextmanager
def entry_lock(path: str | os.PathLike, what: str, notify: Callable[[str], None] | None = None) -> Iterator[FileLock]:
    """Hold the lock of one cache entry for the block, waiting for whoever builds it now (cache entries are waited
    for, never refused). When waiting begins, ``notify`` (if given) gets one line saying whom this process waits
    for: the storage layer never prints, its caller decides where the line goes."""
    lock = FileLock(path, what, advice="wait for it")
    lock.acquire(wait=True, on_wait=None if notify is None else lambda holder: notify(waiting_line(holder, what)))
    try:
        yield lock
    finally:
        lock.release()


def waiting_line(holder: dict[str, Any], what: str, doing: str = "building") -> str:
    """The line that says whom a process waits for, what that one is doing and since when, and how to stop
    waiting (a wait lasts as long as its holder lives; a signal ends it)."""
    who = f"process {holder['pid']} on {holder.get('host')}" if "pid" in holder else "another process"
    since = f" (since {holder['created_at']})" if holder.get("created_at") else ""
    return f"waiting for {who}, which is {doing} {what}{since}; Ctrl-C stops waiting ..."


def _read(path: Path) -> dict[str, Any] | None:
    """What the lock file says, plus its age (``_age``); ``{"_age": s}`` alone when it is empty or unreadable; None
    when there is no lock file."""
    try:
        with open(path, "rb") as f:
            age = time.time() - os.fstat(f.fileno()).st_mtime
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(raw)
        valid = isinstance(info, dict) and isinstance(info.get("pid"), int) and info["pid"] > 0
    except ValueError:
        valid = False
    return {**info, "_age": age} if valid else {"_age": age}


def _public(holder: dict[str, Any], path: Path) -> dict[str, Any]:
    return {**{k: v for k, v in holder.items() if not k.startswith("_") and k != "token"}, "path": str(path)}


def _stale(holder: dict[str, Any], key: str) -> bool:
    """Whether the holder is certainly gone: an unwritten file past the grace period, or a dead process of this
    host (a lock naming this process that none of its locks holds is left over too)."""
    if "pid" not in holder:
        return holder["_age"] > GRACE_S
    if holder.get("host") != socket.gethostname():
        return holder["_age"] > LEASE_S  # its holder stopped renewing it
    pid, started = holder["pid"], holder.get("started")
    if pid == os.getpid() and started == _start_time(pid):
        with _HELD_MUTEX:
            ours = _HELD.get(key)
        return ours is None or ours[0] != pid or ours[2]._token != holder.get("token")
    return not _alive(pid, started)


_RENEWER: list[tuple[int, threading.Thread]] = []  # (pid, thread): one per process (a fork needs its own)


def _start_renewing() -> None:
    """Start this process's renewing thread, once."""
    with _HELD_MUTEX:
        if _RENEWER and _RENEWER[0][0] == os.getpid() and _RENEWER[0][1].is_alive():
            return
        thread = threading.Thread(target=_renew_forever, name="ganbench-lock-renewal", daemon=True)
        _RENEWER[:] = [(os.getpid(), thread)]
    thread.start()


def _renew_forever() -> None:
    while True:
        time.sleep(RENEW_S)
        renew_held()


def renew_held() -> None:
    """Touch every lock file this process holds (what the renewing thread does every RENEW_S seconds)."""
    with _HELD_MUTEX:
        paths = [lock.path for pid, _, lock in _HELD.values() if pid == os.getpid() and lock.held]
    for path in paths:
        with contextlib.suppress(OSError):  # released meanwhile, or the storage is gone: the lease runs out
            os.utime(path)


def _take_over(path: Path, key: str) -> bool:
    """Remove a stale lock file, judged again while holding the side lock every taker holds, so that of two
    processes that saw it stale only one removes it (and never the fresh lock the other made meanwhile). The
    side lock is a kernel lock (``flock``): it dies with its holder."""
    side = path.with_name(path.name + ".takeover")
    with writing(side, "lock file"):
        fd = os.open(side, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        holder = _read(path)
        if holder is None:
            return True
        if not _stale(holder, key):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)  # closing releases the flock


def _alive(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    state = _proc_stat(pid)
    if state is None:
        return True  # no /proc here: the pid is all we can go by
    return state[0] not in "ZX" and (started is None or state[1] == started)  # a zombie holds nothing


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (/proc/<pid>/stat field 22); None without /proc."""
    state = _proc_stat(pid)
    return state[1] if state else None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` from /proc; None where /proc does not say."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ", fields 3...; comm may hold spaces
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


@atexit.register
def _release_all() -> None:
    """Locks this process still holds when it exits normally."""
    with _HELD_MUTEX:
        mine = [lock for pid, _, lock in _HELD.values() if pid == os.getpid()]
    for lock in mine:
        lock.release()
