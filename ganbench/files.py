"""The boundary between ganbench and the user's files: every read of a file the user gave (images, configs,
checkpoints, weights, records) and every write ganbench makes goes through here, so that an OS, codec, pickle
or decode error reaches the user as one line that names the path, says what went wrong in words, and what to
do (a :class:`UserFileError`, exit code 2), and never as a traceback or as a plugin's fault.

Plugins use the same helpers (they are public API: ``ganbench.reading``, ``ganbench.writing``,
``ganbench.read_user_text``, ``ganbench.load_torch_file``, ``ganbench.show_path``).
"""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganbench.errors import GanbenchError

#: what to say for the errno values a user can do something about
_CAUSES = {
    errno.ENOENT: "it does not exist",
    errno.ENOTDIR: "a part of its path is not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "the file is too large for its file system",
    errno.ELOOP: "it is a symlink loop",
    errno.ENAMETOOLONG: "its name is too long",
    errno.EMFILE: "too many files are open",
    errno.EIO: "an input/output error (a failing disk or network share)",
}
_WRITE_FIXES = {
    errno.ENOSPC: "free some space or choose another folder",
    errno.EDQUOT: "free some space or choose another folder",
    errno.EFBIG: "choose a folder on another file system",
    errno.EROFS: "make it writable or choose another folder",
    errno.EACCES: "make it writable or choose another folder",
    errno.EPERM: "make it writable or choose another folder",
}


class UserFileError(GanbenchError):
    """A file the user gave (or a folder ganbench writes to) cannot be read or written: the message names it."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)


def show_path(path: str | os.PathLike | bytes) -> str:
    """``path`` as text that can always be printed and stored: bytes that are not UTF-8 (a file name written on
    another system) appear as ``\\xNN`` escapes."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def os_cause(exc: OSError) -> str:
    """What an OS error means, in words (its errno's meaning, else its own text)."""
    if isinstance(exc.errno, int) and exc.errno in _CAUSES:
        return _CAUSES[exc.errno]
    return " ".join(str(exc.strerror or exc).split()) or type(exc).__name__


def is_dangling_link(path: str | os.PathLike) -> bool:
    return os.path.islink(path) and not os.path.exists(path)


class _Cause(Exception):
    """A cause already put in words (raised inside :func:`reading`, shown as it is)."""


def _read_cause(exc: BaseException, path: str | os.PathLike) -> str:
    if isinstance(exc, _Cause):
        return str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
        if "unsupported global" not in str(exc).lower():  # a bad opcode: bytes that are not a pickle at all
            return "it is not a file torch.save wrote, or it is damaged"
        return "it holds objects other than tensors and plain data, which ganbench does not unpickle"
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT and is_dangling_link(path):
        return f"it is a symlink to {show_path(os.readlink(path))}, which does not exist"
    if isinstance(exc, OSError) and exc.errno is not None:
        return os_cause(exc)
    if isinstance(exc, UnicodeError):
        return "it is not UTF-8 text"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def read_cause(exc: BaseException, path: str | os.PathLike) -> str:
    """What went wrong reading ``path``, in words: what :func:`reading` says after the path (for callers that
    gather several files' causes into one line)."""
    return _read_cause(exc, path)


#: the errors reading a user's file can raise whatever the file holds (a PIL error is an OSError or one of these)
READ_ERRORS: tuple[type[BaseException], ...] = (
    _Cause,
    OSError,
    EOFError,
    UnicodeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    ValueError,
    SyntaxError,  # PIL raises it for some malformed headers
)


@contextmanager
def reading(path: str | os.PathLike, what: str = "file", fix: str = "fix or replace it") -> Iterator[None]:
    """Turn any error reading ``path`` inside the block into one :class:`UserFileError` line:
    ``cannot read WHAT PATH: CAUSE; FIX``. :class:`GanbenchError` passes unchanged."""
    try:
        yield
    except GanbenchError:
        raise
    except READ_ERRORS as exc:
        raise UserFileError(f"cannot read {what} {show_path(path)}: {_read_cause(exc, path)}; {fix}", path) from None


@contextmanager
def writing(path: str | os.PathLike, what: str = "file", fix: str | None = None) -> Iterator[None]:
    """Turn an OS error writing ``path`` inside the block into one :class:`UserFileError` line naming the path
    and the cause (full disk, read-only, permission)."""
    try:
        yield
    except GanbenchError:
        raise
    except OSError as exc:
        hint = fix or _WRITE_FIXES.get(exc.errno or 0, "choose a writable path")
        raise UserFileError(f"cannot write {what} {show_path(path)}: {os_cause(exc)}; {hint}", path) from None


def as_user_file_error(exc: BaseException) -> UserFileError | None:
    """An OS error that names a file (``exc.filename``) as the :class:`UserFileError` it is, whoever's code met
    it: a plugin that cannot open a file it was given is not at fault, the file is. None for anything else."""
    if isinstance(exc, UserFileError):
        return exc
    if isinstance(exc, OSError) and not isinstance(exc, GanbenchError) and exc.filename is not None:
        path = exc.filename
        return UserFileError(f"cannot use {show_path(path)}: {_read_cause(exc, path)}; fix or replace it", path)
    return None


def read_user_text(path: str | os.PathLike, what: str = "file") -> str:
    """A text file the user wrote, as UTF-8 (a UTF-8 byte-order mark is dropped). A file in another encoding
    (UTF-16 or UTF-32, as some editors save) is refused in one line saying so, as is one that is not text."""
    with reading(path, what):
        data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                      (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):  # fmt: skip
        if data.startswith(bom):
            raise UserFileError(f"{what} {show_path(path)} is {name} text; save it as UTF-8", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserFileError(
            f"{what} {show_path(path)} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
            "save it as UTF-8",
            path,
        ) from None


def load_torch_file(path: str | os.PathLike, what: str = "file", fix: str = "fix or replace it", **kwargs: Any):
    """``torch.load(path, weights_only=True, map_location='cpu')``, any failure to read or unpickle it (not a
    torch file, truncated, holding objects a weights-only load refuses) one :class:`UserFileError` line."""
    import torch

    kwargs.setdefault("map_location", "cpu")
    kwargs.setdefault("weights_only", True)
    with reading(path, what, fix):
        try:
            return torch.load(path, **kwargs)
        except (OSError, pickle.UnpicklingError):
            raise  # worded by reading()
        except Exception as exc:  # a weights-only load runs no code of the file's: whatever it raises is the file's
            raise _Cause(_torch_cause(exc)) from None


def _torch_cause(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    markers = ("zip archive", "central directory", "magic number")
    if isinstance(exc, EOFError) or type(exc).__module__ == "struct" or any(m in text.lower() for m in markers):
        return "it is not a file torch.save wrote, or it is truncated"
    return f"{type(exc).__name__}: {text}"[:160]
