"""Intra-cluster LPIPS (Ojha et al. 2021, "Few-shot Image Generation via Cross-domain Correspondence"): how
diverse a few-shot generator is, rather than how many copies of its shots it makes.

The protocol of CDC's evaluation code: draw ``samples`` generated images (from the evaluation's fixed latents
when the runner offers ``ctx.sample``, else the first ``samples`` of ``ctx.generated``); assign each to the
training shot nearest to it in LPIPS distance (the first of equals); in each shot's cluster, the mean LPIPS
distance over all pairs of its members; the score is the mean over the clusters that have at least 2 members.
A cluster with 0 or 1 member has no pair and is left out of the mean, as CDC's code drops its NaN; how many
clusters counted is the column ``intra_lpips_clusters``. A cluster larger than ``cluster_size`` (50 by
default, CDC's cap) is cut to a random ``cluster_size`` of its members, drawn with the evaluation's seed, and
the mean runs over all pairs of those; ``cluster_size`` at least ``samples`` gives the exact mean over all
pairs of every cluster. With no cluster of 2 members (``samples`` not more than the shots, all apart), the
score is undefined and the evaluation fails with a one-line error.

Differences from CDC's numbers: images are compared at the grid's resolution (CDC resizes to 256 px), images
smaller than 32 px are first upsampled to 32 (bilinear; AlexNet has no output below 31 px), and the default
trunk is AlexNet, LPIPS's own default (CDC's scripts use ``net=vgg``: ``intra-lpips:net=vgg`` for theirs).

LPIPS is computed by the ``lpips`` package's network: its linear layers come inside the package; its trunk's
ImageNet weights are torchvision's checkpoint file, found without torchvision's download: the file given with
``backbone_weights=PATH``, else torch hub's cache (``<torch hub dir>/checkpoints/<file>``, where torchvision
would have put it), else ganbench's cache (``<cache>/weights/<file>``), else a download from
download.pytorch.org unless ganbench is offline or the server does not answer; otherwise ``prepare`` fails in
one line naming the file, where to put it and the option. The file is loaded into LPIPS's trunk key by key
(torchvision's ``features.I`` is the trunk's ``sliceK.I``), every shape checked. A file under torchvision's
own name must have the sha256 its name starts with.

Each image is featurized once: LPIPS's distance is a sum of non-negative weights times squared differences of
unit-normalized activations, so it is the squared Euclidean distance between the images' embeddings
(activations times the square root of weight over the layer's area); the embedding is this module's
:class:`LPIPSSpace`. Its network passes count as feature time in the evaluation's timings.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import Column, Option, at_least

TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
TORCHVISION_URL = "https://download.pytorch.org/models/"
MIN_SIDE = 32  # AlexNet's smallest input with an output at every layer is 31 px
CPU_BATCH, CUDA_BATCH = 50, 500


# --------------------------------------------------------------------------------------------------
# The trunk's weights
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrunkWeights:
    net: str
    path: Path
    sha256: str
    source: str  # option | torch-hub | cache | download

    def provenance(self) -> dict[str, Any]:
        return {"lpips_net": self.net, "lpips_version": importlib.metadata.version("lpips"),
                "lpips_backbone_weights": self.source, "lpips_backbone_sha256": self.sha256}  # fmt: skip


def resolve_trunk_weights(net: str, given: str | None, cache_dir: str | Path) -> TrunkWeights:
    """The torchvision checkpoint of LPIPS's trunk: ``given``, torch hub's cache, ganbench's cache, a download
    (never offline); else a one-line error saying what to put where."""
    name = TORCHVISION_FILES[net]
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ganbench.GanbenchError(f"intra-lpips: backbone_weights={given} is not a file; point it at {name}")
        return TrunkWeights(net, path, _checked_sha256(path, name), "option")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / name
    cached = Path(cache_dir) / "weights" / name
    for path, source in ((hub, "torch-hub"), (cached, "cache")):
        if path.is_file():
            return TrunkWeights(net, path, _checked_sha256(path, name), source)
    problem = ganbench.download_file(TORCHVISION_URL + name, cached)
    if problem is None:
        return TrunkWeights(net, cached, _checked_sha256(cached, name), "download")
    raise ganbench.GanbenchError(
        f"intra-lpips: torchvision's {net} weights for LPIPS not found ({problem}); put {name} "
        f"({TORCHVISION_URL}{name}) in {hub.parent} or {cached.parent}, or give intra-lpips:backbone_weights=PATH"
    )


def _checked_sha256(path: Path, canonical: str) -> str:
    return ganbench.checked_sha256(
        path, "intra-lpips", canonical, fix="delete it or replace it with torchvision's file"
    )


def trunk_state(torchvision_state: dict[str, torch.Tensor], trunk: dict[str, torch.Tensor], source: str):
    """torchvision's ``features.I.*`` tensors under the names of LPIPS's trunk (``sliceK.I.*``), every one
    present with the trunk's shape; a one-line error naming the first that is not."""
    out = {}
    for key, wanted in trunk.items():
        found = re.fullmatch(r"slice\d+\.(\d+)\.(.+)", key)
        tv_key = f"features.{found.group(1)}.{found.group(2)}" if found else key
        tensor = torchvision_state.get(tv_key)
        if tensor is None or tuple(tensor.shape) != tuple(wanted.shape):
            got = "missing" if tensor is None else f"of shape {tuple(tensor.shape)}"
            raise ganbench.GanbenchError(
                f"intra-lpips: {source} does not fit LPIPS's trunk: {tv_key} is {got}, "
                f"{tuple(wanted.shape)} expected; give torchvision's checkpoint of the same network"
            )
        out[key] = tensor
    return out


@functools.lru_cache(maxsize=4)
def lpips_model(weights: TrunkWeights, device: str) -> nn.Module:
    """The ``lpips`` package's LPIPS network, its trunk loaded from ``weights``, on ``device``, frozen. The file
    is read first, through the user-file boundary: one that does not unpickle is one line naming it."""
    name = TORCHVISION_FILES[weights.net]
    fix = f"give torchvision's {name} ({TORCHVISION_URL}{name})"
    state = ganbench.load_torch_file(weights.path, f"intra-lpips's {weights.net} weights", fix)
    if not isinstance(state, dict):
        raise ganbench.UserFileError(
            f"intra-lpips: {ganbench.show_path(weights.path)} holds a {type(state).__name__}, not a state dict; {fix}",
            weights.path,
        )
    import lpips

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained=` lpips passes it
        model = lpips.LPIPS(net=weights.net, pretrained=True, pnet_rand=True, verbose=False)
    model.net.load_state_dict(trunk_state(state, model.net.state_dict(), weights.path.name))
    return model.to(device).eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------
# The embedding and the metric
# --------------------------------------------------------------------------------------------------


class LPIPSSpace(ganbench.FeatureSpace):
    """Images -> flat embeddings whose squared Euclidean distance is their LPIPS distance."""

    def __init__(self, weights: TrunkWeights) -> None:
        self.weights = weights
        self.name = f"lpips-{weights.net}"

    def identity(self) -> dict[str, Any]:
        w = self.weights
        return {"extractor": self.name, "lpips": importlib.metadata.version("lpips"), "sha256": w.sha256,
                "min_side": MIN_SIDE}  # fmt: skip

    def provenance(self) -> dict[str, Any]:
        return self.weights.provenance()

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, device: torch.device, desc: str | None = None) -> torch.Tensor:
        device = torch.device(device)
        model = lpips_model(self.weights, str(device))
        batch = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
        return torch.cat([self._embed(model, images[s : s + batch].to(device)) for s in range(0, len(images), batch)])

    @staticmethod
    def _embed(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        import lpips

        x = images.float() / 127.5 - 1
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if min(x.shape[-2:]) < MIN_SIDE:
            size = (max(x.shape[-2], MIN_SIDE), max(x.shape[-1], MIN_SIDE))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        parts = []
        for activation, lin in zip(model.net(model.scaling_layer(x)), model.lins):
            weight = lin.model[-1].weight.view(1, -1, 1, 1).clamp_min(0)  # LPIPS trains them clamped at 0
            area = activation.shape[-2] * activation.shape[-1]
            parts.append((lpips.normalize_tensor(activation) * (weight / area).sqrt()).flatten(1))
        return torch.cat(parts, 1)


def _timed(ctx: ganbench.EvalContext, space: LPIPSSpace, images: torch.Tensor) -> torch.Tensor:
    start = time.perf_counter()
    out = space(images, ctx.device)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    ctx.timings["features"] = ctx.timings.get("features", 0.0) + time.perf_counter() - start
    return out


def mean_pairwise(embeddings: torch.Tensor) -> float:
    """The mean squared distance over all pairs of rows (float32 distances, summed in float64)."""
    total = sum(((embeddings[i + 1 :] - embeddings[i]) ** 2).sum(1).double().sum() for i in range(len(embeddings) - 1))
    pairs = len(embeddings) * (len(embeddings) - 1) // 2
    return float(total / pairs)


class IntraLPIPS(ganbench.Metric):
    """Intra-cluster LPIPS (Ojha et al. 2021): diversity of samples around each training shot (higher is better)."""

    name = "intra-lpips"
    compares_with_reference = False  # it scores diversity around the shots
    options = (
        Option("net", str, "alex", "LPIPS trunk", choices=tuple(TORCHVISION_FILES)),
        Option("samples", int, 1000, "generated images assigned to the shots", check=at_least(2)),
        Option("cluster_size", int, 50, "at most this many (random) members of each cluster are paired",
               check=at_least(2)),
        Option("backbone_weights", str, None, "torchvision's checkpoint of the trunk (default: looked for)"),
    )  # fmt: skip
    columns = (
        Column("intra_lpips", lower_is_better=False, label="intra-LPIPS", digits=4,
               help="mean pairwise LPIPS within the samples nearest each shot, over the shots"),
        Column("intra_lpips_clusters", lower_is_better=None, label="clusters", digits=0,
               help="shots with at least 2 samples nearest them (the clusters averaged)"),
    )  # fmt: skip

    def space(self, cache_dir: str | Path) -> LPIPSSpace:
        c = self.config
        return LPIPSSpace(resolve_trunk_weights(c["net"], c["backbone_weights"], cache_dir))

    def prepare(self, device, cache_dir):
        space = self.space(cache_dir)
        lpips_model(space.weights, "cpu")  # the file fits the network: fails here, before any training
        return space.provenance()

    def check(self, sizes):
        n = self.config["samples"]
        if n <= sizes.shots:
            raise ganbench.GanbenchError(
                f"intra-lpips:samples={n} must be above the {sizes.shots} shots (each shot's cluster needs 2 of the "
                f"samples nearest it); use intra-lpips:samples={max(10 * sizes.shots, sizes.shots + 2)} or fewer shots"
            )

    def compute(self, ctx):
        try:
            shots = ctx.images("shots")
        except ganbench.GanbenchError as exc:
            raise ganbench.GanbenchError(f"intra-lpips needs the training shots: {exc}") from None
        if len(shots) == 0:
            raise ganbench.GanbenchError("intra-lpips needs the training shots, and this evaluation has none")
        n = self.config["samples"]
        images = ctx.sample(n) if ctx.sample is not None else ctx.generated[:n]
        space = self.space(ctx.cache_dir)
        nearest = self._assign(ctx, space, images, _timed(ctx, space, shots))
        draw = torch.Generator().manual_seed(ctx.seed)
        scores = []
        for k in range(len(shots)):
            members = (nearest == k).nonzero().flatten()
            if len(members) > self.config["cluster_size"]:
                members = members[torch.randperm(len(members), generator=draw)[: self.config["cluster_size"]]]
            if len(members) >= 2:
                scores.append(mean_pairwise(_timed(ctx, space, images[members.to(images.device)])))
        if not scores:
            raise ganbench.GanbenchError(
                f"intra-lpips: no shot has 2 of the {len(images)} samples nearest to it; "
                f"use intra-lpips:samples=N with N above the {len(shots)} shots"
            )
        return {"intra_lpips": sum(scores) / len(scores), "intra_lpips_clusters": len(scores)}

    @staticmethod
    def _assign(ctx, space: LPIPSSpace, images: torch.Tensor, shots: torch.Tensor) -> torch.Tensor:
        """For each image, the position of the shot nearest it (the first of equals), on the CPU."""
        batch = CUDA_BATCH if ctx.device.type == "cuda" else CPU_BATCH
        nearest = []
        for start in range(0, len(images), batch):
            embedded = _timed(ctx, space, images[start : start + batch])
            distances = torch.stack([((embedded - shot) ** 2).sum(1) for shot in shots], 1)
            nearest.append(distances.argmin(1).cpu())
        return torch.cat(nearest)


@ganbench.hookimpl
def register_metrics(register):
    register(IntraLPIPS)
