"""How a number was made: package versions and time (the git revision is the run context's)."""

from __future__ import annotations

import datetime as _dt
import functools
import platform
from importlib import metadata


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


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
