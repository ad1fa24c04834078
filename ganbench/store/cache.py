"""Content hashing, and atomic file writes (temp file + rename) that readers never see half-written: a failing
write is one line naming its path and cause, and leaves the old file as it was."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ganbench.files import writing


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(data: Any) -> str:
    """sha256 hex of the canonical JSON of ``data``: equal configurations hash equal across runs."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def tensor_hash(tensor: torch.Tensor) -> str:
    t = tensor.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (remembered per path, size and mtime within a process)."""
    stat = os.stat(path)
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _SHA256:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
        _SHA256[memo] = digest.hexdigest()
    return _SHA256[memo]


def file_sha1(path: str | os.PathLike) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, what: str = "file", fix: str | None = None) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never a torn write. A failing write
    (full disk, read-only folder, no permission) is one :class:`~ganbench.files.UserFileError` line naming
    ``what`` and the path; the old file stays as it was and the temp file goes."""
    path = Path(path)
    with writing(path, what, fix):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are meant to be shared
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # the write's own error is the one to report
                Path(tmp).unlink(missing_ok=True)
            raise


def set_aside(path: str | os.PathLike, suffix: str) -> Path:
    """Rename ``path`` to ``PATH<suffix>`` (``PATH<suffix>-2``, ... when that exists: nothing set aside earlier
    is overwritten); returns the new path. A failing rename is one line naming the path."""
    path = Path(path)
    aside, n = path.with_name(path.name + suffix), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}{suffix}-{n}")
    with writing(path, "file to set aside"):
        path.rename(aside)
    return aside


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str, what: str = "file", fix: str | None = None) -> None:
    atomic_write_bytes(path, text.encode(), what, fix)


def atomic_write_json(path: str | os.PathLike, data: Any, what: str = "file", fix: str | None = None) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", what, fix)


def atomic_torch_save(path: str | os.PathLike, obj: Any, what: str = "file", fix: str | None = None) -> bytes:
    """Save ``obj`` with torch.save atomically; returns the bytes written (to hash them)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data, what, fix)
    return data
