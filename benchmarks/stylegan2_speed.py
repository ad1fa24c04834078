"""Seconds per thousand training images (s/kimg) of a StyleGAN2 fine-tune in ganbench's training loop, with
the FFHQ 10-shot recipe (batch 4, Adam (0, 0.99), EMA, lazy R1), side by side in one process: fp32, bf16
autocast, channels-last and torch.compile. The nets start from a rosinality-format checkpoint of random
weights written here (config-f's real size at --resolution 256), loaded through the checkpoint source, so the
whole path a real cell takes is measured.

    python benchmarks/stylegan2_speed.py --device cuda                # config-f, 256 px (a GPU)
    python benchmarks/stylegan2_speed.py --width 16 --resolution 32   # tiny, any CPU

Prints one line per variant and the ratios to fp32; the first steps (warm-up, compilation) are left out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ganbench.execute.sources import load_checkpoint_source
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.grid.cells import Recipe
from ganbench.plugin.contracts import Nets, Strategy
from ganbench.plugin.manager import load_registry
from ganbench.store.cache import file_sha256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--variants", default="fp32,bf16,channels_last,compile,bf16+compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    registry = load_registry()
    spec = f"stylegan2:width={args.width}"
    arch = registry.create(registry.resolve("architecture", spec))
    torch.manual_seed(0)
    G, D = arch.build(args.resolution, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random-config-f.pt"
        torch.save({"g": G.state_dict(), "g_ema": G.state_dict(), "d": D.state_dict()}, path)
        sha = file_sha256(path)
        with torch.device("meta"):
            shapes = arch.build(args.resolution, 3)
        source = load_checkpoint_source(str(path), sha, "g_ema", shapes, "bench")
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{spec} at {args.resolution} px: G {g_params:,} / D {d_params:,} parameters; batch {args.batch}; {name}")
    data = torch.randint(0, 256, (10, 3, args.resolution, args.resolution), dtype=torch.uint8, device=device)
    results = {}
    for variant in args.variants.split(","):
        parts = set(variant.split("+"))
        if "bf16" in parts and device.type != "cuda":
            print(f"{variant:>14}: skipped (bf16 autocast is measured on CUDA)")
            continue
        torch.manual_seed(0)
        nets = Nets(*arch.build(args.resolution, 3))
        Strategy().adapt(nets, source)
        nets = Nets(nets.G.to(device), nets.D.to(device))
        recipe = Recipe(betas=(0.0, 0.99), ema=0.99778, r1_gamma=10.0, r1_every=16,
                        precision="bf16" if "bf16" in parts else "fp32")  # fmt: skip
        config = TrainConfig(args.steps, args.batch, 0.002, 0, recipe=recipe, channels_last="channels_last" in parts,
                             compile="compile" in parts)  # fmt: skip
        start = time.perf_counter()
        result = train_gan(nets, Strategy(), data, config, progress=False)
        wall = time.perf_counter() - start
        timed = sorted(result.step_ms[args.warmup :])
        median_ms = timed[len(timed) // 2]
        results[variant] = median_ms / 1000 / args.batch * 1000  # s per 1,000 images
        print(f"{variant:>14}: {results[variant]:8.2f} s/kimg (median step {median_ms:.1f} ms; "
              f"{args.steps} steps in {wall:.1f} s incl. warm-up)")  # fmt: skip
    if "fp32" in results:
        print("ratios to fp32: " + ", ".join(f"{k} {results['fp32'] / v:.2f}x" for k, v in results.items()))


if __name__ == "__main__":
    main()
