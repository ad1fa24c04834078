"""Per-channel scale and shift of a frozen generator's feature maps, or of its styles.

Batch Statistics Adaptation (Noguchi & Harada, ICCV 2019) adapts only the scale and shift of a pretrained
generator's per-channel statistics; AdaFM (Zhao, Cong & Carin, ICML 2020) modulates the frozen source
filters per channel. Here every pretrained weight of G is frozen and only per-channel ``* (1 + scale) + shift``
terms train (scale and shift start at zero, so training starts exactly at the source model):

* on a style-based G (one exposing ``G.styles``, e.g. ``stylegan2-lite``), on the output of each style affine
  layer: the style vector ``s`` that modulates a convolution becomes ``s * (1 + scale) + shift``, one scale and
  shift per style channel. This is where a StyleGAN sets its per-channel statistics, and what style-space
  adaptation methods tune;
* otherwise on G's feature maps: after each of G's blocks but the last (the image).

D is fine-tuned from the source, as in AdaFM, unless ``train_d=false`` (then only D's head trains).
"""

from __future__ import annotations

import torch
from torch import nn

import ganbench
from ganbench import Option, block_output_shapes, output_shapes


class ScaledBlock(nn.Module):
    """A frozen block followed by a trainable per-channel ``x * (1 + scale) + shift``."""

    def __init__(self, block: nn.Module, channels: int, device: torch.device) -> None:
        super().__init__()
        self.block = block
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1, device=device))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1, device=device))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.block(*args, **kwargs) * (1 + self.scale) + self.shift


class ScaledStyle(nn.Module):
    """A frozen style layer (w -> (N, C, ...) styles) followed by a trainable per-channel ``s * (1 + scale) + shift``
    (``shape``: one style's shape with every dimension after the channels set to 1)."""

    def __init__(self, affine: nn.Module, shape: tuple[int, ...], device: torch.device) -> None:
        super().__init__()
        self.affine = affine
        self.scale = nn.Parameter(torch.zeros(shape, device=device))
        self.shift = nn.Parameter(torch.zeros(shape, device=device))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.affine(*args, **kwargs) * (1 + self.scale) + self.shift


def style_shapes(G: nn.Module) -> list[tuple[int, ...]]:
    """Per-channel parameter shape for each of ``G.styles``' outputs ((C,) for (N, C) styles), from one forward
    pass in eval mode."""
    shapes = output_shapes(G, G.styles)
    if any(shape is None for shape in shapes):
        raise ganbench.GanbenchError("scale-shift: some of G.styles were not used by G's forward pass")
    return [(shape[0],) + (1,) * (len(shape) - 1) for shape in shapes]


def replace_modules(root: nn.Module, replacements: dict[int, nn.Module]) -> None:
    """Put ``replacements[id(old)]`` wherever ``old`` is a child module under ``root``."""
    for parent in list(root.modules()):
        for name, child in list(parent._modules.items()):  # every name, also a child registered twice
            new = replacements.get(id(child))
            if new is not None:
                setattr(parent, name, new)


def scale_shift_styles(G: nn.Module) -> None:
    """Wrap each of ``G.styles`` in a :class:`ScaledStyle`, in the modules that use it and in ``G.styles``."""
    device = next(G.parameters()).device
    wrapped = {id(layer): ScaledStyle(layer, shape, device) for layer, shape in zip(G.styles, style_shapes(G))}
    replace_modules(G, wrapped)
    for i, layer in enumerate(list(G.styles)):  # the list itself, also when it is not a registered submodule
        G.styles[i] = wrapped.get(id(layer), layer)


class ScaleShift(ganbench.Strategy):
    """Frozen source G; only per-channel scale and shift of its styles or feature maps train (BSA / AdaFM)."""

    name = "scale-shift"
    card = ganbench.MethodCard(
        paper="Noguchi & Harada: Image Generation from Small Datasets via Batch Statistics Adaptation, ICCV 2019; Zhao, Cong & Carin: On Leveraging Pretrained GANs for Generation with Limited Data (AdaFM), ICML 2020",
        year=2019,
        trains="per-channel scale and shift of G's styles (or feature maps); all of D unless train_d=false",
    )
    options = (Option("train_d", bool, True, "fine-tune D from the source (false: D frozen except its head)"),)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        G = nets.G
        G.requires_grad_(False)
        if getattr(G, "styles", None) is not None and len(G.styles) > 0:
            scale_shift_styles(G)
        else:
            shapes = block_output_shapes(G)
            device = next(G.parameters()).device
            for i, shape in enumerate(shapes[:-1]):  # the last block makes the image
                G.blocks[i] = ScaledBlock(G.blocks[i], shape[0], device)
        if not self.config["train_d"]:
            nets.D.requires_grad_(False)
            nets.D.head.requires_grad_(True)
        return nets


@ganbench.hookimpl
def register_strategies(register):
    register(ScaleShift)
