"""The CUDA paths: event timing, allocator peak memory, a whole cell, Inception features, every architecture
with every strategy. These need a GPU; on machines without one they are skipped (CI has none), and they are
run on a GPU machine before a release (see benchmarks/README.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (this machine has none)"),
]

FIXTURE_PLUGINS = Path(__file__).parents[1] / "plugins_fixture"
CUDA = torch.device("cuda")


def test_step_timer_uses_events_and_measures_the_work():
    from ganbench.execute.timing import StepTimer

    timer = StepTimer(CUDA)
    a = torch.randn(4096, 4096, device=CUDA)
    torch.cuda.synchronize()
    wall = time.perf_counter()
    for _ in range(5):
        with timer.step():
            for _ in range(10):
                a = (a @ a).tanh_()
    assert len(timer._events) == 5  # nothing was read yet: no synchronization during the steps
    durations = timer.durations_ms()
    wall_ms = (time.perf_counter() - wall) * 1000
    assert len(durations) == 5 and all(d > 0 for d in durations)
    # the events measure the kernels (about the whole wall time once synchronized), not the launches
    assert 0.5 * wall_ms <= sum(durations) <= 1.05 * wall_ms


def test_peak_memory_is_the_allocator_peak():
    from ganbench.execute.timing import PeakMemory

    with PeakMemory(CUDA) as meter:
        block = torch.empty(256 * 2**20, dtype=torch.uint8, device=CUDA)
        del block
    assert meter.kind == "cuda_max_allocated"
    assert meter.peak_mb >= 256


def test_a_cell_runs_on_cuda(tmp_path):
    from ganbench.execute.driver import run_matrix
    from ganbench.grid.config import make_grid
    from ganbench.store.runs import load_records

    grid = make_grid(
        None, arch="dcgan:width=8", strategy="scratch,adapter", source="digits:classes=2-4", target="tiny-digits",
        shots=8, seeds="0", pretrain_steps=10, finetune_steps=4, batch_size=4, eval_samples=8, eval_every=2,
    )  # fmt: skip
    summary = run_matrix(grid, tmp_path, plugins_dirs=[FIXTURE_PLUGINS], device="cuda", progress=False)
    assert summary.failed == []
    records = load_records(summary.run_dir)
    assert len(records) == 2
    for record in records:
        assert record["device"] == torch.cuda.get_device_name(0)
        assert record["peak_mem_kind"] == "cuda_max_allocated" and record["peak_mem_mb"] > 0
        assert record["step_ms"] > 0 and record["fid"] > 0


def test_fid_on_cuda_matches_cpu():
    from ganbench.metrics.arithmetic import fid_from_features
    from ganbench.metrics.inception import get_extractor, resolve_inception_weights
    from ganbench.testing import fake_images

    weights = resolve_inception_weights()
    a, b = fake_images(24, 3, 32, seed=1), fake_images(24, 3, 32, seed=2)
    on_cpu, on_gpu = get_extractor(weights, "cpu"), get_extractor(weights, CUDA)
    cpu = fid_from_features(on_cpu.features(a), on_cpu.features(b))
    gpu = fid_from_features(on_gpu.features(a), on_gpu.features(b))
    assert gpu == pytest.approx(cpu, rel=1e-2)


@pytest.mark.parametrize("strategy", ["scratch", "finetune", "freeze-d", "freeze-g", "adapter", "scale-shift",
                                      "ewc", "cdc"])  # fmt: skip
def test_every_architecture_trains_on_cuda(registry, strategy):
    from ganbench.execute.training import TrainConfig, train_gan
    from ganbench.plugin.contracts import Nets
    from ganbench.testing import fake_source, source_generator

    for entry in registry.entries("architecture"):
        arch = registry.create(registry.resolve("architecture", entry.name))
        source = fake_source(arch)
        strat = registry.create(registry.resolve("strategy", strategy))
        torch.manual_seed(0)
        G, D = arch.build(32, 1)
        nets = strat.adapt(Nets(G.to(CUDA), D.to(CUDA)), source if strat.uses_source else None)
        nets = Nets(nets.G.to(CUDA), nets.D.to(CUDA))
        images = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8, device=CUDA)
        source_G = source_generator(source, arch).to(CUDA) if strat.needs().source else None
        result = train_gan(nets, strat, images, TrainConfig(2, 4, 2e-4, 0), progress=False, source_G=source_G)
        assert len(result.step_ms) == 2, entry.name
        assert all(p.device.type == "cuda" for p in nets.G.parameters()), entry.name


def test_ray_packs_cells_onto_the_gpu_and_records_the_sharing(ray_gpu_cluster, tmp_path):
    """With --gpus-per-cell 0.5, two cells train at once on the one GPU Ray assigns; records say so."""
    from tiny_settings import TINY_GRID

    from ganbench.context import RunContext
    from ganbench.execute.driver import run_matrix
    from ganbench.execute.ray_executor import RayExecutor
    from ganbench.grid.config import make_grid

    context = RunContext.from_environment(plugins_dirs=[FIXTURE_PLUGINS], device="auto")
    grid = make_grid(None, **{**TINY_GRID, "metrics": "fid,kid", "seeds": "0,1", "strategy": "finetune"})
    summary = run_matrix(grid, tmp_path, context=context, executor=RayExecutor(gpus_per_cell=0.5), progress=False)
    assert len(summary.records) == 4 and not summary.failed
    assert all(torch.cuda.get_device_name(0) in r["device"] for r in summary.records)
    assert {r["executor"] for r in summary.records} == {"ray"}
    assert max(r["device_shared_by"] for r in summary.records) == 2


@pytest.fixture(scope="module")
def ray_gpu_cluster(session_cache):
    """A Ray cluster of this machine's first GPU and 4 CPUs, for this module only (the CPU tests' cluster
    has no GPU)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
