"""MaskDis against the authors' code, bbzhu-jy16/MaskDis at commit 2d16188cf27bf959323b536baf91a3c35680c3af
(model.py Patch_Discriminator.forward lines 789-797: the mask and ``extra_linear``; model.py Extra: the patch head;
train.py lines 70-89 and 335-353: their adversarial losses and R1; train.py lines 248-300 and 372-416: the D-side and
G-side consistency terms), run at development time on CPU (their CUDA activation replaced by a pure-torch copy of
its kernel) on the fixed inputs below; the numbers are theirs. The inputs are rebuilt here from the same seeded
recipes; their mask indices and layer draws came from NumPy's seeded global generator, redrawn here the same way.

Their leaky-ReLU kernel takes sqrt(2) and the slope 0.2 as C floats (1.41421353816986..., 0.200000003...), so the
cases through their masked head and patch head agree to ~3e-8 relative with this float64 arithmetic: those are
compared at rtol 1e-7. Then the
behaviour: what trains, which features each part reads, the masks, the anchors, the refusals, the contract."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.strategies.maskdis import (
    RATIO,
    ImageHead,
    MaskDis,
    PatchHead,
    consistency_term,
    draw_keep,
    masked_count,
)
from tiny_settings import TINY_ARCH_OPTIONS

from ganbench.errors import GanbenchError
from ganbench.execute.training import r1_penalty
from ganbench.plugin.manager import load_registry
from ganbench.testing import (
    check_strategy,
    fake_images,
    fake_source,
    refusal,
    source_generator,
    step_infos,
    tiny_nets,
)

REGISTRY = load_registry()
ARCHITECTURES = REGISTRY.names("architecture")


def tiny_arch(name, **extra):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in {**TINY_ARCH_OPTIONS, **extra}.items() if k in declared})


def rn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def d_logistic(real, fake):  # the loop's D loss (their d_logistic_loss): mean over every logit
    return F.softplus(-real).mean() + F.softplus(fake).mean()


# ---------------------------------------------------------------------------------------------- parity: masked head
@pytest.mark.parametrize(
    ("c4", "n_masked", "feat_seed", "head_seed", "np_seed", "logits", "unmasked", "d", "g"),
    [
        (512, 6192, 0, 1, 123,  # their hard-coded 6192 of 8192
         [-1.2625841189673155, -1.137082901167855, -0.7141778613976801, -1.91856708916187],
         [0.412979278969295, -2.7166375070838034, -1.187666977584196, -1.7428059996364276],
         1.7312519593583096, 1.5841196508834612),
        (8, 64, 2, 3, 7,  # their arithmetic at 128 features, half masked
         [1.7982568841425892, 1.086087863543857, 1.248147062171635, 0.45165184814848414],
         [0.34005359201822505, 0.8755819001663879, 0.6958816230829084, 0.43168232192402467],
         1.44440000872076, 0.3724740667990707),
        (8, 96, 2, 3, 7,  # 3/4 masked, the ratio their comment states
         [1.4548048160653182, 1.0204353396126709, 1.5714459750644822, 0.3168720362593662],
         [0.34005359201822505, 0.8755819001663879, 0.6958816230829084, 0.43168232192402467],
         1.5709505738442775, 0.3679823089521227),
    ],
)  # fmt: skip
def test_masked_image_head_equals_the_authors(c4, n_masked, feat_seed, head_seed, np_seed, logits, unmasked, d, g):
    n = c4 * 16
    h = rn(torch.Generator().manual_seed(feat_seed), 4, c4, 4, 4)  # their final-conv output, B = 4
    head = ImageHead(n, c4).double()
    gen = torch.Generator().manual_seed(head_seed)
    with torch.no_grad():  # in their order: W0, b0, W1, b1
        for p in (head.hidden.weight, head.hidden.bias, head.out.weight, head.out.bias):
            p.copy_(rn(gen, *p.shape))
    np.random.seed(np_seed)
    index = np.random.choice(n, n_masked, replace=False)  # their draw (model.py:792), one index for the batch
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.from_numpy(index)] = False
    ours = head(h.flatten(1), keep)
    assert ours.shape == (4,) and ours.dtype == torch.float64
    torch.testing.assert_close(ours, torch.tensor(logits, dtype=torch.float64), rtol=1e-7, atol=0)
    torch.testing.assert_close(head(h.flatten(1)), torch.tensor(unmasked, dtype=torch.float64), rtol=1e-7, atol=0)
    assert d_logistic(ours[:2], ours[2:]).item() == pytest.approx(d, rel=1e-7)
    assert F.softplus(-ours[2:]).mean().item() == pytest.approx(g, rel=1e-7)


def test_the_mask_zeroes_their_count_shared_over_the_batch_without_rescaling():
    assert RATIO == 6192 / 8192 and masked_count(8192, RATIO) == 6192
    assert masked_count(128, 0.5) == 64 and masked_count(128, 0.75) == 96 and masked_count(10, 0.0) == 0
    gen = torch.Generator().manual_seed(0)
    first, second = draw_keep(8192, RATIO, gen), draw_keep(8192, RATIO, gen)
    assert first.shape == (8192,) and int((~first).sum()) == int((~second).sum()) == 6192
    assert not torch.equal(first, second)  # a new draw every time
    head = ImageHead(8, 2).double()
    x = torch.randn(3, 8, dtype=torch.float64)
    keep = torch.tensor([True, False] * 4)
    # zeroed (not rescaled) and the same positions for every sample
    torch.testing.assert_close(head(x, keep), head(x * keep), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- parity: patch + R1
def test_patch_head_losses_and_r1_equal_the_authors():
    g = torch.Generator().manual_seed(11)
    head = PatchHead(8).double()  # their Extra.new_conv[k] = ConvLayer(512, 1, 3), at 8 channels
    with torch.no_grad():
        head.weight.copy_(rn(g, 1, 8, 3, 3))
        head.bias.copy_(rn(g, 1))
    x_real = rn(g, 4, 8, 8, 8).requires_grad_(True)
    x_fake = rn(g, 4, 8, 8, 8)
    real, fake = head(x_real).flatten(1), head(x_fake).flatten(1)  # (N, patches), as discriminator_logits returns
    assert real.shape == (4, 64)
    assert d_logistic(real, fake).item() == pytest.approx(1.4248311233280324, rel=1e-7)
    assert F.softplus(-fake).mean().item() == pytest.approx(0.7766640988682184, rel=1e-7)
    means = [0.031284212648571376, -0.16888862346792086, -0.13307456239870175, 0.08865208439864393]
    # their kernel's float32 sqrt(2) and slope 0.2 leave ~3e-9 on these means, one of them near 0 (0.03)
    torch.testing.assert_close(real.mean(1), torch.tensor(means, dtype=torch.float64), rtol=1e-7, atol=1e-8)
    # the loop's R1 on patch logits takes each image's mean, as their train.py:339-344
    assert r1_penalty(real, x_real).item() == pytest.approx(0.008429134002439304, rel=1e-7)


# ---------------------------------------------------------------------------------------------- parity: consistency
D_SHAPES = [(4, 8, 8, 8), (4, 8, 8, 8), (4, 8, 4, 4), (4, 8, 4, 4)]  # stand-ins for their 4 D maps
G_SHAPES = [(4, 8, 4, 4)] + [(4, 8, 8, 8)] * 2 + [(4, 8, 16, 16)] * 2  # stand-ins for 5 G conv outputs


def feats(seed, shapes, dtype=torch.float64, grad=False):
    g = torch.Generator().manual_seed(seed)
    return [rn(g, *s).to(dtype).requires_grad_(grad) for s in shapes]


@pytest.mark.parametrize(
    ("shapes", "seeds", "np_seed", "low", "high", "rows", "kl_wt", "dtype", "theirs", "grad_norm", "rel"),
    [
        # D side, their defaults; their distance buffers are float32: ours follow the features' dtype
        (D_SHAPES, (21, 22), 5, 0, 4, [3, 2, 3, 1], 2500, torch.float32, 2.6971163749694824, 2.7811898962478483, 1e-5),
        (D_SHAPES, (21, 22), 5, 0, 4, [3, 2, 3, 1], 2500, torch.float64, 2.6971028791714673, 2.7811898887494295, 1e-9),
        (D_SHAPES, (21, 22), 5, 0, 4, [3, 2, 3, 1], 1000, torch.float64, 1.0788411516685867, 1.1124759554997712, 1e-9),
        # G side: their randint(1, n_latent - 1), the 4x4 map never drawn
        (G_SHAPES, (31, 32), 9, 1, 5, [3, 1, 3, 2], 2500, torch.float64, 0.8467264486286541, 0.6358154119618369, 1e-9),
    ],
)  # fmt: skip
def test_consistency_terms_equal_the_authors(shapes, seeds, np_seed, low, high, rows, kl_wt, dtype, theirs,
                                             grad_norm, rel):  # fmt: skip
    source = feats(seeds[0], shapes, dtype)
    adapted = feats(seeds[1], shapes, dtype, grad=True)
    np.random.seed(np_seed)
    drawn = np.random.randint(low, high, size=4).tolist()  # their feat_ind (train.py:251 / :375)
    assert drawn == rows
    ours = consistency_term(source, adapted, drawn, kl_wt)
    assert ours.dtype == dtype and ours.item() == pytest.approx(theirs, rel=rel)
    ours.backward()
    norm = math.sqrt(sum(float(f.grad.double().square().sum()) for f in adapted if f.grad is not None))
    assert norm == pytest.approx(grad_norm, rel=max(rel, 1e-7))
    assert all(adapted[i].grad is None for i in range(len(shapes)) if i not in rows)  # only the drawn layers


def test_d_side_softmax_rows_equal_the_authors():
    from ganbench import similarity_distributions

    source = feats(21, D_SHAPES)
    rows = [3, 2, 3, 1]
    ours = torch.stack([similarity_distributions(source[layer])[i] for i, layer in enumerate(rows)])
    theirs_first = [0.3288640967237977, 0.3077089876173158, 0.3634269156588866]  # row 0 (their dist_source)
    torch.testing.assert_close(ours[0], torch.tensor(theirs_first, dtype=torch.float64), rtol=1e-9, atol=0)
    torch.testing.assert_close(ours.sum(1), torch.ones(4, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def source():
    return fake_source()


def adapted(source, **options):
    strategy = MaskDis(**options)
    nets = strategy.adapt(tiny_nets(seed=1), source)
    return strategy, nets


def batch(n=4, seed=0):
    z = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
    return z, fake_images(n, seed=3).float() / 127.5 - 1


def test_what_trains_and_what_it_adds(source):
    strategy, nets = adapted(source)
    reference = tiny_nets(seed=0)
    source.load_into(reference)
    # the tiny DCGAN's D blocks output 16, 8, 4 px maps (4, 8, 16 channels): block 2 is at 32 / 8 = 4 px
    assert strategy.patch == 2 and strategy.d_blocks == (2,) and strategy.head_blocks == (2,)
    assert strategy.g_blocks == (1, 2)  # G's 8 and 16 px maps: not the 4x4 one, not the image
    assert strategy.needs().d_features == (2,) and strategy.needs().g_features == (1, 2) and strategy.needs().source
    modules = strategy.modules()
    assert {name: m.trains_with for name, m in modules.items()} == {"image_head": "D", "patch_head": "D"}
    image_head = modules["image_head"].module
    assert image_head.hidden.weight.shape == (16, 16 * 4 * 4)  # flattened 16 x 4 x 4 -> 16 -> 1
    assert modules["patch_head"].module.weight.shape == (1, 16, 3, 3)
    assert image_head.hidden.bias.abs().sum() == 0 and image_head.out.bias.abs().sum() == 0  # their init: bias 0
    assert set(nets.D.state_dict()) == set(reference.D.state_dict())  # D stays D: the heads are modules
    frozen = [n for n, p in nets.D.named_parameters() if not p.requires_grad]
    assert frozen == ["head.weight", "head.bias"]  # D's own head never judges
    assert all(p.requires_grad for p in nets.G.parameters())
    assert all(not p.requires_grad for p in strategy.source_D.parameters()) and not strategy.source_D.training
    assert strategy.source_D.blocks[0][0].weight is not nets.D.blocks[0][0].weight


def test_anchor_steps_judge_masked_last_block_features_with_the_fresh_head(source):
    strategy, nets = adapted(source, ratio=0.5)
    z, real = batch()
    head = strategy.modules()["image_head"].module
    before = strategy.generator.get_state()
    d_step, g_step = step_infos(strategy, nets, real, z, step=4, source_G=source_generator(source))
    replay = torch.Generator()
    replay.set_state(before)  # the passes drew, in order: the fake batch's mask, the real batch's, the D-term rows
    keep_fake, keep_real = draw_keep(256, 0.5, replay), draw_keep(256, 0.5, replay)
    assert not torch.equal(keep_fake, keep_real)  # a new mask for every D pass
    features = d_step.d_real.features[2]
    assert d_step.d_real.logits.shape == (4,)
    torch.testing.assert_close(d_step.d_real.logits, head(features.flatten(1), keep_real), rtol=0, atol=0)
    torch.testing.assert_close(d_step.d_fake.logits, head(d_step.d_fake.features[2].flatten(1), keep_fake),
                               rtol=0, atol=0)  # fmt: skip
    d_step.d_real.logits.sum().backward()
    assert nets.D.head.weight.grad is None and strategy.patch_head.weight.grad is None
    column_grad = head.hidden.weight.grad.abs().sum(0)
    assert (column_grad[~keep_real] == 0).all() and (column_grad[keep_real] > 0).all()  # masked inputs: no gradient
    assert nets.D.blocks[0][0].weight.grad.abs().sum() > 0


def test_patch_steps_judge_each_patch_of_the_patch_block(source):
    strategy, nets = adapted(source)
    z, real = batch()
    d_step, _ = step_infos(strategy, nets, real, z, step=1, source_G=source_generator(source))
    assert d_step.d_real.logits.shape == (4, 16) and d_step.d_real.raw_logits.shape == (4,)  # 4 x 4 patches
    torch.testing.assert_close(d_step.d_real.logits, strategy.patch_head(d_step.d_real.features[2]).flatten(1))
    d_step.d_real.logits.sum().backward()
    assert strategy.patch_head.weight.grad.abs().sum() > 0
    assert strategy.image_head.hidden.weight.grad is None and nets.D.head.weight.grad is None


def test_anchor_latents_are_drawn_with_replacement_around_fixed_anchors(source):
    strategy, _ = adapted(source, anchors=3)
    z = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    assert strategy.begin_step(5, z) is z  # a patch step: the loop's latents
    replay = torch.Generator()
    replay.set_state(strategy.generator.get_state())
    index = torch.randint(3, (12,), generator=replay)
    anchored = strategy.begin_step(8, z)
    torch.testing.assert_close(anchored, strategy.anchor_z[index] + 0.1 * z)
    assert len(set(index.tolist())) < 12  # 12 draws from 3 anchors


def test_d_side_consistency_is_zero_at_the_source_runs_on_every_step_and_trains_d_alone(source):
    strategy, nets = adapted(source)
    anchor = source_generator(source)
    z, real = batch()
    for step in (1, 4):  # a patch step and an anchor step: the D-side term has its features on both
        d_step, _ = step_infos(strategy, nets, real, z, step=step, source_G=anchor)
        term = strategy.discriminator_loss(nets, d_step)["consistency"]
        assert term.item() == pytest.approx(0.0, abs=1e-4)  # adapted G and D are still the source's (float32)
    with torch.no_grad():
        for p in nets.D.blocks[1].parameters():
            p.add_(torch.randn_like(p) * 0.5)
    d_step, _ = step_infos(strategy, nets, real, z, step=4, source_G=anchor)
    term = strategy.discriminator_loss(nets, d_step)["consistency"]
    assert term.item() > 1e-2
    term.backward()
    assert nets.D.blocks[0][0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in nets.G.parameters())  # the fake batch is detached: D alone
    assert all(p.grad is None for p in strategy.source_D.parameters())
    assert strategy.image_head.hidden.weight.grad is None  # it reads D's inner features, not the heads


def test_g_side_consistency_is_zero_at_the_source_and_grows_with_drift(source):
    strategy, nets = adapted(source, kl_wt=1000.0)
    anchor = source_generator(source)
    z, real = batch()
    _, g_step = step_infos(strategy, nets, real, z, step=1, source_G=anchor)
    assert set(g_step.g) == set(g_step.source.features) == {1, 2}
    assert strategy.generator_loss(nets, g_step)["consistency"].item() == pytest.approx(0.0, abs=1e-4)
    with torch.no_grad():
        for p in nets.G.blocks[1].parameters():
            p.add_(torch.randn_like(p) * 0.5)
    _, g_step = step_infos(strategy, nets, real, z, step=2, source_G=anchor)
    term = strategy.generator_loss(nets, g_step)["consistency"]
    assert term.item() > 1e-2
    term.backward()
    assert nets.G.blocks[0][0].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in anchor.parameters())


def test_kl_wt_zero_drops_both_terms(source):
    strategy, nets = adapted(source, kl_wt=0.0)
    z, real = batch()
    d_step, g_step = step_infos(strategy, nets, real, z, step=1, source_G=source_generator(source))
    assert strategy.discriminator_loss(nets, d_step) is None and strategy.generator_loss(nets, g_step) is None


def test_state_resumes_the_draws(source):
    strategy, _ = adapted(source)
    for _ in range(3):
        draw_keep(64, 0.5, strategy.generator)
    state = strategy.state_dict()
    again, _ = adapted(source)
    again.load_state_dict(state)
    torch.testing.assert_close(again.anchor_z, strategy.anchor_z)
    assert torch.equal(draw_keep(64, 0.5, again.generator), draw_keep(64, 0.5, strategy.generator))


def test_stylegan2_at_256_reads_where_their_code_reads():
    """Their feature taps at 256 px: the patch head and the D-side maps at 32 and 16 px; the G-side maps every
    synthesis resolution but 4 px, 256 included; the mask on the epilogue's output."""
    strategy = MaskDis()
    nets = tiny_nets(tiny_arch("stylegan2"), resolution=256, channels=3)
    found = strategy.layout(nets)
    from ganbench_plugins.strategies.maskdis import net_layout

    g_shapes, _, d_shapes, side = net_layout(nets)
    assert side == 256
    assert d_shapes[found["patch"]][-1] == 32 and [d_shapes[b][-1] for b in found["d_blocks"]] == [32, 16]
    assert [g_shapes[b][-1] for b in found["g_blocks"]] == [8, 16, 32, 64, 128, 256]
    assert found["head_blocks"] == [len(nets.D.blocks) - 1]


@pytest.mark.parametrize("arch_name", ARCHITECTURES)
def test_check_strategy(arch_name):
    arch = tiny_arch(arch_name)
    assert refusal(MaskDis(), arch) is None  # it applies to every built-in architecture
    counts = check_strategy(MaskDis(), arch)
    assert 0 < counts["trainable"] < counts["total"]  # D's own head is frozen


def test_refusals_are_one_line(source):
    message = refusal(MaskDis(patch_block=7))
    assert message == "maskdis:patch_block=7: D block 7 does not output a feature map; choose one of 0, 1, 2"
    # the tiny StyleGAN2's head reads 4 features: round(0.9 * 4) masks them all
    assert refusal(MaskDis(ratio=0.9), tiny_arch("stylegan2")) == (
        "maskdis:ratio=0.9: masks all 4 features D's head reads; use a smaller ratio"
    )
    with pytest.raises(GanbenchError, match="maskdis needs a source model"):
        MaskDis().adapt(tiny_nets(), None)
    ratio = next(o for o in MaskDis.options if o.name == "ratio")
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        ratio.parse("1")
