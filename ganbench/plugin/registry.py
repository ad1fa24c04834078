"""Name -> plugin tables: which plugin supplied which name, resolved ``NAME[:key=value,...]`` references.

Every user-facing name (architecture, strategy, dataset, metric, augmentation) goes through
:meth:`Registry.resolve`, so an unknown name, an unknown option or a bad value is reported the same way
everywhere, with what exists listed closest match first, before anything runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from ganbench.errors import GanbenchError
from ganbench.plugin.contracts import BASE_CLASS, Column
from ganbench.plugin.options import Option, closest_first, format_value, parse_spec, valid_name

KINDS = tuple(BASE_CLASS)


@dataclass(frozen=True)
class Origin:
    """Where a plugin came from: a module of an installed distribution, or a local file."""

    module: str
    distribution: str | None = None
    version: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        if self.file:
            return f"file {self.file}"
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"module {self.module}{dist}"


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    cls: type
    origin: Origin

    @property
    def options(self) -> tuple[Option, ...]:
        return tuple(self.cls.declared_options())

    @property
    def description(self) -> str:
        doc = (self.cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class PluginRef:
    """A resolved ``NAME[:key=value,...]``: every declared option present, typed, validated."""

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...]
    defaults: tuple[tuple[str, Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def label(self) -> str:
        """Short, canonical text: only the options that differ from the plugin's defaults."""
        defaults = dict(self.defaults)
        changed = [(k, v) for k, v in self.options if k not in defaults or defaults[k] != v]
        return self.name + (":" + ",".join(f"{k}={format_value(v)}" for k, v in changed) if changed else "")

    @property
    def canonical(self) -> str:
        """Every option written out: what cell ids hash, so a changed default changes the id."""
        # None means "not set" (e.g. classes: all); leaving it out keeps the text resolvable
        opts = ",".join(f"{k}={format_value(v)}" for k, v in self.options if v is not None)
        return self.name + (":" + opts if opts else "")


class Registry:
    """Every registered plugin by kind and name, plus the plugins that failed to load or register.

    A plugin that fails (import error, wrong type, bad option declaration) does not take the others down:
    it is listed in ``load_errors``, and asking for its name raises :class:`BrokenPluginError`, which the
    runner records against that plugin's cells only. Two plugins registering one name is different: that
    is refused outright, because a silent winner would corrupt a leaderboard.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
        self._broken: dict[tuple[str, str], str] = {}
        self.load_errors: list[tuple[Origin, str]] = []

    def add(self, kind: str, cls: type, origin: Origin) -> None:
        name = getattr(cls, "name", None)
        problem = _registration_problem(kind, cls, name)
        if problem:
            message = f"{origin} registered {problem}"
            self.load_errors.append((origin, message))
            if isinstance(name, str):
                self._broken[(kind, name)] = message
            return
        if name in self._entries[kind]:
            first = self._entries[kind][name].origin
            raise GanbenchError(
                f"two plugins register the {kind} '{name}': {first} and {origin}; uninstall or rename one"
            )
        self._entries[kind][name] = PluginEntry(kind, name, cls, origin)

    def entries(self, kind: str | None = None) -> list[PluginEntry]:
        kinds = KINDS if kind is None else (kind,)
        return [e for k in kinds for _, e in sorted(self._entries[k].items())]

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Registered names of one kind matching a wildcard pattern, e.g. ``names('strategy', 'freeze*')``."""
        return [n for n in sorted(self._entries[kind]) if fnmatch.fnmatchcase(n, pattern)]

    def get(self, kind: str, name: str) -> PluginEntry:
        if name in self._entries[kind]:
            return self._entries[kind][name]
        if (kind, name) in self._broken:
            raise BrokenPluginError(f"{kind} '{name}' is unusable: {self._broken[(kind, name)]}")
        known = closest_first(name, self._entries[kind])
        hint = f"; did you mean '{known[0]}'?" if known else ""
        message = f"unknown {kind} '{name}'{hint} Available: {', '.join(known) or 'none'}"
        if self.load_errors:  # the name may belong to a plugin that failed to load
            failures = "; ".join(f"{o} failed to load ({msg})" for o, msg in self.load_errors)
            raise BrokenPluginError(f"{message}; note: {failures}")
        raise GanbenchError(message)

    def blame(self, tb) -> PluginEntry | None:
        """The plugin whose code raised: the innermost traceback frame inside a registered plugin's module."""
        by_module: dict[str, list[PluginEntry]] = {}
        for entry in self.entries():
            by_module.setdefault(entry.cls.__module__, []).append(entry)
        frames = []
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            candidates = by_module.get(frame.f_globals.get("__name__"), [])
            owner = frame.f_locals.get("self")  # a method of a plugin: that plugin, not its module-mates
            for entry in candidates:
                if isinstance(owner, entry.cls):
                    return entry
            if candidates:
                return candidates[0]
        return None

    def resolve(self, kind: str, text: str) -> PluginRef:
        name, given = parse_spec(text)
        entry = self.get(kind, name)
        declared = {o.name: o for o in entry.options}
        values: dict[str, Any] = {o.name: o.default for o in entry.options}
        for key, raw in given.items():
            if key not in declared:
                known = closest_first(key, declared)
                listing = ", ".join(f"{k} ({declared[k].type_name})" for k in known) or "none"
                raise GanbenchError(f"{kind} '{name}' has no option '{key}'; its options: {listing}")
            try:
                values[key] = declared[key].parse(raw)
            except ValueError as exc:
                raise GanbenchError(
                    f"bad value {raw!r} for option '{key}' of {kind} '{name}': {exc} "
                    f"({declared[key].help or declared[key].type_name})"
                ) from None
        defaults = tuple((o.name, o.default) for o in entry.options)
        return PluginRef(kind, name, tuple(values.items()), defaults)

    def create(self, ref: PluginRef) -> Any:
        """A fresh plugin object configured with the ref's option values."""
        return self.get(ref.kind, ref.name).cls(**ref.config)


class BrokenPluginError(GanbenchError):
    """The requested plugin exists but failed to load or register; only the cells using it fail."""


def _registration_problem(kind: str, cls: Any, name: Any) -> str | None:
    base = BASE_CLASS[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} as a {kind}, but it is not a subclass of ganbench.{base.__name__}"
    if not isinstance(name, str) or not valid_name(name):
        return f"a {kind} with invalid name {name!r}: use lowercase letters, digits and '-' (e.g. 'freeze-d')"
    if kind == "metric" and (problem := _columns_problem(cls, name)):
        return problem
    seen: set[str] = set()
    for option in cls.declared_options():
        if not isinstance(option, Option):
            return f"{kind} '{name}' with option {option!r}, which is not a ganbench.Option"
        if not option.name.isidentifier() or option.name in seen:
            return f"{kind} '{name}' with a duplicate or invalid option name {option.name!r}"
        seen.add(option.name)
        if option.default is None:
            continue  # None means "not set"
        try:
            option.validate(option.default)
        except ValueError as exc:
            return (
                f"{kind} '{name}' declaring option '{option.name}' with an invalid default {option.default!r} ({exc})"
            )
    return None


def _columns_problem(cls: Any, name: str) -> str | None:
    columns = getattr(cls, "columns", ())
    if not isinstance(columns, tuple) or not columns:
        return f"metric '{name}' without columns: declare columns = (ganbench.Column(NAME, lower_is_better), ...)"
    names = [getattr(c, "name", None) for c in columns]
    for column in columns:
        if not isinstance(column, Column):
            return f"metric '{name}' with column {column!r}, which is not a ganbench.Column"
        if not column.name.isidentifier() or names.count(column.name) > 1:
            return f"metric '{name}' with a duplicate or invalid column name {column.name!r}"
        if column.lower_is_better not in (True, False, None):
            return f"metric '{name}' column '{column.name}': lower_is_better must be True, False or None"
    return None
