"""The strategy API for feature-level methods: what the loop computes and hands over (and only when asked), the
strategy's own modules, the W and D-feature transforms, the probing phase and per-step changes of what trains."""

import math
import warnings

import pytest
import torch
from torch import nn

import ganbench
from ganbench.errors import GanbenchError
from ganbench.execute.passes import hooks_on
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.grid.cells import Recipe
from ganbench.plugin.manager import load_registry
from ganbench.testing import (
    check_strategy,
    fake_images,
    fake_source,
    source_generator,
    tiny_nets,
)

REGISTRY = load_registry()
LITE = REGISTRY.create(REGISTRY.resolve("architecture", "stylegan2-lite:width=4,z_dim=8,w_dim=8"))
CONFIG = TrainConfig(3, 4, 1e-3, 0)


def _chain(D, x, upto):
    """D's block outputs up to block ``upto``, computed directly."""
    for block in D.blocks[: upto + 1]:
        x = block(x)
        x = x[0] if isinstance(x, tuple) else x
    return x


class Recorder(ganbench.Strategy):
    """Fine-tunes; keeps what each loss method received, and calls D and G itself in between (which must not
    change what the loop handed over)."""

    name = "recorder"

    def needs(self):
        return ganbench.Needs(d_features=(0, 1), g_features=(1,), source=True)

    def adapt(self, nets, source):
        self.seen = []
        return super().adapt(nets, source)

    def discriminator_loss(self, nets, step):
        kept = {k: v.detach().clone() for k, v in step.d_real.features.items()}
        with torch.no_grad():
            nets.D(torch.zeros_like(step.real))  # a pass of its own: the loop's passes stay as they were
            nets.G(torch.zeros_like(step.z))
        assert all(torch.equal(kept[k], step.d_real.features[k]) for k in kept)
        self.seen.append(("d", step))
        return None

    def generator_loss(self, nets, step):
        assert step.source.features  # read in the step: the source pass runs now
        self.seen.append(("g", step))
        return None


def test_the_loop_hands_each_pass_its_own_features_whatever_ran_in_between():
    source = fake_source()
    strategy = Recorder()
    nets = strategy.adapt(tiny_nets(), source)
    D_before = {k: v.detach().clone() for k, v in nets.D.state_dict().items()}
    anchor = source_generator(source)
    data = fake_images(16, seed=2)
    train_gan(nets, strategy, data, TrainConfig(1, 4, 1e-3, 0), progress=False, source_G=anchor)
    (_, d_step), (_, g_step) = strategy.seen
    # D's first step saw the real batch and the (detached) fake batch: recompute both with D as it was then
    D0 = tiny_nets().D
    D0.load_state_dict(D_before)
    D0.train()
    with torch.no_grad():
        for i in (0, 1):
            torch.testing.assert_close(d_step.d_real.features[i], _chain(D0, d_step.real, i))
            torch.testing.assert_close(d_step.d_fake.features[i], _chain(D0, d_step.fake.detach(), i))
    assert d_step.d_fake.features[1].grad_fn is not None and d_step.d_real.logits.requires_grad
    # in the G step: D's pass on the fake batch (attached to G), the real pass detached
    assert g_step.phase == "g" and not g_step.d_real.features[1].requires_grad
    assert g_step.d_fake is not d_step.d_fake and g_step.d_fake.features[0].requires_grad
    # G's block 1 on the step's latents, and the frozen source G's on the same latents
    assert set(d_step.g) == {1} and d_step.g[1].shape[0] == 4 and d_step.g[1].requires_grad
    assert set(d_step.source.features) == {1} and not d_step.source.images.requires_grad
    assert d_step.source is g_step.source  # one source pass per step
    with torch.no_grad():
        torch.testing.assert_close(d_step.source.images, anchor(d_step.z))  # DCGAN: deterministic given BN batch
    # the loop took its hooks off again; the EMA copy never had any
    assert hooks_on(nets.G) == hooks_on(nets.D) == hooks_on(anchor) == 0


def test_a_strategy_that_asks_for_nothing_gets_nothing_and_leaves_no_hooks():
    seen = []

    class Plain(ganbench.Strategy):
        name = "plain"

        def generator_loss(self, nets, step):
            seen.append((hooks_on(nets.G) + hooks_on(nets.D), step.g, step.d_real.features, step.source))
            return None

    strategy = Plain()
    nets = strategy.adapt(tiny_nets(), fake_source())
    train_gan(nets, strategy, fake_images(16), TrainConfig(2, 4, 1e-3, 0), progress=False)
    assert seen == [(0, {}, {}, None)] * 2  # no taps on the nets, nothing kept, no source pass


def test_the_ema_copy_carries_no_hooks_and_a_strategy_that_leaves_hooks_is_refused():
    class Hooked(ganbench.Strategy):
        name = "hooked"

        def adapt(self, nets, source):
            nets = super().adapt(nets, source)
            self.watch = ganbench.BlockOutputs(nets.G.blocks)  # the old way: hooks left on G
            return nets

    strategy = Hooked()
    nets = strategy.adapt(tiny_nets(), fake_source())
    result = train_gan(nets, strategy, fake_images(16), TrainConfig(1, 4, 1e-3, 0, recipe=Recipe(ema=0.9)),
                       progress=False)  # fmt: skip
    assert hooks_on(nets.G) == len(nets.G.blocks) and hooks_on(result.ema) == 0
    with pytest.raises(AssertionError, match=r"adapt\(\) left 4 forward hook\(s\) on G: .* needs\(\)"):
        check_strategy(Hooked())


class Head(ganbench.Strategy):
    """A projection head on D's block 1 trained with D (a feature-matching term): a strategy module."""

    name = "head"

    def __init__(self, lr_mult=1.0, **config):
        super().__init__(**config)
        self.lr_mult = lr_mult

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        self.head = nn.Conv2d(8, 2, 1)  # tiny DCGAN D: block 1 outputs 8 channels
        return nets

    def needs(self):
        return ganbench.Needs(d_features=(1,))

    def modules(self):
        return {"head": ganbench.StrategyModule(self.head, "D", lr_mult=self.lr_mult)}

    def discriminator_loss(self, nets, step):
        real, fake = (self.head(p.features[1]).mean((0, 2, 3)) for p in (step.d_real, step.d_fake))
        return (real - fake - 1).square().sum()


def test_strategy_modules_train_with_their_net_at_their_rate_and_are_counted():
    strategy = Head()
    nets = strategy.adapt(tiny_nets(), fake_source())
    start = {k: v.clone() for k, v in strategy.head.state_dict().items()}
    result = train_gan(nets, strategy, fake_images(16), CONFIG, progress=False)
    assert not torch.equal(start["weight"], strategy.head.weight)
    head = sum(p.numel() for p in strategy.head.parameters())
    assert result.counts["total_d"] == sum(p.numel() for p in nets.D.parameters()) + head
    assert result.counts["trainable_d"] == result.counts["total_d"]
    assert result.counts["total_g"] == sum(p.numel() for p in nets.G.parameters())
    frozen = Head(lr_mult=0.0)
    nets = frozen.adapt(tiny_nets(), fake_source())
    start = {k: v.clone() for k, v in frozen.head.state_dict().items()}
    train_gan(nets, frozen, fake_images(16), CONFIG, progress=False)
    assert all(torch.equal(start[k], v) for k, v in frozen.head.state_dict().items())  # lr x 0: unchanged
    assert check_strategy(Head())["total"] == result.counts["total_params"]


class HiddenOptimizer(Head):
    """Broken: trains its head with an optimizer of its own, which no checkpoint holds."""

    name = "hidden-optimizer"

    def modules(self):
        return {}

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        self.opt = torch.optim.Adam(self.head.parameters(), lr=1e-2)
        return nets

    def discriminator_loss(self, nets, step):
        self.opt.zero_grad()
        super().discriminator_loss(nets, step).backward(retain_graph=True, inputs=list(self.head.parameters()))
        self.opt.step()
        return super().discriminator_loss(nets, step)  # D's gradient depends on the head it trained


class RunningBuffer(Head):
    """Broken: its module keeps a running statistic in a buffer that is not part of its state dict."""

    name = "running-buffer"

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        self.head.register_buffer("scale", torch.ones(()), persistent=False)
        return nets

    def discriminator_loss(self, nets, step):
        self.head.scale.mul_(1.5)
        return self.head.scale * super().discriminator_loss(nets, step)


@pytest.mark.parametrize("broken", [HiddenOptimizer, RunningBuffer])
def test_check_strategy_catches_module_state_that_no_checkpoint_holds(broken):
    with pytest.raises(AssertionError, match=r"resumed after step 1 of 3 ends with another (G|D)"):
        check_strategy(broken(), steps=3)


class Offset(ganbench.Strategy):
    """G frozen; a trainable offset added to W (WeditGAN-style)."""

    name = "offset"

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        nets.G.requires_grad_(False)
        self.offset = nn.Parameter(torch.zeros(nets.G.mapping(torch.zeros(1, nets.G.z_dim)).shape[-1]))
        self.holder = nn.Module()
        self.holder.offset = self.offset
        return nets

    def needs(self):
        return ganbench.Needs(transform_w=True)

    def modules(self):
        return {"offset": ganbench.StrategyModule(self.holder, "G", lr_mult=10.0)}

    def transform_w(self, w):
        return w + self.offset


def test_a_w_transform_applies_to_the_adapted_g_and_its_ema_copy_and_is_refused_without_a_mapping():
    source = fake_source(LITE)
    strategy = Offset()
    nets = strategy.adapt(tiny_nets(LITE), source)
    config = TrainConfig(3, 4, 1e-3, 0, recipe=Recipe(ema=0.5))
    result = train_gan(nets, strategy, fake_images(16), config, progress=False)
    assert strategy.offset.abs().sum() > 0  # trained
    plain = tiny_nets(LITE)
    plain.G.load_state_dict(nets.G.state_dict())
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    nets.G.eval(), plain.G.eval()
    with torch.no_grad():
        w = plain.G.mapping(z)
        assert not torch.allclose(nets.G(z), plain.G(z))
        # the adapted G synthesizes from w + offset: the same as the plain G with the offset folded in its mapping
        plain.G.mapping.register_forward_hook(lambda m, i, o: o + strategy.offset)
        torch.testing.assert_close(nets.G(z), plain.G(z))
        torch.testing.assert_close(plain.G.mapping(z), w + strategy.offset)
        # the EMA copy (of a frozen G: the same weights) synthesizes from w + offset as well, evaluation included
        ema_plain = tiny_nets(LITE).G.eval()
        ema_plain.load_state_dict(result.ema.state_dict())
        torch.testing.assert_close(result.ema(z), nets.G(z))
        assert not torch.allclose(result.ema(z), ema_plain(z))
    check_strategy(Offset(), arch=LITE)
    dc = Offset()
    nets = ganbench.Strategy.adapt(dc, tiny_nets(), fake_source())  # DCGAN: no mapping network
    with pytest.raises(GanbenchError, match=r"strategy offset works in StyleGAN's W space, .* use it with stylegan2"):
        train_gan(nets, dc, fake_images(16), CONFIG, progress=False)


def test_a_d_feature_transform_changes_the_training_passes_only():
    class ZeroBlock(ganbench.Strategy):
        name = "zero-block"

        def needs(self):
            return ganbench.Needs(transform_d=(1,), d_features=(1,))

        def transform_d_features(self, block, features, batch):
            self.batches.append(batch)
            return features * 0

        def adapt(self, nets, source):
            self.batches = []
            return super().adapt(nets, source)

        def discriminator_loss(self, nets, step):
            assert step.d_real.features[1].abs().sum() == 0  # what D saw is what is kept
            constant = nets.D.head(nets.D.blocks[2](_chain(nets.D, step.real, 1) * 0)).flatten()
            torch.testing.assert_close(step.d_real.logits, constant)
            return None

    strategy = ZeroBlock()
    nets = strategy.adapt(tiny_nets(), fake_source())
    train_gan(nets, strategy, fake_images(16), TrainConfig(1, 4, 1e-3, 0), progress=False)
    assert strategy.batches == ["fake", "real", "fake"]  # the D step's two passes, then the G step's
    with torch.no_grad():
        nets.D(torch.randn(2, 1, 32, 32))
    assert strategy.batches == ["fake", "real", "fake"]  # outside training, D runs as it is: no transform


class Probing(ganbench.Strategy):
    """Probes for `steps` steps (drawing from its own generators), then freezes G's first block."""

    name = "probing"

    def __init__(self, steps=5, record=True, **config):
        super().__init__(**config)
        self.steps, self.record = steps, record
        self.probed = 0

    def probe_steps(self):
        return self.steps

    def probe(self, nets, probe):
        self.probed += 1
        for _ in range(probe.steps):
            probe.real_batch(), probe.latents(nets.G.z_dim)
        self.decision = [0]
        self._apply(nets)

    def _apply(self, nets):
        for i in self.decision:
            nets.G.blocks[i].requires_grad_(False)
        self.nets = nets

    def state_dict(self):
        return {"decision": self.decision} if self.record else {}

    def load_state_dict(self, state):
        self.decision = state["decision"]
        self._apply(self.nets_for_resume)

    def adapt(self, nets, source):
        self.nets_for_resume = nets
        return super().adapt(nets, source)


def test_the_probe_runs_before_training_on_its_own_streams_and_decides_what_trains():
    strategy = Probing()
    nets = strategy.adapt(tiny_nets(), fake_source())
    result = train_gan(nets, strategy, fake_images(16), CONFIG, progress=False)
    assert strategy.probed == 1 and result.probe_seconds is not None and result.probe_seconds > 0
    assert result.counts["trainable_g"] == sum(p.numel() for p in nets.G.blocks[1:].parameters())
    # the probe's draws are its own: training sees the same batches and latents as without it (same losses
    # as a strategy that freezes the same block in adapt)

    class Frozen(ganbench.Strategy):
        name = "frozen"

        def adapt(self, nets, source):
            nets = super().adapt(nets, source)
            nets.G.blocks[0].requires_grad_(False)
            return nets

    plain = Frozen()
    plain_result = train_gan(plain.adapt(tiny_nets(), fake_source()), plain, fake_images(16), CONFIG, progress=False)
    assert result.g_loss == plain_result.g_loss and result.d_loss == plain_result.d_loss
    assert plain_result.probe_seconds is None
    check_strategy(Probing())
    with pytest.raises(AssertionError, match=r"resumed after step 1 of 3 failed .* the same parameters must train"):
        check_strategy(Probing(record=False))  # what the probe decided is not in its state: the resumed run differs


def test_before_and_after_update_hold_parameters_exactly():
    class Hold(ganbench.Strategy):
        name = "hold"

        def before_update(self, which, net, step):
            if which == "G":
                self.kept = net.blocks[0][0].weight.detach().clone()
                net.blocks[0][0].weight.grad.zero_()

        def after_update(self, which, net, step):
            if which == "G":
                with torch.no_grad():
                    net.blocks[0][0].weight.copy_(self.kept)

    strategy = Hold()
    nets = strategy.adapt(tiny_nets(), fake_source())
    start = nets.G.blocks[0][0].weight.detach().clone()
    train_gan(nets, strategy, fake_images(16), CONFIG, progress=False)  # Adam with betas (0.5, 0.999)
    assert torch.equal(nets.G.blocks[0][0].weight, start)
    assert not torch.equal(nets.G.blocks[1][0].weight, fake_source().generator["blocks.1.0.weight"])


def test_param_groups_are_told_which_net_and_old_overrides_still_work():
    told = []

    class Told(ganbench.Strategy):
        name = "told"

        def param_groups(self, net, which):
            told.append((which, hasattr(net, "z_dim")))
            return super().param_groups(net, which)

    class Old(ganbench.Strategy):
        name = "old"

        def param_groups(self, net):
            return super().param_groups(net)

    strategy = Told()
    train_gan(strategy.adapt(tiny_nets(), fake_source()), strategy, fake_images(16), TrainConfig(1, 4, 1e-3, 0),
              progress=False)  # fmt: skip
    assert told == [("G", True), ("D", False)]
    old = Old()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_gan(old.adapt(tiny_nets(), fake_source()), old, fake_images(16), TrainConfig(1, 4, 1e-3, 0),
                           progress=False)  # fmt: skip
    assert math.isfinite(result.g_loss[0])
    assert any("param_groups(self, net, which)" in str(w.message) for w in caught)


def test_a_strategy_asking_for_blocks_the_nets_lack_is_told_in_one_line():
    class Far(ganbench.Strategy):
        name = "far"

        def needs(self):
            return ganbench.Needs(d_features=(9,))

    far = Far()
    with pytest.raises(GanbenchError, match=r"strategy far asks for D block 9, but this D has 3 blocks \(0-2\)"):
        train_gan(far.adapt(tiny_nets(), fake_source()), far, fake_images(16), CONFIG, progress=False)


class PerLayer(ganbench.Strategy):
    """G frozen; one trainable W offset per style layer (WeditGAN-style)."""

    name = "per-layer"

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        nets.G.requires_grad_(False)
        self.deltas = nn.Module()
        self.deltas.w = nn.Parameter(torch.zeros(len(nets.G.styles), 8))
        return nets

    def needs(self):
        return ganbench.Needs(transform_styles=True)

    def modules(self):
        return {"deltas": ganbench.StrategyModule(self.deltas, "G", lr_mult=10.0)}

    def transform_style_input(self, index, w):
        return w + self.deltas.w[index]


def test_per_style_layer_offsets_reach_each_style_layer_and_are_refused_without_style_layers():
    strategy = PerLayer()
    nets = strategy.adapt(tiny_nets(LITE), fake_source(LITE))
    train_gan(nets, strategy, fake_images(16), CONFIG, progress=False)
    deltas = strategy.deltas.w.detach()
    assert (deltas.abs().sum(1) > 0).all()  # every layer's offset trained
    plain = tiny_nets(LITE).G.eval()
    plain.load_state_dict(nets.G.state_dict())
    received = []
    for k, style in enumerate(plain.styles):
        style.register_forward_pre_hook(lambda m, args, k=k: (received.append(k), (args[0] + deltas[k],))[1])
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    nets.G.eval()
    with torch.no_grad():
        torch.testing.assert_close(nets.G(z), plain(z))
    assert received == list(range(len(plain.styles)))
    check_strategy(PerLayer(), arch=LITE)
    dc = PerLayer()
    with pytest.raises(
        GanbenchError, match=r"strategy per-layer works on the W each style layer receives, .* stylegan2"
    ):
        train_gan(ganbench.Strategy.adapt(dc, tiny_nets(), fake_source()), dc, fake_images(16), CONFIG, progress=False)


def test_step_infos_discriminate_keeps_the_strategy_s_blocks_after_the_step():
    strategy = Recorder()
    source = fake_source()
    nets = strategy.adapt(tiny_nets(), source)
    real = fake_images(4, seed=1).float() / 127.5 - 1
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    from ganbench.testing import step_infos

    d_step, _ = step_infos(strategy, nets, real, z, source_G=source_generator(source))
    judged = d_step.discriminate(real, "real")  # a unit test's call, after step_infos took the taps off
    assert set(judged.features) == {0, 1}
    torch.testing.assert_close(judged.features[1], d_step.d_real.features[1])
    assert hooks_on(nets.D) == 0
