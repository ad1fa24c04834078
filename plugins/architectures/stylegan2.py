"""StyleGAN2 config-f (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, CVPR 2020), laid out exactly as
rosinality/stylegan2-pytorch builds it, so that the checkpoints every few-shot adaptation paper starts from
(``stylegan2-ffhq-config-f.pt``: ``g_ema`` / ``g`` / ``d`` / ``latent_avg``) load key for key.

Pure PyTorch (no compiled extensions): the FIR resampling of rosinality's ``upfirdn2d`` is written here with
``F.pad`` and a depthwise convolution, the fused bias + leaky ReLU as plain ops; CPU and CUDA alike.

G: a mapping network (pixel norm, then ``n_mlp`` equalized-lr linear layers with leaky ReLU, learning-rate
multiplier ``lr_mlp``) turns z into w (``style_dim``). Synthesis starts from a learned 4x4 constant; each
further octave has a modulated, demodulated 3x3 convolution that upsamples (transposed convolution, stride 2,
then the FIR blur [1, 3, 3, 1]), a second one at the new size, each followed by per-pixel noise with a
learned strength and a biased leaky ReLU (gain sqrt(2)); every octave has a modulated 1x1 to-RGB layer whose
output is added to the FIR-upsampled image so far.

D: from-RGB 1x1 convolution, one residual block per octave (3x3 convolution; FIR blur, stride-2 3x3
convolution; a blurred stride-2 1x1 skip; sum / sqrt(2)) down to 4x4, minibatch standard deviation (groups of
4), a 3x3 convolution and two linear layers.

Channels per resolution are rosinality's: ``width`` (512) up to 32 px, then ``width * channel_multiplier *
32 / resolution`` (config-f: multiplier 2, so 512 at 64 px, 256 at 128, 128 at 256). Smaller ``width`` gives
the tiny nets the tests and the CPU protocol use; the checkpoint keys stay the same.

For strategies (``G.blocks``, ``G.styles``, ``G.modulated``, ``D.blocks``, ``D.head``) the nets expose views
that group rosinality's modules without owning them, so the state dict keeps rosinality's names:

* ``G.blocks``: the mapping network (output w), then one block per resolution 4, 8, ..., its convolutions,
  noise strengths and to-RGB layer; a block returns (features, image so far).
* ``G.styles``: every modulation (style affine) layer, in synthesis order; ``G.modulated``: every modulated
  convolution (weights ``(1, out, in, k, k)``, to-RGB included).
* ``D.blocks``: from-RGB with the first residual block, the other residual blocks, then the 4x4 epilogue
  (minibatch std, convolution, first linear layer); ``D.head``: the last linear layer.

Output: the images are clamped to [-1, 1] (the contract's range; what rosinality's saved images show). Not a
straight-through clamp: on targets with saturated backgrounds (MNIST) its gradient pushes the unbounded output
on without limit (a pretraining reached -1e13 and lost every pixel to float cancellation); a plain clamp gives
saturated pixels no gradient, so they cannot run away. Noise: random in training mode, the
stored maps (``noises.noise_i``) in eval mode; ``G.noise_mode`` ("auto", "random", "const", "none") overrides.
Left out (the training loop is generic): style mixing, path-length regularization, truncation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import Option, at_least

SQRT2 = math.sqrt(2.0)
BLUR = (1, 3, 3, 1)
NOISE_MODES = ("auto", "random", "const", "none")


def make_kernel(taps: tuple[int, ...]) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (true convolution: the kernel flipped), then
    keep every ``down``-th pixel -- rosinality's ``upfirdn2d`` for symmetric pads, in plain PyTorch."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    k = torch.flip(kernel, (0, 1)).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, k, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def biased_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """rosinality's ``fused_leaky_relu``: add the per-channel bias, leaky ReLU (0.2), gain sqrt(2)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * SQRT2


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return biased_leaky_relu(x, self.bias)


class Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 FIR upsampling (to-RGB skips)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR) * 4)
        p = len(BLUR) - 2
        self.pad = ((p + 1) // 2 + 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=2, pad=self.pad)


class EqualLinear(nn.Linear):
    """Equalized-lr linear layer (weight stored N(0, 1) / lr_mul, used times lr_mul / sqrt(in)); with
    ``activation`` the bias goes through the biased leaky ReLU, as rosinality's ``fused_lrelu``."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation=False):
        super().__init__(in_dim, out_dim)
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation
        with torch.no_grad():
            self.weight.normal_().div_(lr_mul)
            self.bias.fill_(bias_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return biased_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Conv2d):
    """Equalized-lr convolution (weight N(0, 1), used times 1 / sqrt(fan in))."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__(c_in, c_out, k, stride=stride, padding=padding, bias=bias)
        self.scale = 1 / math.sqrt(c_in * k * k)
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ModulatedConv2d(nn.Module):
    """Modulated convolution with its style affine ``.modulation`` (w -> one scale per input channel, bias 1)
    and rosinality's weight layout ``(1, out, in, k, k)``; optionally demodulated and/or upsampling x2.

    Computed as scale inputs -> one convolution shared by the batch -> scale outputs by the demodulation
    factors, which is the grouped per-sample convolution of the paper rearranged (the same numbers up to
    float rounding) and runs as one dense convolution on any device."""

    def __init__(self, c_in: int, c_out: int, k: int, style_dim: int, demodulate: bool = True, upsample=False):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = c_in, c_out, k
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            p = (len(BLUR) - 2) - (k - 1)
            self.blur = Blur(((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.scale = 1 / math.sqrt(c_in * k * k)
        self.padding = k // 2
        self.weight = nn.Parameter(torch.randn(1, c_out, c_in, k, k))
        self.modulation = EqualLinear(style_dim, c_in, bias_init=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        weight = self.scale * self.weight.squeeze(0)  # (out, in, k, k)
        style = self.modulation(w)  # (N, in)
        x = x * style.reshape(n, -1, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            dcoefs = torch.rsqrt(style.square() @ weight.square().sum((2, 3)).T + 1e-8)  # (N, out)
            out = out * dcoefs.reshape(n, -1, 1, 1)
        return out


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(c_out)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    def __init__(self, c_in: int, style_dim: int, channels: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(c_in, channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


def channel_widths(resolution: int, width: int, channel_multiplier: int) -> dict[int, int]:
    """rosinality's channels per resolution (config-f at ``width=512, channel_multiplier=2``)."""
    widths = {}
    for i in range(2, int(math.log2(resolution)) + 1):
        r = 2**i
        widths[r] = width if r <= 32 else max(1, width * channel_multiplier * 32 // r)
    return widths


def _unregistered(module: nn.Module, name: str, value) -> None:
    """An attribute nn.Module does not register: views of modules that live elsewhere in the tree (the state
    dict then names every parameter once, as rosinality does)."""
    module.__dict__[name] = value


class _SynthesisBlock(nn.Module):
    """One resolution's view: (first) the constant, conv(s), to-RGB. Returns (features, image so far)."""

    def __init__(self, G: Generator, index: int) -> None:
        super().__init__()
        self.index = index  # 0: 4x4
        if index == 0:
            self.input, self.convs, self.to_rgb = G.input, nn.ModuleList([G.conv1]), G.to_rgb1
        else:
            self.convs = nn.ModuleList([G.convs[2 * index - 2], G.convs[2 * index - 1]])
            self.to_rgb = G.to_rgbs[index - 1]

    def forward(self, x, skip, latent, noise):
        i = self.index
        layer = 0 if i == 0 else 2 * i - 1  # this block's first synthesis layer (latent / noise index)
        if i == 0:
            x = self.input(latent.shape[0])
        for j, conv in enumerate(self.convs):
            x = conv(x, latent[:, layer + j], noise[layer + j])
        skip = self.to_rgb(x, latent[:, layer + len(self.convs)], skip)
        return x, skip


class _Mapping(nn.Module):
    def __init__(self, style: nn.Sequential) -> None:
        super().__init__()
        self.style = style

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class Generator(nn.Module):
    def __init__(
        self, size: int, style_dim: int, n_mlp: int, channel_multiplier: int = 2, lr_mlp: float = 0.01,
        width: int = 512, channels: int = 3,
    ) -> None:  # fmt: skip
        super().__init__()
        self.size, self.style_dim, self.z_dim = size, style_dim, style_dim
        self.noise_mode = "auto"
        self.style = nn.Sequential(
            PixelNorm(), *(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp))
        )
        ch = channel_widths(size, width, channel_multiplier)
        self.channels = ch
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], style_dim)
        self.to_rgb1 = ToRGB(ch[4], style_dim, channels, upsample=False)
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for layer in range(self.num_layers):
            res = 2 ** ((layer + 5) // 2)
            self.noises.register_buffer(f"noise_{layer}", torch.randn(1, 1, res, res))
        c_in = ch[4]
        for i in range(3, self.log_size + 1):
            c_out = ch[2**i]
            self.convs.append(StyledConv(c_in, c_out, style_dim, upsample=True))
            self.convs.append(StyledConv(c_out, c_out, style_dim))
            self.to_rgbs.append(ToRGB(c_out, style_dim, channels))
            c_in = c_out
        self.n_latent = self.log_size * 2 - 2
        blocks = [_Mapping(self.style)] + [_SynthesisBlock(self, i) for i in range(self.log_size - 1)]
        _unregistered(self, "blocks", nn.ModuleList(blocks))
        convs = [self.conv1, *self.convs]
        rgbs = [self.to_rgb1, *self.to_rgbs]
        ordered = [convs[0].conv, rgbs[0].conv]
        for i in range(len(self.to_rgbs)):
            ordered += [convs[2 * i + 1].conv, convs[2 * i + 2].conv, rgbs[i + 1].conv]
        _unregistered(self, "modulated", nn.ModuleList(ordered))
        _unregistered(self, "styles", nn.ModuleList(m.modulation for m in ordered))

    @property
    def mapping(self) -> nn.Module:
        """z -> w: the mapping network (``blocks[0]``), where W-space strategies act."""
        return self.blocks[0]

    def noise_maps(self, mode: str) -> list[torch.Tensor | None]:
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "none":
            return [torch.zeros((), device=self.input.input.device)] * self.num_layers
        return [None] * self.num_layers

    def synthesis(self, latent: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        """w (N, style_dim) or per-layer w+ (N, n_latent, style_dim) -> images (unbounded, as rosinality's)."""
        mode = noise_mode or self.noise_mode
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        if mode == "auto":
            mode = "random" if self.training else "const"
        if latent.ndim == 2:
            latent = latent.unsqueeze(1).expand(-1, self.n_latent, -1)
        noise = self.noise_maps(mode)
        x = skip = None
        for block in self.blocks[1:]:
            x, skip = block(x, skip, latent, noise)
        return skip

    def forward(self, z: torch.Tensor, noise_mode: str | None = None) -> torch.Tensor:
        return self.synthesis(self.blocks[0](z), noise_mode).clamp(-1.0, 1.0)


class ConvLayer(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, downsample: bool = False, bias=True, activate=True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(BLUR) - 2) + (k - 1)
            layers.append(Blur(((p + 1) // 2, p // 2)))
        padding = 0 if downsample else k // 2
        layers.append(EqualConv2d(c_in, c_out, k, stride=2 if downsample else 1, padding=padding,
                                  bias=bias and not activate))  # fmt: skip
        if activate:
            layers.append(FusedLeakyReLU(c_out))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(c_in, c_in, 3)
        self.conv2 = ConvLayer(c_in, c_out, 3, downsample=True)
        self.skip = ConvLayer(c_in, c_out, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """rosinality's minibatch standard deviation (one feature): groups of ``min(N, 4)`` samples taken with a
    stride of N / group (for batches not divisible by 4: the largest group size that divides N)."""
    n, c, h, w = x.shape
    group = min(n, group_size)
    while n % group:
        group -= 1
    y = x.view(group, -1, 1, c, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
    return torch.cat([x, y.repeat(group, 1, h, w)], 1)


class _Epilogue(nn.Module):
    def __init__(self, D: Discriminator) -> None:
        super().__init__()
        self.final_conv, self.linear = D.final_conv, D.final_linear[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.final_conv(minibatch_stddev(x)).flatten(1))


class _Stage(nn.Module):
    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Discriminator(nn.Module):
    def __init__(self, size: int, channel_multiplier: int = 2, width: int = 512, channels: int = 3) -> None:
        super().__init__()
        ch = channel_widths(size, width, channel_multiplier)
        convs: list[nn.Module] = [ConvLayer(channels, ch[size], 1)]
        c_in = ch[size]
        for i in range(int(math.log2(size)), 2, -1):
            convs.append(ResBlock(c_in, ch[2 ** (i - 1)]))
            c_in = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.final_conv = ConvLayer(c_in + 1, ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, ch[4], activation=True), EqualLinear(ch[4], 1))
        stages = [_Stage(convs[0], convs[1]), *(_Stage(c) for c in convs[2:]), _Epilogue(self)]
        _unregistered(self, "blocks", nn.ModuleList(stages))
        _unregistered(self, "head", self.final_linear[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).flatten()


class StyleGAN2(ganbench.Architecture):
    """StyleGAN2 config-f in rosinality/stylegan2-pytorch's layout (its checkpoints load key for key)."""

    name = "stylegan2"
    resolutions = (32, 64, 128, 256, 512, 1024)
    options = (
        Option("width", int, 512, "channels up to 32 px (config-f: 512); fewer for tiny nets", check=at_least(1)),
        Option("channel_multiplier", int, 2, "channels above 32 px: width x this x 32 / resolution (config-f: 2)",
               check=at_least(1)),
        Option("style_dim", int, 512, "dimension of z and w", check=at_least(1)),
        Option("n_mlp", int, 8, "layers of the mapping network", check=at_least(1)),
        Option("lr_mlp", float, 0.01, "the mapping network's learning-rate multiplier", check=at_least(1e-6)),
    )  # fmt: skip

    def build(self, resolution: int, channels: int) -> tuple[nn.Module, nn.Module]:
        c = self.config
        G = Generator(resolution, c["style_dim"], c["n_mlp"], c["channel_multiplier"], c["lr_mlp"], c["width"],
                      channels)  # fmt: skip
        D = Discriminator(resolution, c["channel_multiplier"], c["width"], channels)
        return G, D


@ganbench.hookimpl
def register_architectures(register):
    register(StyleGAN2)
