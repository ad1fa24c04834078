"""Errors that reach the user as one line (exit code 2), never as a traceback."""

from __future__ import annotations


class GanbenchError(Exception):
    """Bad input or a missing resource. The message says what was wrong and what to do."""


class Diverged(RuntimeError):
    """Training produced a non-finite loss; the cell is recorded with status ``diverged``."""
