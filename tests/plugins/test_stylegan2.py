"""stylegan2: rosinality/stylegan2-pytorch's layout (key names, shapes, parameter counts of config-f), its FIR
resampling in plain PyTorch, and the views strategies use."""

from __future__ import annotations

import torch
from ganbench_plugins.architectures.stylegan2 import StyleGAN2, minibatch_stddev, upfirdn2d

from ganbench import Nets


def _tiny(**options):
    return StyleGAN2(**{"width": 8, "style_dim": 16, "n_mlp": 2, **options})


def test_config_f_at_256_px_has_rosinality_s_keys_and_parameter_counts():
    with torch.device("meta"):  # shapes only
        G, D = StyleGAN2().build(256, 3)
    # the counts of rosinality's Generator(256, 512, 8) and Discriminator(256), measured with its own code
    assert sum(p.numel() for p in G.parameters()) == 30_034_338
    assert sum(p.numel() for p in D.parameters()) == 28_864_129
    g, d = G.state_dict(), D.state_dict()
    assert tuple(g["convs.0.conv.weight"].shape) == (1, 512, 512, 3, 3)
    assert tuple(g["convs.11.conv.weight"].shape) == (1, 128, 128, 3, 3)
    assert tuple(g["to_rgbs.5.conv.weight"].shape) == (1, 3, 128, 1, 1)
    assert {"style.1.weight", "style.8.bias", "input.input", "conv1.activate.bias", "noises.noise_12",
            "convs.0.conv.blur.kernel", "to_rgbs.0.upsample.kernel"} <= set(g)  # fmt: skip
    assert {"convs.0.0.weight", "convs.0.1.bias", "convs.1.conv2.0.kernel", "convs.6.skip.1.weight",
            "final_conv.0.weight", "final_linear.1.weight"} <= set(d)  # fmt: skip
    assert len(g) == len(set(g)) and not any(k.startswith(("blocks.", "styles.", "head.")) for k in list(g) + list(d))


def test_fir_upsampling_and_blur_match_the_filter():
    k = torch.tensor([1.0, 3, 3, 1])
    kernel = (k[None] * k[:, None]) / 64
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    blurred = upfirdn2d(x, kernel, pad=(2, 1))
    assert blurred.shape == (1, 1, 5, 5)
    assert torch.allclose(blurred[0, 0, 1:5, 1:5], kernel)  # a delta comes out as the kernel
    flat = torch.ones(1, 1, 6, 6)
    up = upfirdn2d(flat, kernel * 4, up=2, pad=(2, 1))
    assert up.shape == (1, 1, 12, 12) and torch.allclose(up[0, 0, 2:-2, 2:-2], torch.ones(8, 8))


def test_views_for_strategies_and_noise_modes():
    G, D = _tiny().build(32, 1)
    assert len(G.blocks) == 5 and len(G.styles) == 11 and len(G.modulated) == 11 and len(D.blocks) == 4
    assert D.head is D.final_linear[1]
    z = torch.randn(6, 16)
    with torch.no_grad():  # noise strengths start at 0, as rosinality's
        for conv in [G.conv1, *G.convs]:
            conv.noise.weight.fill_(0.5)
    G.eval()
    assert torch.equal(G(z), G(z))  # eval: the stored noise maps
    G.train()
    assert not torch.equal(G(z), G(z))  # training: fresh noise
    out = G(z)
    assert out.shape == (6, 1, 32, 32) and out.min() >= -1 and out.max() <= 1
    assert D(out).shape == (6,)


def test_minibatch_stddev_groups_as_rosinality():
    x = torch.randn(8, 3, 4, 4)
    y = minibatch_stddev(x)
    group = x.view(4, 2, 3, 4, 4)  # samples i and i + 2, i + 4, i + 6 form a group (stride N / 4)
    expected = torch.sqrt(group.var(0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))
    assert torch.allclose(y[:2, 3, 0, 0], expected) and torch.allclose(y[2:4, 3, 0, 0], expected)
    assert minibatch_stddev(torch.randn(6, 3, 4, 4)).shape == (6, 4, 4, 4)  # 6 images: groups of 3


def test_adapter_puts_low_rank_updates_on_modulated_convolutions_and_starts_at_the_source(registry):
    from ganbench.plugin.contracts import SourceCheckpoint

    torch.manual_seed(0)
    G, D = _tiny().build(32, 1)
    source = SourceCheckpoint(G.state_dict(), D.state_dict(), "k", "sha")
    G.eval()
    z = torch.randn(4, 16)
    before = G(z)
    adapter = registry.create(registry.resolve("strategy", "adapter"))
    fresh = Nets(*_tiny().build(32, 1))
    nets = adapter.adapt(fresh, source)
    nets.G.eval()
    assert torch.allclose(nets.G(z), before, atol=1e-6)
    trainable = {n for n, p in nets.G.named_parameters() if p.requires_grad}
    assert any(n.startswith("convs.0.conv.parametrizations.weight") for n in trainable)
    assert any("modulation.parametrizations.weight" in n for n in trainable)
