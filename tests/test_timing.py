import torch

from ganbench.timing import PeakMemory, PhaseTimer, StepTimer, device_name


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


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(torch.device("cpu"), interval_s=0.001) as baseline:
        pass
    with PeakMemory(torch.device("cpu"), interval_s=0.001) as meter:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB
        block.add_(1)
        import time

        time.sleep(0.01)
    assert meter.kind == "cpu_peak_rss"
    assert meter.peak_mb >= baseline.peak_mb + 32
    del block


def test_device_name_mentions_cpu():
    assert device_name(torch.device("cpu")).startswith("cpu (")

