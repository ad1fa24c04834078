"""AdAM against the authors' code: yunqing-me/AdAM at commit 6428e99cfb36bc8bda3506350824f0c7dac9a5ad. The numbers
below are theirs: computed at development time by their own modules (gan_training/models/model_adam.py: KML_fc,
EqualConv2d_kml, ModulatedConv2d_kml, the Generator and Discriminator with every KML parameter; op/fused_act.py)
and by their training scripts' blocks, run unchanged in float64 on the CPU: the Fisher estimate
(AdAM_importance_probing.py:181-261), the selection (AdAM_main_adaptation.py:709-813), what trains
(AdAM_importance_probing.py:497-518, AdAM_main_adaptation.py:836-864) and the per-step masks
(AdAM_main_adaptation.py:181-191, 233-255, 347-383). Their nets were made tiny by shrinking the channel table
(= ganbench's ``stylegan2:width=8,channel_multiplier=2,style_dim=8,n_mlp=2`` at 256 px, 3 channels).

The inputs are rebuilt here from the seeded recipes: ``randn(shape, seed)`` is ``torch.randn(shape,
generator=torch.Generator().manual_seed(seed), dtype=float64)``, and a module's parameters are drawn from ONE
such generator in the sorted order of the authors' parameter names (which ``theirs()`` gives for ours). Large
outputs are recorded as fingerprints (sum, sum of |x|, sum of x², first and last entry); index sets as strings of
0/1 per row ("1*8" is eight ones).

To compare with their conv modulation, the plugin's default ``layout=authors`` is used; their ``KML_fc`` scales
by 1/sqrt(out_dim) where the architecture's equalized-lr layers scale by 1/sqrt(in_dim) (a deviation the plugin
keeps out), so the tests set the style and mapping layers' ``scale`` to theirs before comparing.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.architectures.stylegan2 import EqualConv2d, EqualLinear, ModulatedConv2d, StyleGAN2
from ganbench_plugins.strategies.adam import (
    AdAM,
    KernelModulation,
    add_bias_shift,
    add_kernel_modulation,
    fisher_diagonal,
    select_filters,
    set_adaptation_trainable,
    set_probe_trainable,
)
from tiny_settings import TINY_ARCH_OPTIONS

import ganbench
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_source, tiny_nets

DT = torch.float64
REL = 1e-5
REGISTRY = load_registry()
ARCHITECTURES = ["dcgan", "resnet-sngan", "stylegan2", "stylegan2-lite", "projected"]


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def theirs(name: str) -> str:
    """The authors' name of one of our parameters (their KML_fc is our style / mapping layer's modulation)."""
    rules = [
        (r"style\.(\d+)\.parametrizations\.weight\.0\.(u|v)_vector", r"kml_fc.\1.\2_vector"),
        (r"style\.(\d+)\.parametrizations\.bias\.0\.b_vector", r"kml_fc.\1.b_vector"),
        (r"(.*)modulation\.parametrizations\.weight\.0\.(u|v)_vector", r"\1kml_fc.\2_vector"),
        (r"(.*)modulation\.parametrizations\.bias\.0\.b_vector", r"\1kml_fc.b_vector"),
        (r"(.*)parametrizations\.weight\.0\.(u|v)_vector", r"\1\2_vector"),
        (r"(.*)parametrizations\.(weight|bias)\.0\.b_vector", r"\1b_vector"),
        (r"(.*)parametrizations\.(weight|bias)\.original", r"\1\2"),
    ]
    for pattern, replacement in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    return name


def by_their_names(module):
    return {theirs(n): p for n, p in module.named_parameters()}


def seeded_fill(module, seed, scale_of):
    """Their recipe: every parameter, in the sorted order of their names, randn * scale from one generator."""
    g = torch.Generator().manual_seed(seed)
    params = by_their_names(module)
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            p.copy_(torch.randn(p.shape, generator=g, dtype=DT) * scale_of(name))
    return sorted(params)


def net_scale(name):
    if name.endswith(("noise.weight", "noise.b_vector")):
        return 0.0
    if "vector" in name:
        return 0.1
    if re.fullmatch(r"style\.\d+\.weight", name):
        return 100.0
    return 1.0


def their_fc_scale(layer):
    """KML_fc's scale: lr_mul / sqrt(out_dim)."""
    layer.scale = layer.lr_mul / math.sqrt(layer.out_features)


def fingerprint(x):
    x = x.detach().double().flatten()
    return [x.sum().item(), x.abs().sum().item(), x.square().sum().item(), x[0].item(), x[-1].item()]


def close(ours, recorded, rel=REL):
    if isinstance(recorded, tuple):
        recorded = list(recorded)
    assert ours == pytest.approx(recorded, rel=rel, abs=1e-300)


def rows(text):
    """'0110' or '1*8' -> the indices of the ones."""
    if "*" in text:
        bit, n = text.split("*")
        text = bit * int(n)
    return [i for i, c in enumerate(text) if c == "1"]


def zero_rows(t, dim):
    if t is None:
        return None
    other = [d for d in range(t.ndim) if d != dim]
    zero = (t == 0).all(dim=tuple(other)) if other else t == 0
    return zero.nonzero().flatten().tolist()


# --------------------------------------------------------------------------------------------------
# The modulation arithmetic (model_adam.py:17-49, 174-230, 381-498)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("demodulate", [1, 0])
def test_modulated_conv_equals_theirs(demodulate):
    """ModulatedConv2d_kml(3 -> 4, k 3, style 5): params seed 10 (vectors x 0.5), x seed 11, style seed 12."""
    m = ModulatedConv2d(3, 4, 3, 5, demodulate=bool(demodulate)).double()
    mod = add_kernel_modulation(m, filter_dim=1)
    add_kernel_modulation(m.modulation)
    add_bias_shift(m.modulation)
    their_fc_scale(m.modulation)
    names = seeded_fill(m, 10, lambda n: 0.5 if "vector" in n else 1.0)
    assert names == ["kml_fc.b_vector", "kml_fc.u_vector", "kml_fc.v_vector", "modulation.bias",
                     "modulation.weight", "u_vector", "v_vector", "weight"]  # fmt: skip
    x, s = randn((2, 3, 6, 6), 11), randn((2, 5), 12)
    recorded = MODCONV[demodulate]
    with torch.no_grad():
        close(fingerprint(mod.modulation()), recorded["w_hat"])
        close(m.modulation(s).flatten().tolist(), recorded["style"])
        close(fingerprint(m(x, s)), recorded["out"])


def test_their_conv_modulation_is_not_per_filter():
    """u seed 13 (27), v seed 14 (4), v[1] = 0: ger(u, v).view(1, 4, 3, 3, 3) is zero at 27 positions spread over
    all four filters (theirs); layout=filter zeroes filter 1 exactly."""
    weight = torch.zeros(1, 4, 3, 3, 3, dtype=DT)
    for layout, expected in (("authors", VZERO), ("filter", list(range(27, 54)))):
        mod = KernelModulation(weight, filter_dim=1, layout=layout)
        with torch.no_grad():
            mod.u_vector.copy_(randn((27,), 13))
            mod.v_vector.copy_(randn((4,), 14))
            mod.v_vector[1] = 0
            zeros = (mod.modulation().flatten() == 0).nonzero().flatten().tolist()
        assert zeros == expected
    assert {f // 27 for f in VZERO} == {0, 1, 2, 3}


@pytest.mark.parametrize("activation", ["fused_lrelu", "linear"])
def test_modulated_linear_equals_their_kml_fc(activation):
    """KML_fc(5 -> 3, lr_mul 0.01): vectors seed 20 (x 0.5), W seed 21, b seed 22, input seed 23."""
    layer = EqualLinear(5, 3, lr_mul=0.01, activation=activation == "fused_lrelu").double()
    with torch.no_grad():
        layer.weight.copy_(randn((3, 5), 21))
        layer.bias.copy_(randn((3,), 22))
    add_kernel_modulation(layer)
    add_bias_shift(layer)
    their_fc_scale(layer)
    params = {n: p for n, p in by_their_names(layer).items() if "vector" in n}
    g = torch.Generator().manual_seed(20)
    with torch.no_grad():
        for name in sorted(params):  # b_vector, u_vector, v_vector
            params[name].copy_(torch.randn(params[name].shape, generator=g, dtype=DT) * 0.5)
        close(layer(randn((2, 5), 23)).flatten().tolist(), FC[activation])


def test_modulated_equal_conv_equals_theirs():
    """EqualConv2d_kml(3, 4, 3, padding 1, no bias): params seed 30 (vectors x 0.5), x seed 31."""
    conv = EqualConv2d(3, 4, 3, padding=1, bias=False).double()
    add_kernel_modulation(conv)
    assert seeded_fill(conv, 30, lambda n: 0.5 if "vector" in n else 1.0) == ["u_vector", "v_vector", "weight"]
    with torch.no_grad():
        close(fingerprint(conv(randn((2, 3, 6, 6), 31))), EQUALCONV)


# --------------------------------------------------------------------------------------------------
# The tiny nets of their probing and adaptation
# --------------------------------------------------------------------------------------------------


def their_nets():
    """Their tiny G and D as ganbench stylegan2 with the plugin's modulation, filled by their recipe (G seed 0,
    D seed 1, over their full sorted name lists), their KML_fc scale on every style and mapping layer."""
    torch.manual_seed(0)
    G, D = StyleGAN2(width=8, channel_multiplier=2, style_dim=8, n_mlp=2).build(256, 3)
    nets = ganbench.Nets(G, D)
    strategy = AdAM()
    strategy.adapt(nets, None)
    G.double(), D.double()
    assert len(seeded_fill(G, 0, net_scale)) == 237 and len(seeded_fill(D, 1, net_scale)) == 89
    for layer in [*G.styles, *G.style[1:]]:
        their_fc_scale(layer)
    return strategy, nets


def unclamped(G):
    return lambda z: G.synthesis(G.mapping(z))  # their G feeds D unclamped images


@pytest.fixture(scope="module")
def probed():
    """Their nets, the Fisher of every parameter on their samples (noise file j = randn((2, 8), 100 + j), real batch
    j = randn((2, 3, 256, 256), 200 + j), j = 0, 1, one image at a time), and their per-sample losses."""
    strategy, nets = their_nets()
    G, D = nets.G, nets.D
    G.requires_grad_(True), D.requires_grad_(True)  # their requires_grad(g_ema, True), requires_grad(d_ema, True)
    samples = []
    for j in range(2):
        z, real = randn((2, 8), 100 + j), randn((2, 3, 256, 256), 200 + j)
        samples += [(z[i : i + 1], real[i : i + 1]) for i in range(2)]
    losses = []
    g_params, d_params = dict(G.named_parameters()), dict(D.named_parameters())
    fg, fd = fisher_diagonal(G, D, samples, g_params, d_params, generate=unclamped(G), losses=losses)
    set_adaptation_trainable(strategy.plan, G, D)
    return strategy, nets, {"G": fg, "D": fd}, losses


def test_fisher_equals_theirs(probed):
    _, _, fisher, losses = probed
    close([v for _, v in losses], FISHER_LOSSES)
    assert [k for k, _ in losses] == ["g", "d"] * 4
    fg = {theirs(n): f for n, f in fisher["G"].items()}
    fd = {theirs(n): f for n, f in fisher["D"].items()}
    assert len(fg) == 237 and len(fd) == 89
    for key, (u_mean, v_sum, b_sum) in FISHER_LAYERS.items():
        net, path = key.split(":")
        f = fg if net == "G" else fd
        u, v = f"{path}.u_vector", f"{path}.v_vector"
        b = None
        if path.endswith(".modulation"):
            base = path[: -len(".modulation")]
            u, v, b = f"{base}.kml_fc.u_vector", f"{base}.kml_fc.v_vector", f"{base}.kml_fc.b_vector"
        elif net == "D" and b_sum is not None:
            stage, _, index = path.rpartition(".")
            b = f"{stage}.{int(index) + 1}.b_vector"  # the activation after the convolution
        close(f[u].mean().item(), u_mean)
        close(f[v].sum().item(), v_sum)
        if b is not None:
            close(f[b].sum().item(), b_sum)
    close(fingerprint(fg["convs.11.conv.u_vector"]), FISHER_FULL["G_full.convs.11.conv.u_vector"])
    close(fingerprint(fg["convs.11.conv.weight"]), FISHER_FULL["G_full.convs.11.conv.weight"])
    close(fingerprint(fd["convs.6.conv1.0.u_vector"]), FISHER_FULL["D_full.convs.6.conv1.0.u_vector"])


def _selected(important):
    return {key: rows(text) for key, text in important.items()}


@pytest.mark.parametrize("q", [50, 75, 25])
def test_selection_equals_theirs(probed, q):
    """Scores per filter, the three pools' percentile cuts and the important filters, on the Fisher above."""
    strategy, _, fisher, _ = probed
    scores = strategy.scores(fisher)
    pooled = {pool: torch.cat([s for p, s in scores.values() if p == pool]).tolist() for pool in GROUPED}
    for pool, recorded in GROUPED.items():
        close(pooled[pool], recorded)
    important, cutlines = select_filters(scores, q)
    cuts, their_important = SELECT[q]
    close([cutlines["g_conv"], cutlines["g_style"], cutlines["d_conv"]], cuts)
    assert {k: v.nonzero().flatten().tolist() for k, v in important.items()} == _selected(their_important)


@pytest.mark.parametrize("q", [50, 75])
def test_selection_on_synthetic_fisher_equals_theirs(probed, q):
    """abs(randn) Fisher arrays from one generator (seed 300), drawn in their key order."""
    strategy, nets, _, _ = probed
    ours = {w: {theirs(n): n for n, _ in net.named_parameters()} for w, net in nets.modules().items()}
    shapes = {w: {theirs(n): p.shape for n, p in net.named_parameters()} for w, net in nets.modules().items()}
    order = [("G", f"convs.{b}.conv.{s}") for b in range(12)
             for s in ("u_vector", "v_vector", "kml_fc.u_vector", "kml_fc.v_vector", "kml_fc.b_vector")]  # fmt: skip
    for b in range(1, 7):
        for i in range(2):
            order += [("D", f"convs.{b}.conv{i + 1}.{i}.{v}_vector") for v in "uv"]
            order += [("D", f"convs.{b}.conv{i + 1}.{i + 1}.b_vector")]
        order += [("D", f"convs.{b}.skip.1.{v}_vector") for v in "uv"]
    g = torch.Generator().manual_seed(300)
    fisher = {"G": {}, "D": {}}
    for net, key in order:
        fisher[net][ours[net][key]] = torch.randn(shapes[net][key], generator=g, dtype=DT).abs()
    important, cutlines = select_filters(strategy.scores(fisher), q)
    cuts, their_important = SELECT_SYNTHETIC[q]
    close([cutlines["g_conv"], cutlines["g_style"], cutlines["d_conv"]], cuts)
    assert {k: v.nonzero().flatten().tolist() for k, v in important.items()} == _selected(their_important)


def test_what_trains_equals_theirs(probed):
    """requires_grad of both phases, by their names; G's ranked noise strengths and activation biases, whose
    gradients they zero at every step, are frozen here."""
    strategy, nets, _, _ = probed
    counts = TRAINABLE_COUNTS
    names = {w: [theirs(n) for n, _ in net.named_parameters()] for w, net in nets.modules().items()}
    trained = {
        w: {theirs(n) for n, p in net.named_parameters() if p.requires_grad} for w, net in nets.modules().items()
    }
    their_main_g = {n for n in names["G"] if "vector" in n or "convs" in n}
    assert (
        len(their_main_g) == counts["main_G_trained"] and len(names["G"]) - len(their_main_g) == counts["main_G_frozen"]
    )
    zeroed = {n for n in their_main_g if n.endswith(("noise.weight", "activate.bias"))}
    assert trained["G"] == their_main_g - zeroed and len(zeroed) == 24
    assert set(names["D"]) - trained["D"] == {"convs.0.0.weight", "convs.0.1.bias"}
    assert len(trained["D"]) == counts["main_D_trained"]
    G, D = copy.deepcopy(nets.G), copy.deepcopy(nets.D)
    set_probe_trainable(strategy.plan, G, D)
    probe_g = {theirs(n) for n, p in G.named_parameters() if p.requires_grad}
    probe_d = {theirs(n) for n, p in D.named_parameters() if p.requires_grad}
    assert probe_g == {n for n in names["G"] if "vector" in n} and len(probe_g) == counts["probe_G_trained_count"]
    assert probe_d == {n for n in names["D"] if "vector" in n or "final" in n}
    assert len(probe_d) == counts["probe_D_trained_count"]


def test_masked_steps_equal_theirs(probed):
    """Selection at 50%, then one D step and one G step (z seed 400, real seed 401): the modulation entries zeroed
    at the start, and the rows whose gradients are zero after before_update, as theirs after their masking."""
    strategy, nets, fisher, _ = probed
    G, D = copy.deepcopy(nets.G), copy.deepcopy(nets.D)
    strategy = copy.deepcopy(strategy)
    strategy.nets = ganbench.Nets(G, D)
    strategy.select(fisher)
    params = {w: by_their_names(net) for w, net in (("G", G), ("D", D))}
    for key, text in MASK_START.items():
        assert zero_rows(params[key[0]][key[2:]].detach(), 0) == rows(text), key
    z, real = randn((2, 8), 400), randn((2, 3, 256, 256), 401)
    fake = unclamped(G)(z)
    d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
    d_loss.backward()
    strategy.before_update("D", D, 1)
    for key, text in MASK_D.items():
        p = params["D"][key]
        assert (zero_rows(p.grad, 0) if p.grad is not None else list(range(p.shape[0]))) == rows(text), key
    g_loss = F.softplus(-D(unclamped(G)(z))).mean()
    G.zero_grad()
    g_loss.backward()
    strategy.before_update("G", G, 1)
    for key, text in MASK_G.items():
        p = params["G"][key]
        dim = 1 if p.ndim == 5 else 0
        assert (zero_rows(p.grad, dim) if p.grad is not None else list(range(p.shape[dim]))) == rows(text), key
    close([d_loss.item(), g_loss.item()], MASK_LOSSES)


def test_their_zero_modulation_is_not_the_source(probed):
    """Their KML_fc scale makes their G with every vector at 0 differ from the source G (z seed 40): max image
    difference 2.2305, nonzero style differences where in_channel != style_dim. Here zero modulation is the source."""
    _, nets, _, _ = probed
    G = copy.deepcopy(nets.G)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if "vector" in name:
                p.zero_()
        z = randn((2, 8), 40)
        w = G.mapping(z)
        layers = ["conv1", "to_rgb1", *(f"convs.{i}" for i in range(12)), *(f"to_rgbs.{i}" for i in range(6))]
        theirs_styles = {n: G.get_submodule(n).conv.modulation(w) for n in layers}
        theirs_image = unclamped(G)(z)
        for layer in [*G.styles, *G.style[1:]]:
            layer.scale = layer.lr_mul / math.sqrt(layer.in_features)  # the architecture's own scale
        diffs = {n: (G.get_submodule(n).conv.modulation(w) - theirs_styles[n]).abs().max().item() for n in layers}
        image = (unclamped(G)(z) - theirs_image).abs().max().item()
    close(image, ZERO_VS_SOURCE["image"])
    assert {n for n, d in diffs.items() if d > 0} == set(ZERO_VS_SOURCE["styles"])
    for name, d in ZERO_VS_SOURCE["styles"].items():
        close(diffs[name], d)


# --------------------------------------------------------------------------------------------------
# Behaviour on every architecture
# --------------------------------------------------------------------------------------------------


def tiny_arch(name):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY_ARCH_OPTIONS.items() if k in declared})


def quick(**options):
    return AdAM(**{"probe_steps": 2, "fisher_samples": 2, **options})


@pytest.mark.parametrize("arch_name", ARCHITECTURES)
def test_check_strategy(arch_name):
    counts = check_strategy(quick(), tiny_arch(arch_name))
    assert 0 < counts["trainable"] < counts["total"]


def test_check_strategy_per_filter_layout():
    check_strategy(quick(layout="filter", fisher_quantile=75.0), tiny_arch("stylegan2"))


def test_refuses_nets_with_nothing_to_rank():
    nets = tiny_nets(tiny_arch("dcgan"), resolution=16)  # D: from-RGB and the last block only
    with pytest.raises(ganbench.GanbenchError) as err:
        quick().check(nets)
    assert "\n" not in str(err.value) and "D's layers between its from-RGB layer and its last block" in str(err.value)


@pytest.mark.parametrize("arch_name", ARCHITECTURES)
def test_adapted_nets_start_at_the_source(arch_name):
    """u and v start at randn * 1e-7, so M = u v is about 1e-14, and every b at 0: the source model."""
    arch = tiny_arch(arch_name)
    source = fake_source(arch)
    reference = tiny_nets(arch, seed=0)
    source.load_into(reference)
    nets = quick().adapt(tiny_nets(arch, seed=1), source)
    for net in (*nets.modules().values(), *reference.modules().values()):
        net.eval()
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        images = reference.G(z)
        torch.testing.assert_close(nets.G(z), images, rtol=0, atol=1e-6)
        torch.testing.assert_close(nets.D(images), reference.D(images), rtol=0, atol=1e-5)


def test_what_trains_by_position_on_dcgan():
    """G: only the source weights of the blocks between the first and the last (the image) train; D: all but
    from-RGB's weight and bias; every modulation vector trains in both nets."""
    arch = tiny_arch("dcgan")
    strategy = quick()
    nets = strategy.adapt(tiny_nets(arch, seed=0), fake_source(arch))
    assert strategy.needs() == ganbench.Needs() and strategy.modules() == {}  # no features, no extra modules
    G, D = nets.G, nets.D
    for i, block in enumerate(G.blocks):
        for name, p in block.named_parameters():
            ranked_weight = 0 < i < len(G.blocks) - 1 and name.endswith("weight.original") and p.ndim == 4
            assert p.requires_grad == ("vector" in name or ranked_weight), (i, name)
    from_rgb = {"0.parametrizations.weight.original", "0.parametrizations.bias.original"}
    for name, p in D.blocks[0].named_parameters():
        assert p.requires_grad == (name not in from_rgb), name
    assert all(p.requires_grad for block in [*D.blocks[1:], D.head] for p in block.parameters())
    assert not any("vector" in n for n, _ in D.blocks[-1].named_parameters())  # the last block: unmodulated
    assert not any("vector" in n for n, _ in D.head.named_parameters())


def probe_context(arch, steps=3):
    shots = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(7)) * 2 - 1
    return ganbench.ProbeContext(
        shots=shots, steps=steps, batch_size=4, lr=2e-3, device=torch.device("cpu"),
        data_generator=torch.Generator().manual_seed(8), z_generator=torch.Generator().manual_seed(9),
    )  # fmt: skip


def test_probe_trains_copies_and_leaves_the_nets_fresh(monkeypatch):
    """The probe trains the modulation (and D's last block and head) of averaged copies, estimates the Fisher on
    those, and leaves the nets as adapt made them (torch's own random stream too), but the held entries: 0."""
    import ganbench_plugins.strategies.adam as adam

    arch = tiny_arch("stylegan2")
    strategy = quick(fisher_samples=3, probe_ema=0.5)
    nets = strategy.adapt(tiny_nets(arch, seed=0), fake_source(arch))
    before = {w: {n: p.detach().clone() for n, p in net.named_parameters()} for w, net in nets.modules().items()}
    seen = {}

    def spy(G, D, samples, g_params, d_params, **kwargs):
        samples = list(samples)
        seen.update(G=copy.deepcopy(G), D=copy.deepcopy(D), n=len(samples), names=(set(g_params), set(d_params)))
        return fisher_diagonal(G, D, samples, g_params, d_params, **kwargs)

    monkeypatch.setattr(adam, "fisher_diagonal", spy)
    rng = torch.get_rng_state()
    strategy.probe(nets, probe_context(arch))
    assert torch.equal(torch.get_rng_state(), rng)
    assert seen["n"] == 3
    assert all("vector" in n for names in seen["names"] for n in names)
    epilogue = {f"{k}" for k, _ in seen["D"].named_parameters() if k.startswith(("final_conv", "final_linear"))}
    for which in ("G", "D"):
        for name, p in seen[which].named_parameters():
            moved = not torch.equal(p.detach(), before[which][name])
            assert moved == ("vector" in name or name in epilogue), (which, name)
    for which, net in nets.modules().items():
        for name, p in net.named_parameters():
            changed = p.detach() != before[which][name]
            if changed.any():
                assert name.endswith(("v_vector", "b_vector")) and (p.detach()[changed] == 0).all(), (which, name)
    state = strategy.state_dict()
    assert set(state["cutlines"]) == {"g_conv", "g_style", "d_conv"}
    tuned = sum(int((~m).sum()) for m in state["important"].values())
    assert 0 < tuned < sum(m.numel() for m in state["important"].values())
    again = quick()
    fresh = again.adapt(tiny_nets(arch, seed=0), fake_source(arch))
    again.load_state_dict(state)  # a resumed cell: the decision re-applied without probing
    for (name, p), q in zip(nets.G.named_parameters(), fresh.G.parameters()):
        if name.endswith("v_vector"):
            assert torch.equal(p == 0, q == 0), name


def test_held_values_survive_adam_with_weight_decay():
    """ganbench's Adam (betas 0.5, 0.999; here with weight decay) moves a value whose gradient is 0: after_update
    puts every held value back exactly (the important filters' source weights, the tuned filters' v at 0)."""
    arch = tiny_arch("stylegan2")
    for restore in (True, False):
        strategy = quick()
        nets = strategy.adapt(tiny_nets(arch, seed=0), fake_source(arch))
        G = nets.G
        g = torch.Generator().manual_seed(3)
        fisher = {w: {n: torch.rand(p.shape, generator=g) for n, p in net.named_parameters() if "vector" in n}
                  for w, net in nets.modules().items()}  # fmt: skip
        strategy.select(fisher)
        held = {n: p.detach().clone() for n, p in G.named_parameters()}
        trained = [p for p in G.parameters() if p.requires_grad]
        opt = torch.optim.Adam(trained, lr=0.1, betas=(0.5, 0.999), weight_decay=0.1)
        z = torch.randn(4, G.z_dim, generator=g)
        for step in (1, 2, 3):
            opt.zero_grad()
            G(z).square().mean().backward()
            strategy.before_update("G", G, step)
            opt.step()
            if restore:
                strategy.after_update("G", G, step)
        params = dict(G.named_parameters())
        layers = [layer for layer in strategy.plan.ranked() if layer.net == "G"]
        kept = tuned = 0
        for layer in layers:
            keep = strategy.important[layer.key]
            prefix = f"{layer.path}.parametrizations.weight"
            rows_of = {True: keep.nonzero().flatten(), False: (~keep).nonzero().flatten()}
            now, then = params[f"{prefix}.original"].detach(), held[f"{prefix}.original"]
            same = [
                torch.equal(now.select(layer.filter_dim, i), then.select(layer.filter_dim, i)) for i in range(len(keep))
            ]
            kept += sum(same[i] for i in rows_of[True].tolist())
            tuned += sum(not same[i] for i in rows_of[False].tolist())
            if restore:
                assert all(same[i] for i in rows_of[True].tolist()), layer.key
                assert (params[f"{prefix}.0.v_vector"].detach()[~keep] == 0).all(), layer.key
        assert tuned > 0
        assert (kept > 0) == restore  # without after_update, weight decay moves the held source filters


# --------------------------------------------------------------------------------------------------
# Their numbers (float64, rounded to 12 significant digits; fingerprints: sum, sum |x|, sum x^2, first, last)
# --------------------------------------------------------------------------------------------------

# fmt: off
# ModulatedConv2d_kml (demodulate 1 / 0): fingerprints of ger(u, v).view(...) and of the output; the style in full
MODCONV = {1: {'w_hat': [1.22964018537, 8.62898162545, 2.12010022056, 0.021028897357, 0.00157824894953],
     'style': [-1.87137737919, 0.938841636783, 3.73909881736, -1.88199261341, 1.54889835036, -0.124498341027],
     'out': [5.16113629506, 227.382330476, 277.16980758, -0.348361676124, 0.271453725479]},
 0: {'w_hat': [1.22964018537, 8.62898162545, 2.12010022056, 0.021028897357, 0.00157824894953],
     'style': [-1.87137737919, 0.938841636783, 3.73909881736, -1.88199261341, 1.54889835036, -0.124498341027],
     'out': [30.5275792467, 434.40146312, 1156.53641094, -0.737705191718, 0.408956782136]}}
# flat indices (out, in, kh, kw) where ger(u, v).view(1, 4, 3, 3, 3) is 0 once v[1] = 0
VZERO = [1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77, 81, 85, 89, 93, 97, 101, 105]
# KML_fc outputs (2 x 3), with the fused leaky ReLU and linear
FC = {'fused_lrelu': [0.00887056843828, 0.0122854093334, 0.0237470796107, 0.00140987553248, 0.0153030917021,
                 0.0416317530088],
 'linear': [0.00627243909569, 0.00868709624927, 0.0167917210261, 0.000996932549643, 0.0108209199157,
            0.0294380948652]}
# EqualConv2d_kml output fingerprint
EQUALCONV = [-7.40909786467, 176.422578992, 180.461157286, -0.109811436694, -0.1353860979]
# their G with every vector at 0 vs model.py's G: max |image difference|, max |style difference| by layer
ZERO_VS_SOURCE = {'image': 2.23049798672,
 'styles': {'convs.9': 0.273893874193,
            'convs.10': 0.670811736501,
            'convs.11': 1.81729084991,
            'to_rgbs.4': 0.655357548178,
            'to_rgbs.5': 1.17409922147}}
# per-sample losses of the Fisher loop, g, d, g, d, ...
FISHER_LOSSES = [2.19929929541, 2.31516886472, 4.95203163012, 2.20453376457, 2.20237844456, 2.31485484832, 2.60150647391,
 2.27441595105]
# per ranked layer: (mean F_u, sum F_v, sum F_b or None); D keys name the convolution (its b: the activation after it)
FISHER_LAYERS = {'G:convs.0.conv': (3.92411743269e-06, 0.000173198065378, None),
 'G:convs.0.conv.modulation': (6.58153429973e-07, 0.000131922079441, 0.00614217608822),
 'G:convs.1.conv': (1.05120364306e-05, 0.00113810026507, None),
 'G:convs.1.conv.modulation': (0.000122016016961, 2.98908931782e-05, 0.0593980686626),
 'G:convs.2.conv': (3.38122645283e-07, 8.57272694139e-05, None),
 'G:convs.2.conv.modulation': (5.0495329447e-06, 3.16223616409e-05, 0.00786300535978),
 'G:convs.3.conv': (8.37655732374e-06, 0.000342745854606, None),
 'G:convs.3.conv.modulation': (1.12268165866e-06, 3.62224309145e-05, 0.00700734650567),
 'G:convs.4.conv': (2.63852809666e-06, 0.000440496749593, None),
 'G:convs.4.conv.modulation': (9.25737863097e-06, 2.09175895635e-05, 0.0151116964194),
 'G:convs.5.conv': (5.15337105501e-05, 0.00576943004995, None),
 'G:convs.5.conv.modulation': (2.82579467017e-05, 0.00349328757833, 0.175164896011),
 'G:convs.6.conv': (5.47563821211e-05, 0.00112107092059, None),
 'G:convs.6.conv.modulation': (4.08692781979e-05, 0.000110603978955, 0.0280069715559),
 'G:convs.7.conv': (0.000269895800254, 0.085369982261, None),
 'G:convs.7.conv.modulation': (7.07267846091e-05, 0.000333599662636, 0.229814949177),
 'G:convs.8.conv': (0.00156159680338, 0.0760496281328, None),
 'G:convs.8.conv.modulation': (0.00123101794856, 0.0188280702068, 15.9418036897),
 'G:convs.9.conv': (0.000188102308811, 0.00380794006855, None),
 'G:convs.9.conv.modulation': (0.000796105187837, 0.0168182770768, 3.17694108922),
 'G:convs.10.conv': (2.39726682329e-05, 0.0406091784772, None),
 'G:convs.10.conv.modulation': (0.000147259238493, 0.000141077150259, 0.0227143848817),
 'G:convs.11.conv': (0.00062937562635, 0.014682086951, None),
 'G:convs.11.conv.modulation': (0.000140395245878, 0.0012901927565, 0.222744202566),
 'D:convs.1.conv1.0': (4.33104667087e-07, 0.000123060629565, 0.000250510715219),
 'D:convs.1.conv2.1': (2.10677988056e-07, 1.82992596758e-05, 0.0106057590461),
 'D:convs.1.skip.1': (3.55119948464e-06, 2.33996569025e-05, None),
 'D:convs.2.conv1.0': (4.47827299995e-07, 2.40709411354e-05, 0.00107870899351),
 'D:convs.2.conv2.1': (5.81835439167e-07, 4.22975393218e-05, 0.0212423958728),
 'D:convs.2.skip.1': (4.73904305144e-05, 0.000342160324492, None),
 'D:convs.3.conv1.0': (3.34690228984e-06, 0.000755001865243, 0.0638492786263),
 'D:convs.3.conv2.1': (2.54618073747e-05, 0.00217671502244, 0.0605658244194),
 'D:convs.3.skip.1': (4.78551256717e-05, 0.000267209780303, None),
 'D:convs.4.conv1.0': (9.27289210727e-05, 0.00244421072596, 0.155553254255),
 'D:convs.4.conv2.1': (7.64639100961e-05, 0.00253733988104, 0.21874006662),
 'D:convs.4.skip.1': (0.000598034953586, 0.00265603771284, None),
 'D:convs.5.conv1.0': (1.38316404085e-05, 0.000335322509905, 0.0303645557959),
 'D:convs.5.conv2.1': (1.72452303911e-05, 0.00321797128599, 0.102286520569),
 'D:convs.5.skip.1': (0.000607170496913, 0.00561565941612, None),
 'D:convs.6.conv1.0': (5.51659248768e-05, 0.00943672393286, 0.113154390676),
 'D:convs.6.conv2.1': (3.42598625738e-05, 0.00112909492665, 0.204902708742),
 'D:convs.6.skip.1': (0.000792241827682, 0.000944788242909, None)}
# fingerprints of three full Fisher arrays
FISHER_FULL = {'G_full.convs.11.conv.u_vector': [0.0113287612743, 0.0113287612743, 2.99227867249e-05, 8.37076677653e-05,
                                   3.48158656125e-05],
 'G_full.convs.11.conv.weight': [5.30349427307, 5.30349427307, 1.43754840287, 0.189562011245, 0.111760271153],
 'D_full.convs.6.conv1.0.u_vector': [0.00397194659113, 0.00397194659113, 3.25330525674e-06, 1.83910395467e-06,
                                     0.000859806923343]}
# the three pools' per-filter scores, in their order (grouped_fim_conv_g, grouped_fim_fc_g, grouped_fim_conv_d)
GROUPED = {'g_conv': [1.72653014523e-05, 1.00659194229e-05, 8.05601700283e-05, 6.68481408715e-05, 6.25325411291e-06,
            1.03036073981e-05, 4.05536146617e-06, 9.23925008769e-06, 5.98944876978e-05, 1.18467249072e-05,
            0.000375310645203, 9.59248137939e-05, 0.000105711341771, 0.000491398340406, 1.58126889637e-05,
            6.62975137707e-05, 3.89937600034e-06, 9.1544129358e-06, 4.77763666518e-07, 1.37403666226e-06,
            6.64158029026e-05, 2.89847868375e-06, 1.17923976606e-06, 3.03313995883e-06, 4.6673646494e-05,
            8.4410082458e-06, 2.31369712743e-05, 8.65721475176e-06, 1.77572265028e-05, 5.72339632174e-05,
            0.000221752880211, 2.61054024988e-05, 8.16461507585e-05, 1.97032134374e-05, 5.4665962247e-05,
            0.000176754530751, 0.000113952767522, 2.83351774329e-06, 3.1559436972e-06, 8.8928882101e-06,
            0.000335192477688, 0.000117614266473, 0.0032971881445, 0.000934501366042, 0.00102287617135,
            0.000179071290342, 0.000135487830255, 0.000159768187694, 0.000325009298927, 0.000185485025403,
            8.3765255352e-05, 8.12272663725e-05, 0.000146772202419, 6.17262268724e-05, 0.000612532175731,
            6.26045264825e-05, 0.00575711595845, 0.00644802150972, 0.0115979189459, 0.00393323972461,
            0.0561735979988, 0.000418425175185, 0.000457051537763, 0.00274377781272, 0.0104473061538,
            0.00549711316686, 0.0627057192414, 0.00364587678436, 0.000982107346805, 0.000661316649001,
            0.000702876499144, 0.00221404880884, 0.0270276847711, 0.0136294390426, 0.0114910653374,
            0.00444977286634],
 'g_style': [0.000260531469222, 1.82661608837e-06, 0.00101852615583, 0.000450161977429, 8.7197510525e-05,
             0.000694882131773, 3.07374225307e-05, 0.000595818414147, 0.000176021771335, 0.0027114959062,
             0.00521905851492, 0.000122172727445, 0.0178380107854, 0.00179105407055, 0.00209036519393,
             0.000253864875907, 2.15681254742e-05, 6.00365049092e-06, 0.000243178274516, 0.00268657982059,
             0.000104018440311, 1.81023598275e-05, 0.000384369685546, 0.000503691635734, 0.00046839403516,
             4.46320205672e-05, 2.02091549711e-05, 3.45892828226e-05, 0.00238658354861, 2.81846887037e-05,
             7.28084125817e-05, 0.000470874051515, 0.00120075372306, 0.000595683058041, 6.9649316362e-06,
             1.8889737968e-05, 7.43223346912e-05, 0.00456984557276, 2.27348895006e-05, 0.00111414227133,
             0.022059393618, 0.0458714262803, 0.000813249567821, 6.80106555136e-05, 0.00264723466434,
             5.1074768305e-05, 0.016135577619, 0.00179615640809, 0.00116098355414, 0.000566595480984,
             2.45032382286e-05, 0.00180538505798, 0.0044446092991, 0.00319140361413, 0.0028016103926,
             0.000227174243074, 0.00432993370694, 0.0064919024509, 0.00016521812924, 0.00975471806157,
             0.00265185517136, 0.0722284967506, 0.00896551203092, 0.0107695452566, 0.16880231171, 7.4792798123,
             0.0495972963721, 0.0934570455781, 0.0105431224806, 0.000789096341142, 0.09072302775, 0.0920482392122,
             0.273836687334, 1.12969605833, 0.0541663235064, 0.140772824355, 0.000127869465303, 0.00607831854459,
             0.00242090701071, 0.00309515447236, 0.077039256069, 0.0351183368381],
 'd_conv': [0.000142053652105, 4.51651249542e-05, 1.01083807986e-06, 0.000878413059406, 0.00441312902345,
            1.98975879539e-05, 1.34869288519e-05, 3.72203358047e-06, 1.15972543076e-05, 8.79823810103e-06,
            1.35938498897e-05, 0.000165108691575, 0.000156990691704, 0.000216592388756, 0.000144649579976,
            0.00890470501058, 0.000112057457606, 3.00557315409e-05, 0.0010318887958, 3.59326044261e-06,
            5.03436943381e-05, 0.000367380517518, 4.94172142736e-05, 6.08237918638e-05, 0.000188072663791,
            9.88881487728e-05, 4.90455993409e-05, 0.000157884091362, 5.13637744761e-05, 6.5788484727e-05,
            0.00470402074452, 0.000779756686241, 0.0154614301386, 0.00019050448667, 0.0110687008234,
            3.34032722887e-05, 2.68170105855e-05, 5.08946926558e-05, 0.0012311310009, 0.00102375580746,
            0.00124495792684, 3.40915990575e-05, 0.00100967645575, 0.0169076260747, 0.00963337720316,
            0.000388500882549, 4.86169932702e-05, 0.000175158602768, 4.796837294e-05, 6.89074437817e-05,
            0.00013420385392, 6.38530536628e-05, 5.15813989107e-05, 5.97610664224e-05, 0.0559175114085,
            0.000200474907944, 0.00181188663682, 0.00514787397326, 0.0015955678272, 0.00204269591245,
            0.0122877940901, 0.000365843418375, 0.00243820248375, 0.00730086420361, 0.0140522862936,
            0.000808219550664, 0.00628477291408, 0.0785924879623, 0.000164661833029, 0.00130306365002,
            0.000610414009232, 0.000841254223789, 0.000691919612269, 0.000609563699064, 0.000598175150408,
            0.000642520444717, 0.00284764362144, 0.000598826580609, 0.00206120938158, 0.00687644163578,
            0.0009842638562, 0.00356897309464, 0.000183883168939, 0.000946572387142, 0.000658409609293,
            0.000125512580937, 0.0336260056571, 7.73252997799e-05, 0.00305826940428, 0.0150226577647,
            5.91381670567e-05, 0.000432600412061, 0.00017913597853, 0.000366094165797, 0.000610046188798,
            0.00107837719788, 0.000855353314091, 0.000607789967681, 0.00290837319695, 0.0031921990636,
            0.000609480803596, 0.00061140365883, 0.000899892168305, 0.000437627068977, 0.000125739006962,
            0.00225842504025, 0.00681088796764, 0.0208280369412, 0.000169472012786, 0.0299861407977,
            0.00335546401747, 0.0258334687802, 0.0168548101066, 0.00210430854973, 0.027143616967, 0.00325802391877,
            0.000317736089418, 0.0242855128552, 0.00131343697928, 0.00079530314474, 0.000812946499024,
            0.00081859129899, 0.000962140340071, 0.000794270580299, 0.000923628291531, 0.000862405730431]}
# q -> ((cutline_g_conv, cutline_g_fc, cutline_d_conv), important filters per layer: idx_kml as 0/1)
SELECT = {50: ((0.000100818077782, 0.0011808686386, 0.000650465027005),
      {'G:convs.0.conv': '0*8',
       'G:convs.1.conv': '00101100',
       'G:convs.2.conv': '0*8',
       'G:convs.3.conv': '00000010',
       'G:convs.4.conv': '00011000',
       'G:convs.5.conv': '1*8',
       'G:convs.6.conv': '11001010',
       'G:convs.7.conv': '1*8',
       'G:convs.8.conv': '1*4',
       'G:convs.9.conv': '1*4',
       'G:convs.10.conv': '1*2',
       'G:convs.11.conv': '1*2',
       'G:convs.0.conv.modulation': '0*8',
       'G:convs.1.conv.modulation': '01101110',
       'G:convs.2.conv.modulation': '00010000',
       'G:convs.3.conv.modulation': '00001000',
       'G:convs.4.conv.modulation': '10000100',
       'G:convs.5.conv.modulation': '11001011',
       'G:convs.6.conv.modulation': '00011110',
       'G:convs.7.conv.modulation': '11011111',
       'G:convs.8.conv.modulation': '11111011',
       'G:convs.9.conv.modulation': '1*4',
       'G:convs.10.conv.modulation': '0111',
       'G:convs.11.conv.modulation': '1*2',
       'D:convs.1.conv1.0': '0*2',
       'D:convs.1.conv2.1': '0110',
       'D:convs.1.skip.1': '0*4',
       'D:convs.2.conv1.0': '0*4',
       'D:convs.2.conv2.1': '01001000',
       'D:convs.2.skip.1': '0*8',
       'D:convs.3.conv1.0': '11101000',
       'D:convs.3.conv2.1': '11101110',
       'D:convs.3.skip.1': '0*8',
       'D:convs.4.conv1.0': '10111110',
       'D:convs.4.conv2.1': '11111101',
       'D:convs.4.skip.1': '01100010',
       'D:convs.5.conv1.0': '11110110',
       'D:convs.5.conv2.1': '10110000',
       'D:convs.5.skip.1': '01101100',
       'D:convs.6.conv1.0': '10011101',
       'D:convs.6.conv2.1': '11111101',
       'D:convs.6.skip.1': '1*8'}),
 75: ((0.000760782715869, 0.00834710963592, 0.00239325812288),
      {'G:convs.0.conv': '0*8',
       'G:convs.1.conv': '0*8',
       'G:convs.2.conv': '0*8',
       'G:convs.3.conv': '0*8',
       'G:convs.4.conv': '0*8',
       'G:convs.5.conv': '00111000',
       'G:convs.6.conv': '0*8',
       'G:convs.7.conv': '11111001',
       'G:convs.8.conv': '1*4',
       'G:convs.9.conv': '1001',
       'G:convs.10.conv': '1*2',
       'G:convs.11.conv': '1*2',
       'G:convs.0.conv.modulation': '0*8',
       'G:convs.1.conv.modulation': '00001000',
       'G:convs.2.conv.modulation': '0*8',
       'G:convs.3.conv.modulation': '0*8',
       'G:convs.4.conv.modulation': '0*8',
       'G:convs.5.conv.modulation': '11000010',
       'G:convs.6.conv.modulation': '0*8',
       'G:convs.7.conv.modulation': '00010111',
       'G:convs.8.conv.modulation': '11111011',
       'G:convs.9.conv.modulation': '1*4',
       'G:convs.10.conv.modulation': '0*4',
       'G:convs.11.conv.modulation': '1*2',
       'D:convs.1.conv1.0': '0*2',
       'D:convs.1.conv2.1': '0010',
       'D:convs.1.skip.1': '0*4',
       'D:convs.2.conv1.0': '0*4',
       'D:convs.2.conv2.1': '01000000',
       'D:convs.2.skip.1': '0*8',
       'D:convs.3.conv1.0': '10101000',
       'D:convs.3.conv2.1': '00000110',
       'D:convs.3.skip.1': '0*8',
       'D:convs.4.conv1.0': '10010010',
       'D:convs.4.conv2.1': '11101100',
       'D:convs.4.skip.1': '00000010',
       'D:convs.5.conv1.0': '01010000',
       'D:convs.5.conv2.1': '10110000',
       'D:convs.5.skip.1': '00001100',
       'D:convs.6.conv1.0': '00001101',
       'D:convs.6.conv2.1': '11101101',
       'D:convs.6.skip.1': '0*8'}),
 25: ((1.69021483302e-05, 0.000137206631287, 0.000127855218702),
      {'G:convs.0.conv': '10110000',
       'G:convs.1.conv': '10111101',
       'G:convs.2.conv': '00001000',
       'G:convs.3.conv': '10101111',
       'G:convs.4.conv': '11111000',
       'G:convs.5.conv': '1*8',
       'G:convs.6.conv': '1*8',
       'G:convs.7.conv': '1*8',
       'G:convs.8.conv': '1*4',
       'G:convs.9.conv': '1*4',
       'G:convs.10.conv': '1*2',
       'G:convs.11.conv': '1*2',
       'G:convs.0.conv.modulation': '10110101',
       'G:convs.1.conv.modulation': '11101111',
       'G:convs.2.conv.modulation': '00110011',
       'G:convs.3.conv.modulation': '10001001',
       'G:convs.4.conv.modulation': '11000101',
       'G:convs.5.conv.modulation': '11101011',
       'G:convs.6.conv.modulation': '11011111',
       'G:convs.7.conv.modulation': '1*8',
       'G:convs.8.conv.modulation': '1*8',
       'G:convs.9.conv.modulation': '1*4',
       'G:convs.10.conv.modulation': '0111',
       'G:convs.11.conv.modulation': '1*2',
       'D:convs.1.conv1.0': '10',
       'D:convs.1.conv2.1': '0110',
       'D:convs.1.skip.1': '0*4',
       'D:convs.2.conv1.0': '0111',
       'D:convs.2.conv2.1': '11001001',
       'D:convs.2.skip.1': '00100100',
       'D:convs.3.conv1.0': '11111000',
       'D:convs.3.conv2.1': '11101111',
       'D:convs.3.skip.1': '01001000',
       'D:convs.4.conv1.0': '1*8',
       'D:convs.4.conv2.1': '1*8',
       'D:convs.4.skip.1': '1*8',
       'D:convs.5.conv1.0': '11111110',
       'D:convs.5.conv2.1': '10110111',
       'D:convs.5.skip.1': '1*8',
       'D:convs.6.conv1.0': '11011111',
       'D:convs.6.conv2.1': '1*8',
       'D:convs.6.skip.1': '1*8'})}
# the same on the abs(randn) Fisher of seed 300
SELECT_SYNTHETIC = {50: ((1.55832688459, 0.988399584783, 1.18945729204),
      {'G:convs.0.conv': '10101100',
       'G:convs.1.conv': '11000100',
       'G:convs.2.conv': '01111000',
       'G:convs.3.conv': '10110010',
       'G:convs.4.conv': '10100000',
       'G:convs.5.conv': '11110110',
       'G:convs.6.conv': '11100000',
       'G:convs.7.conv': '01011111',
       'G:convs.8.conv': '1101',
       'G:convs.9.conv': '1011',
       'G:convs.10.conv': '0*2',
       'G:convs.11.conv': '0*2',
       'G:convs.0.conv.modulation': '00011000',
       'G:convs.1.conv.modulation': '01110101',
       'G:convs.2.conv.modulation': '01110101',
       'G:convs.3.conv.modulation': '01011001',
       'G:convs.4.conv.modulation': '11000000',
       'G:convs.5.conv.modulation': '11001001',
       'G:convs.6.conv.modulation': '00110100',
       'G:convs.7.conv.modulation': '11001110',
       'G:convs.8.conv.modulation': '11100101',
       'G:convs.9.conv.modulation': '1100',
       'G:convs.10.conv.modulation': '1001',
       'G:convs.11.conv.modulation': '1*2',
       'D:convs.1.conv1.0': '10',
       'D:convs.1.conv2.1': '1001',
       'D:convs.1.skip.1': '1*4',
       'D:convs.2.conv1.0': '0100',
       'D:convs.2.conv2.1': '10110100',
       'D:convs.2.skip.1': '11111101',
       'D:convs.3.conv1.0': '11101000',
       'D:convs.3.conv2.1': '00000111',
       'D:convs.3.skip.1': '10111110',
       'D:convs.4.conv1.0': '01100010',
       'D:convs.4.conv2.1': '10010001',
       'D:convs.4.skip.1': '10011011',
       'D:convs.5.conv1.0': '11101100',
       'D:convs.5.conv2.1': '00000010',
       'D:convs.5.skip.1': '10000000',
       'D:convs.6.conv1.0': '10001100',
       'D:convs.6.conv2.1': '01000100',
       'D:convs.6.skip.1': '1*8'}),
 75: ((2.04778961703, 1.25278291369, 1.56245062444),
      {'G:convs.0.conv': '00100000',
       'G:convs.1.conv': '10000100',
       'G:convs.2.conv': '00100000',
       'G:convs.3.conv': '10100000',
       'G:convs.4.conv': '00100000',
       'G:convs.5.conv': '10110010',
       'G:convs.6.conv': '11100000',
       'G:convs.7.conv': '00000001',
       'G:convs.8.conv': '1001',
       'G:convs.9.conv': '0011',
       'G:convs.10.conv': '0*2',
       'G:convs.11.conv': '0*2',
       'G:convs.0.conv.modulation': '00011000',
       'G:convs.1.conv.modulation': '01000000',
       'G:convs.2.conv.modulation': '00110000',
       'G:convs.3.conv.modulation': '00011001',
       'G:convs.4.conv.modulation': '0*8',
       'G:convs.5.conv.modulation': '10000001',
       'G:convs.6.conv.modulation': '00110100',
       'G:convs.7.conv.modulation': '10000000',
       'G:convs.8.conv.modulation': '00100001',
       'G:convs.9.conv.modulation': '1100',
       'G:convs.10.conv.modulation': '1001',
       'G:convs.11.conv.modulation': '01',
       'D:convs.1.conv1.0': '10',
       'D:convs.1.conv2.1': '0001',
       'D:convs.1.skip.1': '0011',
       'D:convs.2.conv1.0': '0100',
       'D:convs.2.conv2.1': '00010100',
       'D:convs.2.skip.1': '10010100',
       'D:convs.3.conv1.0': '0*8',
       'D:convs.3.conv2.1': '00000111',
       'D:convs.3.skip.1': '10111110',
       'D:convs.4.conv1.0': '01000010',
       'D:convs.4.conv2.1': '00010000',
       'D:convs.4.skip.1': '00011010',
       'D:convs.5.conv1.0': '10000000',
       'D:convs.5.conv2.1': '0*8',
       'D:convs.5.skip.1': '0*8',
       'D:convs.6.conv1.0': '0*8',
       'D:convs.6.conv2.1': '01000100',
       'D:convs.6.skip.1': '01000111'})}
# (d_loss, g_loss) of the masked steps
MASK_LOSSES = (2.29876367583, 2.30493679838)
# modulation entries zeroed at the start (AdAM_main_adaptation.py:181-191), by their names
MASK_START = {'G.convs.0.conv.v_vector': '1*8',
 'G.convs.0.conv.kml_fc.v_vector': '1*8',
 'G.convs.0.conv.kml_fc.b_vector': '1*8',
 'G.convs.1.conv.v_vector': '11010011',
 'G.convs.1.conv.kml_fc.v_vector': '10010001',
 'G.convs.1.conv.kml_fc.b_vector': '10010001',
 'G.convs.2.conv.v_vector': '1*8',
 'G.convs.2.conv.kml_fc.v_vector': '11101111',
 'G.convs.2.conv.kml_fc.b_vector': '11101111',
 'G.convs.3.conv.v_vector': '11111101',
 'G.convs.3.conv.kml_fc.v_vector': '11110111',
 'G.convs.3.conv.kml_fc.b_vector': '11110111',
 'G.convs.4.conv.v_vector': '11100111',
 'G.convs.4.conv.kml_fc.v_vector': '01111011',
 'G.convs.4.conv.kml_fc.b_vector': '01111011',
 'G.convs.5.conv.v_vector': '0*8',
 'G.convs.5.conv.kml_fc.v_vector': '00110100',
 'G.convs.5.conv.kml_fc.b_vector': '00110100',
 'G.convs.6.conv.v_vector': '00110101',
 'G.convs.6.conv.kml_fc.v_vector': '11100001',
 'G.convs.6.conv.kml_fc.b_vector': '11100001',
 'G.convs.7.conv.v_vector': '0*8',
 'G.convs.7.conv.kml_fc.v_vector': '00100000',
 'G.convs.7.conv.kml_fc.b_vector': '00100000',
 'G.convs.8.conv.v_vector': '0*4',
 'G.convs.8.conv.kml_fc.v_vector': '00000100',
 'G.convs.8.conv.kml_fc.b_vector': '00000100',
 'G.convs.9.conv.v_vector': '0*4',
 'G.convs.9.conv.kml_fc.v_vector': '0*4',
 'G.convs.9.conv.kml_fc.b_vector': '0*4',
 'G.convs.10.conv.v_vector': '0*2',
 'G.convs.10.conv.kml_fc.v_vector': '1000',
 'G.convs.10.conv.kml_fc.b_vector': '1000',
 'G.convs.11.conv.v_vector': '0*2',
 'G.convs.11.conv.kml_fc.v_vector': '0*2',
 'G.convs.11.conv.kml_fc.b_vector': '0*2',
 'D.convs.1.conv1.0.v_vector': '1*2',
 'D.convs.1.conv1.1.b_vector': '1*2',
 'D.convs.1.conv2.1.v_vector': '1001',
 'D.convs.1.conv2.2.b_vector': '1001',
 'D.convs.1.skip.1.v_vector': '1*4',
 'D.convs.2.conv1.0.v_vector': '1*4',
 'D.convs.2.conv1.1.b_vector': '1*4',
 'D.convs.2.conv2.1.v_vector': '10110111',
 'D.convs.2.conv2.2.b_vector': '10110111',
 'D.convs.2.skip.1.v_vector': '1*8',
 'D.convs.3.conv1.0.v_vector': '00010111',
 'D.convs.3.conv1.1.b_vector': '00010111',
 'D.convs.3.conv2.1.v_vector': '00010001',
 'D.convs.3.conv2.2.b_vector': '00010001',
 'D.convs.3.skip.1.v_vector': '1*8',
 'D.convs.4.conv1.0.v_vector': '01000001',
 'D.convs.4.conv1.1.b_vector': '01000001',
 'D.convs.4.conv2.1.v_vector': '00000010',
 'D.convs.4.conv2.2.b_vector': '00000010',
 'D.convs.4.skip.1.v_vector': '10011101',
 'D.convs.5.conv1.0.v_vector': '00001001',
 'D.convs.5.conv1.1.b_vector': '00001001',
 'D.convs.5.conv2.1.v_vector': '01001111',
 'D.convs.5.conv2.2.b_vector': '01001111',
 'D.convs.5.skip.1.v_vector': '10010011',
 'D.convs.6.conv1.0.v_vector': '01100010',
 'D.convs.6.conv1.1.b_vector': '01100010',
 'D.convs.6.conv2.1.v_vector': '00000010',
 'D.convs.6.conv2.2.b_vector': '00000010',
 'D.convs.6.skip.1.v_vector': '0*8'}
# D rows (dim 0) whose gradient is all zero after their masking (lines 233-255)
MASK_D = {'convs.0.0.u_vector': '0*3',
 'convs.0.0.v_vector': '0*2',
 'convs.0.1.b_vector': '0*2',
 'convs.1.conv1.0.weight': '0*2',
 'convs.1.conv1.0.u_vector': '1*18',
 'convs.1.conv1.0.v_vector': '1*2',
 'convs.1.conv1.1.bias': '0*2',
 'convs.1.conv1.1.b_vector': '1*2',
 'convs.1.conv2.1.weight': '0110',
 'convs.1.conv2.1.u_vector': '0*18',
 'convs.1.conv2.1.v_vector': '1001',
 'convs.1.conv2.2.bias': '0110',
 'convs.1.conv2.2.b_vector': '1001',
 'convs.1.skip.1.weight': '0*4',
 'convs.1.skip.1.u_vector': '1*2',
 'convs.1.skip.1.v_vector': '1*4',
 'convs.2.conv1.0.weight': '0*4',
 'convs.2.conv1.0.u_vector': '1*36',
 'convs.2.conv1.0.v_vector': '1*4',
 'convs.2.conv1.1.bias': '0*4',
 'convs.2.conv1.1.b_vector': '1*4',
 'convs.2.conv2.1.weight': '01001000',
 'convs.2.conv2.1.u_vector': '0*36',
 'convs.2.conv2.1.v_vector': '10110111',
 'convs.2.conv2.2.bias': '01001000',
 'convs.2.conv2.2.b_vector': '10110111',
 'convs.2.skip.1.weight': '0*8',
 'convs.2.skip.1.u_vector': '1*4',
 'convs.2.skip.1.v_vector': '1*8',
 'convs.3.conv1.0.weight': '11101000',
 'convs.3.conv1.0.u_vector': '0*72',
 'convs.3.conv1.0.v_vector': '00010111',
 'convs.3.conv1.1.bias': '11101000',
 'convs.3.conv1.1.b_vector': '00010111',
 'convs.3.conv2.1.weight': '11101110',
 'convs.3.conv2.1.u_vector': '0*72',
 'convs.3.conv2.1.v_vector': '00010001',
 'convs.3.conv2.2.bias': '11101110',
 'convs.3.conv2.2.b_vector': '00010001',
 'convs.3.skip.1.weight': '0*8',
 'convs.3.skip.1.u_vector': '1*8',
 'convs.3.skip.1.v_vector': '1*8',
 'convs.4.conv1.0.weight': '10111110',
 'convs.4.conv1.0.u_vector': '0*72',
 'convs.4.conv1.0.v_vector': '01000001',
 'convs.4.conv1.1.bias': '10111110',
 'convs.4.conv1.1.b_vector': '01000001',
 'convs.4.conv2.1.weight': '11111101',
 'convs.4.conv2.1.u_vector': '0*72',
 'convs.4.conv2.1.v_vector': '00000010',
 'convs.4.conv2.2.bias': '11111101',
 'convs.4.conv2.2.b_vector': '00000010',
 'convs.4.skip.1.weight': '01100010',
 'convs.4.skip.1.u_vector': '0*8',
 'convs.4.skip.1.v_vector': '10011101',
 'convs.5.conv1.0.weight': '11110110',
 'convs.5.conv1.0.u_vector': '0*72',
 'convs.5.conv1.0.v_vector': '00001001',
 'convs.5.conv1.1.bias': '11110110',
 'convs.5.conv1.1.b_vector': '00001001',
 'convs.5.conv2.1.weight': '10110000',
 'convs.5.conv2.1.u_vector': '0*72',
 'convs.5.conv2.1.v_vector': '01001111',
 'convs.5.conv2.2.bias': '10110000',
 'convs.5.conv2.2.b_vector': '01001111',
 'convs.5.skip.1.weight': '01101100',
 'convs.5.skip.1.u_vector': '0*8',
 'convs.5.skip.1.v_vector': '10010011',
 'convs.6.conv1.0.weight': '10011101',
 'convs.6.conv1.0.u_vector': '0*72',
 'convs.6.conv1.0.v_vector': '01100010',
 'convs.6.conv1.1.bias': '10011101',
 'convs.6.conv1.1.b_vector': '01100010',
 'convs.6.conv2.1.weight': '11111101',
 'convs.6.conv2.1.u_vector': '0*72',
 'convs.6.conv2.1.v_vector': '00000010',
 'convs.6.conv2.2.bias': '11111101',
 'convs.6.conv2.2.b_vector': '00000010',
 'convs.6.skip.1.weight': '1*8',
 'convs.6.skip.1.u_vector': '0*8',
 'convs.6.skip.1.v_vector': '0*8'}
# G rows (dim 1 of 5-d weights, else 0) whose gradient is all zero after their masking (lines 347-383)
MASK_G = {'convs.0.conv.weight': '0*8',
 'convs.0.conv.u_vector': '1*72',
 'convs.0.conv.v_vector': '1*8',
 'convs.0.conv.modulation.weight': '0*8',
 'convs.0.conv.modulation.bias': '0*8',
 'convs.0.conv.kml_fc.u_vector': '1*8',
 'convs.0.conv.kml_fc.v_vector': '1*8',
 'convs.0.conv.kml_fc.b_vector': '1*8',
 'convs.0.noise.weight': '1',
 'convs.0.noise.b_vector': '0',
 'convs.0.activate.bias': '1*8',
 'convs.0.activate.b_vector': '0*8',
 'convs.1.conv.weight': '00101100',
 'convs.1.conv.u_vector': '0*72',
 'convs.1.conv.v_vector': '11010011',
 'convs.1.conv.modulation.weight': '01101110',
 'convs.1.conv.modulation.bias': '01101110',
 'convs.1.conv.kml_fc.u_vector': '0*8',
 'convs.1.conv.kml_fc.v_vector': '10010001',
 'convs.1.conv.kml_fc.b_vector': '10010001',
 'convs.1.noise.weight': '1',
 'convs.1.noise.b_vector': '0',
 'convs.1.activate.bias': '1*8',
 'convs.1.activate.b_vector': '0*8',
 'convs.2.conv.weight': '0*8',
 'convs.2.conv.u_vector': '1*72',
 'convs.2.conv.v_vector': '1*8',
 'convs.2.conv.modulation.weight': '00010000',
 'convs.2.conv.modulation.bias': '00010000',
 'convs.2.conv.kml_fc.u_vector': '0*8',
 'convs.2.conv.kml_fc.v_vector': '11101111',
 'convs.2.conv.kml_fc.b_vector': '11101111',
 'convs.2.noise.weight': '1',
 'convs.2.noise.b_vector': '0',
 'convs.2.activate.bias': '1*8',
 'convs.2.activate.b_vector': '0*8',
 'convs.3.conv.weight': '00000010',
 'convs.3.conv.u_vector': '0*72',
 'convs.3.conv.v_vector': '11111101',
 'convs.3.conv.modulation.weight': '00001000',
 'convs.3.conv.modulation.bias': '00001000',
 'convs.3.conv.kml_fc.u_vector': '0*8',
 'convs.3.conv.kml_fc.v_vector': '11110111',
 'convs.3.conv.kml_fc.b_vector': '11110111',
 'convs.3.noise.weight': '1',
 'convs.3.noise.b_vector': '0',
 'convs.3.activate.bias': '1*8',
 'convs.3.activate.b_vector': '0*8',
 'convs.4.conv.weight': '00011000',
 'convs.4.conv.u_vector': '0*72',
 'convs.4.conv.v_vector': '11100111',
 'convs.4.conv.modulation.weight': '10000100',
 'convs.4.conv.modulation.bias': '10000100',
 'convs.4.conv.kml_fc.u_vector': '0*8',
 'convs.4.conv.kml_fc.v_vector': '01111011',
 'convs.4.conv.kml_fc.b_vector': '01111011',
 'convs.4.noise.weight': '1',
 'convs.4.noise.b_vector': '0',
 'convs.4.activate.bias': '1*8',
 'convs.4.activate.b_vector': '0*8',
 'convs.5.conv.weight': '1*8',
 'convs.5.conv.u_vector': '0*72',
 'convs.5.conv.v_vector': '0*8',
 'convs.5.conv.modulation.weight': '11001011',
 'convs.5.conv.modulation.bias': '11001011',
 'convs.5.conv.kml_fc.u_vector': '0*8',
 'convs.5.conv.kml_fc.v_vector': '00110100',
 'convs.5.conv.kml_fc.b_vector': '00110100',
 'convs.5.noise.weight': '1',
 'convs.5.noise.b_vector': '0',
 'convs.5.activate.bias': '1*8',
 'convs.5.activate.b_vector': '0*8',
 'convs.6.conv.weight': '11001010',
 'convs.6.conv.u_vector': '0*72',
 'convs.6.conv.v_vector': '00110101',
 'convs.6.conv.modulation.weight': '00011110',
 'convs.6.conv.modulation.bias': '00011110',
 'convs.6.conv.kml_fc.u_vector': '0*8',
 'convs.6.conv.kml_fc.v_vector': '11100001',
 'convs.6.conv.kml_fc.b_vector': '11100001',
 'convs.6.noise.weight': '1',
 'convs.6.noise.b_vector': '0',
 'convs.6.activate.bias': '1*8',
 'convs.6.activate.b_vector': '0*8',
 'convs.7.conv.weight': '1*8',
 'convs.7.conv.u_vector': '0*72',
 'convs.7.conv.v_vector': '0*8',
 'convs.7.conv.modulation.weight': '11011111',
 'convs.7.conv.modulation.bias': '11011111',
 'convs.7.conv.kml_fc.u_vector': '0*8',
 'convs.7.conv.kml_fc.v_vector': '00100000',
 'convs.7.conv.kml_fc.b_vector': '00100000',
 'convs.7.noise.weight': '1',
 'convs.7.noise.b_vector': '0',
 'convs.7.activate.bias': '1*8',
 'convs.7.activate.b_vector': '0*8',
 'convs.8.conv.weight': '1*4',
 'convs.8.conv.u_vector': '0*72',
 'convs.8.conv.v_vector': '0*4',
 'convs.8.conv.modulation.weight': '11111011',
 'convs.8.conv.modulation.bias': '11111011',
 'convs.8.conv.kml_fc.u_vector': '0*8',
 'convs.8.conv.kml_fc.v_vector': '00000100',
 'convs.8.conv.kml_fc.b_vector': '00000100',
 'convs.8.noise.weight': '1',
 'convs.8.noise.b_vector': '0',
 'convs.8.activate.bias': '1*4',
 'convs.8.activate.b_vector': '0*4',
 'convs.9.conv.weight': '1*4',
 'convs.9.conv.u_vector': '0*36',
 'convs.9.conv.v_vector': '0*4',
 'convs.9.conv.modulation.weight': '1*4',
 'convs.9.conv.modulation.bias': '1*4',
 'convs.9.conv.kml_fc.u_vector': '0*8',
 'convs.9.conv.kml_fc.v_vector': '0*4',
 'convs.9.conv.kml_fc.b_vector': '0*4',
 'convs.9.noise.weight': '1',
 'convs.9.noise.b_vector': '0',
 'convs.9.activate.bias': '1*4',
 'convs.9.activate.b_vector': '0*4',
 'convs.10.conv.weight': '1*2',
 'convs.10.conv.u_vector': '0*36',
 'convs.10.conv.v_vector': '0*2',
 'convs.10.conv.modulation.weight': '0111',
 'convs.10.conv.modulation.bias': '0111',
 'convs.10.conv.kml_fc.u_vector': '0*8',
 'convs.10.conv.kml_fc.v_vector': '1000',
 'convs.10.conv.kml_fc.b_vector': '1000',
 'convs.10.noise.weight': '1',
 'convs.10.noise.b_vector': '0',
 'convs.10.activate.bias': '1*2',
 'convs.10.activate.b_vector': '0*2',
 'convs.11.conv.weight': '1*2',
 'convs.11.conv.u_vector': '0*18',
 'convs.11.conv.v_vector': '0*2',
 'convs.11.conv.modulation.weight': '1*2',
 'convs.11.conv.modulation.bias': '1*2',
 'convs.11.conv.kml_fc.u_vector': '0*8',
 'convs.11.conv.kml_fc.v_vector': '0*2',
 'convs.11.conv.kml_fc.b_vector': '0*2',
 'convs.11.noise.weight': '1',
 'convs.11.noise.b_vector': '0',
 'convs.11.activate.bias': '1*2',
 'convs.11.activate.b_vector': '0*2'}
# sizes of their requires_grad sets (AdAM_importance_probing.py:497-518, AdAM_main_adaptation.py:836-864)
TRAINABLE_COUNTS = {'probe_G_frozen': 98,
 'probe_D_frozen': 32,
 'probe_G_trained_count': 139,
 'probe_D_trained_count': 57,
 'main_G_frozen': 38,
 'main_D_frozen': 2,
 'main_G_trained': 199,
 'main_D_trained': 87}
# fmt: on
