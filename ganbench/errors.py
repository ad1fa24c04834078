"""Errors that reach the user as one line (exit code 2), never as a traceback."""

from __future__ import annotations


class GanbenchError(Exception):
    """Bad input or a missing resource. The message says what was wrong and what to do."""


class Diverged(RuntimeError):
    """Training produced a non-finite loss; the cell is recorded with status ``diverged``."""


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with its whitespace collapsed to single spaces, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
