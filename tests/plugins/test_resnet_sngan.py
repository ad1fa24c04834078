"""The resnet-sngan architecture: its blocks, spectral norm under the adapter, and parameter counts derived
by hand from its layer shapes."""

import pytest
import torch
from ganbench_plugins.architectures.resnet_sngan import ResNetSNGAN
from torch import nn
from torch.nn.utils import parametrize

from ganbench.errors import GanbenchError
from ganbench.execute.training import parameter_counts
from ganbench.plugin.blocks import block_output_shapes
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_source, tiny_nets

REGISTRY = load_registry()
W, Z = 4, 8  # tiny: every block 4 channels wide, 8-dimensional latent


def _arch():
    return ResNetSNGAN(width=W, d_width=W, z_dim=Z)


def conv(c_in, c_out, k):  # weight + bias
    return c_in * c_out * k * k + c_out


def bn(c):
    return 2 * c


# the tiny nets at 32 px, 1 channel, layer by layer
G_BLOCKS = [
    conv(Z, 16 * W, 1),  # projection: linear z -> 4x4xW
    *[bn(W) + conv(W, W, 3) + bn(W) + conv(W, W, 3) + conv(W, W, 1)] * 3,  # up-sampling residual blocks
    bn(W) + conv(W, 1, 3),  # output: BN, ReLU, conv to the image
]
D_BLOCKS = [
    conv(1, W, 3) + conv(W, W, 3) + conv(1, W, 1),  # optimized first block (1x1 conv on the pooled shortcut)
    conv(W, W, 3) + conv(W, W, 3) + conv(W, W, 1),  # down-sampling block, learnable shortcut
    *[conv(W, W, 3) + conv(W, W, 3)] * 2,  # two blocks at 8x8, identity shortcuts
]
D_HEAD = conv(W, 1, 1)  # SN linear W -> 1
TOTAL = sum(G_BLOCKS) + sum(D_BLOCKS) + D_HEAD


def lora(c_in, c_out, k):  # a rank-1 update: one row (c_out) and one column (c_in * k * k)
    return c_out + c_in * k * k


G_LORA = lora(Z, 16 * W, 1) + 3 * (2 * lora(W, W, 3) + lora(W, W, 1)) + lora(W, 1, 3)
D_LORA = (lora(1, W, 3) + lora(W, W, 3) + lora(1, W, 1)) + (2 * lora(W, W, 3) + lora(W, W, 1)) + 2 * 2 * lora(W, W, 3)


def test_blocks_and_counts_match_the_layer_shapes():
    G, D = _arch().build(32, 1)
    assert [sum(p.numel() for p in b.parameters()) for b in G.blocks] == G_BLOCKS
    assert [sum(p.numel() for p in b.parameters()) for b in D.blocks] == D_BLOCKS
    assert sum(p.numel() for p in D.head.parameters()) == D_HEAD
    # G's intermediate blocks give N, C, H, W feature maps (the projection is reshaped to 4x4 inside it)
    assert block_output_shapes(G) == [(W, 4, 4), (W, 8, 8), (W, 16, 16), (W, 32, 32), (1, 32, 32)]


def test_every_d_weight_is_spectrally_normalized_with_the_parametrization_api():
    _, D = _arch().build(32, 1)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 11  # 10 convolutions and the head
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(hasattr(m, "weight_orig") for m in layers)  # not the old hook API


def test_64_px_has_one_more_block_each_side():
    G32, D32 = _arch().build(32, 3)
    G64, D64 = _arch().build(64, 3)
    assert (len(G64.blocks), len(D64.blocks)) == (len(G32.blocks) + 1, len(D32.blocks) + 1)
    with pytest.raises(GanbenchError, match="32 and 64"):
        _arch().build(128, 1)


def test_width_256_is_the_papers_size():
    arch = ResNetSNGAN(width=256)
    G, D = arch.build(32, 3)
    assert G.blocks[1].conv1.out_channels == 256 and D.blocks[0].conv1.out_channels == 128
    assert G.z_dim == 128


def test_record_counts_for_freeze_d_and_adapter(make_strategy):
    nets = make_strategy("freeze-d:layers=2").adapt(tiny_nets(_arch()), None)
    counts = parameter_counts(nets)
    assert counts["total_params"] == TOTAL
    assert counts["trainable_d"] == sum(D_BLOCKS[2:]) + D_HEAD
    assert counts["trainable_params"] == TOTAL - D_BLOCKS[0] - D_BLOCKS[1]

    nets = make_strategy("adapter:rank=1").adapt(tiny_nets(_arch()), None)
    counts = parameter_counts(nets)
    assert counts["trainable_g"] == G_LORA
    assert counts["trainable_d"] == D_LORA + D_HEAD
    assert counts["total_params"] == TOTAL + G_LORA + D_LORA
    # the adapter's update chains on top of spectral norm: SN(W) + B @ A
    assert [type(p).__name__ for p in nets.D.blocks[0].conv1.parametrizations.weight] == [
        "_SpectralNorm",
        "LowRankDelta",
    ]


def test_trained_counts_agree_with_the_records(make_strategy):
    assert check_strategy(make_strategy("freeze-d:layers=2"), _arch()) == {
        "trainable": TOTAL - D_BLOCKS[0] - D_BLOCKS[1],
        "total": TOTAL,
    }
    assert check_strategy(make_strategy("adapter:rank=1"), _arch()) == {
        "trainable": G_LORA + D_LORA + D_HEAD,
        "total": TOTAL + G_LORA + D_LORA,
    }


def test_scale_shift_wraps_every_block_but_the_image(make_strategy):
    source = fake_source(_arch())
    nets = make_strategy("scale-shift").adapt(tiny_nets(_arch()), source)
    trainable = {n: p for n, p in nets.G.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in trainable.values()) == 2 * W * 4  # projection + 3 residual blocks
    assert nets.G.blocks[0].scale.shape == (1, W, 1, 1)  # the linear projection gives N, C, 4, 4 maps
    nets.G.train()
    nets.D(nets.G(torch.randn(8, Z, generator=torch.Generator().manual_seed(0)))).sum().backward()
    # pre-activation blocks: a scale acts through the next block's shortcut convolution (shifts, and the
    # scale before the output layer's batch norm, are normalized away: see the module docstring)
    for i in range(3):
        assert trainable[f"blocks.{i}.scale"].grad.abs().mean() > 1e-2
