"""DCL (Zhao, Ding, Huang & Cheung, CVPR 2022) against the only public code of its loss terms.

The authors released none: yunqing-me/A-Closer-Look-at-FSIG at commit 7b837f37e194a0e49e01a15bc960ff8b673f3952
(its last) holds model.py with feature taps, no training script and no loss. The numbers below come from the
third-party reproduction btheodorou99/MRI2PET at commit deb0829d1e9797852e8381db7e30228f1226253d
(src/baselines/models/dclGAN.py, last changed in b6b9a533b9877339e4bd6143a1ff3375680c941f): its
``Generator.compute_dcl_loss`` and ``Discriminator.compute_dcl_loss``, imported and called at development time in
float64 on the inputs below, values and (through autograd) gradients. ``dcl:form=mri2pet`` is that arithmetic.

The paper's form (``form=paper``, the default) is checked against the research notes' own implementation of the
paper's equations (standard InfoNCE, cross-entropy over cosine scores / tau); that is no one's released code.

Inputs, rebuilt from the notes' seeded recipe ``acts(seed, n, m, d)``: ``g = torch.Generator().manual_seed(seed)``;
S = randn(n, d) (source G features), T = S + 0.5 randn(n, d) (adapted G features of the same latents),
R = randn(m, d) (D features of real images), DS = randn(n, d) (D features of the source images),
DT = DS + 0.5 randn(n, d) (D features of the fakes), float64, drawn in that order. Lambdas are not in the
recorded values; the reproduction's training script weighs them 2 (G term) and 0.5 (D term).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.strategies.dcl import DCL, discriminator_nce, generator_nce
from tiny_settings import TINY_ARCH_OPTIONS

import ganbench
from ganbench import BlockOutputs, DPass, GPass, StepInfo
from ganbench.execute.passes import StepPasses, build_source_generator
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_images, fake_source, refusal, tiny_architecture, tiny_nets

REGISTRY = load_registry()
ARCHITECTURES = ("dcgan", "resnet-sngan", "stylegan2", "stylegan2-lite", "projected")

# case: (seed, n, m, d, tau) -> MRI2PET's G term, its D term; the notes' paper-equation G term, D term
CASES = {
    "b4_tau0.07": ((0, 4, 4, 32, 0.07), -10.755723954546514, 0.0003855910339532085,
                   4.0481331164212786e-05, 0.0003901215839366319),
    "b5_tau0.5": ((1, 5, 6, 16, 0.5), -0.2028042715082508, 0.5236687795896985,
                  0.6169085595669936, 0.7205677428056452),
    "b4_tau1.0": ((2, 4, 4, 8, 1.0), 0.13624295358570068, 0.770415683184449,
                  0.7773935107204578, 0.9496084389392859),
}  # fmt: skip
# MRI2PET's gradients (autograd through their functions): sum of squares of d(G term)/dT, and of d(D term)/dDT,
# /dDS, /dR. With m = 6 > n = 5 their D term never reads the sixth real image (its gradient row is 0).
GRADIENTS = {
    "b4_tau0.07": (0.9849027257894261, 6.089237890453084e-07, 1.2166428008942329e-07, 6.648950522416579e-07),
    "b5_tau0.5": (0.0368809626380377, 0.004493742386076688, 0.001570667318840339, 0.002469678539516451),
    "b4_tau1.0": (0.008073671086442157, 0.009607263231472464, 0.002987998659405286, 0.007281268463082408),
}


def acts(seed, n, m, d):
    g = torch.Generator().manual_seed(seed)
    draw = [torch.randn(k, d, generator=g, dtype=torch.float64) for k in (n, n, m, n, n)]
    S, T, R, DS, DT = draw[0], draw[0] + 0.5 * draw[1], draw[2], draw[3], draw[3] + 0.5 * draw[4]
    return S, T, R, DS, DT


def rel(a, b):
    return abs(float(a) - b) / abs(b)


# ------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("case", CASES)
def test_both_terms_equal_the_mri2pet_reproduction(case):
    """form=mri2pet: the G term without the positive in its denominator, the D term without the real image of
    the same index; MRI2PET's numbers (deb0829, dclGAN.py compute_dcl_loss), float64."""
    (seed, n, m, d, tau), theirs_g, theirs_d, _, _ = CASES[case]
    S, T, R, DS, DT = acts(seed, n, m, d)
    g_term = generator_nce(T, S, tau, positive_in_denominator=False).mean()
    d_term = discriminator_nce(DT, DS, R, tau, skip_same_index=True).mean()
    assert g_term.dtype == d_term.dtype == torch.float64
    assert rel(g_term, theirs_g) < 1e-10 and rel(d_term, theirs_d) < 1e-10


@pytest.mark.parametrize("case", CASES)
def test_paper_form_equals_the_notes_paper_equations(case):
    """form=paper (the default): denominator over every j for the G term, every real image a negative for the D
    term; the notes' implementation of the paper's equations (reference_script.py part C, unverified text)."""
    (seed, n, m, d, tau), _, _, paper_g, paper_d = CASES[case]
    S, T, R, DS, DT = acts(seed, n, m, d)
    assert rel(generator_nce(T, S, tau).mean(), paper_g) < 1e-10
    assert rel(discriminator_nce(DT, DS, R, tau).mean(), paper_d) < 1e-10


@pytest.mark.parametrize("case", CASES)
def test_gradients_equal_the_mri2pet_reproduction(case):
    (seed, n, m, d, tau), *_ = CASES[case]
    S, T, R, DS, DT = (t.requires_grad_(True) for t in acts(seed, n, m, d))
    generator_nce(T, S.detach(), tau, positive_in_denominator=False).mean().backward()
    discriminator_nce(DT, DS, R, tau, skip_same_index=True).mean().backward()
    ours = [t.grad.square().sum().item() for t in (T, DT, DS, R)]
    assert all(rel(a, b) < 1e-8 for a, b in zip(ours, GRADIENTS[case]))
    if m > n:
        assert R.grad[n:].abs().sum() == 0  # their index loop reads only the first n reals


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("form", ["paper", "mri2pet"])
def test_the_strategys_terms_weigh_the_recorded_values(case, form):
    """Through the strategy's own code path (StepInfo in, weighted terms out), non-default weights included:
    lambda_g * G term and lambda_d * D term, the block read being the only candidate."""
    (seed, n, m, d, tau), mri_g, mri_d, paper_g, paper_d = CASES[case]
    S, T, R, DS, DT = acts(seed, n, m, d)
    for lam_g, lam_d in ((2.0, 0.5), (0.3, 1.7)):  # the reproduction's DCL_LAMBDA1 / DCL_LAMBDA2, then others
        strategy = DCL(tau=tau, lambda_g=lam_g, lambda_d=lam_d, form=form)
        strategy.g_blocks, strategy.d_blocks = (0,), (0,)  # what adapt() finds on real nets
        info = StepInfo(1, real=torch.zeros(m, 1), z=torch.zeros(n, 1), fake=torch.zeros(n, 1),
                        d_real=DPass(torch.zeros(m), {0: R}), d_fake=DPass(torch.zeros(n), {0: DT}), g={0: T},
                        _source=lambda: GPass(torch.zeros(n, 1), {0: S}),
                        _discriminate=lambda images, batch: DPass(torch.zeros(n), {0: DS}))  # fmt: skip
        g_want, d_want = (mri_g, mri_d) if form == "mri2pet" else (paper_g, paper_d)
        assert rel(strategy.generator_loss(None, info)["dcl_g"], lam_g * g_want) < 1e-10
        assert rel(strategy.discriminator_loss(None, info)["dcl_d"], lam_d * d_want) < 1e-10


def test_the_two_g_forms_are_one_softplus_apart():
    """Per sample, the paper's G term is softplus of the reproduction's: log(1 + e^{lse_{j != i} - s_ii})."""
    S, T, *_ = acts(5, 6, 6, 12)
    for tau in (0.07, 0.5):
        torch.testing.assert_close(generator_nce(T, S, tau), F.softplus(generator_nce(T, S, tau, False)))


def test_mri2pet_form_needs_two_samples_and_enough_reals():
    S, T, R, DS, DT = acts(0, 4, 4, 8)
    with pytest.raises(ganbench.GanbenchError, match="at least 2"):
        generator_nce(T[:1], S[:1], 0.07, positive_in_denominator=False)
    assert generator_nce(T[:1], S[:1], 0.07).item() == 0  # the paper's form: the positive alone
    with pytest.raises(ganbench.GanbenchError, match="as many real images"):
        discriminator_nce(DT, DS, R[:3], 0.07, skip_same_index=True)
    assert discriminator_nce(DT, DS, R[:3], 0.07).shape == (4,)


# ------------------------------------------------------------------------------------------ behaviour


def tiny_arch(name):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY_ARCH_OPTIONS.items() if k in declared})


def step_of(strategy, arch, source, nets, seed=0):
    """One step's StepInfos for D and G as the loop builds them; the loop's taps stay on (``discriminate``
    keeps features only while they are), so the caller removes ``passes``."""
    source_G = build_source_generator(arch, source, 32, 1)
    passes = StepPasses(strategy, strategy.needs(), nets.G, nets.D, source_G=source_G)
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(seed))
    real = fake_images(4, seed=3).float() / 127.5 - 1
    fake, kept = passes.generate(z)
    info = passes.info(1, real, z, fake, kept, passes.discriminate(real, "real", 1),
                       passes.discriminate(fake.detach(), "fake", 1))  # fmt: skip
    return passes, source_G, info, passes.for_generator(info, passes.discriminate(fake, "fake", 1))


@pytest.fixture(scope="module")
def dcgan():
    arch = tiny_architecture()
    return arch, fake_source(arch)


def adapted(dcgan, **options):
    arch, source = dcgan
    strategy = DCL(**options)
    return strategy, strategy.adapt(tiny_nets(arch, seed=0), source)


def test_defaults_are_the_reproductions_constants_and_everything_trains(dcgan):
    strategy, nets = adapted(dcgan)
    want = {"tau": 0.07, "lambda_g": 2.0, "lambda_d": 0.5, "layers": "random", "form": "paper", "d_term_trains": "d"}
    assert {k: strategy.config[k] for k in want} == want
    assert all(p.requires_grad for p in [*nets.G.parameters(), *nets.D.parameters()])
    assert strategy.modules() == {} and strategy.state_dict() == {}
    # dcgan: G blocks 0-2 output feature maps, block 3 the image; every D block a feature map
    assert strategy.needs() == ganbench.Needs(g_features=(0, 1, 2), d_features=(0, 1, 2), source=True)


def test_terms_read_the_loops_features_of_g_the_source_g_and_d(dcgan):
    """layers=all: lambda_g times the mean over G's feature blocks of the G term on the adapted and the source
    G's outputs for the step's latents; lambda_d times the mean over D's blocks of the D term on D's outputs for
    the fake batch, the source images of the same latents and the real batch (recorded here by watchers of our
    own on separate passes)."""
    arch, source = dcgan
    strategy, nets = adapted(dcgan, layers="all", lambda_g=1.5, lambda_d=0.25, tau=0.3)
    passes, source_G, info_d, info_g = step_of(strategy, arch, source, nets)
    try:
        d_terms = strategy.discriminator_loss(nets, info_d)
        g_terms = strategy.generator_loss(nets, info_g)
    finally:
        passes.remove()
    assert set(d_terms) == {"dcl_d"} and set(g_terms) == {"dcl_g"}
    watch = {name: BlockOutputs(net.blocks) for name, net in (("G", nets.G), ("S", source_G), ("D", nets.D))}
    with torch.no_grad():
        nets.G(info_g.z), source_G(info_g.z)
        g, s = list(watch["G"].outputs), list(watch["S"].outputs)
        d = {}
        for name, images in (("fake", info_d.fake), ("source", info_d.source.images), ("real", info_d.real)):
            nets.D(images)
            d[name] = list(watch["D"].outputs)
    for w in watch.values():
        w.remove()
    torch.testing.assert_close(info_d.source.images, source_G(info_g.z).detach())
    g_want = 1.5 * torch.stack([generator_nce(g[b], s[b], 0.3).mean() for b in (0, 1, 2)]).mean()
    d_terms_want = [discriminator_nce(d["fake"][b], d["source"][b], d["real"][b], 0.3).mean() for b in (0, 1, 2)]
    d_want = 0.25 * torch.stack(d_terms_want).mean()
    torch.testing.assert_close(g_terms["dcl_g"].detach(), g_want)
    torch.testing.assert_close(d_terms["dcl_d"].detach(), d_want)


def test_one_block_per_term_and_step_drawn_from_torchs_seeded_stream(dcgan):
    arch, source = dcgan
    strategy, nets = adapted(dcgan)
    passes, _, info_d, info_g = step_of(strategy, arch, source, nets)
    try:
        seen = set()
        for seed in range(8):
            torch.manual_seed(seed)
            block = int(torch.randint(3, ()))
            seen.add(block)
            torch.manual_seed(seed)
            term = strategy.generator_loss(nets, info_g)["dcl_g"]
            want = 2.0 * generator_nce(info_g.g[block], info_g.source.features[block], 0.07).mean()
            torch.testing.assert_close(term, want)
            torch.manual_seed(seed)
            term = strategy.discriminator_loss(nets, info_d)["dcl_d"]
            on_source = info_d.discriminate(info_d.source.images, "fake")
            want = discriminator_nce(info_d.d_fake.features[block], on_source.features[block],
                                     info_d.d_real.features[block], 0.07).mean()  # fmt: skip
            torch.testing.assert_close(term, 0.5 * want)
        assert len(seen) > 1
    finally:
        passes.remove()


@pytest.mark.parametrize("trains", ["d", "g", "dg"])
def test_who_minimizes_each_term(dcgan, trains):
    """The G term trains G (never the frozen source G); the D term trains D on the D step (the fake batch
    detached) by default, G through the G step's fake batch with d_term_trains=g, both with dg."""
    arch, source = dcgan
    strategy, nets = adapted(dcgan, d_term_trains=trains, layers="all")
    passes, source_G, info_d, info_g = step_of(strategy, arch, source, nets)
    try:
        d_terms = strategy.discriminator_loss(nets, info_d)
        g_terms = strategy.generator_loss(nets, info_g)
    finally:
        passes.remove()
    G, D = list(nets.G.parameters()), list(nets.D.parameters())

    def reaches(term, params):
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        return any(g is not None and g.abs().sum() > 0 for g in grads)

    assert (d_terms is not None) == ("d" in trains)
    if d_terms is not None:
        assert reaches(d_terms["dcl_d"], D) and not reaches(d_terms["dcl_d"], G)
    assert set(g_terms) == {"dcl_g", *(("dcl_d_on_g",) if "g" in trains else ())}
    assert reaches(g_terms["dcl_g"], G) and not reaches(g_terms["dcl_g"], D)
    assert not any(p.requires_grad for p in source_G.parameters())
    if "g" in trains:
        assert reaches(g_terms["dcl_d_on_g"], G)


def test_a_zero_weight_drops_its_term_and_its_passes(dcgan):
    strategy, _ = adapted(dcgan, lambda_d=0)
    assert strategy.needs() == ganbench.Needs(g_features=(0, 1, 2), source=True)
    assert strategy.discriminator_loss(None, StepInfo(1, *[torch.zeros(1)] * 3)) is None
    strategy, _ = adapted(dcgan, lambda_g=0, d_blocks=(1,))
    assert strategy.needs() == ganbench.Needs(d_features=(1,), source=True)
    strategy, _ = adapted(dcgan, lambda_g=0, lambda_d=0)
    assert strategy.needs() == ganbench.Needs()


def test_default_blocks_cover_the_resolutions_of_the_authors_taps():
    """stylegan2 at 64 px. The authors' released model.py taps, per their code (the notes' reference.json):
    their Generator's 13 StyledConv outputs at 256 px (4x4, then two per side 8..256), i.e. sides 4..64 at 64 px;
    their PatchGAN's feat_list at 64 px, 13 entries of sides 64, 64, 32, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4 (the
    from-RGB output, then each ResBlock's conv1 and conv2, conv2 twice). Ours: every synthesis block (sides
    4..64), every D stage (sides 32..4; the from-RGB output and the first conv1, at the input side, are inside
    the first block; the epilogue's vector is left out)."""
    theirs_d = [64, 64, 32, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4]
    arch = tiny_arch("stylegan2")
    G, D = arch.build(64, 1)
    strategy = DCL()
    g_blocks, d_blocks = strategy.candidates(ganbench.Nets(G, D))
    sides = ganbench.block_output_shapes(G)
    assert g_blocks == (1, 2, 3, 4, 5) and [sides[b][-1] for b in g_blocks] == [4, 8, 16, 32, 64]
    watch = BlockOutputs(D.blocks)
    with torch.no_grad():
        D(torch.zeros(2, 1, 64, 64))
    watch.remove()
    assert d_blocks == (0, 1, 2, 3) and len(D.blocks) == 5
    assert [watch.outputs[b].shape[-1] for b in d_blocks] == sorted(set(theirs_d) - {64}, reverse=True)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_check_strategy_on_every_architecture(name):
    """DCL applies to every built-in architecture (G and D blocks with feature maps): nothing is refused, all
    of G and D trains (Projected GAN's backbone stays frozen by the architecture)."""
    arch = tiny_arch(name)
    assert refusal(DCL(), arch) is None
    G, D = arch.build(32, 1)
    trainable = sum(p.numel() for p in [*G.parameters(), *D.parameters()] if p.requires_grad)
    assert check_strategy(DCL(), arch)["trainable"] == trainable
    if name == "stylegan2":  # the other options: every block, the reproduction's form, the D term on both sides
        assert check_strategy(DCL(layers="all", form="mri2pet", d_term_trains="dg"), arch)["trainable"] == trainable


def test_refusals_are_one_line():
    arch = tiny_arch("stylegan2")  # G: mapping + 4 synthesis blocks, D: 3 stages + the epilogue
    assert "dcl:g_blocks=9: this G has blocks 0-4 (feature maps: 1+2+3+4)" in refusal(DCL(g_blocks=(9,)), arch)
    assert "dcl:d_blocks=2+7: this D has blocks 0-3" in refusal(DCL(d_blocks=(2, 7)), arch)
    assert refusal(DCL(d_blocks=(3,), g_blocks=(0,)), arch) is None  # any existing block may be named
    assert refusal(DCL(g_blocks=(9,), lambda_g=0), arch) is None  # a dropped term reads no block
    with pytest.raises(ganbench.GanbenchError, match="needs a source model"):
        DCL().adapt(tiny_nets(arch), None)


def test_card_names_the_reproduction_and_says_the_authors_released_no_code():
    import ganbench_plugins.strategies.dcl as module

    card = DCL.card
    assert card.year == 2022 and "Zhao, Ding, Huang & Cheung" in card.paper
    assert "btheodorou99/MRI2PET@deb0829" in card.code and "no authors' loss code" in card.code
    assert card.parity == "tests/plugins/test_dcl.py"
    assert "The authors released no loss code" in module.__doc__
    assert math.isclose(DCL().config["tau"], 0.07)
