"""StyleGAN2-lite (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, CVPR 2020, "Analyzing and Improving the
Image Quality of StyleGAN"): a small StyleGAN2 skip generator and residual discriminator, sized for a CPU.

G: a mapping network (z normalized to unit second moment, then ``mapping_layers`` fully connected layers) turns
z into w. Synthesis starts from a learned constant 4x4 input; every further octave upsamples (bilinear) and
applies two 3x3 convolutions whose weights are *modulated* by a per-input-channel style (an affine layer of w)
and *demodulated* (each output channel's modulated weight rescaled to unit norm), each followed by per-pixel
noise with a learned strength, a bias and a leaky ReLU. Every resolution has a modulated 1x1 to-RGB layer
whose output is added to the bilinearly upsampled image so far (skip connections to RGB); a final tanh maps
the sum into [-1, 1].

D: StyleGAN2's residual discriminator: a 1x1 from-RGB layer, one residual block per octave (3x3 convolution,
2x2 average pooling, 3x3 convolution; a pooled 1x1 skip; the sum scaled by 1/sqrt(2)) down to 4x4, then a
minibatch standard deviation channel, a 3x3 convolution and a fully connected layer, and a last fully
connected layer to the logit.

Blocks, for strategies:

* ``G.blocks``, latent side first: the mapping network (its output is w, shape (N, w_dim)), then one synthesis
  block per resolution 4, 8, ..., the image resolution. A synthesis block returns (features, image so far);
  its convolutions, noise inputs and to-RGB layer belong to it, so freezing a block freezes all of them.
* ``G.styles``: the affine layers (w -> per-channel style) in synthesis order: each block's convolutions, then
  its to-RGB layer. The same modules the blocks use (the list holds references; the blocks own them, so the
  state dict names each parameter once). ``scale-shift`` and ``adapter`` act on these.
* ``D.blocks``, input side first: one residual block per octave (the first includes from-RGB), then the 4x4
  epilogue (minibatch std, convolution, fully connected layer). ``D.head``: the last fully connected layer.

Every convolution and fully connected layer uses equalized learning rate: weights are stored N(0, 1) / lr_mul
and scaled by lr_mul / sqrt(fan_in) at each forward pass (:class:`EqualConv2d`, :class:`EqualLinear` and
:class:`ModulatedConv2d` subclass ``nn.Conv2d`` / ``nn.Linear``, so torch parametrizations on ``.weight`` and
``isinstance`` checks work). With Adam, every weight then moves by about ``lr * lr_mul`` relative to its scale
per step; ``lr_mul=10`` makes ganbench's base lr 2e-4 behave like StyleGAN2's 2e-3. The mapping network trains
100x slower than the rest, as in StyleGAN2.

Noise: in training mode every forward pass draws fresh noise from torch's RNG; in eval mode each layer uses a
fixed noise map stored with the weights (StyleGAN2's ``noise_mode='const'``), so generation and evaluation are
deterministic and adapted nets can be compared with their source. ``G(z, noise_mode=...)`` or the attribute
``G.noise_mode`` ("auto", "random", "const", "none") override this.

Why tanh: ganbench's contract has G produce images in [-1, 1] in training too (D must see what is evaluated).
StyleGAN2's output is unbounded; clamping would zero the gradient of every saturated pixel, while tanh is close
to the identity near zero, where the summed RGB outputs start.

Left out (the training loop is generic): style mixing, path-length regularization, lazy R1, the EMA of G,
truncation, FIR resampling filters (bilinear and average pooling instead).

Options: ``width`` (channels at 4-16 px, halved per octave above: 32 -> 16 at 32 px, 8 at 64 px; G and D alike),
``z_dim``, ``w_dim``, ``mapping_layers`` and ``lr_mul``. At the defaults (width 32, z and w 64, 2 mapping
layers), 32 px and 1 channel, G has 83k and D 73k parameters, and a full training step at batch 64 (D step then
G step) took about 150 ms on a 2-core CPU (DCGAN's defaults: 61 ms on the same machine; 64 px: about 300 ms).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import Option, at_least

SQRT2 = math.sqrt(2.0)
MAPPING_LR = 0.01  # the mapping network's learning-rate multiplier relative to the rest (StyleGAN2's value)
NOISE_MODES = ("auto", "random", "const", "none")
# weights and activations are kept channels-last: on CPUs, oneDNN's convolutions then skip layout conversions
# (a full training step at the default options is about 20% faster)
CHANNELS_LAST = torch.channels_last


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """StyleGAN's activation: leaky ReLU (slope 0.2) with gain sqrt(2), keeping the signal's magnitude."""
    return F.leaky_relu(x, 0.2) * SQRT2


class EqualLinear(nn.Linear):
    """``nn.Linear`` with equalized learning rate: weight stored N(0, 1) / lr_mul, used times lr_mul / sqrt(in)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.lr_mul = lr_mul
        self.weight_gain = lr_mul / math.sqrt(in_features)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            if self.bias is not None:
                self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.weight_gain, bias)


class EqualConv2d(nn.Conv2d):
    """``nn.Conv2d`` (stride 1, 'same' padding) with equalized learning rate, like :class:`EqualLinear`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, lr_mul: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self.lr_mul = lr_mul
        self.weight_gain = lr_mul / math.sqrt(in_channels * kernel_size**2)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.conv2d(x, self.weight * self.weight_gain, bias, padding=self.padding)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True, fused: bool = False
) -> torch.Tensor:
    """StyleGAN2's modulated convolution, 'same' padding: ``x`` (N, I, H, W), ``weight`` (O, I, k, k), ``styles``
    (N, I) -> (N, O, H, W). Sample n is convolved with ``weight * styles[n]`` (per input channel), demodulated:
    each output channel's modulated weight divided by its L2 norm, so unit-variance inputs give unit-variance
    outputs whatever the style.

    ``fused=True`` builds the N modulated weights and runs one grouped convolution (groups=N), as StyleGAN2's
    reference; ``fused=False`` computes the same thing as scale inputs -> shared convolution -> scale outputs
    (demodulation factors from ``styles**2 @ (weight**2 summed over the kernel)``), which is faster on CPUs.
    """
    n = x.shape[0]
    padding = weight.shape[-1] // 2
    if fused:
        w = weight.unsqueeze(0) * styles[:, None, :, None, None]  # (N, O, I, k, k)
        if demodulate:
            w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *weight.shape[1:]), padding=padding, groups=n)
        return out.reshape(n, -1, *out.shape[2:])
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=padding)
    if demodulate:
        dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + 1e-8)  # (N, O)
        out = out * dcoefs[:, :, None, None]
    return out


class ModulatedConv2d(nn.Conv2d):
    """A modulated (and optionally demodulated) convolution with its style affine layer ``.affine`` (w -> one
    style per input channel, bias initialized to 1) and a bias after the convolution. ``.weight`` is the
    (out, in, k, k) equalized-lr weight shared by every sample; the per-sample weights never exist unless
    ``fused``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        lr_mul: float = 1.0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True)
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0, lr_mul=lr_mul)
        self.demodulate = demodulate
        self.fused = False
        self.lr_mul = lr_mul
        self.weight_gain = lr_mul / math.sqrt(in_channels * kernel_size**2)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            self.bias.zero_()

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        out = modulated_conv2d(x, self.weight * self.weight_gain, styles, self.demodulate, self.fused)
        return out + (self.bias * self.lr_mul)[None, :, None, None]


class NoiseInput(nn.Module):
    """Per-pixel Gaussian noise (one map per sample, shared by the channels) times a learned strength (starts
    at 0). ``const`` is this layer's fixed noise map, used in eval mode."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.const
        else:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + noise * self.strength


class SynthesisLayer(nn.Module):
    """(Optional x2 bilinear upsampling), modulated 3x3 convolution, noise, bias, leaky ReLU."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool, lr_mul: float) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim, lr_mul=lr_mul)
        self.noise = NoiseInput(resolution)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return leaky_relu(self.noise(self.conv(x, w), noise_mode))


class SynthesisBlock(nn.Module):
    """One resolution: two synthesis layers (the first upsamples; at 4x4, a learned constant and one layer)
    and a to-RGB layer whose image is added to the upsampled image so far. Returns (features, image)."""

    def __init__(
        self, c_in: int, c_out: int, w_dim: int, resolution: int, channels: int, lr_mul: float, first: bool
    ) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.randn(c_out, resolution, resolution)) if first else None
        self.conv0 = None if first else SynthesisLayer(c_in, c_out, w_dim, resolution, up=True, lr_mul=lr_mul)
        self.conv1 = SynthesisLayer(c_out, c_out, w_dim, resolution, up=False, lr_mul=lr_mul)
        self.torgb = ModulatedConv2d(c_out, channels, 1, w_dim, demodulate=False, lr_mul=lr_mul)

    def style_layers(self) -> list[nn.Module]:
        layers = [self.conv1.conv.affine, self.torgb.affine]
        return layers if self.conv0 is None else [self.conv0.conv.affine, *layers]

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, w: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conv0 is None:
            x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1).contiguous(memory_format=CHANNELS_LAST)
        else:
            x = self.conv0(x, w, noise_mode)
        x = self.conv1(x, w, noise_mode)
        rgb = self.torgb(x, w)
        if img is not None:
            rgb = rgb + F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        return x, rgb


class MappingNetwork(nn.Module):
    """z -> w: normalize z to unit second moment, then fully connected layers with leaky ReLU."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.fc = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims, dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for fc in self.fc:
            x = leaky_relu(fc(x))
        return x


def _widths(width: int, resolution: int) -> dict[int, int]:
    """Channels per resolution: ``width`` up to 16 px, halved per octave above (at least 1)."""
    resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    return {r: max(1, width * 16 // max(r, 16)) for r in resolutions}


class StyleGAN2LiteGenerator(nn.Module):
    def __init__(
        self, z_dim: int, w_dim: int, mapping_layers: int, width: int, resolution: int, channels: int, lr_mul: float
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim = z_dim, w_dim
        self.noise_mode = "auto"
        widths = _widths(width, resolution)
        blocks: list[nn.Module] = [MappingNetwork(z_dim, w_dim, mapping_layers, lr_mul * MAPPING_LR)]
        previous = None
        for res, c in widths.items():
            blocks.append(SynthesisBlock(previous or c, c, w_dim, res, channels, lr_mul, first=previous is None))
            previous = c
        self.blocks = nn.ModuleList(blocks)
        # references to modules the blocks own; kept out of nn.Module's registry (and so out of the state dict
        # and parameters()), which would otherwise list every style parameter twice
        self.__dict__["styles"] = nn.ModuleList(s for block in self.blocks[1:] for s in block.style_layers())

    @property
    def mapping(self) -> nn.Module:
        """z -> w: the mapping network (``blocks[0]``), where W-space strategies act."""
        return self.blocks[0]

    def forward(self, z: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        mode = noise_mode or self.noise_mode
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        if mode == "auto":
            mode = "random" if self.training else "const"
        w = self.blocks[0](z)
        x = img = None
        for block in self.blocks[1:]:
            x, img = block(x, img, w, mode)
        return torch.tanh(img)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Appends one channel: the standard deviation of the features over a group of samples, averaged over
    features and pixels (groups of gcd(N, group_size) samples, so any batch size works)."""
    n, c, h, w = x.shape
    g = math.gcd(n, group_size)
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (N / g,)
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual: (from-RGB), 3x3 conv, 2x2 average pool, 3x3 conv; skip: pool, 1x1 conv; sum / sqrt(2)."""

    def __init__(self, c_in: int, c_out: int, lr_mul: float, image_channels: int | None = None) -> None:
        super().__init__()
        self.fromrgb = None if image_channels is None else EqualConv2d(image_channels, c_in, 1, lr_mul=lr_mul)
        self.conv0 = EqualConv2d(c_in, c_in, 3, lr_mul=lr_mul)
        self.conv1 = EqualConv2d(c_in, c_out, 3, lr_mul=lr_mul)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False, lr_mul=lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fromrgb is not None:
            x = leaky_relu(self.fromrgb(x))
        skip = self.skip(F.avg_pool2d(x, 2))
        x = leaky_relu(self.conv0(x))
        x = leaky_relu(self.conv1(F.avg_pool2d(x, 2)))
        return (x + skip) / SQRT2


class DiscriminatorEpilogue(nn.Module):
    """At 4x4: minibatch standard deviation, 3x3 conv, fully connected layer -> (N, channels) features."""

    def __init__(self, c: int, lr_mul: float) -> None:
        super().__init__()
        self.conv = EqualConv2d(c + 1, c, 3, lr_mul=lr_mul)
        self.fc = EqualLinear(c * 16, c, lr_mul=lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(self.conv(minibatch_stddev(x)))
        return leaky_relu(self.fc(x.flatten(1)))


class StyleGAN2LiteDiscriminator(nn.Module):
    def __init__(self, width: int, resolution: int, channels: int, lr_mul: float) -> None:
        super().__init__()
        widths = _widths(width, resolution)
        blocks: list[nn.Module] = []
        for res in sorted(widths, reverse=True)[:-1]:  # down to 4x4
            first = res == resolution
            blocks.append(DiscriminatorBlock(widths[res], widths[res // 2], lr_mul, channels if first else None))
        blocks.append(DiscriminatorEpilogue(widths[4], lr_mul))
        self.blocks = nn.ModuleList(blocks)
        self.head = EqualLinear(widths[4], 1, lr_mul=lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=CHANNELS_LAST)
        for block in self.blocks:
            x = block(x)
        return self.head(x).flatten()


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


class StyleGAN2Lite(ganbench.Architecture):
    """StyleGAN2-lite (Karras et al. 2020): mapping net, modulated convs with noise, skip G, residual D; 32-64 px."""

    name = "stylegan2-lite"
    resolutions = (32, 64)
    options = (
        Option("width", int, 32, "channels up to 16 px, halved per octave above (G and D)", check=at_least(1)),
        Option("z_dim", int, 64, "latent dimension", check=at_least(1)),
        Option("w_dim", int, 64, "dimension of the intermediate latent w (the styles' input)", check=at_least(1)),
        Option("mapping_layers", int, 2, "fully connected layers of the mapping network", check=at_least(1)),
        Option("lr_mul", float, 10.0, "equalized-lr multiplier: effective step = base lr x lr_mul", check=_positive),
    )

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        c = self.config
        G = StyleGAN2LiteGenerator(
            c["z_dim"], c["w_dim"], c["mapping_layers"], c["width"], resolution, channels, c["lr_mul"]
        )
        D = StyleGAN2LiteDiscriminator(c["width"], resolution, channels, c["lr_mul"])
        return G.to(memory_format=CHANNELS_LAST), D.to(memory_format=CHANNELS_LAST)


@ganbench.hookimpl
def register_architectures(register):
    register(StyleGAN2Lite)
