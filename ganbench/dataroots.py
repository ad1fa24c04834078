"""Where dataset files are looked for and downloaded to, and how a missing dataset is reported.

Datasets that read files (``ganbench_plugins.datasets.torchvision_sets``) look for them under these roots,
in order:

1. ``$GANBENCH_DATA``, by default ``<cache root>/data-downloads``: where downloads go;
2. the ``--data-root`` folders of the command line, passed down as ``$GANBENCH_DATA_ROOTS``
   (``os.pathsep``-separated) so that worker processes see them too;
3. ``/usr/share/datasets``, where Debian's ``dataset-*`` packages install (``dataset-fashion-mnist``).

Downloads are tried only when the files are nowhere, never with ``$GANBENCH_OFFLINE=1``, and only after a
quick check (a few seconds at most) that the server can be reached, so a machine without network gets
:class:`DataNotFound` at once instead of a hanging download.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ganbench.cache import cache_root
from ganbench.errors import GanbenchError

SYSTEM_ROOT = Path("/usr/share/datasets")
CONNECT_TIMEOUT_S = 3.0  # the reachability check, DNS included
DOWNLOAD_TIMEOUT_S = 60.0  # a stalled download read fails after this long

_CACHE_DIR: ContextVar[str | os.PathLike | None] = ContextVar("ganbench_data_cache_dir", default=None)


class DataNotFound(GanbenchError):
    """A dataset's files are not on this machine (and could not be downloaded): the message names the files,
    where they may go and how to get them; ``hint`` says the last part in a few words (for listings)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint or message


def download_root() -> Path:
    """``$GANBENCH_DATA``, or ``data-downloads`` under the cache root in use."""
    env = os.environ.get("GANBENCH_DATA")
    return Path(env).expanduser() if env else cache_root(_CACHE_DIR.get()) / "data-downloads"


def data_roots() -> list[Path]:
    """Every folder dataset files are looked for in, in order (duplicates removed)."""
    extra = [Path(p).expanduser() for p in os.environ.get("GANBENCH_DATA_ROOTS", "").split(os.pathsep) if p]
    roots = [download_root(), *extra, SYSTEM_ROOT]
    return list(dict.fromkeys(roots))


@contextmanager
def using_cache(cache_dir: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, the default download root follows ``cache_dir`` (the ``--cache`` of the command)."""
    token = _CACHE_DIR.set(cache_dir)
    try:
        yield
    finally:
        _CACHE_DIR.reset(token)


@contextmanager
def extra_roots(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Put ``paths`` (the ``--data-root`` options) in front of ``$GANBENCH_DATA_ROOTS`` for the block."""
    paths = [str(Path(p).expanduser().resolve()) for p in paths]
    if not paths:
        yield
        return
    before = os.environ.get("GANBENCH_DATA_ROOTS")
    os.environ["GANBENCH_DATA_ROOTS"] = os.pathsep.join([*paths, *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GANBENCH_DATA_ROOTS", None)
        else:
            os.environ["GANBENCH_DATA_ROOTS"] = before


def find_folder(subfolders: Sequence[str], required: Sequence[Sequence[str]]) -> Path | None:
    """The first ``root / subfolder`` (over :func:`data_roots`, then ``subfolders``) that holds, for every
    entry of ``required``, at least one of its alternative names (files or folders); None if there is none."""
    for root in data_roots():
        for sub in subfolders:
            folder = root / sub if sub else root
            if folder.is_dir() and all(pick(folder, names) is not None for names in required):
                return folder
    return None


def pick(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that exists in ``folder``."""
    for name in names:
        if (folder / name).exists():
            return folder / name
    return None


def offline() -> bool:
    return os.environ.get("GANBENCH_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def unreachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``url``'s server (or the proxy for it) opens within ``timeout`` seconds,
    else why not. Bounded even when name resolution hangs; remembered per server for the process."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _unreachable(parts.hostname or "", port, timeout)


@functools.lru_cache(maxsize=64)
def _unreachable(host: str, port: int, timeout: float) -> str | None:
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host} unreachable ({' '.join(str(exc).split()) or type(exc).__name__})")

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"{host} unreachable (no answer in {timeout:g} s)"


def try_download(url: str, fetch: Callable[[Path], object]) -> str | None:
    """Run ``fetch(download_root())`` unless offline or ``url``'s server is unreachable, with a socket timeout
    so a stalled transfer fails instead of hanging. Returns None on success, else why it was not done."""
    if offline():
        return "not downloaded: GANBENCH_OFFLINE is set"
    problem = unreachable(url)
    if problem:
        return f"download impossible: {problem}"
    target = download_root()
    target.mkdir(parents=True, exist_ok=True)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        fetch(target)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ValueError...
        return f"download failed: {one_line(str(exc) or type(exc).__name__, 160)}"
    finally:
        socket.setdefaulttimeout(before)
    return None


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def roots_text() -> str:
    return ", ".join(str(r) for r in data_roots())


def not_found_message(what: str, files: str, how: str = "", problem: str | None = None) -> str:
    """One line: ``what`` is missing, which ``files`` to put under which root, ``how`` to get them, and why
    they were not downloaded (``problem``)."""
    parts = [f"{what} not found: put {files} in one of {roots_text()} (or a folder given with --data-root)"]
    if how:
        parts.append(how)
    if problem:
        parts.append(problem)
    return "; ".join(parts)
