"""The run context: everything a cell or a pretraining job takes from its surroundings, read once.

The planner builds one :class:`RunContext` from the command line and the environment, and passes it
explicitly to every job it runs; nothing below the planner reads environment variables (this is the only
module that does). The context is frozen and picklable, so it reaches other processes and machines
unchanged. While a job runs, the core makes its context the *active* one, so that the helpers plugins call
(data roots, the offline policy, weight lookups) answer as they did for the planner.

This module is the bottom of the package with ``errors``: every layer may import it, it imports no other
module of ganbench. It also holds what the context is made of: the checkpoint policy, the device check,
the git revision of the code in use.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ganbench.errors import GanbenchError

DEFAULT_CHECKPOINT_EVERY = "10m"
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})
SYSTEM_DATA_ROOT = "/usr/share/datasets"  # where Debian's dataset-* packages install

#: every environment variable ganbench reads (here, and only here), and what it sets
ENVIRONMENT = {
    "GANBENCH_CACHE": "cache root (default ~/.cache/ganbench)",
    "GANBENCH_DATA": "where dataset downloads go (default <cache root>/data-downloads)",
    "GANBENCH_DATA_ROOTS": "more folders to look for dataset files in, os.pathsep-separated",
    "GANBENCH_PLUGINS_DIR": "folders of one-file plugins, os.pathsep-separated",
    "GANBENCH_LOAD_PLUGINS": "comma list of the installed distributions whose plugins load (default: all)",
    "GANBENCH_OFFLINE": "1 (or true): never download, never probe the network",
    "GANBENCH_INCEPTION": "a copy of NVIDIA's inception-2015-12-05.pt to use for FID",
    "GANBENCH_GIT_REVISION": "the revision of a source tree copied without its .git",
}


@dataclass(frozen=True)
class CheckpointPolicy:
    """How often jobs checkpoint between evaluations, and whether checkpoints outlive their job.

    ``every_steps`` and ``every_seconds`` (0: never by that measure) are both upper bounds: a checkpoint is due
    when either has passed since the last one. Evaluations always checkpoint."""

    every_steps: int = 0
    every_seconds: float = 600.0
    keep: bool = False

    @classmethod
    def parse(cls, text: str | None, keep: bool = False) -> CheckpointPolicy:
        """``500`` (steps), ``30s`` / ``10m`` / ``2h`` (wall time), ``500,10m`` (whichever comes first), or
        ``0`` (only at evaluations)."""
        steps, seconds = 0, 0.0
        for part in (text or DEFAULT_CHECKPOINT_EVERY).replace(" ", "").lower().split(","):
            match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", part)
            if not match or (not match[2] and "." in match[1]):
                raise GanbenchError(
                    f"--checkpoint-every {text!r}: give steps (500), a time (30s, 10m, 2h), both (500,10m) "
                    "or 0 (only at evaluations)"
                )
            if match[2]:
                seconds = float(match[1]) * _UNITS[match[2]]
            else:
                steps = int(match[1])
        return cls(steps, seconds, keep)

    def describe(self) -> str:
        parts = [f"{self.every_steps} steps"] if self.every_steps else []
        parts += [f"{self.every_seconds:g} s"] if self.every_seconds else []
        return " or ".join(parts) or "evaluations only"


@dataclass(frozen=True)
class RunContext:
    """What a job needs from where it runs, fixed by the planner. Paths are absolute."""

    cache_root: str
    download_root: str
    #: folders dataset files are looked for in, in order: downloads, --data-root, $GANBENCH_DATA_ROOTS, system
    data_roots: tuple[str, ...]
    #: folders of one-file plugins: --plugins-dir, then $GANBENCH_PLUGINS_DIR
    plugins_dirs: tuple[str, ...] = ()
    #: installed distributions whose entry points load (lowercase names); None: all of them
    load_plugins: tuple[str, ...] | None = None
    device: str = "cpu"
    offline: bool = False
    inception_weights: str | None = None
    git_revision: str | None = None
    #: how often cells and pretraining jobs checkpoint between evaluations, and whether checkpoints are kept
    checkpoint: CheckpointPolicy = CheckpointPolicy()
    #: speed settings of the training loop, which never change a result (so: no part of a cell's id)
    channels_last: bool = False
    compile: bool = False

    @property
    def cache(self) -> Path:
        return Path(self.cache_root)

    @classmethod
    def from_environment(
        cls,
        *,
        cache_dir: str | os.PathLike | None = None,
        data_roots: Sequence[str | os.PathLike] = (),
        plugins_dirs: Sequence[str | os.PathLike] = (),
        device: str = "auto",
        environ: Mapping[str, str] | None = None,
    ) -> RunContext:
        """The context of a run started here: the given options first, then the environment, then defaults."""
        env = os.environ if environ is None else environ
        cache = _absolute(cache_dir or env.get("GANBENCH_CACHE") or Path.home() / ".cache" / "ganbench")
        downloads = _absolute(env["GANBENCH_DATA"]) if env.get("GANBENCH_DATA") else cache / "data-downloads"
        roots = [downloads, *map(_absolute, data_roots), *map(_absolute, _path_list(env.get("GANBENCH_DATA_ROOTS")))]
        dirs = [*map(_absolute, plugins_dirs), *map(_absolute, _path_list(env.get("GANBENCH_PLUGINS_DIR")))]
        only = env.get("GANBENCH_LOAD_PLUGINS")
        inception = env.get("GANBENCH_INCEPTION") or None
        return cls(
            cache_root=str(cache),
            download_root=str(downloads),
            data_roots=_unique([*map(str, roots), SYSTEM_DATA_ROOT]),
            plugins_dirs=_unique(map(str, dirs)),
            load_plugins=None if only is None else _unique(n.strip().lower() for n in only.split(",") if n.strip()),
            device=str(resolve_device(device)),
            offline=_offline(env.get("GANBENCH_OFFLINE", "")),
            inception_weights=str(_absolute(inception)) if inception else None,
            git_revision=git_revision(env.get("GANBENCH_GIT_REVISION") or None),
        )

    def replace(self, **changes: Any) -> RunContext:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """The context as plain data, for the manifest."""
        return asdict(self)

    @contextmanager
    def active(self) -> Iterator[RunContext]:
        """Make this the context the helpers of plugins see, for the block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


_ACTIVE: ContextVar[RunContext | None] = ContextVar("ganbench_run_context", default=None)


def current_context() -> RunContext:
    """The active context; outside a run (a plugin's own test calling ``load()``), one from the environment."""
    return _ACTIVE.get() or RunContext.from_environment()


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``, checked to exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise GanbenchError(f"unknown device '{spec}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GanbenchError(f"device '{spec}' requested but CUDA is not available; use --device cpu")
        if (device.index or 0) >= torch.cuda.device_count():
            raise GanbenchError(f"device '{spec}' does not exist; {torch.cuda.device_count()} CUDA device(s) found")
    elif device.type != "cpu":
        raise GanbenchError(f"unsupported device '{spec}'; use auto, cpu, cuda or cuda:N")
    return device


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected true or false")


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


def _offline(text: str) -> bool:
    if not text.strip():
        return False
    try:
        return parse_bool(text)
    except ValueError:
        raise GanbenchError(f"GANBENCH_OFFLINE={text!r} is neither true nor false; set it to 1 or 0") from None


def _absolute(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _path_list(text: str | None) -> list[str]:
    return [p for p in (text or "").split(os.pathsep) if p]


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
