"""Kill a small grid with SIGKILL at random moments and rerun it: how many reruns end with exactly the numbers
of an uninterrupted run? (Goal: all of them.)

    python benchmarks/kill_resume.py [--trials 20] [--seed 0] [--work DIR] [--json FILE]

The grid is tiny-digits (the test suite's 48-image target, from tests/plugins_fixture) with a source model
pretrained for 400 steps, three strategies fine-tuned for 40 steps, evaluated every 10 and checkpointed every
5. First it runs twice without faults (the second run, on a warm cache, sets the time window the kills are
drawn from and checks that two processes agree); then each trial starts the grid with a cache holding the
prepared data and reference features but no source model, kills the process at a uniformly drawn moment of
that window, reruns the same command until it completes, and compares every cell's FID, KID, curve and loss
curves with the uninterrupted run's. Where the kill landed is read off the files it left behind.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--arch=dcgan:width=8", "--source=digits:classes=2-4", "--target=tiny-digits", "--shots=8", "--seeds=0",
        "--strategy=finetune,freeze-d", "--pretrain-steps=400", "--finetune-steps=40", "--batch-size=4",
        "--eval-samples=8", "--eval-every=10", "--metrics=fid,kid", "--checkpoint-every=5",
        f"--plugins-dir={ROOT / 'tests' / 'plugins_fixture'}", "--quiet"]  # fmt: skip
COMPARED = ("status", "fid", "kid", "curve", "losses")


def command(out: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "ganbench.cli", "run", "matrix", *GRID, "--out", str(out), "--cache", str(cache)]


def records(out: Path) -> dict[str, dict]:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return {p.stem: json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))}


def where(out: Path, cache: Path) -> str:
    """Which phase the kill hit, from the files it left."""
    if not out.exists() or not any(out.iterdir()):
        return "planning / reference"
    if not list((cache / "pretrain").glob("*/meta.json")):
        return "pretraining" + (" (after a checkpoint)" if list((cache / "pretrain").glob("*/resume.pt")) else "")
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    done = len(list((run_dir / "cells").glob("*.json")))
    pending = len(list((run_dir / "checkpoints").glob("*.pt")))
    return f"cells: {done} recorded" + (", one checkpointed mid-cell" if pending else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the trials as JSON here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ganbench-kill-"))
    env_note = "(GANBENCH_LOAD_PLUGINS and the rest of the environment are passed through)"

    base_cache = work / "cache"
    subprocess.run(command(work / "whole", base_cache), check=True, capture_output=True)
    expected = records(work / "whole")
    warm = work / "warm-cache"
    shutil.copytree(base_cache, warm, ignore=shutil.ignore_patterns("pretrain"))
    start = time.monotonic()
    subprocess.run(command(work / "again", warm), check=True, capture_output=True)
    window = time.monotonic() - start
    again = records(work / "again")
    agree = all(again[c][k] == expected[c][k] for c in expected for k in COMPARED)
    print(f"uninterrupted: {len(expected)} cells; a second process on a warm cache took {window:.1f} s and "
          f"{'agrees' if agree else 'DISAGREES'} with the first {env_note}")  # fmt: skip

    rng = random.Random(args.seed)
    trials, identical = [], 0
    for trial in range(1, args.trials + 1):
        out, cache = work / f"trial-{trial}", work / f"trial-{trial}-cache"
        for _attempt in range(10):  # a kill drawn after the run's end misses: the window shrinks, draw again
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(base_cache, cache, ignore=shutil.ignore_patterns("pretrain"))
            at = rng.uniform(0.5, 0.95 * window)
            began = time.monotonic()
            process = subprocess.Popen(command(out, cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                process.wait(timeout=at)
                window = time.monotonic() - began  # the machine got faster: runs take this long now
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                break
        hit = where(out, cache)
        rerun = subprocess.run(command(out, cache), capture_output=True, text=True)
        got = records(out) if out.exists() else {}
        same = rerun.returncode == 0 and set(got) == set(expected) and all(
            got[c][k] == expected[c][k] for c in expected for k in COMPARED
        )  # fmt: skip
        resumed = sum(r.get("resumes") or 0 for r in got.values())
        redone = sum(r.get("steps_redone") or 0 for r in got.values())
        identical += same
        trials.append({"trial": trial, "kill_at_s": round(at, 2), "hit": hit, "identical": same,
                       "cells_resumed": resumed, "steps_redone": redone, "rerun_exit": rerun.returncode})  # fmt: skip
        print(
            f"trial {trial:2d}: killed at {at:5.1f} s in {hit}; rerun exit {rerun.returncode}, "
            f"{resumed} cell(s) resumed, {redone} step(s) redone: {'identical' if same else 'DIFFERENT'}"
        )
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    print(f"\n{identical}/{args.trials} killed runs completed with results identical to the uninterrupted run")
    if args.json:
        args.json.write_text(json.dumps({"window_s": window, "processes_agree": agree, "trials": trials}, indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if identical == args.trials and agree else 1)


if __name__ == "__main__":
    main()
