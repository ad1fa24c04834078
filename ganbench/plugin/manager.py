"""The plugin manager: built-in and installed plugins (entry-point group ``ganbench``) and local
one-file plugins (``--plugins-dir`` / ``$GANBENCH_PLUGINS_DIR``), loaded into a :class:`Registry`."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pluggy

from ganbench.context import RunContext, current_context
from ganbench.errors import GanbenchError
from ganbench.files import as_user_file_error
from ganbench.plugin import hookspecs
from ganbench.plugin.registry import Origin, Registry

GROUP = "ganbench"
HOOKS = {
    "architecture": "register_architectures",
    "strategy": "register_strategies",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "augmentation": "register_augmentations",
}


def load_registry(plugins_dirs: Sequence[str | os.PathLike] = (), context: RunContext | None = None) -> Registry:
    """Every plugin: installed entry points (only the distributions the context allows, all by default), then
    the ``*.py`` files in ``plugins_dirs`` and in the context's plugins dirs. Without a context, the active
    one, or one from the environment (``$GANBENCH_PLUGINS_DIR``, ``$GANBENCH_LOAD_PLUGINS``)."""
    ctx = context or current_context()
    dirs = tuple(str(Path(d).expanduser().resolve()) for d in plugins_dirs)
    return _load_registry(tuple(dict.fromkeys((*dirs, *ctx.plugins_dirs))), ctx.load_plugins)


@functools.lru_cache(maxsize=16)
def _load_registry(dirs: tuple[str, ...], only: tuple[str, ...] | None) -> Registry:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    origins: dict[str, Origin] = {}
    for name, module, origin in _entry_point_plugins(only, registry):
        pm.register(module, name=name)
        origins[name] = origin
    for path in _plugin_files(dirs):
        origin = Origin(module=_file_module_name(path), file=str(path))
        try:
            module = _import_file(path, origin.module)
        except Exception as exc:  # a broken plugin must not take the others down
            registry.load_errors.append((origin, f"{type(exc).__name__}: {exc}"))
            continue
        pm.register(module, name=origin.module)
        origins[origin.module] = origin
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        origin = origins.get(pm.get_name(exc.plugin) or "", exc.plugin)
        raise GanbenchError(f"{origin}: {exc}; the hooks are {', '.join(HOOKS.values())}") from None
    for kind, hook_name in HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            origin = origins[impl.plugin_name]
            register = functools.partial(_register, registry, kind, origin)
            try:
                impl.function(register=register)
            except GanbenchError:
                raise
            except Exception as exc:
                registry.load_errors.append((origin, f"{hook_name} raised {type(exc).__name__}: {exc}"))
    return registry


def _register(registry: Registry, kind: str, origin: Origin, cls: type) -> None:
    registry.add(kind, cls, origin)


def _entry_point_plugins(allowed: tuple[str, ...] | None, registry: Registry):
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else None
        if allowed is not None and (dist_name or "").lower() not in allowed:
            continue
        origin = Origin(module=ep.value, distribution=dist_name, version=dist.version if dist else None)
        try:
            module = ep.load()
        except Exception as exc:
            registry.load_errors.append((origin, f"{type(exc).__name__}: {exc}"))
            continue
        yield f"{dist_name}:{ep.name}", module, origin


def _plugin_files(dirs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        path = Path(d)
        if not path.is_dir():
            raise GanbenchError(f"plugins directory {d} does not exist; pass an existing folder of *.py files")
        # test_*.py files sit beside plugins (the scaffold writes one) and are not plugins themselves
        files += sorted(p for p in path.glob("*.py") if not p.name.startswith(("_", "test_")))
    return files


def _file_module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return f"ganbench_local_{path.stem.replace('-', '_')}_{digest}"


def _import_file(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def refuse_broken_files(registry: Registry) -> None:
    """Refuse a grid run while a ``--plugins-dir`` file failed to load (it does not import, its hook raised, it
    registered something that is not a plugin): the user's own file, named on this command, is fixed before
    anything runs, rather than only the cells that name its plugins failing. Installed plugins that fail still
    mark only their cells (``ganbench plugins`` warns of every failure and lists the rest)."""
    failed = [(origin, message) for origin, message in registry.load_errors if origin.file]
    if not failed:
        return
    origin, message = failed[0]
    more = f" (and {len(failed) - 1} more: ganbench plugins lists them)" if len(failed) > 1 else ""
    what = message if message.startswith(str(origin)) else f"{origin} failed to load: {message}"
    raise GanbenchError(f"plugin {what}{more}; fix it or move it out of the plugins folder")


def describe_failure(exc: BaseException, context: RunContext) -> str:
    """One line naming the plugin whose code raised (kind, name, origin), when it was a plugin's; an OS error
    that names a file is the file's (one line naming it), whoever's code met it."""
    file_error = as_user_file_error(exc)
    if file_error is not None:
        return str(file_error)
    message = str(exc) if isinstance(exc, GanbenchError) else f"{type(exc).__name__}: {exc}"
    message = " ".join(message.split())  # one line, whatever the exception said
    entry = load_registry(context=context).blame(exc.__traceback__)
    if entry is None or isinstance(exc, GanbenchError) and entry.name in message:
        return message
    return f"{entry.kind} '{entry.name}' ({entry.origin}) raised {message}"
