"""SNGAN's ResNet (Miyato, Kataoka, Koyama & Yoshida, ICLR 2018, "Spectral Normalization for Generative
Adversarial Networks"): the residual generator and spectrally normalized residual discriminator that
Mimicry and StudioGAN use as their CIFAR-10 benchmark architecture.

G: a linear projection of z to a 4x4 feature map, one up-sampling residual block per octave (batch norm,
ReLU, nearest-neighbour x2, two 3x3 convolutions; a 1x1 convolution on the shortcut), then batch norm, ReLU,
a 3x3 convolution to the image and tanh. G's blocks, latent side first: the projection (its output reshaped
to ``(N, width, 4, 4)``), the residual blocks, and the output layer producing the image.

D: every weight spectrally normalized. An "optimized" first block (3x3 convolution, ReLU, 3x3 convolution,
2x2 average pooling; the shortcut pools then applies a 1x1 convolution), one more down-sampling residual
block, then two residual blocks at 8x8, then ReLU, a sum over positions and a linear layer to one logit.
D's blocks, input side first: the residual blocks; its head: the final linear layer.

At 64 px each side has one more block (G: four up-sampling blocks; D: a second down-sampling block).

Options. ``width``: the channels of every G block; D's blocks have ``d_width`` channels, by default half of
``width`` as in the papers. ``width=256`` is the paper size (G 256, D 128 channels; 4.3M + 1.0M parameters
at 32 px, 3 channels). The default, 32 (G 32, D 16), keeps one forward and backward pass through G and D
at batch 64, 32 px, 1 channel near 130 ms on a 2-core CPU (a full D + G training step: about 190 ms); width
64 takes about 420 ms, and the cost grows with the square of the width. ``z_dim``: 128, the papers' value;
z only feeds the projection, so its size costs nothing measurable, and there is no reason to depart from
the reference.

Batch norm sits at the start of each G block (pre-activation), so the ``scale-shift`` strategy's per-channel
affine after a block is normalized away on the next block's residual path: its scale acts through the next
block's shortcut convolution, its shift (a per-channel constant) is removed by a later batch norm, and
after the last residual block both are cancelled by the output layer's batch norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganbench
from ganbench import Option, at_least

BOTTOM = 4  # G starts from a 4x4 feature map
RESIDUAL_GAIN = math.sqrt(2)  # Xavier gain of the 3x3 convolutions inside residual branches; 1 elsewhere


def _xavier(layer: nn.Module, gain: float = 1.0, sn: bool = False) -> nn.Module:
    """The reference code's initialization (Xavier-uniform weights, default biases), then spectral norm:
    initializing first means the power-iteration vectors are computed for the final weights."""
    nn.init.xavier_uniform_(layer.weight, gain)
    return spectral_norm(layer) if sn else layer


class Projection(nn.Module):
    """z -> (N, width, 4, 4): G's first block."""

    def __init__(self, z_dim: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.linear = _xavier(nn.Linear(z_dim, BOTTOM * BOTTOM * width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z).view(z.shape[0], self.width, BOTTOM, BOTTOM)


class UpBlock(nn.Module):
    """Pre-activation residual block that doubles the resolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = _xavier(nn.Conv2d(c_in, c_out, 3, 1, 1), RESIDUAL_GAIN)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = _xavier(nn.Conv2d(c_out, c_out, 3, 1, 1), RESIDUAL_GAIN)
        self.shortcut = _xavier(nn.Conv2d(c_in, c_out, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ToImage(nn.Module):
    """Batch norm, ReLU, 3x3 convolution to the image channels, tanh: G's last block."""

    def __init__(self, width: int, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(width)
        self.conv = _xavier(nn.Conv2d(width, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(F.relu(self.bn(x))))


class ResNetGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        octaves = int(math.log2(resolution // BOTTOM))  # 3 at 32 px, 4 at 64 px
        self.blocks = nn.ModuleList(
            [Projection(z_dim, width), *(UpBlock(width, width) for _ in range(octaves)), ToImage(width, channels)]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for block in self.blocks:
            x = block(x)
        return x


def _sn_conv(c_in: int, c_out: int, kernel: int) -> nn.Module:
    gain = RESIDUAL_GAIN if kernel == 3 else 1.0
    return _xavier(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2), gain, sn=True)


class OptimizedDownBlock(nn.Module):
    """D's first block: conv, ReLU, conv, average pool; the shortcut pools first, then a 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DownBlock(nn.Module):
    """Pre-activation residual block, optionally halving the resolution (1x1 conv on the shortcut then)."""

    def __init__(self, c_in: int, c_out: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.shortcut = _sn_conv(c_in, c_out, 1) if downsample or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        skip = x if self.shortcut is None else self.shortcut(x)
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


class ResNetDiscriminator(nn.Module):
    def __init__(self, width: int, resolution: int, channels: int) -> None:
        super().__init__()
        downs = int(math.log2(resolution // 8))  # down to 8x8: 2 at 32 px, 3 at 64 px
        blocks = [OptimizedDownBlock(channels, width)]
        blocks += [DownBlock(width, width, downsample=True) for _ in range(downs - 1)]
        blocks += [DownBlock(width, width, downsample=False) for _ in range(2)]
        self.blocks = nn.ModuleList(blocks)
        self.head = _xavier(nn.Linear(width, 1), sn=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(F.relu(x).sum(dim=(2, 3))).flatten()


class ResNetSNGAN(ganbench.Architecture):
    """SNGAN's ResNet G and spectrally normalized ResNet D (Miyato et al. 2018), 32 or 64 px."""

    name = "resnet-sngan"
    resolutions = (32, 64)
    options = (
        Option("width", int, 32, "G's channels (every block); the papers' CIFAR-10 size is 256", check=at_least(1)),
        Option("d_width", int, None, "D's channels (default: width / 2, the papers' ratio)", check=at_least(1)),
        Option("z_dim", int, 128, "latent dimension", check=at_least(1)),
    )

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        if resolution not in self.resolutions:
            raise ganbench.GanbenchError(f"resnet-sngan supports resolutions 32 and 64, not {resolution}")
        width = self.config["width"]
        d_width = self.config["d_width"] or max(1, width // 2)
        G = ResNetGenerator(self.config["z_dim"], width, resolution, channels)
        D = ResNetDiscriminator(d_width, resolution, channels)
        return G, D


@ganbench.hookimpl
def register_architectures(register):
    register(ResNetSNGAN)
