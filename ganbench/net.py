"""The one network policy: whether ganbench may go online, whether a server answers, and downloads.

Offline (``$GANBENCH_OFFLINE=1``, fixed in the run context) means never download and never probe. Online,
a download is only tried after a quick check (a few seconds at most, DNS included) that the server can be
reached, so a machine without a network fails at once with a reason instead of hanging; a transfer that stops
sending for :data:`DOWNLOAD_TIMEOUT_S` fails with a reason too (mid-transfer included), and one that ends short
of its announced length is never written.
"""

from __future__ import annotations

import functools
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ganbench.context import current_context
from ganbench.errors import one_line

CONNECT_TIMEOUT_S = 3.0  # the reachability check, DNS included
DOWNLOAD_TIMEOUT_S = 60.0  # a download that sends nothing for this long (connecting or mid-transfer) fails


def offline() -> bool:
    """Whether the active run context forbids the network."""
    return current_context().offline


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
    problem = connect_problem(host, port, timeout)
    return None if problem is None else f"{host} unreachable ({problem})"


def connect_problem(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout`` seconds, else why not in a few words
    ("connection refused", "no answer in 3 s", the resolver's reason). Bounded even when name resolution hangs,
    and interruptible (the main thread only waits)."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except ConnectionRefusedError:
            outcome.append("connection refused")
        except TimeoutError:
            outcome.append(f"no answer in {timeout:g} s")
        except OSError as exc:
            outcome.append(" ".join(str(exc).split()) or type(exc).__name__)

    thread = threading.Thread(target=attempt, daemon=True)  # name resolution has no timeout of its own
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer in {timeout:g} s"


def why_not_online(url: str) -> str | None:
    """None when ``url`` may be fetched now; else why not (offline, or its server does not answer)."""
    if offline():
        return "not downloaded: GANBENCH_OFFLINE is set"
    problem = unreachable(url)
    return f"download impossible: {problem}" if problem else None


def fetch_if_online(url: str, fetch: Callable[[], object]) -> str | None:
    """Run ``fetch()`` unless offline or ``url``'s server is unreachable, with a socket timeout so a stalled
    transfer fails instead of hanging. Returns None on success, else why it was not done."""
    if (problem := why_not_online(url)) is not None:
        return problem
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        fetch()
    except TimeoutError:  # connecting, or mid-transfer: the server stopped sending
        return f"download failed: the server sent nothing for {DOWNLOAD_TIMEOUT_S:g} s"
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ValueError...
        return f"download failed: {one_line(str(exc) or type(exc).__name__, 160)}"
    finally:
        socket.setdefaulttimeout(before)
    return None


def download_bytes(url: str, dest: Path, write: Callable[[Path, bytes], None]) -> str | None:
    """Fetch ``url`` and ``write(dest, data)``; None on success, else why it was not done. (``write`` is the
    caller's: this layer sits below the store, whose atomic write :func:`ganbench.download_file` passes.)"""

    def fetch() -> None:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            write(dest, response.read())

    return fetch_if_online(url, fetch)
