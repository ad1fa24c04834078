"""Run ``ganbench ARGS...`` in this process with one fault injected, as the fault-injection tests need it:

    python fault_run.py POINT N -- ARGS...

POINT is where the process dies (SIGKILL, as a crash or a pre-empted node would) or is interrupted (SIGINT,
as Ctrl-C); N counts the occurrences of that point in this process:

- ``step``: at the N-th optimizer step (pretraining and cells alike: each training step makes two)
- ``sigint``: SIGINT at the N-th optimizer step (the run should exit 130, resumable)
- ``sigterm``: SIGTERM at the N-th optimizer step (the run should exit 143, resumable)
- ``record``: half-way through writing the N-th cell record (a torn temp file is left behind)
- ``checkpoint``: half-way through writing the N-th checkpoint
- ``after-record``: right after the N-th cell record is written, before its checkpoint is removed
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch


def die(sig: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def torn(path: Path, data: bytes) -> None:
    """Leave half of ``data`` in a temp file beside ``path`` (as a killed atomic write does), then die."""
    tmp = path.parent / f".{path.name}.killed.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data[: len(data) // 2])
    die()


def install(point: str, n: int) -> None:
    count = {"n": 0}

    def hit() -> bool:
        count["n"] += 1
        return count["n"] == n

    if point in ("step", "sigint", "sigterm"):
        original_step = torch.optim.Adam.step

        def step(self, *args, **kwargs):
            if hit():
                die({"step": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}[point])
            return original_step(self, *args, **kwargs)

        torch.optim.Adam.step = step
    elif point in ("record", "after-record"):
        import ganbench.store.records as records

        original_json = records.atomic_write_json

        def write_json(path, data, *more):  # more: what / fix, passed on
            path = Path(path)
            if path.parent.name == "cells" and hit():
                if point == "record":
                    import json

                    torn(path, json.dumps(data, default=str).encode())
                original_json(path, data, *more)
                die()
            return original_json(path, data, *more)

        records.atomic_write_json = write_json
    elif point == "checkpoint":
        import io

        import ganbench.execute.checkpoint as checkpoint

        original_save = checkpoint.atomic_torch_save

        def save(path, obj, *more):
            if hit():
                buffer = io.BytesIO()
                torch.save(obj, buffer)
                torn(Path(path), buffer.getvalue())
            return original_save(path, obj, *more)

        checkpoint.atomic_torch_save = save
    else:
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    point, n, separator, *args = sys.argv[1:]
    assert separator == "--"
    # a process started in the background inherits SIGINT ignored; a user's Ctrl-C reaches a foreground one
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install(point, int(n))
    from ganbench.cli import main

    main(args)  # as the ganbench command runs (SIGTERM handled)
