"""Step time and peak memory of every strategy relative to ``finetune``, on the same architecture and batch,
side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/strategy_cost.py                       # tiny stylegan2, CPU
    python benchmarks/strategy_cost.py --device cuda --arch stylegan2 --resolution 256 --channels 3 --batch 4

Every strategy trains from the same fake source (``ganbench.testing.fake_source``) on the same images, through
``train_gan`` as a cell runs it (the frozen source G where a strategy asks for it). Rounds are interleaved
(round r runs every strategy once, in a rotated order), so a machine that slows down mid-run slows every
strategy alike; each round trains ``--steps`` steps after ``--warmup``, and a strategy's step time is the median
over all its measured steps. A probing phase is timed apart (``probe s``) and excluded from the step time.
Peak memory: on CUDA the allocator's peak over each strategy's training (reset before it); on the CPU the peak
resident set of a child process that trains that strategy alone (sampled every 5 ms while it trains; every child
imports and builds the same, so the differences are the strategy's).

Goals (issue 24): strategies that ask the loop for nothing run at finetune's speed (ratio within 2 %); each
feature-level method at most 1.5x finetune's step time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import torch

from ganbench import Nets
from ganbench.execute.passes import build_source_generator
from ganbench.execute.timing import PhaseMemory
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.plugin.manager import load_registry
from ganbench.testing import fake_images, fake_source

TINY = "stylegan2:width=32,style_dim=64,n_mlp=2"


def _setup(args, name):
    registry = load_registry()
    arch = registry.create(registry.resolve("architecture", args.arch))
    strategy = registry.create(registry.resolve("strategy", name))
    source = fake_source(arch, args.resolution, args.channels) if strategy.uses_source else None
    torch.manual_seed(0)
    G, D = arch.build(args.resolution, args.channels)
    device = torch.device(args.device)
    nets = strategy.adapt(Nets(G.to(device), D.to(device)), source)
    nets = Nets(nets.G.to(device), nets.D.to(device))
    source_G = None
    if strategy.needs().source:
        source_G = build_source_generator(arch, source, args.resolution, args.channels, device)
    data = fake_images(64, args.channels, args.resolution, seed=1).to(device)
    return strategy, nets, source_G, data


def _train(args, name, steps):
    strategy, nets, source_G, data = _setup(args, name)
    config = TrainConfig(steps, args.batch, 2e-4, 0)
    result = train_gan(nets, strategy, data, config, progress=False, source_G=source_G)
    return result


def _child(args) -> None:
    """Train one strategy alone and print its peak resident set growth (MiB) as JSON."""
    strategy, nets, source_G, data = _setup(args, args.child)
    with PhaseMemory(torch.device("cpu"), interval_s=0.005) as memory:
        memory.phase("train")
        train_gan(nets, strategy, data, TrainConfig(args.warmup + args.steps, args.batch, 2e-4, 0), progress=False,
                  source_G=source_G)  # fmt: skip
    print(json.dumps({"peak_mib": memory.peak("train")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default=TINY)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="measured steps per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategies", default="", help="comma-separated specs (default: every registered one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    registry = load_registry()
    names = [s for s in args.strategies.split(",") if s] or registry.names("strategy")
    if "finetune" not in names:
        names = ["finetune", *names]
    step_ms: dict[str, list[float]] = {n: [] for n in names}
    probe_s: dict[str, float | None] = {}
    peaks: dict[str, float] = {}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            result = _train(args, name, args.warmup + args.steps)
            step_ms[name] += result.step_ms[args.warmup :]
            probe_s[name] = result.probe_seconds
            if args.device == "cuda":
                peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated() / 2**20)
            print(f"round {r + 1}/{args.rounds} {name}: {statistics.median(result.step_ms[args.warmup:]):.1f} ms/step",
                  file=sys.stderr, flush=True)  # fmt: skip
    if args.device != "cuda":
        for name in names:
            child = [sys.executable, __file__, "--child", name, "--arch", args.arch, "--resolution", str(args.resolution),
                     "--channels", str(args.channels), "--batch", str(args.batch), "--steps", str(args.steps),
                     "--warmup", str(args.warmup)]  # fmt: skip
            out = subprocess.run(child, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            peaks[name] = json.loads(out)["peak_mib"]
    base_ms, base_mem = statistics.median(step_ms["finetune"]), peaks["finetune"]
    print(f"{args.arch}, {args.resolution} px, {args.channels} ch, batch {args.batch}, {args.device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    print(f"{'strategy':<16} {'step ms':>8} {'x finetune':>10} {'peak MiB':>9} {'x finetune':>10} {'probe s':>8}")
    for name in names:
        ms = statistics.median(step_ms[name])
        probe = f"{probe_s[name]:.2f}" if probe_s[name] is not None else "-"
        print(f"{name:<16} {ms:>8.1f} {ms / base_ms:>10.3f} {peaks[name]:>9.1f} {peaks[name] / max(base_mem, 1e-9):>10.3f} "
              f"{probe:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
