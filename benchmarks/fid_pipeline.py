"""FID from a generator, images per second, side by side in one process on the same latents and N:

- ganbench: generate on the device -> uint8 -> PIL-exact bicubic resize as matrix products -> Inception ->
  FID in float64 (what a cell's evaluation runs);
- ganbench with ``resize="pil"``: the same, but clean-fid's per-image, per-channel CPU resizer;
- clean-fid: ``cleanfid.fid.get_model_features`` (the generator half of ``compute_fid(gen=...)``: per-image
  PIL resize on the CPU, its own batching and Inception wrapper) then its ``frechet_distance``;
- the limit (CPU): Inception alone on images resized beforehand, outside the clock.

Reference features are computed once beforehand and shared (``compute_fid`` would featurize the reference
folder on every call; ganbench caches it). All paths use the same network weights (those ganbench resolves,
handed to clean-fid's own wrapper) and the same latents, so their FIDs must agree.

    python benchmarks/fid_pipeline.py [--n 500] [--device cpu|cuda] [--arch dcgan] [--resolution 32] [--repeats 2]

Goals: on CPU >= 95% of the Inception-only limit; on a GPU >= 10x clean-fid, with equal FID.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ganbench
from ganbench.execute.training import to_uint8
from ganbench.metrics.arithmetic import fid_from_features
from ganbench.metrics.inception import default_batch_size, get_extractor, resolve_inception_weights
from ganbench.metrics.resize import resize_clean
from ganbench.testing import cleanfid_on_weights


def cleanfid_model(weights, device: torch.device, folder: Path):
    """clean-fid's own feature extractor around the network ganbench resolved (it would download it)."""
    from cleanfid.features import build_feature_extractor

    with cleanfid_on_weights(weights.path, folder):
        return build_feature_extractor("clean", device, use_dataparallel=False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="generated images per FID")
    parser.add_argument("--n-ref", type=int, default=500, help="reference images (features computed beforehand)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arch", default="dcgan")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="default: ganbench's size for the device")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best time of each path")
    args = parser.parse_args()
    device = torch.device(args.device)

    registry = ganbench.load_registry()
    torch.manual_seed(0)
    G, _ = registry.create(registry.resolve("architecture", args.arch)).build(args.resolution, args.channels)
    G = G.to(device).eval()
    weights = resolve_inception_weights()
    extractor = get_extractor(weights, device)
    pil_extractor = get_extractor(weights, device, resize="pil")
    batch = args.batch_size or default_batch_size(device)

    def latents(seed: int = 1, n: int = args.n) -> list[torch.Tensor]:  # clean-fid's draw: the global generator
        torch.manual_seed(seed)
        return [torch.randn(batch, G.z_dim).to(device) for _ in range(-(-n // batch))]

    with torch.no_grad():  # other latents stand in for real images
        reference = torch.cat([to_uint8(G(z)) for z in latents(2, args.n_ref)])[: args.n_ref]
        ref_feats = extractor.features_tensor(reference)
        for e in (extractor, pil_extractor):  # warm-up: paid once per process, outside every clock
            e.features_tensor(reference[:2])

    @torch.no_grad()
    def ganbench_fid(e) -> float:
        images = torch.cat([to_uint8(G(z)) for z in latents()])[: args.n]
        return fid_from_features(e.features_tensor(images, batch_size=batch), ref_feats)

    folder = Path(tempfile.mkdtemp())
    model = cleanfid_model(weights, device, folder)

    class Generator255(torch.nn.Module):  # clean-fid wants [0, 255] floats, three channels
        def forward(self, z):
            images = to_uint8(G(z)).float()
            return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    def cleanfid_fid() -> float:
        from cleanfid.fid import frechet_distance, get_model_features

        torch.manual_seed(1)
        feats = get_model_features(Generator255(), model, mode="clean", z_dim=G.z_dim, num_gen=args.n,
                                   batch_size=batch, device=device, verbose=False)  # fmt: skip
        ref = ref_feats.double().cpu().numpy()
        return frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), ref.mean(0), np.cov(ref, rowvar=False))

    with torch.no_grad():
        pre_resized = [resize_clean(to_uint8(G(z))) for z in latents()]

    @torch.no_grad()
    def inception_only() -> int:
        for x in pre_resized:
            extractor.net(((x - 128) / 128).contiguous(memory_format=torch.channels_last))
        return len(pre_resized) * batch

    paths = [
        ("ganbench (device resize)", lambda: ganbench_fid(extractor)),
        ("ganbench (resize=pil)", lambda: ganbench_fid(pil_extractor)),
        ("clean-fid get_model_features", cleanfid_fid),
        ("Inception only, pre-resized", inception_only),
    ]
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeats):  # interleaved rounds, best of each: load on a shared machine hits all alike
        for name, fn in paths:
            seconds, value = timed(fn, device)
            best[name] = min(best.get(name, (float("inf"), value)), (seconds, value), key=lambda t: t[0])
    rows = [(name, *best[name]) for name, _ in paths]
    n_limit = rows[-1][2]
    print(f"device {device} ({torch.get_num_threads()} threads), {args.arch} {args.resolution}px x{args.channels}, "
          f"N={args.n}, batch {batch}")  # fmt: skip
    for name, seconds, value in rows:
        n = n_limit if name.startswith("Inception") else args.n
        fid = "" if name.startswith("Inception") else f"  FID {value:.6f}"
        print(f"{name:32s} {seconds:8.2f} s  {n / seconds:8.1f} img/s{fid}")
    ours, pil, clean, limit = (n / s for (name, s, _), n in zip(rows, [args.n] * 3 + [n_limit]))
    print(f"ganbench / Inception-only limit: {ours / limit:.3f}")
    print(f"ganbench / clean-fid: {ours / clean:.2f}x   (resize=pil / clean-fid: {pil / clean:.2f}x)")
    print(f"FID relative difference, ganbench vs clean-fid: {abs(rows[0][2] - rows[2][2]) / abs(rows[2][2]):.2e}")


if __name__ == "__main__":
    main()
