"""How a number was made: package versions, device, git revision, time."""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    import torch

    return {
        "ganbench_version": version_of("ganbench"),
        "torch_version": torch.__version__,
        "cleanfid_version": version_of("clean-fid"),
        "python_version": platform.python_version(),
        "numpy_version": version_of("numpy"),
    }


@functools.lru_cache(maxsize=4)
def git_revision(declared: str | None = None) -> str | None:
    """The commit of the ganbench source in use (suffix '+dirty' when it has uncommitted changes), or None
    outside a git checkout. ``declared`` (``$GANBENCH_GIT_REVISION``, read by the run context), when given,
    is used instead: for source trees copied without (or with a stale) ``.git``, e.g. onto a GPU machine."""
    if declared:
        return declared
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
