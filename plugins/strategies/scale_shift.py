"""Per-channel scale and shift of a frozen generator's feature maps.

Batch Statistics Adaptation (Noguchi & Harada, ICCV 2019) adapts only the scale and shift of a pretrained
generator's per-channel statistics; AdaFM (Zhao, Cong & Carin, ICML 2020) modulates the frozen source
filters per channel. Here: every pretrained weight of G is frozen, and after each of G's blocks but the last
(the image), a trainable per-channel ``x * (1 + scale) + shift`` is applied (scale and shift start at zero,
so training starts exactly at the source model). D is fine-tuned from the source, as in AdaFM, unless
``train_d=false``.
"""

from __future__ import annotations

import torch
from torch import nn

import ganbench
from ganbench import Option
from ganbench.blocks import block_output_shapes


class ScaledBlock(nn.Module):
    """A frozen block followed by a trainable per-channel ``x * (1 + scale) + shift``."""

    def __init__(self, block: nn.Module, channels: int, device: torch.device) -> None:
        super().__init__()
        self.block = block
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1, device=device))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1, device=device))

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.block(*args, **kwargs) * (1 + self.scale) + self.shift


class ScaleShift(ganbench.Strategy):
    """Frozen source G; only per-channel scale and shift of its feature maps train (BSA / AdaFM)."""

    name = "scale-shift"
    options = (Option("train_d", bool, True, "fine-tune D from the source (false: D frozen except its head)"),)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        G = nets.G
        G.requires_grad_(False)
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
