"""One real-size cell of the FFHQ 10-shot protocol through ``ganbench run matrix``, without its downloads:
``protocols/ffhq-10shot.toml`` with its source replaced by a rosinality-format checkpoint of randomly
initialized config-f weights (G 30,034,338 / D 28,864,129 parameters at 256 px, saved as rosinality's train.py
saves: g, d, g_ema, latent_avg and its argparse.Namespace) and its targets by one folder of 256-px RGB PNGs
made here (MNIST digits, coloured and upscaled). Everything else is the protocol's: 10 shots, the StyleGAN2
optimizer preset, EMA, lazy R1, its metrics.

The step and sample counts are cut so that it ends in minutes; each variant is a separate run folder, so
precision and compilation are measured side by side on the same cell:

    python benchmarks/ffhq_cell.py --device cuda --variants fp32,bf16,compile,bf16+compile   # a GPU
    python benchmarks/ffhq_cell.py --device cpu --variants fp32 --steps 8 --eval-samples 50   # any CPU

Variants join parts with "+": fp32 (the default precision), bf16, compile, channels_last.

Prints, per variant, the cell's status, s/kimg (median step time over batch 4), fine-tuning and evaluation
seconds, peak memory and the metrics, then the s/kimg ratios to fp32. FID against random digits from random
weights is a check that the path runs, not a number to compare with the papers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def write_checkpoint(path: Path, resolution: int) -> None:
    from ganbench.plugin.manager import load_registry

    registry = load_registry()
    arch = registry.create(registry.resolve("architecture", "stylegan2"))
    torch.manual_seed(0)
    G, D = arch.build(resolution, 3)
    args = argparse.Namespace(size=resolution, channel_multiplier=2, latent=512, n_mlp=8, iter=800000)
    torch.save({"g": G.state_dict(), "d": D.state_dict(), "g_ema": G.state_dict(),
                "latent_avg": torch.zeros(512), "args": args}, path)  # fmt: skip


def write_folder(folder: Path, n: int, resolution: int) -> None:
    from PIL import Image

    from ganbench.plugin.manager import load_registry

    registry = load_registry()
    digits = registry.create(registry.resolve("dataset", "mnist5k")).load().images[:n]
    folder.mkdir(parents=True, exist_ok=True)
    tint = torch.tensor([[1.0, 0.6, 0.3], [0.3, 0.8, 1.0], [0.9, 0.9, 0.9]])
    for i, image in enumerate(digits):
        grey = image[0].float() / 255
        rgb = (grey[None] * tint[i % 3][:, None, None] * 255).round().to(torch.uint8)
        Image.fromarray(rgb.permute(1, 2, 0).numpy()).resize((resolution, resolution), Image.BICUBIC).save(
            folder / f"{i:04d}.png"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variants", default="fp32,bf16,compile,bf16+compile")
    parser.add_argument("--strategy", default="finetune")
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps (the protocol: 5000)")
    parser.add_argument("--eval-samples", type=int, default=500, help="generated images (the protocol: 5000)")
    parser.add_argument("--target-images", type=int, default=200, help="images in the target folder")
    parser.add_argument("--metrics", default="fid,kid", help="intra-lpips needs torchvision's AlexNet weights")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here (default: temporary)")
    args = parser.parse_args()
    resolution = 256
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        checkpoint, folder = root / "random-config-f.pt", root / "target"
        if not checkpoint.exists():
            write_checkpoint(checkpoint, resolution)
        if not folder.exists():
            write_folder(folder, args.target_images, resolution)
        results = {}
        for variant in args.variants.split(","):
            parts = set(variant.split("+"))
            if "bf16" in parts and not args.device.startswith("cuda"):
                print(f"{variant:>13}: skipped (bf16 autocast is measured on CUDA)")
                continue
            command = [
                str(Path(sys.executable).with_name("ganbench")), "run", "matrix", "--config", "protocols/ffhq-10shot.toml",
                "--source", f"checkpoint:path={checkpoint}", "--target", f"folder:path={folder},size=256,mode=rgb",
                "--strategy", args.strategy, "--no-baseline", "--seeds", "0", "--augment", "none",
                "--metrics", args.metrics, "--finetune-steps", str(args.steps), "--eval-every", "0",
                "--eval-samples", str(args.eval_samples), "--device", args.device, "--quiet",
                "--precision", "bf16" if "bf16" in parts else "fp32",
                "--compile" if "compile" in parts else "--no-compile",
                "--channels-last" if "channels_last" in parts else "--no-channels-last", "--out", str(root / f"runs-{variant}"),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            records = [json.loads(p.read_text()) for p in (root / f"runs-{variant}").glob("*/cells/*.json")]
            if done.returncode != 0 or len(records) != 1:
                print(f"{variant:>13}: failed (exit {done.returncode}): {(done.stderr or done.stdout)[-600:]}")
                continue
            r = records[0]
            s_per_kimg = r["step_ms"] / 1000 / r["batch_size"] * 1000
            results[variant] = s_per_kimg
            scores = ", ".join(f"{k} {r[k]:.4g}" for k in ("fid", "kid", "intra_lpips") if r.get(k) is not None)
            print(f"{variant:>13}: {r['status']}; {s_per_kimg:.2f} s/kimg (median step {r['step_ms']:.1f} ms); "
                  f"fine-tune {r['finetune_s']:.1f} s, eval {r['eval_s']:.1f} s ({r['eval_samples']} samples); "
                  f"peak {r['peak_mem_mb']:.0f} MiB ({r['peak_mem_kind']}); {scores}; {r['device']}")  # fmt: skip
        if "fp32" in results:
            print("s/kimg ratios to fp32: " + ", ".join(f"{k} {results['fp32'] / v:.2f}x" for k, v in results.items()))


if __name__ == "__main__":
    main()
