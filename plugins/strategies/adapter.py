"""Low-rank adapters on a frozen backbone: LoRA (Hu et al., ICLR 2022) applied to the convolutions of a
pretrained GAN, the parameter-efficient end of the transfer spectrum.

Freezes every pretrained weight of G and D, and adds trainable low-rank updates ``W + (alpha / rank) * B @ A``
(B starts at zero, so the adapted nets start exactly at the source model) to:

* G: on a style-based generator (one exposing ``G.styles``, e.g. ``stylegan2-lite``), its style affine layers
  (w -> per-channel styles), so adaptation changes how w modulates the frozen convolutions, and, where G also
  exposes its modulated convolutions as ``G.modulated`` (``stylegan2``), those convolutions' weights; otherwise
  every convolution and linear layer of G's blocks;
* D: every convolution and linear layer of D's blocks.

D's output head stays fully trainable: the new domain needs a new real/fake boundary.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

import ganbench
from ganbench import Option, at_least

CONVS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


class LowRankDelta(nn.Module):
    """Parametrization W -> W + scale * (up @ down), reshaped to W's shape."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        lead = 1 if weight.ndim == 5 else 0  # rosinality's modulated weights: (1, out, in, k, k)
        rows, cols = weight.shape[lead], weight[(0,) * (lead + 1)].numel()
        rank = min(rank, rows, cols)
        self.down = nn.Parameter(torch.empty(rank, cols, device=weight.device))
        self.up = nn.Parameter(torch.zeros(rows, rank, device=weight.device))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.up @ self.down).view_as(weight)


def add_adapters(blocks: nn.Module, rank: int, alpha: float) -> int:
    """Attach a LowRankDelta to every convolution / linear layer under ``blocks`` (a module or a module list);
    returns how many."""
    count = 0
    for module in list(blocks.modules()):
        if isinstance(module, CONVS):
            parametrize.register_parametrization(module, "weight", LowRankDelta(module.weight, rank, alpha))
            count += 1
    return count


class Adapter(ganbench.Strategy):
    """Frozen source G and D plus trainable low-rank adapters (on G's styles when it has them) and D head (LoRA)."""

    name = "adapter"
    card = ganbench.MethodCard(
        paper="Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang & Chen: LoRA: Low-Rank Adaptation of Large Language Models, ICLR (applied to GANs)",
        year=2022,
        trains="low-rank updates of G's styles / modulated convolutions (or its convolutions) and of D's convolutions; D's head",
    )
    options = (
        Option("rank", int, 4, "rank of each low-rank update", check=at_least(1)),
        Option("alpha", float, 4.0, "the update is scaled by alpha / rank", check=at_least(0)),
        Option("lr_mult", float, 4.0, "learning-rate multiplier for the adapters and D's head", check=at_least(0)),
    )

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        nets.G.requires_grad_(False)
        nets.D.requires_grad_(False)
        rank, alpha = self.config["rank"], self.config["alpha"]
        styles = getattr(nets.G, "styles", None)
        g_layers = styles if styles is not None and len(styles) > 0 else nets.G.blocks
        added = add_adapters(g_layers, rank, alpha) + add_adapters(nets.D.blocks, rank, alpha)
        for conv in getattr(nets.G, "modulated", None) or ():  # a StyleGAN2's modulated convolutions, when exposed
            parametrize.register_parametrization(conv, "weight", LowRankDelta(conv.weight, rank, alpha))
            added += 1
        if added == 0:
            raise ganbench.GanbenchError("adapter found no convolution or linear layer in the nets' blocks")
        nets.D.head.requires_grad_(True)
        return nets

    def param_groups(self, net, which):
        groups = super().param_groups(net, which)
        for group in groups:
            group["lr_mult"] = self.config["lr_mult"]
        return groups


@ganbench.hookimpl
def register_strategies(register):
    register(Adapter)
