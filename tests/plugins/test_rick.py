"""RICK against the authors' code, and how the strategy behaves in ganbench's loop.

Parity: github.com/yunqing-me/RICK at commit 44d65c1257895f9bca6a53bed76b071bc478c3fd, run at development time
(train_dynamic_update_prune.py: the Fisher loop, lines 215-269; the selection, 277-384; the zero dicts, 386-393;
the optimizers and the warm-up, 202-211 and 908-931; the masked D and G steps, 429-435 and 524-537;
gan_training/models/model_probe_tune.py: the nets and ``estimate_fisher``). The numbers below are theirs; the
inputs are rebuilt here from seeded recipes:

* nets: their StyleGAN2 at 256 px with the channel table shrunk to width 8 (8 channels up to 64 px, 4 at 128, 2 at
  256), style_dim 8, 2 mapping layers: ganbench's ``stylegan2`` with ``width=8, channel_multiplier=2`` (the same
  parameter names), float64; every parameter, in sorted name order, ``torch.randn(shape, generator=g) * s`` with
  one generator per net (G: seed 0, D: seed 1), s = 0 for noise strengths, 100 for the mapping weights, else 1.
  Their G's output is the raw synthesis (ganbench's G clamps it), so the Fisher here makes images with
  ``G.synthesis``;
* ``randn(shape, seed)``: ``torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=float64)``;
  Fisher samples: latents ``randn((1, 8), 100 + j)``, reals row 0 of ``randn((2, 3, 256, 256), 200 + j)``, j < 3
  (their ``num_fisher_img=3, batch=2``). They divide the summed squared gradients by ``num_fisher_img * batch = 6``,
  ganbench averages over the 3 samples: their Fisher values and thresholds are ours / 2 (decisions unchanged).

Decisions are written one character per filter, layer after layer (``|`` between layers) in each pool's order: G's
convolutions ``convs.0-11``, G's style rows (the same layers' ``modulation``), D's ``convs.1-6`` (conv1, conv2,
skip): ``F`` frozen, ``.`` fine-tuned, ``P`` pruned. Masked rows: ``b`` gradient and weight zero, ``g`` gradient
only, ``w`` weight only, ``-`` neither. Numbers are kept to 10 significant digits (ganbench matches their float64
values to about 1e-14; ganbench's stylegan2 filled by the recipe gives their nets' outputs to 2e-14).
"""

import re

import pytest
import torch
import torch.nn.functional as F
from ganbench_plugins.architectures.stylegan2 import Discriminator, Generator
from ganbench_plugins.strategies.rick import RICK, filter_layout, filter_scores, fisher_information, select_filters
from tiny_settings import TINY_ARCH_OPTIONS
from torch import nn

import ganbench
from ganbench.execute.training import TrainConfig, train_gan
from ganbench.plugin.manager import load_registry
from ganbench.testing import check_strategy, fake_images, fake_source, tiny_nets

DT = torch.float64
COMMIT = "44d65c1257895f9bca6a53bed76b071bc478c3fd"

# Their numbers, case by case: the Fisher of the nets (losses per sample g, d, g, d, ...; per-filter means of the
# squared gradients; three keys in full), a second Fisher (latent seeds 110 + j, real seeds 210 + j), the percentile
# lines (cut / prune of G's convolutions, G's style rows, D) and decisions of each selection, the zero dicts after
# their first and second estimates (q=50, prune 10 %: non-empty entries), one masked step (z: randn((2, 8), 400),
# real: randn((2, 3, 256, 256), 401)), and the Fisher again with the merged prunes zeroed in G.

# fmt: off
FISHER_LOSSES = [1.222930608, 1.264936927, 0.9524376329, 1.404600692, 0.9848778933, 1.38435762]
SECOND_LOSSES = [1.310502587, 1.230676892, 1.303779348, 1.233843242, 0.8570801443, 1.469399258]
PRUNED_NETS_LOSSES = [1.228259585, 1.262722228, 0.9646077298, 1.397031305, 0.9376199996, 1.413630065]
FISHER_G = {'convs.0.conv': [[4.450826309e-09, 2.754438393e-06, 8.734615756e-06, 2.277121549e-09, 7.060835436e-09,
                              1.774000668e-07, 3.136696007e-09, 6.495967179e-07],
                             [8.264005505e-05, 2.296964508e-08, 3.931412402e-07, 2.267437241e-07, 2.574048998e-08,
                              3.841103727e-07, 1.415140422e-06, 2.553074523e-06],
                             [0.004778089164, 1.314208333e-06, 2.192273239e-05, 1.176515992e-05, 1.459721924e-06,
                              2.030010975e-05, 8.152620477e-05, 0.000142865665]],
            'convs.1.conv': [[6.415959947e-05, 3.987664865e-07, 2.605227028e-06, 3.112691492e-06, 2.189576533e-06,
                              1.760684362e-06, 2.515610911e-07, 4.606130079e-06],
                             [1.461317752e-06, 1.768827507e-05, 3.045076603e-06, 9.860470289e-07, 1.146874e-06,
                              7.206546144e-07, 2.158273941e-07, 5.322948287e-06],
                             [8.277153839e-05, 0.001005883705, 0.0001861051416, 5.693801602e-05, 6.650756447e-05,
                              2.546950261e-05, 9.335075318e-06, 0.0003142815038]],
            'convs.2.conv': [[7.698663359e-06, 8.48166509e-06, 8.496802468e-05, 5.724594468e-08, 9.326990148e-08,
                              1.730684327e-07, 1.059508618e-08, 4.969335456e-07],
                             [3.914789121e-05, 0.0001007521208, 1.601614104e-06, 2.638899206e-07, 2.709683477e-05,
                              1.597016918e-05, 5.178293837e-06, 7.865407949e-06],
                             [0.002215963454, 0.005771385185, 7.818245546e-05, 1.019978004e-05, 0.00155504112,
                              0.0009155160263, 0.0002970104567, 0.0004507419385]],
            'convs.3.conv': [[2.227273003e-05, 9.155670503e-07, 2.372339763e-08, 4.168577389e-06, 2.498587757e-06,
                              2.24476346e-06, 1.072167783e-05, 3.309921838e-07],
                             [1.0093003e-06, 1.445370386e-07, 1.852454567e-06, 6.796296305e-07, 3.593715066e-07,
                              2.302262112e-06, 1.377623678e-07, 2.770035063e-06],
                             [5.786117682e-05, 8.344932301e-06, 0.0001066979787, 3.861929974e-05, 2.046046521e-05,
                              0.0001318872817, 7.497019363e-06, 0.0001586933332]],
            'convs.4.conv': [[2.971749143e-09, 1.532915876e-07, 3.899396348e-07, 3.897179977e-07, 5.242498359e-07,
                              6.209871069e-09, 5.400749723e-08, 5.894922329e-07],
                             [1.983011124e-07, 9.178802027e-08, 6.005336479e-08, 1.209767333e-07, 1.318347495e-07,
                              2.761747875e-08, 6.310690368e-08, 9.662646693e-09],
                             [9.639976696e-06, 2.862742399e-06, 3.44101734e-06, 5.433838879e-06, 6.621390992e-06,
                              7.220543774e-07, 2.838715865e-06, 3.749377985e-07]],
            'convs.5.conv': [[1.478650352e-07, 7.991869325e-07, 3.345292035e-07, 7.605100191e-07, 5.448123435e-06,
                              4.596880819e-07, 2.646325995e-06, 4.174963012e-06],
                             [4.893253715e-05, 4.968570258e-07, 4.245243767e-07, 5.034357385e-07, 1.891912646e-05,
                              4.365201101e-07, 9.988804617e-07, 2.401660387e-06],
                             [0.003039314419, 1.566534913e-05, 9.438658118e-06, 2.051607899e-05, 0.001084147552,
                              2.351550394e-05, 1.829607519e-05, 0.0001459515887]],
            'convs.6.conv': [[0.0002421576302, 1.377497513e-08, 1.593305348e-07, 2.639287186e-06, 5.742564155e-06,
                              3.250404901e-07, 1.807430572e-06, 2.855043211e-06],
                             [5.003267581e-06, 1.531012293e-05, 9.410113812e-07, 8.667042772e-06, 5.201454575e-05,
                              9.175354999e-06, 0.0001537427289, 1.20468539e-05],
                             [0.0002605192669, 0.0006123998932, 5.243370315e-05, 0.000404068013, 0.001114807222,
                              0.0005235449179, 0.005770909859, 0.0003054546605]],
            'convs.7.conv': [[5.417348926e-08, 9.906883473e-07, 1.608144323e-06, 6.681621149e-06, 8.427749491e-06,
                              2.077050954e-05, 2.246466698e-06, 2.667411757e-06],
                             [3.810486506e-05, 1.028597449e-06, 2.142370417e-06, 4.337473627e-06, 0.0001514200966,
                              1.633142049e-05, 2.804645956e-06, 4.041342661e-06],
                             [0.0008871103916, 2.700782374e-05, 0.0001255413156, 0.0002480720743, 0.00471102648,
                              0.0009669323386, 0.0001054668737, 0.0001114546966]],
            'convs.8.conv': [[1.341975929e-05, 7.936580307e-06, 1.432295117e-05, 5.653362619e-05],
                             [1.955507545e-06, 1.152640847e-05, 6.171993908e-07, 1.754483407e-05, 3.254267684e-05,
                              3.659865495e-05, 2.612963585e-06, 1.53009944e-05],
                             [7.791023818e-05, 0.000489588006, 1.803480497e-05, 0.0009890410994, 0.001110902975,
                              0.001914794449, 0.0001048700459, 0.0003768881323]],
            'convs.9.conv': [[1.206249589e-06, 4.693057565e-06, 0.0001863198657, 6.359506602e-05],
                             [2.022241257e-05, 5.114407754e-05, 1.874674513e-05, 0.0001489824826],
                             [0.001223314709, 0.001323340771, 0.0004833074696, 0.006444787507]],
            'convs.10.conv': [[2.276397132e-06, 6.036516855e-05],
                              [1.872451155e-05, 9.41430576e-05, 1.557917459e-07, 5.823586541e-06],
                              [0.001154864045, 0.00586082795, 9.376459165e-06, 0.000332870193]],
            'convs.11.conv': [[5.625989338e-05, 2.572199296e-05], [1.575076039e-07, 1.361827435e-07],
                              [9.772918479e-06, 8.455567326e-06]]}
FISHER_D = {'convs.1.conv1': [[1.135974264e-05, 3.903765035e-06], [0.0003695376222, 1.650404943e-05]],
            'convs.1.conv2': [[5.870873276e-07, 4.54895862e-05, 1.92156343e-05, 2.268282751e-05],
                              [2.361197138e-05, 0.001870984632, 0.0005049623086, 0.000959148615]],
            'convs.1.skip': [[6.766844043e-05, 0.0002288827715, 0.0005290309465, 0.0002168986543], None],
            'convs.2.conv1': [[3.171450653e-05, 5.35121505e-05, 2.518094736e-06, 3.472764603e-06],
                              [0.0005222779965, 0.0004564752162, 4.171604432e-05, 3.257408034e-05]],
            'convs.2.conv2': [[9.086329784e-06, 6.039076711e-07, 3.585929459e-06, 2.192220562e-06, 2.118168034e-05,
                               1.809578892e-06, 1.125562999e-06, 1.473207208e-05],
                              [6.252546222e-05, 1.217538558e-05, 9.730258612e-05, 5.878252657e-05, 0.0006004420791,
                               4.819707095e-05, 1.951620637e-05, 0.0004826423413]],
            'convs.2.skip': [[0.0001131594185, 0.0001232059138, 0.00088957628, 0.000570219631, 0.000172069024,
                              0.000454535708, 0.0003290053616, 0.0001126197752],
                             None],
            'convs.3.conv1': [[8.999191827e-07, 3.679762223e-07, 9.943304705e-07, 5.988134707e-07, 1.346842409e-06,
                               6.576879878e-07, 9.347010567e-08, 4.65052015e-05],
                              [3.790784407e-05, 1.219263787e-05, 3.371923544e-05, 2.557314103e-05, 2.897703275e-05,
                               3.176440342e-05, 1.922872031e-06, 0.001646522992]],
            'convs.3.conv2': [[3.61748397e-07, 4.144965725e-07, 8.810945565e-07, 4.803258403e-07, 4.947922806e-06,
                               1.294137042e-05, 3.925465398e-06, 2.468220799e-06],
                              [2.100179829e-05, 5.179939197e-05, 4.368453894e-05, 7.708379272e-05, 0.0005449368848,
                               0.00129179091, 0.0002519677228, 0.000201726141]],
            'convs.3.skip': [[8.500072432e-05, 0.0001681698238, 0.0001992306599, 0.0002097270181, 7.620739682e-05,
                              0.0001770746306, 0.0002766932371, 1.988469175e-05],
                             None],
            'convs.4.conv1': [[1.8561475e-06, 2.214093944e-05, 2.389403339e-05, 7.137505724e-07, 7.959719202e-06,
                               5.798378174e-06, 6.607811568e-07, 9.140055016e-05],
                              [0.0001552719491, 0.002623571592, 0.001800355291, 0.0001090375699, 0.0007681160919,
                               0.0006700620699, 4.001268466e-05, 0.003160510159]],
            'convs.4.conv2': [[0.0001401163518, 1.85949568e-05, 1.070436687e-05, 3.457599677e-05, 1.520066143e-06,
                               1.680679178e-05, 0.0001010482456, 2.797411796e-05],
                              [0.003196029761, 0.0002988580088, 0.0001280524169, 0.0006143828342, 3.563880448e-05,
                               0.0002667365804, 0.001702596503, 0.0003071861889]],
            'convs.4.skip': [[0.0001025503528, 0.0005596927241, 1.731650109e-05, 3.696191531e-05, 2.597758082e-05,
                              0.0004965321828, 0.0001960390093, 4.647868906e-05],
                             None],
            'convs.5.conv1': [[7.823412359e-06, 1.127265114e-05, 1.778954366e-07, 1.414259421e-07, 1.396349062e-07,
                               1.119769921e-06, 1.389528523e-05, 1.52365717e-06],
                              [0.005302933135, 0.001127374294, 1.326728943e-06, 2.278181532e-05, 0.000113201648,
                               0.0001019182178, 0.001518917428, 0.0002411364723]],
            'convs.5.conv2': [[8.933524148e-07, 1.360393657e-06, 1.861064646e-07, 7.517385736e-07, 5.793999292e-06,
                               1.049661571e-06, 3.145843406e-06, 2.08908373e-05],
                              [7.140660683e-05, 0.0003065457765, 1.872013647e-05, 7.065767259e-05, 0.001364972547,
                               0.0001153652945, 0.0007635954357, 0.002374888317]],
            'convs.5.skip': [[5.985368947e-05, 4.471675456e-05, 5.754890284e-06, 5.423959426e-05, 1.451289053e-05,
                              5.697036345e-05, 1.83815572e-05, 7.478847391e-05],
                             None],
            'convs.6.conv1': [[1.175167316e-05, 1.16651704e-05, 1.755948872e-05, 2.639288854e-07, 3.247834017e-06,
                               1.657523261e-07, 1.94058297e-05, 2.860532146e-07],
                              [0.002511852731, 0.002565313889, 0.003245462662, 4.605919008e-05, 0.0007404308352,
                               3.504442824e-05, 0.002784671734, 7.062786446e-05]],
            'convs.6.conv2': [[2.684923625e-06, 1.967998078e-05, 6.128029083e-06, 1.254563443e-05, 2.835570995e-05,
                               4.673269455e-05, 3.88425891e-05, 4.624683135e-07],
                              [0.000155466698, 0.0009949008425, 0.0003126073423, 0.0008016954361, 0.00106550854,
                               0.002577830965, 0.002320541352, 3.226276411e-05]],
            'convs.6.skip': [[7.762077457e-05, 1.967431709e-05, 0.0001494275223, 9.137489826e-05, 3.766478635e-05,
                              5.240020688e-05, 2.780741987e-05, 1.563590697e-05],
                             None]}
FISHER_FULL = {('G', 'convs.11.conv.weight'): [4.152548707e-05, 4.295466237e-05, 5.056777026e-05, 4.418919795e-05,
                                               6.433756062e-05, 3.980750043e-05, 5.181984777e-05, 5.816635868e-05,
                                               5.304283734e-05, 6.586224347e-05, 7.658896315e-05, 6.619566316e-05,
                                               7.122955276e-05, 6.493441659e-05, 6.014034557e-05, 5.777788103e-05,
                                               4.678795769e-05, 5.674983489e-05, 2.721968224e-05, 1.697888767e-05,
                                               2.058288675e-05, 3.057089862e-05, 2.447104672e-05, 1.812086779e-05,
                                               2.657253205e-05, 2.446528154e-05, 2.69398142e-05, 3.387257784e-05,
                                               5.046459838e-05, 3.205359861e-05, 1.381809938e-05, 1.641163847e-05,
                                               2.079525248e-05, 3.558757553e-05, 2.956174414e-05, 1.450889095e-05],
               ('G', 'convs.11.conv.modulation.weight'): [5.208723206e-07, 4.405454408e-07, 3.660220097e-09,
                                                          1.758649106e-08, 6.279786464e-08, 1.882844705e-07,
                                                          1.204075147e-08, 1.427327247e-08, 4.526102477e-07,
                                                          3.848495796e-07, 2.687588257e-09, 1.164201346e-08,
                                                          5.237243386e-08, 1.642010358e-07, 9.235707989e-09,
                                                          1.186334118e-08],
               ('D', 'convs.1.conv1.0.weight'): [3.830173493e-06, 3.836765003e-06, 3.836892632e-06, 3.836188144e-06,
                                                 3.842783625e-06, 3.843058328e-06, 3.840234195e-06, 3.846450223e-06,
                                                 3.846652493e-06, 1.85987212e-05, 1.880034905e-05, 1.896485294e-05,
                                                 1.869449537e-05, 1.889665567e-05, 1.905917546e-05, 1.877694213e-05,
                                                 1.898174702e-05, 1.914323048e-05, 3.881655689e-07, 3.868079596e-07,
                                                 3.828628795e-07, 3.858389009e-07, 3.842544389e-07, 3.801789784e-07,
                                                 3.84847707e-07, 3.831822868e-07, 3.791043114e-07, 7.392297713e-06,
                                                 7.376234049e-06, 7.366955015e-06, 7.424270889e-06, 7.42161774e-06,
                                                 7.423717501e-06, 7.465299047e-06, 7.469180113e-06, 7.472955532e-06]}
LINES = {'q40_p0.1': [7.605100191e-07, 2.329218618e-09, 3.119203083e-05, 2.070856147e-07, 5.697036345e-05,
                      7.842945497e-07],
         'q85_p0.075': [1.40971532e-05, 2.316194351e-09, 0.0005862867691, 2.033892667e-07, 0.0005907562583,
                        7.762989598e-07],
         'q50_p10': [1.998503553e-06, 1.874918638e-08, 5.601161813e-05, 3.42069067e-06, 0.0001023237668,
                     1.483741405e-05],
         'synthetic_q40_p0.1': [0.7870166149, 0.6567820519, 0.6604257314, 0.3130803009, 0.7165278281, 0.2482366891],
         'synthetic_q50_p10': [0.8012633417, 0.7204268625, 0.7910124341, 0.4798095738, 0.7861748935, 0.4752168924]}
DECISIONS = {'q40_p0.1': {'g_conv': '.FFP....|F.FFFF.F|FFF.....|FF.FFFF.|........|.F..F.FF|F..FF.FF|.FFFFFFF|FFFF|FFFF|FF|FF',
                          'g_style': 'F.....FF|FFF.F..F|FFF.FFFF|..F..F.F|.......P|F...F..F|FF.FFFFF|F.FFFFFF|FF.FFFFF|FFFF|FF.F|..',
                          'd': 'F.|.FFF|FFFF|FF..|....F..F|FFFFFFFF|.......F|....FFFF|FFFFFFF.|FFF.FF.F|FFFF.FFF|FF...FF.|FFP...FF|.F..FFFF|F......F|FFF.F.F.|FFFFFFF.|F.FF....'},
             'q85_p0.075': {'g_conv': '...P....|F.......|..F.....|F.......|........|........|F.......|.....F..|..FF|..FF|.F|FF',
                            'g_style': 'F.......|........|FF..F...|........|.......P|F.......|......F.|....F...|.....F..|FF.F|FF..|..',
                            'd': '..|.F..|....|....|........|..F.....|.......F|.....F..|........|.FF....F|F.....F.|........|F.P...F.|....F..F|........|FFF...F.|.....FF.|........'},
             'q50_p10': {'g_conv': 'PFFPP.P.|F.FFF..F|FFF...P.|F..FFFF.|P....P..|....F.FF|FP.FF..F|...FFFFF|FFFF|.FFF|FF|FF',
                         'g_style': 'FP..P..F|.FF....F|FF..FFFF|.....F.F|.PPPPPPP|F...F..F|FF.FFFFF|F.FFFF.F|.F.FFF.F|FFFF|FF.F|..',
                         'd': 'FP|PFFF|.FFF|FF..|.P..F.PF|FFFFFFFF|.P.P..PF|P...FFF.|.FFF.FF.|.FF.FF.F|FF.F.FFF|FF...FF.|FFPP..FF|.FP.F.FF|..P.P...|FFF.F.F.|.FFFFFF.|..F.....'},
             'synthetic_q40_p0.1': {'g_conv': 'F...FFFP|FFFF.FF.|..F.FF.F|F.FF.FF.|...FFFFF|FFFF.F.F|..FF..F.|....FFFF|FFF.|..F.|FF|FF',
                                    'g_style': 'FF...FF.|FF.FFFF.|F.FFFF..|.F.F...F|FFF.PFFF|....F..F|F.F..F.F|FFFFF..F|F.FFFF.F|FF..|F.FF|FF',
                                    'd': '..|F..F|F.P.|..FF|.FFFFF..|FF.FF.FF|FF..FF.F|F.FFFFF.|.F..FFF.|..F..FFF|..FFF.FF|.FF.F.FF|F.F.FFF.|.F.FFFF.|FF..FF..|.FF.FFFF|FFFF.FF.|F.F.F..F'},
             'synthetic_q50_p10': {'g_conv': 'F...F.FP|FFFF.F.P|PP...F.F|F.F..F..|....FFFF|FFFF.F.F|..FF..F.|.P..FFFF|FFFP|PPF.|FF|FF',
                                   'g_style': 'FF....F.|F..FF.F.|F.F.FF..|PFPF..PF|FFF.P.FF|.P..F...|F.FP.FPF|FFFFF..F|F.FFFFP.|.FP.|F.FF|FF',
                                   'd': '..|FP.F|F.P.|..FF|.FFFFF.P|FF.FF.FF|FF..FF..|F.F.FF.P|.F.PF.F.|..F..FFF|..F.F.FF|.FF.F.FF|..FP.FF.|.FP.FF..|FFPPFFP.|PFFPFF.F|.F.F.FF.|F.FPF..F'}}
SECOND_PRUNE_G = {'convs.0.conv.weight': [0, 4],
                  'convs.2.conv.weight': [4],
                  'convs.3.conv.weight': [4],
                  'convs.4.conv.weight': [4, 5, 6],
                  'convs.5.conv.weight': [0],
                  'convs.3.conv.modulation.weight': [1],
                  'convs.3.conv.modulation.bias': [1],
                  'convs.4.conv.modulation.weight': [0, 1, 4, 6, 7],
                  'convs.4.conv.modulation.bias': [0, 1, 4, 6, 7],
                  'convs.5.conv.modulation.weight': [5],
                  'convs.5.conv.modulation.bias': [5],
                  'convs.11.conv.modulation.weight': [0, 1],
                  'convs.11.conv.modulation.bias': [0, 1]}
SECOND_PRUNE_D = {'convs.2.conv1.0.weight': [3],
                  'convs.2.conv1.1.bias': [3],
                  'convs.2.conv2.1.weight': [6],
                  'convs.2.conv2.2.bias': [6],
                  'convs.3.conv1.0.weight': [1, 2, 3],
                  'convs.3.conv1.1.bias': [1, 2, 3],
                  'convs.3.conv2.1.weight': [1],
                  'convs.3.conv2.2.bias': [1],
                  'convs.3.skip.1.weight': [4],
                  'convs.4.conv2.1.weight': [5],
                  'convs.4.conv2.2.bias': [5],
                  'convs.5.conv1.0.weight': [2, 3],
                  'convs.5.conv1.1.bias': [2, 3],
                  'convs.5.conv2.1.weight': [2],
                  'convs.5.conv2.2.bias': [2],
                  'convs.5.skip.1.weight': [3, 4]}
SECOND_FREEZE_G = {'convs.0.conv.weight': [1, 2, 5, 6, 7],
                   'convs.1.conv.weight': [0, 1, 2, 3, 4, 5, 7],
                   'convs.2.conv.weight': [2],
                   'convs.3.conv.weight': [0, 5],
                   'convs.5.conv.weight': [2, 4, 6, 7],
                   'convs.6.conv.weight': [0, 2, 7],
                   'convs.7.conv.weight': [1, 2, 3, 4, 5, 6, 7],
                   'convs.8.conv.weight': [0, 1, 2, 3],
                   'convs.9.conv.weight': [1, 2, 3],
                   'convs.10.conv.weight': [1],
                   'convs.11.conv.weight': [0],
                   'convs.0.conv.modulation.weight': [0, 1, 2, 3, 4, 6, 7],
                   'convs.0.conv.modulation.bias': [0, 1, 2, 3, 4, 6, 7],
                   'convs.1.conv.modulation.weight': [0, 1, 2, 3, 4, 6],
                   'convs.1.conv.modulation.bias': [0, 1, 2, 3, 4, 6],
                   'convs.2.conv.modulation.weight': [1, 4, 5],
                   'convs.2.conv.modulation.bias': [1, 4, 5],
                   'convs.3.conv.modulation.weight': [2, 7],
                   'convs.3.conv.modulation.bias': [2, 7],
                   'convs.5.conv.modulation.weight': [0, 1],
                   'convs.5.conv.modulation.bias': [0, 1],
                   'convs.6.conv.modulation.weight': [3, 4, 5, 6, 7],
                   'convs.6.conv.modulation.bias': [3, 4, 5, 6, 7],
                   'convs.7.conv.modulation.weight': [0, 3, 4, 5, 6],
                   'convs.7.conv.modulation.bias': [0, 3, 4, 5, 6],
                   'convs.8.conv.modulation.weight': [2, 3, 4, 5, 6, 7],
                   'convs.8.conv.modulation.bias': [2, 3, 4, 5, 6, 7],
                   'convs.9.conv.modulation.weight': [0, 1, 3],
                   'convs.9.conv.modulation.bias': [0, 1, 3],
                   'convs.10.conv.modulation.weight': [0, 3],
                   'convs.10.conv.modulation.bias': [0, 3]}
ZERO_G_AFTER_FIRST = {'convs.0.conv.weight': [0, 3, 4, 6],
                      'convs.2.conv.weight': [6],
                      'convs.4.conv.weight': [0, 5],
                      'convs.6.conv.weight': [1],
                      'convs.0.conv.modulation.weight': [1, 4],
                      'convs.0.conv.modulation.bias': [1, 4],
                      'convs.4.conv.modulation.weight': [1, 2, 3, 4, 5, 6, 7],
                      'convs.4.conv.modulation.bias': [1, 2, 3, 4, 5, 6, 7]}
ZERO_D_AFTER_FIRST = {'convs.1.conv1.0.weight': [1],
                      'convs.1.conv1.1.bias': [1],
                      'convs.1.conv2.1.weight': [0],
                      'convs.1.conv2.2.bias': [0],
                      'convs.2.conv2.1.weight': [1, 6],
                      'convs.2.conv2.2.bias': [1, 6],
                      'convs.3.conv1.0.weight': [1, 3, 6],
                      'convs.3.conv1.1.bias': [1, 3, 6],
                      'convs.3.conv2.1.weight': [0],
                      'convs.3.conv2.2.bias': [0],
                      'convs.5.conv1.0.weight': [2, 3],
                      'convs.5.conv1.1.bias': [2, 3],
                      'convs.5.conv2.1.weight': [2],
                      'convs.5.conv2.2.bias': [2],
                      'convs.5.skip.1.weight': [2, 4]}
ZERO_G_AFTER_SECOND = {'convs.0.conv.weight': [0, 3, 4, 6],
                       'convs.2.conv.weight': [4, 6],
                       'convs.3.conv.weight': [4],
                       'convs.4.conv.weight': [0, 4, 5, 6],
                       'convs.5.conv.weight': [0],
                       'convs.6.conv.weight': [1],
                       'convs.0.conv.modulation.weight': [1, 4],
                       'convs.0.conv.modulation.bias': [1, 4],
                       'convs.3.conv.modulation.weight': [1],
                       'convs.3.conv.modulation.bias': [1],
                       'convs.4.conv.modulation.weight': [0, 1, 2, 3, 4, 5, 6, 7],
                       'convs.4.conv.modulation.bias': [0, 1, 2, 3, 4, 5, 6, 7],
                       'convs.5.conv.modulation.weight': [5],
                       'convs.5.conv.modulation.bias': [5],
                       'convs.11.conv.modulation.weight': [0, 1],
                       'convs.11.conv.modulation.bias': [0, 1]}
ZERO_D_AFTER_SECOND = {'convs.1.conv1.0.weight': [1],
                       'convs.1.conv1.1.bias': [1],
                       'convs.1.conv2.1.weight': [0],
                       'convs.1.conv2.2.bias': [0],
                       'convs.2.conv1.0.weight': [3],
                       'convs.2.conv1.1.bias': [3],
                       'convs.2.conv2.1.weight': [1, 6],
                       'convs.2.conv2.2.bias': [1, 6],
                       'convs.3.conv1.0.weight': [1, 2, 3, 6],
                       'convs.3.conv1.1.bias': [1, 2, 3, 6],
                       'convs.3.conv2.1.weight': [0, 1],
                       'convs.3.conv2.2.bias': [0, 1],
                       'convs.3.skip.1.weight': [4],
                       'convs.4.conv2.1.weight': [5],
                       'convs.4.conv2.2.bias': [5],
                       'convs.5.conv1.0.weight': [2, 3],
                       'convs.5.conv1.1.bias': [2, 3],
                       'convs.5.conv2.1.weight': [2],
                       'convs.5.conv2.2.bias': [2],
                       'convs.5.skip.1.weight': [2, 3, 4]}
MASK_LOSSES = [1.300369209, 1.05162386]
MASK_D = {'convs.1.conv1.0.weight': 'gb',
          'convs.1.conv1.1.bias': 'gb',
          'convs.1.conv2.1.weight': 'bg-g',
          'convs.1.conv2.2.bias': 'bg-g',
          'convs.1.skip.1.weight': 'gggg',
          'convs.2.conv1.0.weight': 'gg-b',
          'convs.2.conv1.1.bias': 'gg-b',
          'convs.2.conv2.1.weight': 'gb--g-bg',
          'convs.2.conv2.2.bias': 'gb--g-bg',
          'convs.2.skip.1.weight': '-ggggggg',
          'convs.3.conv1.0.weight': '-bbbggbg',
          'convs.3.conv1.1.bias': '-bbbggbg',
          'convs.3.conv2.1.weight': 'bb---ggg',
          'convs.3.conv2.2.bias': 'bb---ggg',
          'convs.3.skip.1.weight': 'g-ggb-g-',
          'convs.4.conv1.0.weight': 'gggggg-g',
          'convs.4.conv1.1.bias': 'gggggg-g',
          'convs.4.conv2.1.weight': 'g--g-b-g',
          'convs.4.conv2.2.bias': 'g--g-b-g',
          'convs.4.skip.1.weight': 'gg------',
          'convs.5.conv1.0.weight': 'g-bb--g-',
          'convs.5.conv1.1.bias': 'g-bb--g-',
          'convs.5.conv2.1.weight': '-gb-g-gg',
          'convs.5.conv2.2.bias': '-gb-g-gg',
          'convs.5.skip.1.weight': '--bbb---',
          'convs.6.conv1.0.weight': 'ggg-g-g-',
          'convs.6.conv1.1.bias': 'ggg-g-g-',
          'convs.6.conv2.1.weight': 'gggggg--',
          'convs.6.conv2.2.bias': 'gggggg--',
          'convs.6.skip.1.weight': 'g-gg-g--'}
MASK_G = {'convs.0.conv.weight': 'bggbbgbg',
          'convs.0.conv.modulation.weight': 'gbggb-gg',
          'convs.0.conv.modulation.bias': 'gbggb-gg',
          'convs.0.noise.weight': 'w',
          'convs.0.activate.bias': '--------',
          'convs.1.conv.weight': 'gggggg-g',
          'convs.1.conv.modulation.weight': 'ggggg-g-',
          'convs.1.conv.modulation.bias': 'ggggg-g-',
          'convs.1.noise.weight': 'w',
          'convs.1.activate.bias': '--------',
          'convs.2.conv.weight': '--g-b-b-',
          'convs.2.conv.modulation.weight': '-g--gg--',
          'convs.2.conv.modulation.bias': '-g--gg--',
          'convs.2.noise.weight': 'w',
          'convs.2.activate.bias': '--------',
          'convs.3.conv.weight': 'g---bg--',
          'convs.3.conv.modulation.weight': '-bg----g',
          'convs.3.conv.modulation.bias': '-bg----g',
          'convs.3.noise.weight': 'w',
          'convs.3.activate.bias': '--------',
          'convs.4.conv.weight': 'b---bbb-',
          'convs.4.conv.modulation.weight': 'bbbbbbbb',
          'convs.4.conv.modulation.bias': 'bbbbbbbb',
          'convs.4.noise.weight': 'w',
          'convs.4.activate.bias': '--------',
          'convs.5.conv.weight': 'b-g-g-gg',
          'convs.5.conv.modulation.weight': 'gg---b--',
          'convs.5.conv.modulation.bias': 'gg---b--',
          'convs.5.noise.weight': 'w',
          'convs.5.activate.bias': '--------',
          'convs.6.conv.weight': 'gbg----g',
          'convs.6.conv.modulation.weight': '---ggggg',
          'convs.6.conv.modulation.bias': '---ggggg',
          'convs.6.noise.weight': 'w',
          'convs.6.activate.bias': '--------',
          'convs.7.conv.weight': '-ggggggg',
          'convs.7.conv.modulation.weight': 'g--gggg-',
          'convs.7.conv.modulation.bias': 'g--gggg-',
          'convs.7.noise.weight': 'w',
          'convs.7.activate.bias': '--------',
          'convs.8.conv.weight': 'gggg',
          'convs.8.conv.modulation.weight': '--gggggg',
          'convs.8.conv.modulation.bias': '--gggggg',
          'convs.8.noise.weight': 'w',
          'convs.8.activate.bias': '----',
          'convs.9.conv.weight': '-ggg',
          'convs.9.conv.modulation.weight': 'gg-g',
          'convs.9.conv.modulation.bias': 'gg-g',
          'convs.9.noise.weight': 'w',
          'convs.9.activate.bias': '----',
          'convs.10.conv.weight': '-g',
          'convs.10.conv.modulation.weight': 'g--g',
          'convs.10.conv.modulation.bias': 'g--g',
          'convs.10.noise.weight': 'w',
          'convs.10.activate.bias': '--',
          'convs.11.conv.weight': 'g-',
          'convs.11.conv.modulation.weight': 'bb',
          'convs.11.conv.modulation.bias': 'bb',
          'convs.11.noise.weight': 'w',
          'convs.11.activate.bias': '--'}
PRUNED_NETS_LINES = [9.383562633e-07, 0.0]
PRUNED_NETS_DECISIONS = {'g_conv': 'FFFFF.FF|F..FFF.F|.PF.F.F.|F...F.F.|PPPPPPPP|F...F..F|FF.FF..F|...FFFFF|FFFF|.FFF|PP|PP',
                         'g_style': 'F.....FF|.FF...FF|FF.FFF..|....P.P.|FFFFFFFF|F...P.P.|FF..F.FF|FPFFFF..|...FFF.F|FFFF|PPPP|FF'}
PRUNED_NETS_SCORES = {'convs.0.conv.weight': [0.2810405103, 2.664517983e-06, 3.044240691e-05, 1.134522231, 0.5511941191,
                                              2.127891389e-07, 0.9239132533, 2.068737541e-06],
                      'convs.2.conv.weight': [5.923116726e-07, 0.0, 2.149411418e-05, 6.242935137e-09, 0.08813584634,
                                              1.193529398e-07, 0.01200990615, 2.3506334e-07],
                      'convs.3.conv.weight': [4.569349252e-06, 2.302313533e-08, 6.105805058e-08, 4.654735697e-07,
                                              2.327533806, 6.957508255e-07, 2.595088198e-06, 6.879652362e-08],
                      'convs.4.conv.weight': [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                      'convs.5.conv.weight': [21.82477966, 8.74540499e-07, 2.123778686e-07, 6.488574493e-07,
                                              8.350616626e-06, 6.559602415e-07, 8.616657413e-07, 3.283591006e-06],
                      'convs.6.conv.weight': [6.381967924e-05, 0.1233123225, 8.539611186e-07, 4.495668307e-06,
                                              2.86013925e-06, 2.497640546e-07, 8.655119854e-07, 1.730243592e-06]}
# fmt: on

SYNTHETIC_SEED = 300
SYNTHETIC_ORDER = [("G", f"convs.{b}.conv.{s}") for b in range(12) for s in ("weight", "modulation.weight",
                   "modulation.bias")] + [("D", f"convs.{b}.{k}") for b in range(1, 7) for k in ("conv1.0.weight",
                   "conv1.1.bias", "conv2.1.weight", "conv2.2.bias", "skip.1.weight")]  # their key order  # fmt: skip
NAMES_G_TRAINED = [f"convs.{b}.{s}" for b in range(12) for s in ("conv.weight", "conv.modulation.weight",
                   "conv.modulation.bias", "noise.weight", "activate.bias")]  # fmt: skip
NAMES_D_FROZEN = ["convs.0.0.weight", "convs.0.1.bias"]  # from-RGB
NAMES_D_WARMUP = ["final_conv.0.weight", "final_conv.1.bias", "final_linear.0.weight", "final_linear.0.bias",
                  "final_linear.1.weight", "final_linear.1.bias"]  # fmt: skip
REGISTRY = load_registry()


def randn(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def authors_nets():
    """Their tiny nets, as ganbench's stylegan2 (see the module docstring)."""
    torch.manual_seed(0)
    nets = ganbench.Nets(Generator(256, 8, 2, 2, 0.01, width=8).double(), Discriminator(256, 2, width=8).double())
    for net, seed in ((nets.G, 0), (nets.D, 1)):
        g, params = torch.Generator().manual_seed(seed), dict(net.named_parameters())
        with torch.no_grad():
            for name in sorted(params):
                mapping = re.fullmatch(r"style\.\d+\.weight", name)
                scale = 0.0 if name.endswith("noise.weight") else 100.0 if mapping else 1.0
                params[name].copy_(torch.randn(params[name].shape, generator=g, dtype=DT) * scale)
    return nets


def source_of(nets):
    return ganbench.SourceCheckpoint(nets.G.state_dict(), nets.D.state_dict(), key="authors", sha256="authors")


def synthesis(G):
    return lambda z: G.synthesis(G.mapping(z))  # their G's raw output (ganbench's G(z) clamps it)


def fisher_of(nets, layout, z_seed, real_seed):
    names = {w: [n for layer in layout.layers if layer.net == w for n in layer.names()] for w in "GD"}
    latents = torch.cat([randn((1, 8), z_seed + j) for j in range(3)])
    reals = torch.cat([randn((2, 3, 256, 256), real_seed + j)[:1] for j in range(3)])
    modes = nets.G.training, nets.D.training
    nets.G.eval(), nets.D.eval()
    fg, fd, losses = fisher_information(nets.G, nets.D, latents, reals, names["G"], names["D"], synthesis(nets.G))
    nets.G.train(modes[0]), nets.D.train(modes[1])
    return {"G": fg, "D": fd}, [value for _, value in losses]


@pytest.fixture(scope="module")
def authors():
    """Their nets, the layout RICK finds in them, and the two Fisher estimates of their cases."""
    nets = authors_nets()
    layout = filter_layout(nets.G, nets.D)
    return nets, layout, [fisher_of(nets, layout, 100, 200), fisher_of(nets, layout, 110, 210)]


def decisions(layout, selection, pools=("g_conv", "g_style", "d")):
    """A selection in the recorded form; checks every filter is in exactly one set and biases follow weights."""
    out = {}
    for pool in pools:
        layers = []
        for layer in (x for x in layout.layers if x.pool == pool):
            sets = {"F": selection.freeze, ".": selection.finetune, "P": selection.prune}
            sets = {c: s[layer.net][layer.weight] for c, s in sets.items()}
            for bias in layer.names()[1:]:
                assert [selection.freeze[layer.net][bias], selection.prune[layer.net][bias]] == [sets["F"], sets["P"]]
            count = sum(len(v) for v in sets.values())
            assert sorted(i for v in sets.values() for i in v) == list(range(count)), layer.weight
            layers.append("".join(next(c for c, v in sets.items() if i in v) for i in range(count)))
        out[pool] = "|".join(layers)
    return out


def non_empty(indices):
    return {k: v for k, v in indices.items() if v}


def close(ours, theirs, rtol=1e-5):
    torch.testing.assert_close(torch.as_tensor(ours, dtype=DT), torch.as_tensor(theirs, dtype=DT), rtol=rtol, atol=0)


# --------------------------------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------------------------------


def test_the_layout_on_stylegan2_is_the_authors(authors):
    """Their optimizers hold G's ``convs.*`` and D but from-RGB; their warm-up updates D's ``final*`` only."""
    nets, layout, _ = authors
    assert sorted(layout.trainable["G"]) == sorted(NAMES_G_TRAINED)
    assert sorted(layout.trainable["D"]) == sorted(n for n, _ in nets.D.named_parameters() if n not in NAMES_D_FROZEN)
    assert sorted(layout.warmup) == sorted(NAMES_D_WARMUP)
    for which in "GD":  # the keys they rank: G's convs.0-11 and their modulation, D's convs.1-6
        ranked = [n for layer in layout.layers if layer.net == which for n in layer.names()]
        assert sorted(ranked) == sorted(k for w, k in SYNTHETIC_ORDER if w == which)
    strategy = RICK()
    adapted = strategy.adapt(authors_nets(), source_of(nets))
    assert sorted(n for n, p in adapted.G.named_parameters() if p.requires_grad) == sorted(NAMES_G_TRAINED)
    assert [n for n, p in adapted.D.named_parameters() if not p.requires_grad] == NAMES_D_FROZEN


def test_fisher_equals_the_authors(authors):
    nets, layout, [(fisher, losses), (_, second)] = authors
    close(losses, FISHER_LOSSES)
    close(second, SECOND_LOSSES)
    for key, (weight, rows, bias) in FISHER_G.items():
        close(fisher["G"][f"{key}.weight"].mean(dim=(0, 2, 3, 4)) / 2, weight)
        close(fisher["G"][f"{key}.modulation.weight"].mean(dim=1) / 2, rows)
        close(fisher["G"][f"{key}.modulation.bias"] / 2, bias)
    for key, (weight, bias) in FISHER_D.items():
        layer = next(x for x in layout.layers if x.net == "D" and x.weight.startswith(key + "."))
        close(fisher["D"][layer.weight].mean(dim=(1, 2, 3)) / 2, weight)
        if bias is not None:
            close(fisher["D"][layer.bias] / 2, bias)
        else:
            assert layer.bias is None and layer.skip_ties
    for (net, key), values in FISHER_FULL.items():
        close(fisher[net][key].flatten() / 2, values)


@pytest.mark.parametrize("case", ["q40_p0.1", "q85_p0.075", "q50_p10"])
def test_selection_equals_the_authors(authors, case):
    """Babies' defaults, AFHQ-Cat's, and a coarse one that prunes in every pool."""
    _, layout, [(fisher, _), _] = authors
    q, p = (float(x[1:]) for x in case.split("_"))
    selection = select_filters(layout.layers, fisher, q, p)
    ours = [v / 2 for pool in ("g_conv", "g_style", "d") for v in selection.lines[pool]]
    close(ours, LINES[case])
    assert decisions(layout, selection) == DECISIONS[case]


@pytest.mark.parametrize("case", ["synthetic_q40_p0.1", "synthetic_q50_p10"])
def test_selection_on_synthetic_fisher_equals_the_authors(authors, case):
    """Their selection on |randn| Fisher arrays (one generator, seed 300, in their key order): every filter's score
    is distinct, so this checks the scores' arithmetic and the percentiles without ties."""
    nets, layout, _ = authors
    q, p = (float(x[1:]) for x in case.split("_")[1:])
    g, params = torch.Generator().manual_seed(SYNTHETIC_SEED), {"G": dict(nets.G.named_parameters()),
                                                                  "D": dict(nets.D.named_parameters())}  # fmt: skip
    fisher = {"G": {}, "D": {}}
    for net, key in SYNTHETIC_ORDER:
        fisher[net][key] = torch.randn(params[net][key].shape, generator=g, dtype=DT).abs()
    selection = select_filters(layout.layers, fisher, q, p)
    close([v for pool in ("g_conv", "g_style", "d") for v in selection.lines[pool]], LINES[case])
    assert decisions(layout, selection) == DECISIONS[case]


def merged_strategy(authors):
    """RICK after their two estimates (q=50, prune 10 %): frozen = the second's, pruned = both's."""
    nets, layout, [(first, _), (second, _)] = authors
    strategy = RICK(fisher_quantile=50, prune_quantile=10)
    strategy.adapt(authors_nets(), source_of(nets))
    selections = [select_filters(layout.layers, f, 50, 10) for f in (first, second)]
    return strategy, selections


def test_pruning_accumulates_and_freezing_is_replaced_as_the_authors(authors):
    strategy, (first, second) = merged_strategy(authors)
    assert non_empty(second.prune["G"]) == SECOND_PRUNE_G and non_empty(second.prune["D"]) == SECOND_PRUNE_D
    strategy.apply(first)
    assert non_empty(strategy.pruned["G"]) == ZERO_G_AFTER_FIRST
    assert non_empty(strategy.pruned["D"]) == ZERO_D_AFTER_FIRST
    strategy.apply(second)
    assert non_empty(strategy.pruned["G"]) == ZERO_G_AFTER_SECOND
    assert non_empty(strategy.pruned["D"]) == ZERO_D_AFTER_SECOND
    assert non_empty(strategy.frozen["G"]) == SECOND_FREEZE_G  # the latest selection's, not a union
    assert strategy.frozen["D"] == second.freeze["D"] and strategy.estimates == 2


def zero_rows(tensor, dim):
    if tensor is None:
        return set()
    other = tuple(d for d in range(tensor.ndim) if d != dim)
    zero = tensor == 0 if tensor.ndim == 1 else (tensor == 0).all(dim=other)
    return set(zero.nonzero().flatten().tolist())


def masked_rows(net, names):
    out = {}
    for name, p in net.named_parameters():
        if name in names:
            dim = 1 if p.ndim == 5 else 0
            grad, weight = zero_rows(p.grad, dim), zero_rows(p.detach(), dim)
            out[name] = "".join("b" if i in grad and i in weight else "g" if i in grad else "w" if i in weight
                                else "-" for i in range(p.shape[dim]))  # fmt: skip
    return out


def test_masked_step_equals_the_authors(authors):
    """One D step and one G step after the warm-up (their lines 429-435 and 524-537, before the optimizer step):
    the gradients of frozen filters zeroed; pruned filters' weights and gradients zeroed."""
    strategy, (first, second) = merged_strategy(authors)
    strategy.apply(first), strategy.apply(second)
    nets = authors_nets()
    z, real = randn((2, 8), 400), randn((2, 3, 256, 256), 401)
    step = strategy.config["warmup"] + 1
    fake = synthesis(nets.G)(z)
    d_loss = F.softplus(-nets.D(real)).mean() + F.softplus(nets.D(fake)).mean()
    nets.D.zero_grad()
    d_loss.backward()
    strategy.before_update("D", nets.D, step)
    assert masked_rows(nets.D, MASK_D) == MASK_D
    g_loss = F.softplus(-nets.D(synthesis(nets.G)(z))).mean()
    nets.G.zero_grad()
    g_loss.backward()
    strategy.before_update("G", nets.G, step)
    assert masked_rows(nets.G, MASK_G) == MASK_G
    close([d_loss.item(), g_loss.item()], MASK_LOSSES)


def test_fisher_of_pruned_filters_equals_the_authors(authors):
    """Their G with the merged prunes zeroed (the limit of their EMA): demodulation makes the zero filters score
    high, and pruned style rows cut whole layers off (scores 0, all pruned at a prune line of 0)."""
    nets, layout, _ = authors
    strategy, (first, second) = merged_strategy(authors)
    strategy.apply(first), strategy.apply(second)
    pruned = authors_nets()
    strategy.before_update("G", pruned.G, strategy.config["warmup"] + 1)  # zeroes the pruned filters
    fisher, losses = fisher_of(pruned, layout, 100, 200)
    close(losses, PRUNED_NETS_LOSSES)
    selection = select_filters(layout.layers, fisher, 50, 10)
    close([selection.lines["g_conv"][0] / 2], PRUNED_NETS_LINES[:1])
    assert selection.lines["g_conv"][1] == PRUNED_NETS_LINES[1] == 0
    assert decisions(layout, selection, ("g_conv", "g_style")) == PRUNED_NETS_DECISIONS
    for key, scores in PRUNED_NETS_SCORES.items():
        close(filter_scores(next(x for x in layout.layers if x.weight == key), fisher["G"]) / 2, scores)


# --------------------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------------------


def tiny_arch(name):
    entry = REGISTRY.get("architecture", name)
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY_ARCH_OPTIONS.items() if k in declared})


FAST = {"warmup": 1, "fisher_freq": 1, "fisher_quantile": 50, "prune_quantile": 20}  # an estimate every step from 2


@pytest.mark.parametrize("arch_name", ["dcgan", "resnet-sngan", "stylegan2", "stylegan2-lite", "projected"])
def test_check_strategy(arch_name):
    """Every built-in architecture, with an estimate and masks at every step from step 2. On stylegan2 the run is
    4 steps, so the resume check cuts after step 2: the resumed run starts from an estimate's masks and continues
    the estimates' random draws (elsewhere 3 steps, cut after step 1, to keep the file fast)."""
    counts = check_strategy(RICK(**FAST), tiny_arch(arch_name), steps=4 if arch_name == "stylegan2" else 3)
    assert 0 < counts["trainable"] < counts["total"]


def test_check_strategy_at_the_defaults():
    check_strategy(RICK())  # all in the warm-up


def test_defaults_are_the_authors_ffhq_babies_command():
    assert RICK().config == {"fisher_quantile": 40.0, "prune_quantile": 0.1, "warmup": 250, "fisher_freq": 50,
                             "fisher_samples": 5}  # fmt: skip
    assert RICK.card.code == "yunqing-me/RICK@" + COMMIT[:7] and RICK.card.parity == "tests/plugins/test_rick.py"
    assert RICK().needs() == ganbench.Needs()  # no features: it reads parameters and their gradients


def trained(strategy, arch, steps, seed=0):
    nets = strategy.adapt(tiny_nets(arch, seed=seed), fake_source(arch))
    before = {w: {n: p.detach().clone() for n, p in net.named_parameters()} for w, net in nets.modules().items()}
    train_gan(nets, strategy, fake_images(16, seed=2), TrainConfig(steps, 4, 1e-3, seed), progress=False)
    return nets, before


def index(indices):
    return torch.tensor(indices, dtype=torch.long)


def changed(net, before):
    return {n for n, p in net.named_parameters() if not torch.equal(p.detach(), before[n])}


def test_the_warm_up_updates_only_ds_last_block_and_head():
    arch = tiny_arch("stylegan2")
    strategy = RICK(warmup=3)
    nets, before = trained(strategy, arch, 3)
    assert changed(nets.G, before["G"]) == set()
    assert changed(nets.D, before["D"]) == strategy.layout.warmup != set()
    assert strategy.estimates == 0
    assert {n for n, p in nets.D.named_parameters() if p.requires_grad} > strategy.layout.warmup  # all of D after


def test_estimates_run_after_the_warm_up_every_fisher_freq_steps():
    strategy = RICK(warmup=2, fisher_freq=3)
    assert [s for s in range(1, 12) if strategy.estimate_due(s)] == [3, 6, 9]
    trained(strategy, tiny_arch("dcgan"), 7)
    assert strategy.estimates == 2


def test_frozen_filters_hold_and_pruned_ones_stay_zero_in_training():
    """Estimates at steps 1 and 3: after step 4, the filters frozen at step 3 hold the values they had after step
    2 (Adam's momentum, beta1 0.5, would move them), pruned ones are zero; fine-tuned ones and unranked parameters
    move."""
    arch = tiny_arch("stylegan2")
    strategy = RICK(warmup=0, fisher_freq=2, fisher_quantile=50, prune_quantile=20)
    nets, _ = trained(strategy, arch, 2)  # the same cell, stopped after step 2
    after_two = {w: {n: p.detach().clone() for n, p in net.named_parameters()} for w, net in nets.modules().items()}
    nets, _ = trained(strategy, arch, 4)
    assert strategy.estimates == 2
    held = moved = 0
    for which, net in nets.modules().items():
        params = dict(net.named_parameters())
        for name, dim in strategy.layout.dims[which].items():
            p, old = params[name].detach(), after_two[which][name]
            frozen, pruned = strategy.frozen[which][name], strategy.pruned[which][name]
            tuned = sorted(set(range(p.shape[dim])) - set(frozen) - set(pruned))
            assert torch.equal(p.index_select(dim, index(frozen)), old.index_select(dim, index(frozen))), name
            assert (p.index_select(dim, index(pruned)) == 0).all(), name
            held += len(frozen)
            moved += not torch.equal(p.index_select(dim, index(tuned)), old.index_select(dim, index(tuned)))
    assert held > 0 and moved > 0 and any(strategy.pruned[w][n] for w in "GD" for n in strategy.pruned[w])
    assert not torch.equal(
        dict(nets.G.named_parameters())["convs.0.activate.bias"], after_two["G"]["convs.0.activate.bias"]
    )


def test_without_restoring_adams_momentum_moves_frozen_filters():
    """Why after_update restores values: zeroed gradients alone leave a filter trained before it was frozen
    moving (Adam's first beta is 0.5 here, 0 in the authors' code)."""
    strategy = RICK(warmup=0, fisher_freq=2, fisher_quantile=50, prune_quantile=0)
    original = RICK.after_update
    RICK.after_update = lambda self, which, net, step: setattr(self, "_held", [])
    try:
        arch = tiny_arch("stylegan2")
        nets, _ = trained(strategy, arch, 2)
        after_two = {w: {n: p.detach().clone() for n, p in net.named_parameters()} for w, net in nets.modules().items()}
        nets, _ = trained(strategy, arch, 4)
    finally:
        RICK.after_update = original
    moved = 0
    for which, net in nets.modules().items():
        params = dict(net.named_parameters())
        for name, dim in strategy.layout.dims[which].items():
            frozen = index(strategy.frozen[which][name])
            old = after_two[which][name].index_select(dim, frozen)
            moved += not torch.equal(params[name].detach().index_select(dim, frozen), old)
    assert moved > 0


def test_the_estimate_uses_its_own_draws_and_restores_the_nets_modes():
    arch = tiny_arch("stylegan2")
    strategy = RICK(fisher_samples=3)
    nets = strategy.adapt(tiny_nets(arch), fake_source(arch))
    shots = fake_images(6, seed=3)
    probe = ganbench.ProbeContext(shots.float() / 127.5 - 1, 1, 4, 1e-3, torch.device("cpu"),
                                  torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))  # fmt: skip
    strategy.probe(nets, probe)
    assert strategy.shots.dtype == torch.uint8 and torch.equal(strategy.shots, shots)
    assert strategy.latents.shape == (3, nets.G.z_dim)
    rng = torch.get_rng_state()
    state = strategy.state_dict()
    first = strategy.estimate(nets)
    assert torch.equal(torch.get_rng_state(), rng)  # the loop's streams are untouched (eval mode: fixed noise)
    assert nets.G.training and nets.D.training
    strategy.load_state_dict(state)  # the same draws again
    again = strategy.estimate(nets)
    assert first.lines == again.lines and decisions(strategy.layout, first) == decisions(strategy.layout, again)
    assert set(first.pools) == {"g_conv", "g_style", "d"}


def test_spectrally_normalized_layers_keep_a_filter():
    """Pruning every filter (prune_quantile=100) prunes all of a plain layer, as the authors' code can, but a
    spectrally normalized layer (resnet-sngan's D) keeps its best one: an all-zero weight has no spectral norm."""
    arch = tiny_arch("resnet-sngan")
    strategy = RICK(fisher_quantile=100, prune_quantile=100)
    nets = strategy.adapt(tiny_nets(arch), fake_source(arch))
    probe = ganbench.ProbeContext(fake_images(4, seed=3).float() / 127.5 - 1, 1, 4, 1e-3, torch.device("cpu"),
                                  torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))  # fmt: skip
    strategy.probe(nets, probe)
    selection = strategy.estimate(nets)
    for layer in strategy.layout.layers:
        assert selection.prune[layer.net][layer.weight] == list(range(layer.filters))
        kept = layer.filters - len(strategy.pruned[layer.net][layer.weight])
        assert kept == (1 if layer.normalized else 0), layer.weight
        best = int(selection.scores[layer.net][layer.weight].argmax())
        assert not layer.normalized or strategy.pruned[layer.net][layer.bias] == [
            i for i in range(layer.filters) if i != best
        ]
    assert {layer.net for layer in strategy.layout.layers if layer.normalized} == {"D"}
    strategy.before_update("D", nets.D, 1), strategy.after_update("D", nets.D, 1)
    assert torch.isfinite(nets.D(nets.G(torch.randn(2, nets.G.z_dim)))).all()


class MLPGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim = 4
        self.blocks = nn.ModuleList([nn.Linear(4, 8), nn.Linear(8, 16)])

    def forward(self, z):
        return torch.tanh(self.blocks[1](self.blocks[0](z))).view(-1, 1, 4, 4)


class MLPDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(16, 8)])
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.blocks[0](x.flatten(1))).flatten()


def refusal(nets, **options):
    with pytest.raises(ganbench.GanbenchError) as caught:
        RICK(**options).check(nets)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("rick")
    return message


def test_refusals():
    assert "no trainable convolution" in refusal(ganbench.Nets(MLPGenerator(), MLPDiscriminator()))
    assert "before its last block" in refusal(tiny_nets(tiny_arch("dcgan"), resolution=16))  # D: from-RGB + last
    assert "above fisher_quantile" in refusal(tiny_nets(tiny_arch("dcgan")), prune_quantile=50, fisher_quantile=40)
    RICK(prune_quantile=40, fisher_quantile=40).check(tiny_nets(tiny_arch("dcgan")))
    option = next(o for o in RICK.options if o.name == "fisher_quantile")
    with pytest.raises(ValueError, match="percentage"):
        option.validate(0.4e3)
    with pytest.raises(ganbench.GanbenchError, match="needs a source"):
        RICK().adapt(tiny_nets(), None)
