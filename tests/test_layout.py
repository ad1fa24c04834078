"""The house rules, read from the source: every import points down the layers (or sideways within one), plugins
use only ganbench's public API and never each other (but for the dependencies declared here), the core never
imports a built-in plugin, no module takes another's private name, modules import each other without cycles,
only the run context reads the environment, and the public API module is nothing but the API."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import ganbench

ROOT = Path(__file__).parents[1]
CORE = ROOT / "ganbench"
PLUGINS = ROOT / "plugins"
EXAMPLE = ROOT / "examples" / "ganbench-l2sp" / "ganbench_l2sp"
ENVIRONMENT_READER = "ganbench.context"


def module_name(path: Path) -> str:
    if path.is_relative_to(CORE):
        parts = ("ganbench", *path.relative_to(CORE).with_suffix("").parts)
    elif path.is_relative_to(PLUGINS):
        parts = ("ganbench_plugins", *path.relative_to(PLUGINS).with_suffix("").parts)
    else:
        parts = ("ganbench_l2sp", *path.relative_to(EXAMPLE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(*folders: Path) -> dict[str, ast.Module]:
    return {
        module_name(p): ast.parse(p.read_text(), str(p)) for folder in folders for p in sorted(folder.rglob("*.py"))
    }


ALL = sources(CORE, PLUGINS, EXAMPLE)
CORE_MODULES = {name: tree for name, tree in ALL.items() if name.split(".")[0] == "ganbench"}
PLUGIN_MODULES = {name: tree for name, tree in ALL.items() if name.split(".")[0] != "ganbench"}


def imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(module, names taken from it, line) for every import, top-level or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def is_ours(module: str) -> bool:
    return module.split(".")[0] in ("ganbench", "ganbench_plugins", "ganbench_l2sp")


#: ganbench's layers, bottom first (docs/architecture.md draws them): a module imports modules of its own layer
#: or of the layers below it, never above. A module belongs to the longest entry its name starts with.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ganbench.errors", "ganbench.files"),  # one-line errors, and the boundary that words the user's file errors
    # the run context (checkpoint policy, device check: fixed once per run) and the network policy it sets
    ("ganbench.context", "ganbench.net"),
    ("ganbench.store",),  # hashes, atomic writes, locks, records and run folders
    ("ganbench.plugin",),  # contracts, options, the registry and its loader, shared weights
    ("ganbench.data", "ganbench.metrics"),  # what every dataset and metric shares
    ("ganbench.grid",),  # what to run: grids, cells, their ids
    ("ganbench.execute",),  # running it: plan, pretrain, cell, executors, driver
    ("ganbench.report",),  # leaderboards, renderers, pictures
    ("ganbench.cli", "ganbench.testing", "ganbench"),  # the commands, the plugin authors' checks, the public API
)

#: the built-in plugins that deliberately build on another built-in plugin, each with its reason; any other
#: import of ``ganbench_plugins`` by a plugin fails (what plugins share belongs in ganbench's public API)
PLUGIN_DEPENDENCIES = {
    ("ganbench_plugins.architectures.projected", "ganbench_plugins.architectures.dcgan"):
        "projected's generator is dcgan's generator (its options give G's defaults)",
    ("ganbench_plugins.architectures.projected", "ganbench_plugins.architectures.resnet_sngan"):
        "projected's generator=resnet is resnet-sngan's generator",
}  # fmt: skip


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of the longest entry ``module`` is or lies under."""
    best, index = "", -1
    for i, entries in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > len(best):
                best, index = entry, i
    assert index >= 0, f"{module} is in no layer of tests/test_layout.py's LAYERS: add it where it belongs"
    return index


def imported_modules(module: str, names: list[str], known: dict) -> list[str]:
    """``from pkg import sub`` imports the module ``pkg.sub``; ``from mod import name``, ``mod``."""
    return [f"{module}.{n}" for n in names if f"{module}.{n}" in known] or [module]


def upward_imports(modules: dict[str, ast.Module]) -> list[str]:
    """Every import of a core module that points up the layers, as ``module:line imports target (layer a < b)``."""
    found = []
    for name, tree in sorted(modules.items()):
        for module, names, line in imports(tree):
            if module.split(".")[0] != "ganbench":
                continue
            for target in imported_modules(module, names, modules):
                if target != name and layer_of(target) > layer_of(name):
                    found.append(f"{name}:{line} imports {target}, a layer above it "
                                 f"({' / '.join(LAYERS[layer_of(name)])} < {' / '.join(LAYERS[layer_of(target)])})")  # fmt: skip
    return found


def test_every_core_module_has_a_layer():
    for name in CORE_MODULES:
        layer_of(name)


def test_every_import_points_down_or_sideways():
    upward = upward_imports(CORE_MODULES)
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_the_layer_check_catches_an_upward_import():
    """The check itself: a store module that imports the report layer, as a scratch copy of the tree would."""
    scratch = dict(CORE_MODULES)
    scratch["ganbench.store.records"] = ast.parse("from ganbench.report.plots import plot_curves\n")
    assert upward_imports(scratch) == [
        "ganbench.store.records:1 imports ganbench.report.plots, a layer above it (ganbench.store < ganbench.report)"
    ]


@pytest.mark.parametrize("name", sorted(PLUGIN_MODULES))
def test_plugins_never_import_each_other_but_as_declared(name):
    for module, names, line in imports(PLUGIN_MODULES[name]):
        if module.split(".")[0] != "ganbench_plugins":
            continue
        for target in imported_modules(module, names, PLUGIN_MODULES):
            assert (name, target) in PLUGIN_DEPENDENCIES, (
                f"{name}:{line} imports {target}: a plugin imports only `ganbench`; move what they share into "
                "ganbench's public API, or declare the dependency with its reason in PLUGIN_DEPENDENCIES"
            )


def test_the_declared_plugin_dependencies_are_real():
    for name, target in PLUGIN_DEPENDENCIES:
        found = {
            t
            for module, names, _ in imports(PLUGIN_MODULES[name])
            for t in imported_modules(module, names, PLUGIN_MODULES)
        }
        assert target in found, f"{name} no longer imports {target}: drop it from PLUGIN_DEPENDENCIES"


def test_the_sources_were_found():
    assert {"ganbench", "ganbench.context", "ganbench.report.leaderboard"} <= set(CORE_MODULES)
    assert {"ganbench_plugins.strategies.freeze_d", "ganbench_l2sp"} <= set(PLUGIN_MODULES)


@pytest.mark.parametrize("name", sorted(PLUGIN_MODULES))
def test_plugins_use_nothing_of_ganbench_but_its_public_api(name):
    public = set(ganbench.__all__)
    for module, names, line in imports(PLUGIN_MODULES[name]):
        if module.split(".")[0] != "ganbench":
            continue
        assert module == "ganbench", f"{name}:{line} imports {module}; plugins import only `ganbench`"
        assert set(names) <= public, f"{name}:{line} imports {sorted(set(names) - public)}, not in ganbench.__all__"
    attributes = {
        node.attr
        for node in ast.walk(PLUGIN_MODULES[name])
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ganbench"
    }
    assert attributes <= public, f"{name} uses ganbench.{sorted(attributes - public)}, not in ganbench.__all__"


@pytest.mark.parametrize("name", sorted(CORE_MODULES))
def test_the_core_never_imports_a_built_in_plugin(name):
    for module, _, line in imports(CORE_MODULES[name]):
        assert not module.startswith("ganbench_plugins"), f"{name}:{line} imports {module}"


@pytest.mark.parametrize("name", sorted(ALL))
def test_no_module_takes_another_modules_private_names(name):
    tree = ALL[name]
    aliases = {}  # local name -> one of our modules
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_ours(alias.name):
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and is_ours(node.module):
            for alias in node.names:
                assert not alias.name.startswith("_"), f"{name}:{node.lineno} imports {node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in ALL:  # a module imported from its package
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            assert not private, f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}"


def test_modules_import_each_other_without_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for name, tree in CORE_MODULES.items():
        for module, names, _ in imports(tree):
            if not module.startswith("ganbench"):
                continue
            # `from ganbench.plugin import hookspecs` imports a module; `from ganbench.x import name`, module x
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in CORE_MODULES] or [module]
            graph[name].update(t for t in targets if t in CORE_MODULES and t != name)
    graph.pop("ganbench", None)  # the public API imports everything; nothing below it imports it
    for name, targets in graph.items():
        assert "ganbench" not in targets, f"{name} imports the package's public API: import the module instead"
    cycle = _a_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("name", sorted(ALL))
def test_only_the_run_context_reads_the_environment(name):
    if name == ENVIRONMENT_READER:
        return
    for node in ast.walk(ALL[name]):
        reads = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")) or (
            isinstance(node, ast.Name) and node.id in ("environ", "getenv")
        )
        assert not reads, f"{name}:{node.lineno} reads the environment; take the value from the run context"


def test_the_public_api_module_is_the_api_and_nothing_else():
    tree = CORE_MODULES["ganbench"]
    body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body  # the docstring
    kinds = {type(node) for node in body}
    assert kinds <= {ast.ImportFrom, ast.Assign}, kinds
    [exported] = [node for node in body if isinstance(node, ast.Assign)]
    assert [t.id for t in exported.targets] == ["__all__"]
    imported = {alias.asname or alias.name for node in body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == set(ganbench.__all__)
    assert all(getattr(ganbench, name) is not None for name in ganbench.__all__)


@pytest.mark.parametrize(
    "name",
    sorted(
        n for n in CORE_MODULES if n != "ganbench" and (CORE / "/".join(n.split(".")[1:]) / "__init__.py").is_file()
    ),
)
def test_subpackages_say_what_they_hold_and_nothing_else(name):
    tree = CORE_MODULES[name]
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), f"{name}/__init__.py holds code"
    assert ast.get_docstring(tree), f"{name}/__init__.py has no docstring"


def module_map() -> set[str]:
    """The paths the first column of docs/architecture.md's module map names (``a.py``, ``a/``, ``a.py``, ``b.py``)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc.split("## Module map", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {path for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)}


def test_every_module_is_in_the_architecture_map():
    listed = module_map()
    for name in CORE_MODULES:
        path = "/".join(name.split(".")[1:]) or "__init__"
        assert f"{path}.py" in listed or f"{path}/" in listed, f"docs/architecture.md does not list {path}"


def test_the_architecture_map_lists_only_modules_that_exist():
    for path in module_map():
        assert (CORE / path).exists(), f"docs/architecture.md's module map lists {path}, which is not in ganbench/"
