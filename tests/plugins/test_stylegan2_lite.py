"""stylegan2-lite: its contract, its modulated convolution, and how the strategies act on it (style path of
scale-shift and adapter, start-at-source equality, every strategy training on it at 64 px in colour)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.architectures import stylegan2_lite as sg
from ganbench_plugins.strategies.adapter import LowRankDelta
from ganbench_plugins.strategies.scale_shift import ScaledStyle
from tiny_settings import tiny_strategy
from torch import nn
from torch.nn.utils import parametrize

from ganbench.execute.training import TrainConfig, train_gan
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_architecture, fake_images, fake_source, source_generator, step_infos, tiny_nets

REGISTRY = load_registry()
TINY = sg.StyleGAN2Lite(width=4, z_dim=8, w_dim=8)


@pytest.fixture(scope="module")
def source():
    return fake_source(TINY)


# -- contract ----------------------------------------------------------------------------------------


def test_registered_under_its_name():
    entry = REGISTRY.get("architecture", "stylegan2-lite")
    assert entry.cls is sg.StyleGAN2Lite
    assert sg.StyleGAN2Lite.resolutions == (32, 64)
    assert sg.StyleGAN2Lite().provenance() == {}


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_contract_at_every_resolution_and_channel_count(resolution, channels):
    counts = check_architecture(sg.StyleGAN2Lite(width=8, z_dim=16, w_dim=16), resolution, channels)
    assert counts["params_g"] > 0 and counts["params_d"] > 0


@pytest.mark.parametrize("resolution", [32, 64])
def test_blocks_and_styles_layout(resolution, sample_g):
    torch.manual_seed(0)
    G, D = TINY.build(resolution, 1)
    octaves = resolution.bit_length() - 3  # 4 -> resolution: 4 synthesis blocks at 32 px
    assert isinstance(G.blocks[0], sg.MappingNetwork)
    assert all(isinstance(b, sg.SynthesisBlock) for b in G.blocks[1:])
    assert len(G.blocks) == 1 + octaves + 1
    assert len(D.blocks) == octaves + 1 and isinstance(D.blocks[-1], sg.DiscriminatorEpilogue)
    assert isinstance(D.head, nn.Linear) and D.head.out_features == 1
    # the 4x4 block has one convolution and a to-RGB layer, the others two and a to-RGB layer
    assert isinstance(G.styles, nn.ModuleList) and len(G.styles) == 2 + 3 * octaves
    assert all(isinstance(s, nn.Linear) for s in G.styles)
    # in synthesis order: the order in which G's forward pass uses them
    used = []
    handles = [s.register_forward_hook(lambda m, i, o: used.append(m)) for s in G.styles]
    sample_g(G)
    for h in handles:
        h.remove()
    assert [id(m) for m in used] == [id(s) for s in G.styles]
    # the blocks own the style layers; the state dict names each parameter once
    owned = {id(m) for b in G.blocks for m in b.modules()}
    assert all(id(s) in owned for s in G.styles)
    params = dict(G.named_parameters())
    state = {k for k in G.state_dict() if k in params}
    assert len(state) == len(params) and sum(p.numel() for p in params.values()) == sum(
        G.state_dict()[k].numel() for k in state
    )


def test_block_outputs_features_first():
    from ganbench.plugin.blocks import block_output_shapes

    G, _ = TINY.build(32, 1)
    shapes = block_output_shapes(G)
    assert shapes[0] == (8,)  # the mapping network's w
    widths = sg._widths(4, 32)
    assert shapes[1:] == [(widths[r], r, r) for r in (4, 8, 16, 32)]


def test_equalized_layers_are_torch_layers_and_take_parametrizations():
    torch.manual_seed(0)
    conv, linear = sg.EqualConv2d(3, 5, 3), sg.EqualLinear(6, 2)
    mod = sg.ModulatedConv2d(3, 5, 3, w_dim=6)
    assert isinstance(conv, nn.Conv2d) and isinstance(linear, nn.Linear) and isinstance(mod, nn.Conv2d)
    assert mod.weight.shape == (5, 3, 3, 3) and isinstance(mod.weight, nn.Parameter)
    x = torch.randn(2, 3, 8, 8)

    class Double(nn.Module):
        def forward(self, weight):
            return 2 * weight

    for layer, inputs in ((conv, (x,)), (linear, (torch.randn(2, 6),))):
        before = layer(*inputs)
        parametrize.register_parametrization(layer, "weight", Double())
        torch.testing.assert_close(layer(*inputs), 2 * before)  # biases start at zero


def test_equalized_learning_rate_scaling():
    torch.manual_seed(0)
    layer = sg.EqualLinear(400, 300, lr_mul=10.0)
    assert layer.weight.std().item() == pytest.approx(0.1, rel=0.05)  # stored N(0, 1) / lr_mul
    out = layer(torch.randn(1000, 400))
    assert out.std().item() == pytest.approx(1.0, rel=0.05)  # used with gain lr_mul / sqrt(fan_in)


# -- modulated convolution ------------------------------------------------------------------------------


def _naive_modulated_conv(x, weight, styles, demodulate):
    out = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]
        if demodulate:
            w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        out.append(F.conv2d(x[n : n + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(out)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("kernel", [1, 3])
def test_modulated_conv_matches_a_per_sample_loop(demodulate, kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, 8, 8, generator=g)
    weight = torch.randn(7, 6, kernel, kernel, generator=g)
    styles = torch.randn(5, 6, generator=g) + 1
    expected = _naive_modulated_conv(x, weight, styles, demodulate)
    for fused in (False, True):
        got = sg.modulated_conv2d(x, weight, styles, demodulate, fused=fused)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_variance_whatever_the_style():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 16, 64, 64, generator=g)
    weight = torch.randn(8, 16, 3, 3, generator=g)
    styles = torch.rand(4, 16, generator=g) * 5 + 0.1
    out = sg.modulated_conv2d(x, weight, styles)
    inner = out[:, :, 1:-1, 1:-1]  # away from the zero padding
    std = inner.std(dim=(2, 3))
    assert torch.allclose(std, torch.ones_like(std), atol=0.08), std
    # scaling a sample's styles uniformly changes nothing after demodulation
    torch.testing.assert_close(sg.modulated_conv2d(x, weight, styles * 7), out, rtol=1e-4, atol=1e-5)


def test_generator_fused_and_unfused_agree(sample_g):
    G, _ = TINY.build(32, 3)
    expected = sample_g(G)
    for m in G.modules():
        if isinstance(m, sg.ModulatedConv2d):
            m.fused = True
    torch.testing.assert_close(sample_g(G), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2, 3, 4, 6, 8])
def test_minibatch_stddev_any_batch(batch):
    x = torch.randn(batch, 3, 4, 4)
    out = sg.minibatch_stddev(x)
    assert out.shape == (batch, 4, 4, 4) and torch.isfinite(out).all()
    assert torch.equal(out[:, :3], x)
    if batch == 8:  # groups of 4: samples i and i + 2 share a group
        group = x[[1, 3, 5, 7]]
        expected = group.std(dim=0, unbiased=False).mean()
        assert out[1, 3, 0, 0].item() == pytest.approx(expected.item(), rel=1e-4)


# -- noise --------------------------------------------------------------------------------------------


def _with_noise(G, strength=0.5):
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, sg.NoiseInput):
                m.strength.fill_(strength)
    return G


def test_eval_is_deterministic_training_draws_noise():
    torch.manual_seed(0)
    G, _ = TINY.build(32, 1)
    _with_noise(G)
    z = torch.randn(3, G.z_dim)
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z), G(z))  # fixed noise maps
        assert not torch.equal(G(z), G(z, noise_mode="none"))
        G.train()
        assert not torch.equal(G(z), G(z))  # fresh noise
        torch.manual_seed(1)
        first = G(z)
        torch.manual_seed(1)
        assert torch.equal(first, G(z))  # ... from torch's RNG
        G.noise_mode = "const"
        assert torch.equal(G(z), G(z))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="nope")


def test_noise_maps_travel_with_the_weights(sample_g):
    torch.manual_seed(0)
    a, _ = TINY.build(32, 1)
    torch.manual_seed(1)
    b, _ = TINY.build(32, 1)
    _with_noise(a)
    assert not torch.equal(sample_g(a), sample_g(b))
    b.load_state_dict(a.state_dict())
    assert torch.equal(sample_g(a), sample_g(b))


# -- strategies -----------------------------------------------------------------------------------------


def _trainable(net):
    return {n: p.numel() for n, p in net.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def noisy_source(source):
    """The source with clearly non-zero noise strengths, so that equal images mean equal noise too."""
    G, _ = TINY.build(32, 1)
    G.load_state_dict(source.generator)
    _with_noise(G, 0.3)
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    return type(source)(state, source.discriminator, key="noisy", sha256="noisy")


@pytest.mark.parametrize("name", ["adapter", "scale-shift", "scale-shift:train_d=false"])
def test_style_strategies_start_exactly_at_the_source_model(name, noisy_source, make_strategy, sample_g):
    """(tests/test_strategies.py checks every strategy on every architecture to 1e-6; here: bit for bit.)"""
    reference = tiny_nets(TINY, seed=0)
    noisy_source.load_into(reference)
    nets = make_strategy(name).adapt(tiny_nets(TINY, seed=1), noisy_source)
    for seed in (3, 4):
        assert torch.equal(sample_g(nets.G, seed), sample_g(reference.G, seed))
    real = sample_g(reference.G, seed=5)
    reference.D.eval(), nets.D.eval()
    with torch.no_grad():
        torch.testing.assert_close(nets.D(real), reference.D(real), rtol=0, atol=1e-6)


def test_scale_shift_acts_on_the_styles(source, make_strategy, sample_g):
    nets = make_strategy("scale-shift").adapt(tiny_nets(TINY), source)
    G = nets.G
    assert all(isinstance(s, ScaledStyle) for s in G.styles)
    trainable = _trainable(G)
    assert all(n.endswith((".scale", ".shift")) for n in trainable)
    style_channels = sum(s.affine.out_features for s in G.styles)
    assert sum(trainable.values()) == 2 * style_channels
    assert len(trainable) == 2 * len(G.styles)
    # the synthesis layers use the wrapped styles, so a shift changes the images
    convs = [m for m in G.modules() if isinstance(m, sg.ModulatedConv2d)]
    assert [id(m.affine) for m in convs] == [id(s) for s in G.styles]
    before = sample_g(G)
    with torch.no_grad():
        G.styles[0].shift.add_(0.5)
    assert not torch.equal(sample_g(G), before)
    assert all(p.requires_grad for p in nets.D.parameters())
    frozen_d = make_strategy("scale-shift:train_d=false").adapt(tiny_nets(TINY), source)
    assert set(_trainable(frozen_d.D)) == {"head.weight", "head.bias"}


def test_scale_shift_survives_a_deep_copy_and_a_state_dict_round_trip(source, make_strategy, sample_g):
    nets = make_strategy("scale-shift").adapt(tiny_nets(TINY), source)
    with torch.no_grad():
        for s in nets.G.styles:
            s.scale.add_(0.1)
    clone = copy.deepcopy(nets.G)
    assert all(isinstance(s, ScaledStyle) for s in clone.styles)
    assert {id(s) for s in clone.styles}.isdisjoint(id(s) for s in nets.G.styles)
    assert torch.equal(sample_g(clone), sample_g(nets.G))
    with torch.no_grad():
        clone.styles[1].shift.add_(1.0)  # the copy's styles are the ones its blocks use
    assert not torch.equal(sample_g(clone), sample_g(nets.G))


def test_adapter_puts_lora_on_the_styles(source, make_strategy, sample_g):
    rank = 2
    nets = make_strategy(f"adapter:rank={rank}").adapt(tiny_nets(TINY), source)
    G, D = nets.G, nets.D
    assert all(parametrize.is_parametrized(s, "weight") for s in G.styles)
    convs = [m for m in G.modules() if isinstance(m, sg.ModulatedConv2d)]
    assert convs and not any(parametrize.is_parametrized(m, "weight") for m in convs)
    g_trainable = _trainable(G)
    assert all(n.endswith(("weight.0.up", "weight.0.down")) and ".affine." in n for n in g_trainable)

    def lora(module):
        rows, cols = module.weight.shape[0], module.weight[0].numel()
        r = min(rank, rows, cols)
        return r * (rows + cols)

    assert sum(g_trainable.values()) == sum(lora(s) for s in G.styles)
    d_layers = [m for m in D.blocks.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert d_layers and all(parametrize.is_parametrized(m, "weight") for m in d_layers)
    head = sum(p.numel() for p in D.head.parameters())
    assert sum(_trainable(D).values()) == sum(lora(m) for m in d_layers) + head
    # a LoRA update on a style layer changes the images
    before = sample_g(G)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, LowRankDelta):
                m.up.add_(0.1)
    assert not torch.equal(sample_g(G), before)


def test_freeze_g_freezes_mapping_and_the_blocks_style_layers(source, make_strategy):
    nets = make_strategy("freeze-g:layers=2").adapt(tiny_nets(TINY), source)
    G = nets.G
    assert not any(p.requires_grad for p in G.blocks[:2].parameters())
    assert not any(p.requires_grad for s in G.styles[:2] for p in s.parameters())  # the 4x4 block's
    assert all(p.requires_grad for s in G.styles[2:] for p in s.parameters())


def test_cdc_compares_w_and_the_synthesis_features(source, make_strategy):
    nets = tiny_nets(TINY)
    nets.G.noise_mode = "const"  # the same noise for the adapted G and its anchor
    strategy = make_strategy("cdc:lambda=1")
    nets = strategy.adapt(nets, source)
    anchor = source_generator(source, TINY)
    anchor.noise_mode = "const"
    z = torch.randn(6, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    real = torch.zeros(6, 1, 32, 32)
    _, at_source = step_infos(strategy, nets, real, z, source_G=anchor)
    assert at_source.g[0].shape == at_source.source.features[0].shape == (6, 8)  # w
    assert strategy.generator_loss(nets, at_source).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for p in nets.G.blocks[0].parameters():
            p.add_(torch.randn_like(p))
    _, drifted_step = step_infos(strategy, nets, real, z, step=2, source_G=anchor)
    drifted = strategy.generator_loss(nets, drifted_step)
    assert drifted.item() > 1e-5
    drifted.backward()
    assert nets.G.blocks[0].fc[0].weight.grad.abs().sum() > 0


def test_ewc_fisher_covers_every_generator_parameter(source, make_strategy):
    strategy = make_strategy("ewc:fisher_samples=8")
    nets = strategy.adapt(tiny_nets(TINY), source)
    assert strategy.fisher.keys() == dict(nets.G.named_parameters()).keys()
    fisher = torch.cat([f.flatten() for f in strategy.fisher.values()])
    assert torch.isfinite(fisher).all() and fisher.mean().item() == pytest.approx(1.0, rel=1e-5)


@pytest.fixture(scope="module")
def source_64_rgb():
    return fake_source(TINY, resolution=64, channels=3)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name) for e in REGISTRY.entries("strategy")])
def test_every_strategy_trains_two_steps_at_64_px_rgb(entry, source_64_rgb, sample_g):
    """tests/test_conformance.py runs ganbench.testing.check_strategy (32 px, 1 channel) for every strategy on
    every architecture; here the other declared size, with colour."""
    strategy = tiny_strategy(entry)
    nets = strategy.adapt(tiny_nets(TINY, 64, 3), source_64_rgb if strategy.uses_source else None)

    def g_side():  # what trains: G, D and the strategy's modules (RICK's warm-up trains D's last block alone)
        modules = [m.module for m in strategy.modules().values()]
        return {f"{i}.{k}": p for i, net in enumerate([nets.G, nets.D, *modules]) for k, p in net.named_parameters()}

    before = {k: v.detach().clone() for k, v in g_side().items()}
    source_G = source_generator(source_64_rgb, TINY, 64, 3) if strategy.needs().source else None
    result = train_gan(nets, strategy, fake_images(8, 3, 64), TrainConfig(2, 4, 1e-3, 0), progress=False,
                       source_G=source_G)  # fmt: skip
    assert len(result.g_loss) == 2 and all(map(math.isfinite, result.g_loss + result.d_loss))
    moved = [k for k, p in g_side().items() if not torch.equal(before[k], p.detach())]
    frozen = {k for k, p in g_side().items() if not p.requires_grad}
    assert moved and not frozen.intersection(moved)
    assert sample_g(nets.G).shape == (4, 3, 64, 64)
