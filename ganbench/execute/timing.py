"""Timers and memory meters that are honest on both CPU and GPU.

On CUDA, kernels run asynchronously: a wall clock read after launching a step measures the launch, not the
work. So steps are bracketed with ``torch.cuda.Event`` pairs and the device is synchronized only when the
durations are read (at measurement boundaries, never every step). On CPU, ``time.perf_counter`` is exact.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time

import torch


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


class StepTimer:
    """Collects per-step durations. ``with timer.step(): ...`` around each step."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._cpu_ms: list[float] = []

    def step(self) -> _StepContext:
        return _StepContext(self)

    def durations_ms(self) -> list[float]:
        """All step durations so far (synchronizes the device once, on CUDA)."""
        if self.cuda and self._events:
            self._events[-1][1].synchronize()
            self._cpu_ms.extend(start.elapsed_time(end) for start, end in self._events)
            self._events.clear()
        return list(self._cpu_ms)

    def restore_ms(self, durations: list[float]) -> None:
        """Continue after the steps a checkpoint timed (their durations count as if measured here)."""
        self._cpu_ms[:0] = list(durations)

    def total_seconds(self) -> float:
        return sum(self.durations_ms()) / 1000.0

    def median_ms(self) -> float:
        durations = self.durations_ms()
        return statistics.median(durations) if durations else float("nan")


class _StepContext:
    def __init__(self, timer: StepTimer) -> None:
        self.timer = timer

    def __enter__(self) -> None:
        if self.timer.cuda:
            self.start = torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.start_s = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self.timer.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self.timer._events.append((self.start, end))
        else:
            self.timer._cpu_ms.append((time.perf_counter() - self.start_s) * 1000.0)


class PhaseTimer:
    """Wall time of a phase that ends with a synchronization anyway (evaluation, pretraining)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0

    def __enter__(self) -> PhaseTimer:
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._start

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class PeakMemory:
    """Peak memory of a block, in MiB: CUDA's max allocated bytes on GPU; on CPU the process's peak
    resident set, sampled every 20 ms (``kind`` says which was measured)."""

    def __init__(self, device: torch.device, interval_s: float = 0.02) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak_mb = float("nan")
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss"

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self._peak, _rss_bytes()) / 2**20


class PhaseMemory:
    """Peak memory per phase of a job (``adapt``, ``train``, ``eval``), in MiB: ``phase(name)`` says which phase
    runs from now on. On CUDA the allocator's peak is read and reset at each switch (no synchronization); on
    the CPU the process's resident set is sampled every 20 ms and charged to the running phase, so a phase's
    peak includes what earlier phases left resident (models, the Inception network)."""

    def __init__(self, device: torch.device, interval_s: float = 0.02) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peaks: dict[str, float] = {}
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss"
        self._current: str | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> PhaseMemory:
        if self.device.type != "cuda":
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def phase(self, name: str) -> None:
        self._close()
        self._current = name
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._charge(_rss_bytes())

    def restore(self, peaks: dict[str, float]) -> None:
        """Peaks measured before a resumption count too."""
        for name, mb in peaks.items():
            self.peaks[name] = max(self.peaks.get(name, 0.0), float(mb))

    def __exit__(self, *exc) -> None:
        self._close()
        self._current = None
        if self.device.type != "cuda":
            self._stop.set()
            self._thread.join()

    def _close(self) -> None:
        if self._current is None:
            return
        if self.device.type == "cuda":
            mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.peaks[self._current] = max(self.peaks.get(self._current, 0.0), mb)
        else:
            self._charge(_rss_bytes())

    def _charge(self, rss: int) -> None:
        with self._lock:
            if self._current is not None:
                mb = rss / 2**20
                self.peaks[self._current] = max(self.peaks.get(self._current, 0.0), mb)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._charge(_rss_bytes())

    def peak(self, *names: str) -> float:
        values = [self.peaks[n] for n in names if n in self.peaks]
        return max(values) if values else float("nan")


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the process's lifetime peak is the best we have
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024
