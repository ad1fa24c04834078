"""WeditGAN against the authors' code: Ldhlwh/WeditGAN at commit 8c87a365b41c1881d7afeda6b752c9793a305bf7.

The numbers below were computed at development time by their own code. Where each comes from:
* the per-layer latents: their ``SynthesisNetwork.forward`` (networks.py:476-524), with the blocks replaced by
  recorders of the ws each block receives;
* perp and alpha_l2: loss.py:134-158;
* the G- and D-side InfoNCE: loss.py:163-177 and 212-230.

Their tiny synthesis network has w_dim 8 and 16 px. Its blocks b4, b8 and b16 have 2, 3 and 3 style layers
and take the ws columns [0, 1], [1, 2, 3] and [3, 4, 5]. Here those columns are mapped to ganbench's
``G.styles`` indexing:
* style layers 0-7 are b4 (conv, to-RGB), then b8 (up-conv, conv, to-RGB), then b16 (the same);
* so style layer k receives column ``COL[k]``.
rosinality's per-layer latent indexing in ganbench's stylegan2 ``G.synthesis(w+)`` routes the columns the same
way, which the tests check through the nets.

The inputs are rebuilt from their seeded recipes:
* parameters: one ``Generator.manual_seed(100)``. For each block in turn, Δw = randn(1, n, 8). Then each
  Linear gets weight = randn(out, in)/√in and bias = 0.1·randn(out): the block's α MLP, or the n per-layer
  MLPs of ``adapt``;
* latents: ws = randn(4, 6, 8) from seed 101, rounded to float32 (their forward casts ws to float32);
* perp: ori_ws from seed 102 (float64) and logits from seed 103;
* features: seed 200 (G) or 201 (D). For each block, src = randn; then for each block, tgt = src + 3·randn.

Const cases run in float64. The MLP cases run in float32, as theirs.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.strategies.weditgan import WeditGAN, contrastive, info_nce, perp_penalty, synthesis_block_of
from tiny_settings import TINY_ARCH_OPTIONS

import ganbench
from ganbench.execute.passes import StepPasses, build_source_generator, transform_styles_hooks
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.grid.cells import Recipe
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_images, fake_source, tiny_nets

REGISTRY = load_registry()
COL = [0, 1, 1, 2, 3, 3, 4, 5]  # style layer k of ganbench's G.styles <- the authors' ws column
BLOCK = [0, 0, 1, 1, 1, 2, 2, 2]  # ... and its synthesis block (b4, b8, b16)
LAYERS = {0: 2, 1: 3, 2: 3}  # style layers per block

LAYER_STATS = {  # per sample, per style layer: [sum, sum of squares] of the w it receives (12 digits)
    "const": [
        [[6.5081636161, 31.0533112408], [-1.4691745601, 8.41660454363], [-3.29934631545, 7.19928479821],
         [-2.22118357801, 3.47509076128], [1.02634150191, 14.846397467], [0.503028902753, 8.72288179188],
         [-1.73697066679, 16.7098854401], [-5.98073732544, 26.101550158]],
        [[4.74238971625, 13.6251137243], [1.80556070438, 10.4335535731], [-0.0246110509715, 9.87991842811],
         [-3.92784070456, 11.6721201195], [-5.14049824671, 25.9970714144], [-5.66381084587, 29.1651322727],
         [3.21020801366, 13.3219187634], [-2.13274133641, 10.4491674557]],
        [[5.5674874932, 26.4012149429], [-2.60557414213, 6.75320244142], [-4.43574589748, 6.48498663679],
         [2.39523572243, 11.1313820016], [1.24432433053, 4.20128656852], [0.72101173137, 6.73926703028],
         [-1.42188159376, 10.793828945], [-4.13796778459, 12.6382189112]],
        [[5.10423280676, 17.8964863548], [1.48245145759, 8.81489362411], [-0.347720297762, 8.70499991748],
         [-1.93836213787, 5.68004548823], [-2.67419537501, 8.96890140654], [-3.19750797416, 11.8116751553],
         [-2.74410131573, 20.0291563335], [-2.46236132521, 22.0463775531]],
    ],
    "intensity0": [
        [[2.87125003338, 7.54445603503], [-0.4344317168, 5.29074444174], [-0.4344317168, 5.29074444174],
         [0.0447666198015, 6.1333395721], [2.55782285333, 9.31987563077], [2.55782285333, 9.31987563077],
         [-2.13861777261, 3.12887054465], [-4.15425350517, 8.15147176189]],
        [[1.10547613353, 5.40685088891], [2.84030354768, 6.49680935714], [2.84030354768, 6.49680935714],
         [-1.66189050674, 9.19476454306], [-3.60901689529, 9.65355796279], [-3.60901689529, 9.65355796279],
         [2.80856090784, 9.51888785806], [-0.306257516146, 3.96923196974]],
        [[1.93057391047, 9.22196002605], [-1.57083129883, 6.51422282679], [-1.57083129883, 6.51422282679],
         [4.66118592024, 8.61791828714], [2.77580568194, 4.07988677462], [2.77580568194, 4.07988677462],
         [-1.82352869958, 7.93204980367], [-2.31148396432, 8.11838836449]],
        [[1.46731922403, 5.00128228639], [2.51719430089, 7.10710831765], [2.51719430089, 7.10710831765],
         [0.327588059939, 0.888299074534], [-1.14271402359, 2.51818219525], [-1.14271402359, 2.51818219525],
         [-3.14574842155, 14.213918584], [-0.635877504945, 4.22684633549]],
    ],
    "intensity0.5": [
        [[4.68970682474, 15.2527925169], [-0.95180313845, 6.2418019108], [-1.86688901613, 5.2868269642],
         [-1.0882084791, 3.66058396228], [1.79208217762, 10.046713558], [1.53042587804, 7.0910535957],
         [-1.9377942197, 7.77710709646], [-5.0674954153, 14.8639339763]],
        [[2.92393292489, 5.46989118563], [2.32293212603, 7.85330888325], [1.40784624835, 7.23017623685],
         [-2.79486560565, 9.28981112685], [-4.374757571, 15.7888916977], [-4.63641387058, 17.4790200021],
         [3.00938446075, 9.27813241483], [-1.21949942628, 4.9466227291]],
        [[3.74903070184, 13.7654963635], [-2.08820272048, 6.02184005222], [-3.00328859815, 5.54141707601],
         [3.52821082133, 8.73101893998], [2.01006500624, 2.10416368064], [1.74840870666, 3.47925178682],
         [-1.62270514667, 7.22066847845], [-3.22472587446, 8.11572665423]],
        [[3.28577601539, 7.4027931996], [1.99982287924, 7.349128389], [1.08473700156, 6.94786646179],
         [-0.805387038967, 2.14054107698], [-1.9084546993, 3.70711880997], [-2.17011099888, 5.23460355964],
         [-2.94492486864, 14.9792665629], [-1.54911941508, 10.8740349607]],
    ],
    "from_block1": [
        [[2.87125003338, 7.54445603503], [-0.4344317168, 5.29074444174], [3.20248186593, 13.9262593679],
         [-2.62948488069, 26.0986729534], [-0.104452611919, 7.10739872031], [0.291872655515, 20.3217781523],
         [-4.25804490249, 7.04963381007], [-4.85298404877, 26.608475895]],
        [[1.10547613353, 5.40685088891], [2.84030354768, 6.49680935714], [6.47721713041, 34.7676154246],
         [-4.33614200724, 18.2616735948], [-6.27129236054, 20.6300365444], [-5.87496709311, 21.8972035327],
         [0.689133777962, 22.3297876334], [-1.00498805975, 11.687777701]],
        [[1.93057391047, 9.22196002605], [-1.57083129883, 6.51422282679], [2.0660822839, 25.4430337841],
         [1.98693441975, 13.4461435608], [0.113530216698, 8.93606045049], [0.509855484132, 8.75601792753],
         [-3.94295582946, 10.6006557044], [-3.01021450792, 20.443422409]],
        [[1.46731922403, 5.00128228639], [2.51719430089, 7.10710831765], [6.15410788362, 28.5801279721],
         [-2.34666344055, 12.5810699763], [-3.80498948884, 13.3737000331], [-3.4086642214, 7.08287561015],
         [-5.26517555143, 28.328244089], [-1.33460804854, 12.4740662142]],
    ],
    "adapt": [
        [[3.96294361353, 21.6786926433], [-0.0326346307993, 3.70920516032], [-3.49881289899, 11.3542314891],
         [-3.0522351861, 12.3547932996], [1.55457147956, 17.0411768524], [5.00722253323, 19.0533878881],
         [-5.15720954537, 7.70692256577], [-8.42583054304, 17.1901730476]],
        [[4.83257210255, 11.7098749456], [4.81956836581, 14.6751429442], [1.12130741775, 5.0668701128],
         [-1.34532350302, 9.44792477519], [-4.5485157147, 9.29106650733], [-3.00098019838, 7.55616551492],
         [0.86237424612, 15.387210386], [-3.4394697547, 12.1815060176]],
        [[2.68062821031, 7.87551525832], [-1.81585371494, 13.1829340385], [-1.62267547846, 7.6551938752],
         [4.48552140594, 6.35087125354], [1.84797513485, 5.74069579988], [3.5594804883, 8.75572824956],
         [-5.8917670399, 15.3653606703], [-10.4229842797, 25.9741747363]],
        [[2.01725964248, 5.52346322681], [3.9881298542, 23.4553018875], [3.56257855892, 8.6508891777],
         [-0.441243320704, 1.14075841654], [-1.57687401026, 2.19184445075], [-0.609785079956, 3.67501920048],
         [-7.89928740263, 28.9929518882], [-4.8980640769, 10.2912508064]],
    ],
    "alpha": [
        [[7.86916673183, 48.1737362528], [-0.941297084093, 6.21031620816], [-1.029625386, 11.9199517362],
         [-0.551531732082, 9.55127569346], [6.31117334962, 23.2137083355], [12.6146169901, 32.5038450975],
         [2.70649729669, 13.6465234878], [9.44596421719, 58.0360524507]],
        [[1.99106012285, 4.42671273131], [1.94951945543, 9.59271807105], [2.17842894793, 15.7081437401],
         [-3.63729459047, 12.6559474788], [2.39429616928, 34.212452085], [3.36795273423, 8.66351919772],
         [10.1137512922, 59.9654397084], [12.7771096826, 49.2212310379]],
        [[6.44645109773, 35.4097867162], [-1.82525758445, 6.11915831011], [-2.28833764791, 11.7177719227],
         [4.14746245742, 7.60344504802], [6.68825486302, 17.7171107635], [12.8146863729, 34.6138905069],
         [4.42525708675, 15.2155024702], [11.1704866886, 34.3387958447]],
        [[5.08214330673, 17.7204626528], [1.42090156674, 9.0707233022], [1.5042681098, 24.7818344828],
         [-0.745471045375, 2.92084991851], [5.21317592263, 26.2027288281], [6.11759568751, 11.2161743819],
         [3.66226527095, 29.9452985614], [12.9235411435, 58.3059693447]],
    ],
}  # fmt: skip

# the full w of sample 0 in b8's first layer (style layer 2), as their code printed it
B8_FIRST_SAMPLE0 = {
    "const": [-1.2519579229020803, -0.5520750925541911, -0.5157768045073415, 1.5293208473704059,
              -0.6320667031874436, -0.9387003656836262, 0.2386192992036984, -1.176709573191062],
    "adapt": [-2.7211880683898926, 0.12714806199073792, 0.18422256410121918, -0.09727978706359863,
              -0.6013898849487305, -1.3663694858551025, 1.2577078342437744, -0.2816641330718994],
}  # fmt: skip
ALPHA = {  # learn_alpha_cdw: α per block, [sample][layer of the block]
    0: [[0.37421923875808716, -0.5101532936096191], [-0.7565012574195862, -0.1391252875328064],
        [0.24167849123477936, -0.754116415977478], [-0.006073713302612305, 0.05948327109217644]],
    1: [[-0.2867955267429352, -0.6281089186668396, -0.23173581063747406],
        [-0.20689328014850616, 0.23199288547039032, 0.2288035750389099],
        [-0.1402314156293869, -0.6796081066131592, -0.1991702765226364],
        [0.21376200020313263, -0.3307693302631378, 0.3009716272354126]],
    2: [[0.5563172101974487, 0.11615964025259018, 0.7199683785438538],
        [0.07970574498176575, 0.68288254737854, 0.6546041369438171],
        [0.5535451173782349, 0.43952062726020813, 0.7050141096115112],
        [0.12355340272188187, 0.5683489441871643, 0.7148087620735168]],
}  # fmt: skip
ALPHA_L2 = [1.7721067667007446, 1.6418147087097168, 2.1449363231658936, 1.0984991788864136]
ALPHA_L2_TIMES_01_MEAN = 0.1664339303970337
PERP = [104.05163121630561, 104.14462970897168, 82.91872011427732, 111.90469008384338]
PERP_LOSS_MEAN = {1e-4: 0.34046264549814875, 1e-2: 1.3379363315285586}  # mean(softplus(-logits) + λ perp)
G_FEATS = [(4, 8, 4, 4), (4, 8, 8, 8), (4, 8, 16, 16)]  # synthesis block outputs b4, b8, b16
D_FEATS = [(4, 8, 8, 8), (4, 8, 4, 4)]  # D blocks b16, b8
CL = {  # (seed, shapes, tau, lambda, dtype): per-block per-sample InfoNCE, weighted per-sample totals, their mean
    "G_tau0.07_f32": (200, G_FEATS, 0.07, 0.5, torch.float32,
        [[0.014158227480947971, 0.005475403741002083, 0.39532825350761414, 0.02327863499522209],
         [0.044179726392030716, 0.022217893972992897, 0.010524687357246876, 0.03915918990969658],
         [0.03208450973033905, 0.04387775436043739, 0.02945500612258911, 0.024736210703849792]],
        [0.04521123319864273, 0.035785526037216187, 0.21765397489070892, 0.04358701780438423], 0.08555944263935089),
    "G_tau0.07_f64": (200, G_FEATS, 0.07, 0.5, torch.float64,
        [[0.014158277457628248, 0.005475397793508089, 0.3953282801484478, 0.02327860554346706],
         [0.04417973875805044, 0.02221790900308081, 0.010524728867661336, 0.03915916364535183],
         [0.03208450383073261, 0.04387776933536619, 0.029454986846511783, 0.024736230587311735]],
        [0.04521126002320565, 0.03578553806597755, 0.21765399793131043, 0.04358699988806532], 0.08555944897713973),
    "G_tau0.2_lambda1_f64": (200, G_FEATS, 0.2, 1.0, torch.float64,
        [[0.3579573079691615, 0.27925872242311994, 0.94570538803509, 0.41588969984408164],
         [0.5198160526906045, 0.4304446635517636, 0.34243839631557055, 0.5056544610221634],
         [0.477099093230173, 0.5227028594056428, 0.4655766048206286, 0.4429819613328749]],
        [1.354872453889939, 1.2324062453805262, 1.7537203891712891, 1.3645261221991198], 1.4263813026602186),
    "D_tau0.07_f32": (201, D_FEATS, 0.07, 0.5, torch.float32,
        [[0.03993337228894234, 0.05124882236123085, 0.08349808305501938, 0.02066972106695175],
         [0.0011929830070585012, 0.08836814016103745, 0.005724391900002956, 0.05489381402730942]],
        [0.02056317776441574, 0.0698084831237793, 0.044611237943172455, 0.037781767547130585], 0.04319116473197937),
}  # fmt: skip


def rn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def arch(name, **extra):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{**{k: v for k, v in TINY_ARCH_OPTIONS.items() if k in declared}, **extra})


def relative_error(ours, theirs):
    """Normwise: the largest difference over the largest magnitude of theirs."""
    ours, theirs = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(theirs, dtype=torch.float64)
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def tiny16(arch_name, variant="const", dtype=torch.float64, **options):
    """A 16 px, w_dim 8 G of ``arch_name`` (the authors' tiny shapes), a strategy adapted to it and filled by their
    recipe (seed 100), both in ``dtype``."""
    nets = tiny_nets(arch(arch_name), resolution=16, channels=3)
    strategy = WeditGAN(variant=variant, **options)
    strategy.adapt(nets, None)
    assert synthesis_block_of(nets.G) == BLOCK  # G.styles in the authors' row order
    first = options.get("from_block", 0)
    g = torch.Generator().manual_seed(100)
    offsets = strategy.offsets
    with torch.no_grad():
        rows = []
        for b in range(first, 3):
            if variant in ("const", "alpha"):
                rows.append(rn(g, 1, LAYERS[b], 8)[0])
            nets_b = [offsets.alpha[b - first]] if variant == "alpha" else []
            if variant == "adapt":
                start = sum(LAYERS[c] for c in range(first, b))
                nets_b = [offsets.adapt[start + i] for i in range(LAYERS[b])]
            for mlp in nets_b:
                for linear in (mlp[0], mlp[2]):
                    linear.weight.copy_(rn(g, *linear.weight.shape) / math.sqrt(linear.weight.shape[1]))
                    linear.bias.copy_(0.1 * rn(g, linear.bias.shape[0]))
        if rows:
            offsets.delta.data = torch.cat(rows).to(dtype)
    offsets.to(dtype)
    return nets.G.to(dtype), strategy


def received_by_styles(G, strategy, ws, through_synthesis):
    """The w each of ``G.styles`` turns into its style, with the strategy's transform on: ``ws`` (B, 6, 8) routed by
    rosinality's own w+ indexing (``G.synthesis``) or put on each layer's input (``COL``) before the transform."""
    G.eval()
    if not through_synthesis:
        for k, style in enumerate(G.styles):
            style.register_forward_pre_hook(lambda m, args, k=k: (ws[:, COL[k]],))
    transform_styles_hooks(G, strategy)
    seen = {}
    for k, style in enumerate(G.styles):
        style.register_forward_pre_hook(lambda m, args, k=k: seen.__setitem__(k, args[0].detach().clone()))
    with torch.no_grad():
        if through_synthesis:
            G.synthesis(ws)
        else:
            G(torch.zeros(len(ws), G.z_dim, dtype=ws.dtype))
    return [seen[k] for k in range(len(G.styles))]


# ------------------------------------------------------------------------------------------------ parity


CASES = {  # name: (variant, dtype, options, intensity)
    "const": ("const", torch.float64, {}, 1.0),
    "intensity0": ("const", torch.float64, {}, 0.0),  # the source pass (their mod_intensity=0)
    "intensity0.5": ("const", torch.float64, {}, 0.5),
    "from_block1": ("const", torch.float64, {"from_block": 1}, 1.0),  # their mod_w_range=(8, 16): b4 untouched
    "adapt": ("adapt", torch.float32, {}, 1.0),
    "alpha": ("alpha", torch.float32, {}, 1.0),  # learn_alpha_cdw / const_delta_w_alpha: the same forward
}


@pytest.mark.parametrize("arch_name", ["stylegan2", "stylegan2-lite"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_style_layer_receives_the_authors_w(case, arch_name):
    variant, dtype, options, intensity = CASES[case]
    G, strategy = tiny16(arch_name, variant, dtype, **options)
    strategy.intensity = intensity
    ws = rn(torch.Generator().manual_seed(101), 4, 6, 8).float().to(dtype)
    seen = received_by_styles(G, strategy, ws, through_synthesis=arch_name == "stylegan2")
    ours = torch.stack([torch.stack([w.sum(1), w.square().sum(1)], 1) for w in seen], 1)  # (sample, layer, 2)
    theirs = torch.tensor(LAYER_STATS[case], dtype=torch.float64)
    assert relative_error(ours[..., 0], theirs[..., 0]) < 1e-5
    assert relative_error(ours[..., 1], theirs[..., 1]) < 1e-5
    if case in B8_FIRST_SAMPLE0:
        assert relative_error(seen[2][0], B8_FIRST_SAMPLE0[case]) < 1e-5
    if case == "alpha":
        for k in range(8):
            theirs_alpha = [row[k - BLOCK.index(BLOCK[k])] for row in ALPHA[BLOCK[k]]]
            assert relative_error(strategy.alpha(k, ws[:, COL[k]]).squeeze(1), theirs_alpha) < 1e-5


def test_alpha_l2_equals_the_authors():
    _, strategy = tiny16("stylegan2", "alpha", torch.float32)
    assert strategy.regulariser == "alpha_l2" and strategy.lambda_reg == 0.1  # reg=auto: the README's stage 3
    ws = rn(torch.Generator().manual_seed(101), 4, 6, 8).float()
    per_sample = strategy.alpha_penalty(ws[:, COL])
    assert relative_error(per_sample, ALPHA_L2) < 1e-5
    assert (strategy.lambda_reg * per_sample).mean().item() == pytest.approx(ALPHA_L2_TIMES_01_MEAN, rel=1e-5)


def test_perp_equals_the_authors():
    _, strategy = tiny16("stylegan2", "const", torch.float64, reg="perp")
    assert strategy.lambda_reg == 1e-4  # the README's --lambda-reg
    ori_ws = rn(torch.Generator().manual_seed(102), 4, 6, 8)
    per_sample = perp_penalty(ori_ws[:, COL], strategy.offsets.delta)
    assert per_sample.dtype == torch.float64
    assert relative_error(per_sample, PERP) < 1e-12
    adversarial = F.softplus(-rn(torch.Generator().manual_seed(103), 4, 1)).flatten()
    for lam in (1e-4, 1e-2):  # their (B, 1) + (B,) broadcast to (B, B) has the same mean
        assert (adversarial + lam * per_sample).mean().item() == pytest.approx(PERP_LOSS_MEAN[lam], rel=1e-12)


@pytest.mark.parametrize("case", list(CL))
def test_infonce_equals_the_authors(case):
    seed, shapes, tau, lam, dtype, per_block, totals, mean = CL[case]
    g = torch.Generator().manual_seed(seed)
    src = [rn(g, *s) for s in shapes]
    tgt = [s + 3.0 * rn(g, *s.shape) for s in src]
    src, tgt = [s.to(dtype) for s in src], [t.to(dtype) for t in tgt]
    ours = contrastive(src, tgt, tau, lam)
    assert ours.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-9
    assert relative_error(ours, totals) < tol
    assert ours.mean().item() == pytest.approx(mean, rel=tol)
    for s, t, theirs in zip(src, tgt, per_block):
        assert relative_error(info_nce(s, t, tau), theirs) < tol


# ------------------------------------------------------------------------------------------------ behaviour


def adapted(arch_name="stylegan2", **options):
    a = arch(arch_name)
    source = fake_source(a)
    strategy = WeditGAN(**options)
    nets = strategy.adapt(tiny_nets(a), source)
    return a, source, strategy, nets


def test_g_is_frozen_d_trains_and_one_offset_per_style_layer_trains_with_g():
    a, source, strategy, nets = adapted()
    assert not any(p.requires_grad for p in nets.G.parameters())
    assert all(p.requires_grad for p in nets.D.parameters())
    ((name, module),) = strategy.modules().items()
    assert module.trains_with == "G" and module.lr_mult == 1.0
    delta = strategy.offsets.delta
    assert delta.shape == (len(nets.G.styles), nets.G.mapping(torch.zeros(1, nets.G.z_dim)).shape[1])
    assert 0.5 < delta.std().item() < 1.5  # N(0, 1), as the authors' torch.randn
    assert [p is delta for p in module.module.parameters()] == [True]
    start_g = {k: v.clone() for k, v in nets.G.state_dict().items()}
    start_d, start_delta = [p.detach().clone() for p in nets.D.parameters()], delta.detach().clone()
    train_gan(nets, strategy, fake_images(16), TrainConfig(2, 4, 1e-3, 0), progress=False)
    assert all(torch.equal(v, start_g[k]) for k, v in nets.G.state_dict().items())
    assert any(not torch.equal(p, q) for p, q in zip(nets.D.parameters(), start_d))
    assert (delta - start_delta).abs().sum(1).gt(0).all()  # every layer's offset moved
    zero = WeditGAN(init="zero")
    zero.adapt(tiny_nets(a), source)
    assert torch.equal(zero.offsets.delta, torch.zeros_like(delta))


def test_the_adapted_g_and_its_ema_copy_synthesize_from_w_plus_each_layers_offset():
    a, source, strategy, nets = adapted("stylegan2-lite")
    config = TrainConfig(2, 4, 1e-3, 0, recipe=Recipe(ema=0.5))
    result = train_gan(nets, strategy, fake_images(16), config, progress=False)
    delta = strategy.offsets.delta.detach()
    plain = tiny_nets(a).G.eval()
    plain.load_state_dict(nets.G.state_dict())
    for k, style in enumerate(plain.styles):
        style.register_forward_pre_hook(lambda m, args, k=k: (args[0] + delta[k],))
    z = torch.randn(3, nets.G.z_dim, generator=torch.Generator().manual_seed(0))
    nets.G.eval()
    with torch.no_grad():
        torch.testing.assert_close(nets.G(z), plain(z))
        torch.testing.assert_close(result.ema(z), nets.G(z))  # the loop's EMA copy: the same (live) offsets
        source_g = tiny_nets(a).G.eval()
        source_g.load_state_dict(source.generator)
        assert not torch.allclose(nets.G(z), source_g(z))
        strategy.intensity = 0.0  # the authors' mod_intensity=0: the source G
        torch.testing.assert_close(nets.G(z), source_g(z))
        torch.testing.assert_close(result.ema(z), source_g(z))


@pytest.mark.parametrize("name", ["dcgan", "resnet-sngan", "projected"])
def test_architectures_without_style_layers_are_refused_in_one_line(name):
    with pytest.raises(ganbench.GanbenchError) as info:
        WeditGAN().check(tiny_nets(arch(name)))
    assert "\n" not in str(info.value) and "no style layers (G.styles)" in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"from_block": 9}, r"from_block=9: this G has 4 synthesis blocks \(0-3\)"),
        ({"variant": "adapt", "reg": "perp"}, "reg=perp needs a constant Δw"),
        ({"reg": "alpha_l2"}, "reg=alpha_l2 needs variant=alpha"),
        ({"alpha_from": 5}, "alpha_from needs variant=alpha"),
    ],
)
def test_options_that_do_not_fit_are_refused(options, message):
    with pytest.raises(ganbench.GanbenchError, match=message):
        WeditGAN(**options).check(tiny_nets(arch("stylegan2")))


def test_needs_and_defaults_follow_the_readme():
    _, _, base, _ = adapted()
    assert base.config["variant"] == "const" and base.config["init"] == "normal" and base.regulariser == "none"
    assert base.needs() == ganbench.Needs(transform_styles=True)
    _, _, gd, nets = adapted(cl="gd")
    assert gd.config["lambda_cl"] == 0.5 and gd.config["tau"] == 0.07
    needs = gd.needs()
    assert needs.source and needs.transform_styles
    assert needs.g_features == tuple(range(1, len(nets.G.blocks)))  # every synthesis block's features
    assert needs.d_features == tuple(range(len(nets.D.blocks) - 1))  # every D block but the epilogue


def step_of(strategy, a, source, nets, seed=0):
    """One step's StepInfos for D and G, with the strategy's transforms on as in the loop; the passes stay on."""
    transform_styles_hooks(nets.G, strategy)
    source_G = build_source_generator(a, source, 32, 1)
    passes = StepPasses(strategy, strategy.needs(), nets.G, nets.D, source_G=source_G)
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(seed))
    real = fake_images(4, seed=3).float() / 127.5 - 1
    fake, kept = passes.generate(z)
    info = passes.info(1, real, z, fake, kept, passes.discriminate(real, "real", 1),
                       passes.discriminate(fake.detach(), "fake", 1))  # fmt: skip
    return passes, info, passes.for_generator(info, passes.discriminate(fake, "fake", 1))


def test_contrastive_terms_read_the_synthesis_blocks_and_the_d_blocks_on_source_and_fake():
    a, source, strategy, nets = adapted(cl="gd", lambda_cl=0.3, tau=0.2)
    passes, info_d, info_g = step_of(strategy, a, source, nets)
    synthesis = range(1, len(nets.G.blocks))
    g_terms = strategy.generator_loss(nets, info_g)
    assert set(g_terms) == {"cl"}
    expected = contrastive([info_g.source.features[b] for b in synthesis], [info_g.g[b] for b in synthesis], 0.2, 0.3)
    torch.testing.assert_close(g_terms["cl"], expected.mean())
    g_terms["cl"].backward()
    assert strategy.offsets.delta.grad.abs().sum() > 0  # through the adapted features only
    assert all(p.grad is None for p in nets.G.parameters())
    d_terms = strategy.discriminator_loss(nets, info_d)
    on_source = info_d.discriminate(info_d.source.images, "fake")
    blocks = range(len(nets.D.blocks) - 1)
    src = [on_source.features[b] for b in blocks]
    expected = contrastive(src, [info_d.d_fake.features[b] for b in blocks], 0.2, 0.3)
    torch.testing.assert_close(d_terms["cl_d"], expected.mean(), rtol=1e-5, atol=1e-6)
    d_terms["cl_d"].backward()
    assert nets.D.blocks[0].layers[0][0].weight.grad.abs().sum() > 0
    passes.remove()
    _, _, plain, plain_nets = adapted()
    assert plain.discriminator_loss(plain_nets, info_d) is None


def test_perp_and_alpha_l2_read_the_w_every_style_layer_receives():
    a, source, strategy, nets = adapted(reg="perp", lambda_reg=0.01)
    passes, _, info_g = step_of(strategy, a, source, nets)
    passes.remove()
    w = nets.G.mapping(info_g.z)
    delta = strategy.offsets.delta
    expected = 0.01 * ((w - w.roll(-1, 0)) @ delta.T).square().sum(1).mean()
    torch.testing.assert_close(strategy.generator_loss(nets, info_g)["perp"], expected)
    a, source, alpha, nets = adapted(variant="alpha")
    passes, _, info_g = step_of(alpha, a, source, nets)
    passes.remove()
    w = nets.G.mapping(info_g.z)
    squares = sum(alpha.alpha(k, w).square().squeeze(1) for k in range(len(nets.G.styles)))
    torch.testing.assert_close(alpha.generator_loss(nets, info_g)["alpha_l2"], 0.1 * squares.mean())


def test_alpha_from_trains_delta_alone_then_alpha_alone():
    a, source, strategy, nets = adapted(variant="alpha", alpha_from=2)
    transform_styles_hooks(nets.G, strategy)
    z = torch.randn(4, nets.G.z_dim, generator=torch.Generator().manual_seed(1))
    offsets = strategy.offsets
    for step, delta_trains in ((2, True), (3, False)):
        strategy.begin_step(step, z)
        offsets.zero_grad(set_to_none=True)
        nets.G(z).square().mean().backward()
        assert (offsets.delta.grad is not None) == delta_trains
        assert all((p.grad is None) == delta_trains for p in offsets.alpha.parameters())
    assert strategy.state_dict() == {"step": 3}
    assert strategy.generator_loss(nets, ganbench.StepInfo(3, z, z, z)) is not None  # alpha_l2 in stage 3 only
    strategy.begin_step(2, z)
    assert strategy.generator_loss(nets, ganbench.StepInfo(2, z, z, z)) is None
    _, _, perp, nets = adapted(variant="alpha", alpha_from=2, reg="perp")
    assert set(perp.generator_loss(nets, ganbench.StepInfo(2, z, z, z))) == {"perp"}
    perp.begin_step(3, z)
    assert perp.generator_loss(nets, ganbench.StepInfo(3, z, z, z)) is None  # Δw is held in stage 3


@pytest.mark.parametrize("arch_name", ["stylegan2", "stylegan2-lite"])
@pytest.mark.parametrize(
    "options",
    [{}, {"variant": "alpha"}, {"variant": "alpha", "alpha_from": 1}, {"variant": "adapt", "init": "zero"},
     {"cl": "gd", "reg": "perp", "from_block": 1}],
    ids=["const", "alpha", "alpha-two-stage", "adapt", "gd-perp"],
)  # fmt: skip
def test_passes_check_strategy(arch_name, options):
    a = arch(arch_name)
    nets = tiny_nets(a)
    WeditGAN(**options).check(nets)
    counts = check_strategy(WeditGAN(**options), a)
    d = sum(p.numel() for p in nets.D.parameters())
    assert (
        counts["trainable"] > d and counts["total"] == sum(p.numel() for p in nets.G.parameters()) + counts["trainable"]
    )
