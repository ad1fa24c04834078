"""Where dataset files are looked for and downloaded to, and how a missing dataset is reported.

Datasets that read files (``ganbench_plugins.datasets.torchvision_sets``) look for them under the data roots
of the active run context, in order:

1. ``$GANBENCH_DATA``, by default ``<cache root>/data-downloads``: where downloads go;
2. the ``--data-root`` folders of the command line, then those of ``$GANBENCH_DATA_ROOTS``;
3. ``/usr/share/datasets``, where Debian's ``dataset-*`` packages install (``dataset-fashion-mnist``).

Downloads follow the network policy of :mod:`ganbench.net`: never offline, and only after a quick check that
the server answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ganbench.context import current_context
from ganbench.errors import GanbenchError
from ganbench.net import fetch_if_online


class DataNotFound(GanbenchError):
    """A dataset's files are not on this machine (and could not be downloaded): the message names the files,
    where they may go and how to get them; ``hint`` says the last part in a few words (for listings)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint or message


def download_root() -> Path:
    """Where downloads go: ``$GANBENCH_DATA``, or ``data-downloads`` under the cache root."""
    return Path(current_context().download_root)


def data_roots() -> list[Path]:
    """Every folder dataset files are looked for in, in order."""
    return [Path(p) for p in current_context().data_roots]


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


def try_download(url: str, fetch: Callable[[Path], object]) -> str | None:
    """Run ``fetch(download_root())`` unless offline or ``url``'s server is unreachable (a stalled transfer
    times out). Returns None on success, else why it was not done, in a few words."""
    target = download_root()

    def fetch_into_root() -> None:
        target.mkdir(parents=True, exist_ok=True)
        fetch(target)

    return fetch_if_online(url, fetch_into_root)


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
