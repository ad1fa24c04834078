"""What each built-in strategy freezes, adds or regularizes, in numbers."""

import pytest
import torch
from tiny_settings import TINY_ARCH_OPTIONS

from ganbench.plugin.manager import load_registry
from ganbench.testing import (
    fake_images,
    fake_source,
    refusal,
    source_generator,
    step_infos,
    tiny_architecture,
    tiny_nets,
)

REGISTRY = load_registry()
SOURCE_STRATEGIES = [e.name for e in REGISTRY.entries("strategy") if e.cls.uses_source]
ARCHITECTURES = REGISTRY.names("architecture")
# tiny versions of every architecture (each option applies where the architecture declares it)
TINY = TINY_ARCH_OPTIONS


def tiny_arch(name):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY.items() if k in declared})


@pytest.fixture(scope="module")
def source():
    return fake_source()


@pytest.fixture(scope="module")
def sources():
    """A fake source checkpoint per tiny architecture, made on first use."""
    made = {}

    def get(arch_name):
        if arch_name not in made:
            made[arch_name] = fake_source(tiny_arch(arch_name))
        return made[arch_name]

    return get


@pytest.mark.parametrize("name", SOURCE_STRATEGIES)
@pytest.mark.parametrize("arch_name", ARCHITECTURES)
def test_adapted_nets_start_at_the_source_model(name, arch_name, sources, make_strategy, sample_g):
    """Adapters and scale/shift start at zero, so every transfer strategy begins where the source ends,
    on every architecture."""
    arch, source = tiny_arch(arch_name), sources(arch_name)
    if refusal(make_strategy(name), arch) is not None:
        return  # the strategy does not apply to this architecture (test_conformance checks the refusal)
    reference = tiny_nets(arch, seed=0)
    source.load_into(reference)
    fresh = tiny_nets(arch, seed=1)
    # D in eval mode, so that reading a spectrally normalized weight (adapter does, to size its update)
    # runs no power iteration: D's output then depends on the loaded source and the adapters alone
    reference.D.eval(), fresh.D.eval()
    nets = make_strategy(name).adapt(fresh, source)
    torch.testing.assert_close(sample_g(nets.G), sample_g(reference.G), rtol=0, atol=1e-6)
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():  # D too: adapters start at zero, frozen layers hold the source's values
        images = reference.G(z)
        torch.testing.assert_close(nets.D(images), reference.D(images), rtol=0, atol=1e-5)


def _counts(nets):
    total = sum(p.numel() for net in (nets.G, nets.D) for p in net.parameters())
    trainable = sum(p.numel() for net in (nets.G, nets.D) for p in net.parameters() if p.requires_grad)
    return trainable, total


def test_freeze_g_freezes_the_first_generator_blocks(source, make_strategy):
    nets = make_strategy("freeze-g:layers=2").adapt(tiny_nets(), source)
    frozen = sum(p.numel() for p in nets.G.blocks[:2].parameters())
    trainable, total = _counts(nets)
    assert trainable == total - frozen
    assert all(p.requires_grad for p in nets.G.blocks[2:].parameters())


def test_scale_shift_trains_only_channel_affines_of_g(source, make_strategy):
    nets = make_strategy("scale-shift").adapt(tiny_nets(), source)
    g_trainable = {n: p.numel() for n, p in nets.G.named_parameters() if p.requires_grad}
    assert all(n.endswith((".scale", ".shift")) for n in g_trainable)
    # tiny DCGAN (width 4): G blocks output 16, 8, 4 channels before the image block
    assert sum(g_trainable.values()) == 2 * (16 + 8 + 4)
    assert all(p.requires_grad for p in nets.D.parameters())
    frozen_d = make_strategy("scale-shift:train_d=false").adapt(tiny_nets(), source)
    assert [n for n, p in frozen_d.D.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_ewc_fisher_is_normalized_and_the_penalty_pulls_back(source, make_strategy):
    strategy = make_strategy("ewc:lambda=100,fisher_samples=64")
    nets = strategy.adapt(tiny_nets(), source)
    fisher = torch.cat([f.flatten() for f in strategy.fisher.values()])
    assert torch.isfinite(fisher).all() and (fisher >= 0).all()
    assert fisher.mean().item() == pytest.approx(1.0, rel=1e-5)
    assert strategy.generator_loss(nets, None).item() == 0.0  # at the source: no pull
    weight = nets.G.blocks[1][0].weight
    with torch.no_grad():
        weight.add_(0.1)
    penalty = strategy.generator_loss(nets, None)
    expected = 100 * (strategy.fisher["blocks.1.0.weight"] * 0.01).sum() / fisher.numel()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-4)
    penalty.backward()
    assert (weight.grad * strategy.fisher["blocks.1.0.weight"] >= 0).all()  # gradient points back to source


def test_cdc_consistency_is_zero_at_the_source_and_grows_with_drift(source, make_strategy):
    strategy = make_strategy("cdc:lambda=1")
    nets = strategy.adapt(tiny_nets(), source)
    anchor = source_generator(source)  # what the loop runs for Needs(source=True)
    blocks = tuple(range(len(nets.G.blocks) - 1))  # every G block but the one that outputs the image
    assert strategy.needs().source and strategy.needs().g_features == blocks
    z = torch.randn(6, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    real = fake_images(6, seed=3).float() / 127.5 - 1
    _, at_source = step_infos(strategy, nets, real, z, source_G=anchor)
    assert set(at_source.g) == set(at_source.source.features) == set(blocks)
    assert strategy.generator_loss(nets, at_source).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for p in nets.G.blocks[1].parameters():
            p.add_(torch.randn_like(p) * 0.5)
    _, drifted_step = step_infos(strategy, nets, real, z, step=2, source_G=anchor)
    drifted = strategy.generator_loss(nets, drifted_step)
    assert drifted.item() > 1e-4
    drifted.backward()
    assert nets.G.blocks[0][0].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in anchor.parameters())


def test_cdc_alternates_anchor_latents_and_the_image_d_with_random_latents_and_a_patch_d(source, make_strategy):
    strategy = make_strategy("cdc")
    reference = tiny_nets(seed=0)
    source.load_into(reference)
    nets = strategy.adapt(tiny_nets(seed=1), source)
    anchor = source_generator(source)
    head = strategy.modules()["patch_head"]
    # tiny DCGAN D blocks output 16, 8 and 4 px maps: the head reads the first at most 32 / 8 = 4 px wide
    assert head.trains_with == "D" and head.module.in_channels == 16 and strategy.needs().d_features == (2,)
    assert set(nets.D.state_dict()) == set(reference.D.state_dict())  # D is D: the head is the strategy's module
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    images = reference.G(z).detach()

    assert strategy.begin_step(1, z) is z  # steps 1-3: random latents, one logit per 4x4 patch position
    d_step, _ = step_infos(strategy, nets, images, z, step=1, source_G=anchor)
    assert d_step.d_real.logits.shape == (4, 16) and d_step.d_real.raw_logits.shape == (4,)
    d_step.d_real.logits.sum().backward()
    assert head.module.weight.grad.abs().sum() > 0
    assert nets.D.head.weight.grad is None  # the image-level head played no part
    nets.D.zero_grad(set_to_none=True)

    anchored = strategy.begin_step(8, z)  # every 4th step: the anchor regions, the whole-image D
    anchors = strategy.anchor_z
    assert anchors.shape == (10, nets.G.z_dim)
    # the second anchor step takes anchors 4-7 (in turn), each moved by 0.05 times the loop's draw
    torch.testing.assert_close(anchored, anchors[4:8] + 0.05 * z)
    with torch.no_grad():
        d_step, _ = step_infos(strategy, nets, images, z, step=8, source_G=anchor)
        torch.testing.assert_close(d_step.d_real.logits, reference.D(images), rtol=0, atol=1e-5)
    assert strategy.begin_step(12, z)[0].sub(anchors[8]).abs().max() <= 0.05 * z[0].abs().max() + 1e-6

    again = make_strategy("cdc")
    again.adapt(tiny_nets(seed=1), source)
    again.load_state_dict(strategy.state_dict())  # a resumed cell keeps its anchors
    torch.testing.assert_close(again.anchor_z, anchors)

    plain = make_strategy("cdc:patch=false")
    plain.adapt(tiny_nets(seed=1), source)
    assert plain.modules() == {} and plain.needs().d_features == () and plain.begin_step(4, z) is z


def test_cdc_patch_block_must_name_a_feature_map(source, make_strategy):
    from ganbench.errors import GanbenchError

    strategy = make_strategy("cdc:patch_block=0")
    strategy.adapt(tiny_nets(), source)
    assert strategy.modules()["patch_head"].module.in_channels == 4  # block 0: the 16 px map
    with pytest.raises(GanbenchError, match=r"cdc:patch_block=7: .* choose one of 0, 1, 2"):
        make_strategy("cdc:patch_block=7").adapt(tiny_nets(), source)


def test_strategies_needing_a_source_say_so(make_strategy):
    from ganbench.errors import GanbenchError

    for name in ("ewc", "cdc"):
        with pytest.raises(GanbenchError, match="needs a source model"):
            make_strategy(name).adapt(tiny_nets(), None)


def test_tiny_architecture_is_what_the_counts_assume():
    G, _ = tiny_architecture().build(32, 1)
    assert [b[0].out_channels for b in G.blocks] == [16, 8, 4, 1]
