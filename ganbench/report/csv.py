"""The leaderboard as CSV: numbers as numbers, text escaped so spreadsheets never run it as a formula."""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading ``'``; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """The frame as CSV; text cells escaped against formula injection, numbers written as numbers."""
    safe = frame.copy()
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]):  # object or string dtype: text (and missing values)
            safe[name] = safe[name].map(escape_formula).astype(object)
    return safe.to_csv(index=False, lineterminator="\n")
