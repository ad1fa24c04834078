"""DCGAN (Radford et al. 2016): transposed-conv generator with batch norm, strided-conv discriminator.

G's blocks, latent side first: a 4x4 projection, then one x2 upsampling block per octave, the last one
producing the image. D's blocks, input side first: one x2 downsampling block per octave down to 4x4; the
output head is a 4x4 convolution to one logit.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import ganbench
from ganbench import Option, at_least


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        octaves = int(math.log2(resolution)) - 2  # 4 -> resolution
        widths = [width * 2 ** (octaves - 1 - i) for i in range(octaves)]  # e.g. 256, 128, 64 for 32 px
        blocks = [_up(z_dim, widths[0], stride=1, padding=0)]
        blocks += [_up(c_in, c_out) for c_in, c_out in zip(widths, widths[1:])]
        blocks.append(nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.shape[0], self.z_dim, 1, 1)
        for block in self.blocks:
            x = block(x)
        return x


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        octaves = int(math.log2(resolution)) - 2
        widths = [channels] + [width * 2**i for i in range(octaves)]  # e.g. 1, 64, 128, 256 for 32 px
        self.blocks = nn.ModuleList(_down(c_in, c_out) for c_in, c_out in zip(widths, widths[1:]))
        self.head = nn.Conv2d(widths[-1], 1, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).flatten()


def _up(c_in: int, c_out: int, stride: int = 2, padding: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


def _down(c_in: int, c_out: int) -> nn.Module:
    # no normalization in D: freezing D's first blocks (FreezeD) then freezes plain convolutions
    return nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True))


def init_weights(module: nn.Module) -> None:
    # DCGAN's initialization: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGAN(ganbench.Architecture):
    """DCGAN generator and discriminator (Radford et al. 2016), 16-128 px, 1 or 3 channels."""

    name = "dcgan"
    resolutions = (16, 32, 64, 128)
    options = (
        Option("width", int, 32, "channels of G's last and D's first block (doubling per octave)", check=at_least(1)),
        Option("z_dim", int, 64, "latent dimension", check=at_least(1)),
    )

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        G = DCGANGenerator(self.config["z_dim"], self.config["width"], resolution, channels)
        D = DCGANDiscriminator(self.config["width"], resolution, channels)
        init_weights(G)
        init_weights(D)
        return G, D


@ganbench.hookimpl
def register_architectures(register):
    register(DCGAN)
