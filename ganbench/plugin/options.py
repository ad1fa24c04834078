"""Typed plugin options and the ``NAME[:key=value,...]`` syntax every user-facing name is written in.

Nothing here knows about plugins: :class:`Option` parses and checks one value, the functions split and
join spec text. :mod:`ganbench.plugin.registry` applies them to registered plugins.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ganbench.context import parse_bool
from ganbench.errors import GanbenchError


@dataclass(frozen=True)
class Option:
    """One typed option a plugin declares, e.g. ``Option("layers", int, 2, "D blocks to freeze")``.

    ``type`` is ``int``, ``float``, ``str``, ``bool`` or any callable that turns the text after ``=`` into
    a value and raises ``ValueError`` with a short reason when it can't. ``check`` validates the parsed
    value (return an error string, or None when it is fine).
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None

    @property
    def type_name(self) -> str:
        return getattr(self.type, "type_name", getattr(self.type, "__name__", "value"))

    def parse(self, text: str) -> Any:
        parser = parse_bool if self.type is bool else self.type
        try:
            value = parser(text)
        except ValueError as exc:
            if self.type in (int, float):  # the builtins' messages ("invalid literal ...") help nobody
                raise ValueError(f"expected {'an integer' if self.type is int else 'a number'}") from None
            raise ValueError(str(exc)) from None
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}")
        if self.check is not None and (problem := self.check(value)):
            raise ValueError(problem)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "default": format_value(self.default),
            "help": self.help,
            **({"choices": [format_value(c) for c in self.choices]} if self.choices else {}),
        }


def at_least(minimum: float) -> Callable[[Any], str | None]:
    """An ``Option.check`` that refuses values below ``minimum``."""
    return lambda value: None if value >= minimum else f"must be >= {minimum}"


def format_value(value: Any) -> str:
    """The text form of an option value; ``Option.parse(format_value(v)) == v`` for declared types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return format_int_set(value) if all(isinstance(v, int) for v in value) else "+".join(map(str, value))
    return "" if value is None else str(value)


def format_int_set(values: Sequence[int]) -> str:
    """(0, 1, 2, 3, 4, 7) -> '0-4+7': the inverse of :func:`parse_int_set`."""
    runs: list[list[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return "+".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def parse_int_set(text: str) -> tuple[int, ...]:
    """'0-4' -> (0, 1, 2, 3, 4); '1-3+7' -> (1, 2, 3, 7). '+' joins parts because ',' separates options."""
    values: set[int] = set()
    for part in text.split("+"):
        lo, sep, hi = part.strip().partition("-")
        try:
            start, stop = int(lo), int(hi if sep else lo)
        except ValueError:
            raise ValueError("expected integers like 0-4 or 1-3+7") from None
        if stop < start:
            raise ValueError(f"range {part!r} runs backwards")
        values.update(range(start, stop + 1))
    return tuple(sorted(values))


parse_int_set.type_name = "int-set"  # type: ignore[attr-defined]


def split_spec_list(text: str) -> list[str]:
    """Split a comma list of specs where options also use commas.

    'freeze-d:layers=2,adapter:rank=4,alpha=2,scratch' -> ['freeze-d:layers=2', 'adapter:rank=4,alpha=2',
    'scratch']: a piece with '=' but no ':' continues the options of the spec before it.
    """
    specs: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if "=" in piece and ":" not in piece and specs and ":" in specs[-1]:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    return specs


def parse_spec(text: str) -> tuple[str, dict[str, str]]:
    """'freeze-d:layers=2' -> ('freeze-d', {'layers': '2'}). Values stay text until resolved."""
    name, _, rest = text.strip().partition(":")
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise GanbenchError(f"bad option {item!r} in {text!r}: write NAME:key=value[,key=value...]")
        pairs[key.strip()] = value.strip()
    return name.strip(), pairs


def closest_first(word: str, candidates: Iterable[str]) -> list[str]:
    """Every candidate, the most similar to ``word`` first (for 'did you mean' errors)."""
    return sorted(candidates, key=lambda c: (-difflib.SequenceMatcher(None, word, c).ratio(), c))


def valid_name(name: str) -> bool:
    """Plugin names: lowercase ASCII letters, digits and single '-', starting with a letter."""
    return re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name) is not None
