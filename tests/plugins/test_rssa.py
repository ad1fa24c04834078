"""RSSA against the authors' code: StevenShaw1999/RSSA at commit 47f570115f040d31f0f6621aeb20493aad88e00a
(train_face_proj.py lines 354-384: self-correlation; 392-456: disturbance correlation, its final / 6 included;
model.py's ``Projection_module.modulate``), run at development time on the fixed inputs below; the numbers are
theirs. Then what the strategy trains, reads and refuses.

Feature inputs are built from a seeded recipe: ``g = torch.Generator().manual_seed(seed)``, the source features
``randn((batch, *shape), generator=g, float64)`` for each shape in order, then the adapted ones as source plus
``noise * randn`` in order. Projection inputs: ten codes ``randn(1, 14, 16, generator=manual_seed(20))`` in order
(their ``{i}_latentcode.npy``), w ``randn(3, 16)`` (seed 21) and W+ ``randn(2, 14, 16)`` (seed 22); their outputs are
recorded as the dot product of each (sample, layer) row with ``randn(16, generator=manual_seed(99))`` and the sum of
squares of the whole output."""

import ganbench_plugins.strategies.rssa as rssa_module
import pytest
import torch
from ganbench_plugins.strategies.rssa import (
    RSSA,
    PatchHead,
    disturbance_correlation,
    layer_weights,
    project_latents,
    self_correlation,
    style_latent_layers,
)
from tiny_settings import TINY_ARCH_OPTIONS

import ganbench
from ganbench.execute.passes import transform_styles_hooks
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_images, fake_source, refusal, tiny_nets

REGISTRY = load_registry()
STYLE = ("stylegan2", "stylegan2-lite")
WLESS = ("dcgan", "resnet-sngan", "projected")
TINY_OPTIONS = {"probe_steps": 2}


def tiny_arch(name):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY_ARCH_OPTIONS.items() if k in declared})


def features(seed, batch, shapes, noise):
    g = torch.Generator().manual_seed(seed)
    source = [torch.randn((batch, *s), generator=g, dtype=torch.float64) for s in shapes]
    adapted = [
        (s + noise * torch.randn(s.shape, generator=g, dtype=torch.float64)).requires_grad_(True) for s in source
    ]
    return source, adapted


def grad_sq(tensors):
    return [0.0 if t.grad is None else t.grad.square().sum().item() for t in tensors]


# ------------------------------------------------------------------------------------------------ parity


def test_self_correlation_equals_the_authors_default_layers():
    """Batch 4; their loop skips the 32 px map (sides 64..256 at 256 px): ours selects by side (1/4 of 256 up)."""
    source, adapted = features(0, 4, [(8, 32, 32), (8, 64, 64), (4, 128, 128)], 0.5)
    chosen = [i for i, f in enumerate(source) if 256 // 4 <= f.shape[-1] <= 256]
    assert chosen == [1, 2]
    loss = self_correlation([source[i] for i in chosen], [adapted[i] for i in chosen])
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(0.011422498444231365, rel=1e-5)
    assert (0.8 * loss).item() == pytest.approx(0.009137998755385093, rel=1e-5)  # their g_loss term
    loss.backward()
    assert grad_sq(adapted) == pytest.approx([0.0, 1.105995703314087e-08, 3.5009689892591664e-08], rel=1e-5)


def test_self_correlation_equals_the_authors_batch_2():
    source, adapted = features(1, 2, [(3, 64, 64), (5, 64, 64)], 1.0)
    loss = self_correlation(source, adapted)
    assert loss.item() == pytest.approx(0.03859871370899959, rel=1e-5)
    loss.backward()
    assert grad_sq(adapted) == pytest.approx([1.0815009952931757e-06, 1.4964047335558181e-07], rel=1e-5)


SMALL = [(16, 4, 4), (16, 8, 8), (16, 8, 8), (16, 16, 16), (16, 16, 16), (16, 32, 32), (16, 32, 32),
         (512, 64, 64), (512, 64, 64)]  # fmt: skip
SMALL_GRADS = [0.00013068112118196638, 2.0356781357293028e-05, 1.8548342346227666e-05, 3.975196923438187e-06,
               3.955043217615292e-06, 9.322194748937132e-07, 9.333970089642696e-07, 6.878934895871281e-10,
               6.881156976667841e-10]  # fmt: skip


def test_disturbance_correlation_equals_the_authors_up_to_64_px():
    """Their 64 px maps are cut into a 4x4 grid of 16 px windows (side 1/4 of 256 and up), smaller ones not."""
    source, adapted = features(2, 4, SMALL, 0.5)
    loss = disturbance_correlation(source, adapted, [f.shape[-1] >= 256 // 4 for f in source])
    assert loss.item() == pytest.approx(0.9449210282468203, rel=1e-5)
    assert (0.4 * loss).item() == pytest.approx(0.37796841129872816, rel=1e-5)
    loss.backward()
    assert grad_sq(adapted) == pytest.approx(SMALL_GRADS, rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (this machine has none)")
def test_disturbance_correlation_equals_the_authors_256_px_layout():
    """Their feat_list of a 256 px G: entries up to the first 128 px one (theirs: then `break`); about 200 GFLOP
    in float64, so on a GPU (the same numbers on a CPU, in half a minute)."""
    shapes = SMALL + [(256, 128, 128), (256, 128, 128), (128, 256, 256)]
    source, adapted = features(3, 4, shapes, 0.5)
    used = [f.cuda() for f in source[:10]], [f.detach().cuda().requires_grad_(True) for f in adapted[:10]]
    loss = disturbance_correlation(*used, [f.shape[-1] >= 64 for f in used[0]])
    assert loss.item() == pytest.approx(0.9720632986560181, rel=1e-5)
    loss.backward()
    theirs = [0.00012996791636019414, 1.846865146633913e-05, 1.8986634229396856e-05, 3.896014540695984e-06,
              3.93443960666052e-06, 9.403008716134535e-07, 9.324656472181156e-07, 6.877992711553384e-10,
              6.870533793298529e-10, 2.53891489322553e-10]  # fmt: skip  # entries 10, 11: 0 (unused)
    assert grad_sq(used[1]) == pytest.approx(theirs, rel=1e-5)


AUTHORS_SUB = [0.0, 0.0, 0.0, 0.05, 0.05, 0.05, 0.05, 0.45, 0.45, 0.65, 0.65, 0.85, 0.85, 0.85]
# (case, codes used, their modulate(w2) and modulate(w3): row dots with the probe vector, sum of squares)
PROJECTION = {
    "task10_sketches": (list(range(10)), (
        [[8.63331492284, 8.63331492284, 8.63331492284, 8.50818634095, 8.37215186539, 8.57039755048, 8.63144810716,
          8.81741586091, 8.23013613104, 8.95768414739, 7.28229351229, 7.73894096759, 7.3665758738, 6.65785710827],
         [-5.41691094637, -5.41691094637, -5.41691094637, -5.3876072114, -5.09547056008, -5.44043344233,
          -5.30960004785, -6.44749328913, -4.66756923669, -4.97189500101, -7.21392257057, -2.32363506507,
          -5.08732197083, -6.58027973087],
         [-2.38521591444, -2.38521591444, -2.38521591444, -2.56329008052, -2.31531124968, -2.46713754778,
          -2.37587428602, -2.54000989018, -2.72418328477, -2.78980191517, -1.63112560111, 2.96347333155,
          -5.35658715555, -4.21527859513]], 666.1810609619441), (
        [[0.051272854847, -0.213868188972, -5.35065655285, 7.86143311235, 3.51397791674, -2.5603266096,
          -5.39987661267, 0.539577316498, 4.01061178216, 4.19382738175, 3.87353315585, 5.27129370776, 10.6117960346,
          -1.8944294225],
         [4.65321077143, 5.28206493879, -1.00242985741, -2.57231375824, -5.00464781086, 0.347228103669,
          1.31511656581, 3.94780958198, -0.492962516418, -4.64036920996, -4.37323958023, 1.74972037675,
          4.08231119255, -3.23252257051]], 455.7013070938874)),
    "task5_sketches": ([0, 2, 5, 6, 8], (
        [[8.63331492284, 8.63331492284, 8.63331492284, 8.60675595313, 8.3536507126, 8.41820708441, 8.65558257192,
          5.55023718987, 6.20082765625, 4.9916688424, 4.39588560942, 4.0288940545, 5.05070342278, 3.59508450108],
         [-5.41691094637, -5.41691094637, -5.41691094637, -5.52740096666, -5.16637548547, -5.53164331279,
          -5.20188506333, -6.03735083136, -3.78694878004, -1.97524342237, -6.55526265849, 1.81238348225,
          -5.64131062232, -5.67286834372],
         [-2.38521591444, -2.38521591444, -2.38521591444, -2.62888414027, -2.34704715815, -2.3535709913,
          -2.32580075014, -3.94319124196, -3.32495777041, -0.197724178153, -3.16309808638, -2.26064067029,
          -5.20924069974, -7.55661219219]], 628.8914691494527), (
        [[0.051272854847, -0.213868188972, -5.35065655285, 8.08829689103, 3.25450865422, -2.34000974992,
          -5.44397559932, 2.03249692893, 2.8635374404, 4.39609668594, -0.634289396705, -2.15562770941, 9.20053646926,
          2.654536332],
         [4.65321077143, 5.28206493879, -1.00242985741, -2.61559521521, -5.21212505868, 0.812041391614,
          1.3601209547, 3.72255355285, 0.501198362024, -3.6811827596, -6.54725952889, -0.784903976389,
          3.13791939592, 6.9726667863]], 426.97160776254594)),
    "task10_VanGogh": (list(range(9)), (
        [[8.63331492284, 8.63331492284, 8.63331492284, 8.51526830051, 8.32344811465, 8.55136125028, 8.62235223853,
          8.81115744246, 8.16712187554, 7.78681213498, 6.68318746672, 7.79341723561, 7.20359476994, 7.16276288377],
         [-5.41691094637, -5.41691094637, -5.41691094637, -5.387312844, -5.01610194432, -5.41512984027,
          -5.31891932531, -6.55721149445, -5.52259944123, -4.87769076187, -6.42722683819, -3.14966639848,
          -6.31885031612, -8.26877728516],
         [-2.38521591444, -2.38521591444, -2.38521591444, -2.58354641564, -2.29012601772, -2.4732782521,
          -2.38794567571, -2.50341109693, -2.73148607151, -3.70097084126, -2.14036692635, 1.93066557529,
          -4.28614896249, -4.90499801487]], 660.2944751864877), (
        [[0.051272854847, -0.213868188972, -5.35065655285, 7.95954130828, 3.4098503453, -2.58516914132,
          -5.3847595093, 0.662441759655, 3.89670103593, 3.41187447879, 4.59506059931, 4.39760524739, 9.15193004262,
          -1.44934859467],
         [4.65321077143, 5.28206493879, -1.00242985741, -2.57111895638, -5.12816727172, 0.376278103089,
          1.31907217768, 3.91745190523, 0.118652904836, -5.87087447056, -4.72009737495, 1.10579308964,
          5.56111723361, -4.02307556164]], 448.8084226248969)),
}  # fmt: skip


def test_the_layer_weights_at_256_px_are_the_authors():
    assert layer_weights(256, RSSA().config["sub"]) == AUTHORS_SUB
    # relative to the side: the top octave 0.85 at any resolution; at 32 px, octaves 32, 16, 8, 4
    assert layer_weights(32, RSSA().config["sub"]) == [0.05, 0.45, 0.45, 0.65, 0.65, 0.85, 0.85, 0.85]
    assert layer_weights(32, (0.5, 0.0)) == [0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("case", sorted(PROJECTION))
def test_projection_equals_the_authors(case):
    used, (w2_dots, w2_sq), (w3_dots, w3_sq) = PROJECTION[case]
    g = torch.Generator().manual_seed(20)
    codes = torch.cat([torch.randn(1, 14, 16, generator=g, dtype=torch.float64) for _ in range(10)])[used]
    w2 = torch.randn(3, 16, generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    w3 = torch.randn(2, 14, 16, generator=torch.Generator().manual_seed(22), dtype=torch.float64)
    probe = torch.randn(16, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    for w, dots, sq in ((w2, w2_dots, w2_sq), (w3, w3_dots, w3_sq)):
        out = project_latents(w, codes, AUTHORS_SUB)
        assert out.dtype == torch.float64 and out.shape == (len(w), 14, 16)
        assert (out * probe).sum(-1).flatten().tolist() == pytest.approx(sum(dots, []), rel=1e-5)
        assert out.square().sum().item() == pytest.approx(sq, rel=1e-5)


def test_schedule_and_weights_are_the_authors():
    s = RSSA()
    assert (s.config["self_corr"], s.config["dis_corr"], s.config["dis_corr_every"]) == (0.8, 0.4, 6)
    assert rssa_module.DIS_CORR_DIVISOR == 6
    # their i % 6 == 0 from i = 0 is our step - 1 (steps from 1)
    assert [step - 1 for step in range(1, 21) if (step - 1) % s.config["dis_corr_every"] == 0] == [0, 6, 12, 18]
    assert (s.config["anchors"], s.config["anchor_every"], s.config["anchor_std"]) == (10, 4, 0.1)
    assert (s.config["probe_steps"], s.config["invert_lr"], s.config["feat_batch"]) == (4001, 0.1, 4)


def test_the_w_plus_layers_are_rosinalitys():
    """Each style layer's W+ layer, checked on stylegan2 itself: feeding W+ rows by style_latent_layers through
    the style inputs gives the image its own synthesis(W+) does."""
    nets = tiny_nets(tiny_arch("stylegan2"))
    G = nets.G.eval()
    assert style_latent_layers(len(G.styles)) == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7]
    wplus = torch.randn(2, G.n_latent, G.style_dim, generator=torch.Generator().manual_seed(0))
    layers = style_latent_layers(len(G.styles))
    with rssa_module._styles_replaced(G, lambda k, w: wplus[:, layers[k]]):
        ours = G(torch.zeros(2, G.z_dim))
    assert torch.allclose(ours, G.synthesis(wplus).clamp(-1, 1), atol=1e-6)


# ------------------------------------------------------------------------------------------------ behaviour


def adapted(arch_name="stylegan2", **options):
    arch = tiny_arch(arch_name)
    source = fake_source(arch)
    strategy = RSSA(**{**TINY_OPTIONS, **options})
    nets = strategy.adapt(tiny_nets(arch, seed=1), source)
    return strategy, nets, source


def random_codes(strategy, nets, n=3):
    w_dim = nets.G.mapping(torch.zeros(1, nets.G.z_dim)).shape[-1]
    return torch.randn(n, strategy.n_latent, w_dim, generator=torch.Generator().manual_seed(3))


def test_everything_trains_the_source_copy_is_frozen_and_the_patch_head_trains_with_d():
    strategy, nets, source = adapted()
    assert all(p.requires_grad for net in (nets.G, nets.D) for p in net.parameters())
    assert not any(p.requires_grad for p in strategy.source_G.parameters())
    for key, value in strategy.source_G.state_dict().items():
        assert torch.equal(value, source.generator[key])
    modules = strategy.modules()
    assert list(modules) == ["patch_head"] and modules["patch_head"].trains_with == "D"
    head = modules["patch_head"].module
    assert isinstance(head, PatchHead) and head.scale == pytest.approx(1 / (head.weight.shape[1] * 9) ** 0.5)
    needs = strategy.needs()
    assert needs.transform_styles and needs.d_features == (strategy.block,) and not needs.source
    off = RSSA(projection=False, patch=False)
    off.adapt(tiny_nets(tiny_arch("stylegan2")), fake_source(tiny_arch("stylegan2")))
    assert off.needs() == ganbench.Needs() and off.modules() == {} and off.probe_steps() == 0


def test_the_blocks_read_are_relative_to_the_image_side():
    strategy, nets, _ = adapted()  # 32 px: synthesis blocks 1..4 at 4, 8, 16, 32 px
    assert strategy.self_blocks == [2, 3, 4] and strategy.dis_blocks == [1, 2, 3]
    assert strategy.dis_split == [False, True, True]
    d_side = {i: s[-1] for i, s in enumerate(rssa_module._shapes(nets)[1]) if s is not None and len(s) == 3}
    assert d_side[strategy.block] == 32 // 8
    dcgan = RSSA(projection=False)
    dcgan.check(tiny_nets(tiny_arch("dcgan")))  # its last block outputs the image: not a feature map
    assert dcgan.self_blocks == [1, 2] and dcgan.dis_blocks == [0, 1, 2]


def test_both_terms_read_the_same_latents_and_noise_in_source_and_adapted(monkeypatch):
    """At the start (adapted = source) both terms are exactly 0, projected or not: same latents, same stored
    noise, the projection on both sides of self-correlation and on neither of disturbance correlation; once G
    moves they are not, and their gradients reach G alone."""
    strategy, nets, _ = adapted()
    strategy._set_codes(random_codes(strategy, nets))
    hooks = transform_styles_hooks(nets.G, strategy)  # what the loop puts on the adapted G
    seen = {}
    for name in ("self_correlation", "disturbance_correlation"):
        original = getattr(rssa_module, name)

        def spy(source, adapted_feats, *rest, _name=name, _original=original):
            seen[_name] = [tuple(f.shape) for f in source], rest
            return _original(source, adapted_feats, *rest)

        monkeypatch.setattr(rssa_module, name, spy)
    try:
        z = torch.randn(4, nets.G.z_dim)
        step = ganbench.StepInfo(step=1, real=torch.zeros(4, 1, 32, 32), z=z, fake=torch.zeros(4, 1, 32, 32))
        terms = strategy.generator_loss(nets, step)
        assert set(terms) == {"self_corr", "dis_corr"}
        assert terms["self_corr"].item() == 0 and terms["dis_corr"].item() == 0
        assert [s[-1] for s in seen["self_correlation"][0]] == [8, 16, 32]
        assert [s[-1] for s in seen["disturbance_correlation"][0]] == [4, 8, 16]
        assert seen["disturbance_correlation"][1] == ([False, True, True],)
        assert all(s[0] == 4 for s in seen["self_correlation"][0])  # feat_batch latents
        with torch.no_grad():
            nets.G.blocks[3].convs[0].conv.weight.add_(0.3 * torch.randn_like(nets.G.blocks[3].convs[0].conv.weight))
        terms = strategy.generator_loss(nets, step)
        assert terms["self_corr"].item() > 0 and terms["dis_corr"].item() > 0
        sum(terms.values()).backward()
        assert nets.G.blocks[3].convs[0].conv.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in strategy.source_G.parameters())
        off = strategy.generator_loss(nets, ganbench.StepInfo(step=2, real=step.real, z=z, fake=step.fake))
        assert off["dis_corr"].item() == 0 and off["self_corr"].item() > 0  # dis-corr on steps 1, 7, 13, ...
    finally:
        for h in hooks:
            h.remove()


def test_the_projection_acts_on_every_style_input_of_the_adapted_g():
    strategy, nets, _ = adapted()
    codes = random_codes(strategy, nets)
    strategy._set_codes(codes)
    G = nets.G.eval()
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1))
    w = G.mapping(z)
    expected = project_latents(w.double(), codes.double(), strategy.sub)
    layers = style_latent_layers(len(G.styles))
    for k in range(len(G.styles)):
        got = strategy.transform_style_input(k, w)
        torch.testing.assert_close(got.double(), expected[:, layers[k]], rtol=1e-5, atol=1e-6)
        assert torch.equal(got, w) == (strategy.sub[layers[k]] == 0)
    plain = G(z)
    hooks = transform_styles_hooks(G, strategy)
    try:
        assert not torch.allclose(G(z), plain)
    finally:
        for h in hooks:
            h.remove()
    strategy._bypass = True  # the disturbance term's own passes
    assert torch.equal(strategy.transform_style_input(len(G.styles) - 1, w), w)


def test_the_inversion_fits_the_shots_and_its_codes_are_state():
    strategy, nets, _ = adapted(probe_steps=40)
    G = strategy.source_G.eval()
    with torch.no_grad():
        shots = G(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(4)), noise_mode="const")
    z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(5))
    codes = strategy.invert(shots, 40, z)
    assert codes.shape == (3, strategy.n_latent, G.style_dim)
    layers = style_latent_layers(len(G.styles))

    def error(c):
        with torch.no_grad(), rssa_module._styles_replaced(G, lambda k, w: c[:, layers[k]]):
            return (G(torch.zeros(3, G.z_dim), noise_mode="const") - shots).square().mean().item()

    start = G.mapping(z).mean(0).expand(3, strategy.n_latent, -1)
    assert error(codes) < 0.5 * error(start)
    strategy._set_codes(codes)
    fresh = RSSA(**TINY_OPTIONS)
    fresh.adapt(tiny_nets(tiny_arch("stylegan2"), seed=1), fake_source(tiny_arch("stylegan2")))
    fresh.load_state_dict(strategy.state_dict())  # a resumed cell: no second inversion
    assert torch.equal(fresh.state_dict()["codes"], codes)
    w = torch.randn(2, G.style_dim)
    assert torch.equal(fresh.transform_style_input(len(G.styles) - 1, w), strategy.transform_style_input(10, w))


def test_the_inversion_with_lpips_reads_torchvisions_vgg16(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    pytest.importorskip("lpips")
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    path = tmp_path / rssa_module.VGG_FILE
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    strategy, nets, _ = adapted(invert_loss="lpips+mse", lpips_weights=str(path))
    G = strategy.source_G
    shots = fake_images(2, 1, 32, seed=3).float() / 127.5 - 1
    codes = strategy.invert(shots, 2, torch.randn(16, G.z_dim))
    assert codes.shape == (2, strategy.n_latent, G.style_dim) and torch.isfinite(codes).all()


def test_anchor_steps_use_the_image_level_d_and_the_others_the_patch_head():
    strategy, nets, _ = adapted()
    z = torch.randn(4, nets.G.z_dim)
    torch.manual_seed(0)
    anchored = strategy.begin_step(1, z)  # their i = 0: an anchor step
    torch.manual_seed(0)
    pick = torch.randint(10, (4,))
    torch.testing.assert_close(anchored, strategy.anchor_z[pick] + 0.1 * z)
    assert not strategy.patch_level
    images = nets.G(z)
    watcher = ganbench.BlockOutputs(nets.D.blocks)
    try:
        d = ganbench.DPass(nets.D(images), {strategy.block: watcher.outputs[strategy.block]})
    finally:
        watcher.remove()
    assert strategy.discriminator_logits(d, 1) is d.logits
    assert torch.equal(strategy.begin_step(2, z), z) and strategy.patch_level
    assert strategy.discriminator_logits(d, 2).shape == (4, (32 // 8) ** 2)
    assert [s for s in range(1, 10) if strategy.begin_step(s, z) is not z] == [1, 5, 9]


@pytest.mark.parametrize("name", WLESS)
def test_the_projection_is_refused_without_a_w_space_in_one_line(name):
    message = refusal(RSSA(**TINY_OPTIONS), tiny_arch(name))
    assert message is not None and "projection=false" in message and "\n" not in message
    assert refusal(RSSA(projection=False), tiny_arch(name)) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"invert_loss": "lpips+mse", "lpips_weights": "/nonexistent/vgg16.pth"}, "vgg16-397923af.pth"),
        ({"patch_block": 4}, "patch_block=4"),
    ],
)
def test_options_that_do_not_fit_are_refused(options, message):
    found = refusal(RSSA(**options), tiny_arch("stylegan2"))
    assert found is not None and message in found


@pytest.mark.parametrize(
    ("arch_name", "options"), [*((a, {}) for a in STYLE), *((a, {"projection": False}) for a in WLESS)]
)
def test_passes_check_strategy(arch_name, options):
    counts = check_strategy(RSSA(**{**TINY_OPTIONS, **options}), tiny_arch(arch_name))
    assert 0 < counts["trainable"] <= counts["total"]
