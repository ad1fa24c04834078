import torch

from ganbench.execute.timing import PhaseTimer, StepTimer, device_name


def test_step_timer_records_every_step_on_cpu():
    timer = StepTimer(torch.device("cpu"))
    for _ in range(3):
        with timer.step():
            torch.randn(64, 64) @ torch.randn(64, 64)
    durations = timer.durations_ms()
    assert len(durations) == 3 and all(d > 0 for d in durations)
    assert timer.total_seconds() == sum(durations) / 1000
    assert min(durations) <= timer.median_ms() <= max(durations)


def test_phase_timer_accumulates():
    timer = PhaseTimer(torch.device("cpu"))
    with timer:
        pass
    first = timer.seconds
    with timer:
        sum(range(10000))
    assert timer.seconds > first >= 0


PEAK_PROBE = """
import time, torch
from ganbench.execute.timing import PeakMemory
with PeakMemory(torch.device("cpu"), interval_s=0.001) as baseline:
    pass
with PeakMemory(torch.device("cpu"), interval_s=0.001) as meter:
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    block.add_(1)
    time.sleep(0.01)
print(meter.kind, baseline.peak_mb, meter.peak_mb)
"""


def test_peak_memory_sees_a_large_allocation():
    # a fresh process: in a long test session the allocator may serve 64 MiB from pages it already holds
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True, timeout=120, check=True)
    kind, baseline, peak = out.stdout.split()
    assert kind == "cpu_peak_rss"
    assert float(peak) >= float(baseline) + 32


def test_device_name_mentions_cpu():
    assert device_name(torch.device("cpu")).startswith("cpu (")
