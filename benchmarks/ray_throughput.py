"""Cells per hour of the default grid: the Ray executor with N one-CPU workers against the local executor, side
by side in one script. (Goal: N Ray workers reach at least 0.85 * N times the throughput of one worker.)

    python benchmarks/ray_throughput.py [--workers 2] [--cache DIR] [--work DIR] [--json FILE]
                                        [--strategy LIST] [--finetune-steps N]

First a warm-up run puts the default grid's source model and reference features in the cache, so that every
measured run pays only for its cells. Then, each in a fresh process and run folder, with nothing else running:

- ``local, N threads``: the local executor, one cell at a time, torch on N threads (what a user gets today);
- ``ray, N x 1 CPU``: ``--executor ray --cpus-per-cell 1 --max-concurrent N`` on a Ray cluster started for the
  run (its start-up is part of the wall time);
- ``ray, 1 x 1 CPU``: one Ray worker (``--max-concurrent 1``): Ray's own scaling is N workers against this;
- ``local, 1 thread``: one worker's throughput without Ray, the baseline of the goal.

Cells per hour is cells / wall seconds of the whole ``ganbench run matrix`` process * 3600. The one-thread runs
(Ray's workers and the last one) must give identical FIDs: a cell depends only on its cell and context.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.85


def ganbench(*args: str, threads: int | None = None) -> float:
    """Run ``ganbench ARGS`` in a fresh process; its wall seconds."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ganbench.cli", *args], check=True, env=env)
    return time.perf_counter() - start


def records(out: Path) -> list[dict]:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return [json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (one CPU each) and local threads")
    parser.add_argument("--cache", type=Path, help="cache root (default: a fresh one under --work)")
    parser.add_argument("--work", type=Path, help="where the run folders go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--strategy", help="strategies instead of the default grid's (a quicker check)")
    parser.add_argument("--finetune-steps", type=int, help="fine-tuning steps instead of the default grid's")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ganbench-ray-bench-"))
    cache = args.cache or work / "cache"
    grid = [*(["--strategy", args.strategy] if args.strategy else []),
            *(["--finetune-steps", str(args.finetune_steps)] if args.finetune_steps else [])]  # fmt: skip
    common = ["run", "matrix", *grid, "--cache", str(cache), "--quiet"]
    n = args.workers

    print("warm-up: source model and reference features into the cache ...", flush=True)
    ganbench("run", "matrix", "--strategy", "finetune", "--no-baseline", "--finetune-steps", "1", "--eval-every", "0",
             "--cache", str(cache), "--out", str(work / "warm-up"), "--quiet")  # fmt: skip

    runs = [
        (f"local, {n} threads", ["--out", str(work / "local-n")], n),
        (
            f"ray, {n} x 1 CPU",
            ["--out", str(work / "ray"), "--executor", "ray", "--cpus-per-cell", "1", "--max-concurrent", str(n)],
            None,
        ),  # fmt: skip
        (
            "ray, 1 x 1 CPU",
            ["--out", str(work / "ray-1"), "--executor", "ray", "--cpus-per-cell", "1", "--max-concurrent", "1"],
            None,
        ),  # fmt: skip
        ("local, 1 thread", ["--out", str(work / "local-1")], 1),
    ]
    measured = []
    for label, extra, threads in runs:
        print(f"{label} ...", flush=True)
        seconds = ganbench(*common, *extra, threads=threads)
        cells = records(Path(extra[1]))
        assert all(r["status"] == "ok" for r in cells), [r.get("error") for r in cells]
        measured.append({"run": label, "cells": len(cells), "wall_s": seconds, "cells_per_hour": len(cells) / seconds * 3600,
                         "device_s": sum(r["finetune_s"] + r["eval_s"] for r in cells),
                         "fid": {r["strategy"]: r["fid"] for r in cells},
                         "shared": max(r.get("device_shared_by") or 1 for r in cells)})  # fmt: skip

    one = measured[-1]["cells_per_hour"]
    print(f"\n{'run':<18} {'cells':>5} {'wall s':>8} {'cells/hour':>10} {'x one worker':>12} {'cells/device':>12}")
    for m in measured:
        m["vs_one_worker"] = m["cells_per_hour"] / one
        print(f"{m['run']:<18} {m['cells']:>5} {m['wall_s']:>8.1f} {m['cells_per_hour']:>10.2f} "
              f"{m['vs_one_worker']:>12.2f} {m['shared']:>12}")  # fmt: skip
    ray, local_n = measured[1], measured[0]
    same = ray["fid"] == measured[-1]["fid"] == measured[2]["fid"]
    print(f"\nray with {n} workers: {ray['vs_one_worker']:.2f}x one worker (goal >= {GOAL * n:.2f}x: "
          f"{'met' if ray['vs_one_worker'] >= GOAL * n else 'not met'}); {ray['cells_per_hour'] / local_n['cells_per_hour']:.2f}x "
          f"the local executor on {n} threads")  # fmt: skip
    print(f"ray with {n} workers: {ray['cells_per_hour'] / measured[2]['cells_per_hour']:.2f}x one Ray worker")
    print(f"FIDs of the one-thread cells, Ray vs local: {'identical' if same else 'DIFFERENT'}")
    if args.json:
        import ray as ray_module
        import torch

        about = {"workers": n, "goal": GOAL * n, "identical_fids": same, "ray_version": ray_module.__version__,
                 "torch_version": torch.__version__, "cpu_count": os.cpu_count()}  # fmt: skip
        args.json.write_text(json.dumps({**about, "runs": measured}, indent=2))


if __name__ == "__main__":
    main()
