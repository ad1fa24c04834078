"""WeditGAN (Duan, Niu, Hong & Zhang, AAAI 2024, "WeditGAN: Few-Shot Image Generation via Latent Space
Relocation").

The source generator stays frozen. What adapts it is a constant offset Δw_k for the W latent of each style
layer k, added before the layer's affine map. So every latent is moved by the same vector per layer, and the
target domain is the source's W space moved to a new place. D is fine-tuned.

Ganbench's ``G.styles`` (stylegan2 and stylegan2-lite) lists the style affine layers in synthesis order: the
4x4 block's conv and to-RGB, then each later block's up-conv, conv and to-RGB. That is the order and number of
the authors' ``const_delta_w{res}`` rows, so Δw is one ``(n_style_layers, w_dim)`` parameter. It is a strategy
module trained with G, applied through ``Needs(transform_styles=True)`` on every pass of the adapted G and of
its EMA copy. Architectures without style layers (dcgan, resnet-sngan, projected) are refused by ``check``.

Variants (``variant=``):

* ``const`` (the README's base method, ``--transfer const_delta_w``): ``w_k + Δw_k``.
* ``alpha``: ``w_k + Δw_k·(1 + α)``. ``α = tanh(MLP_b(w_k))`` comes from one MLP per synthesis block b,
  Linear(w, w), ReLU, Linear(w, 1), applied to each of the block's pre-offset latents.
  - ``alpha_from=0`` trains Δw and the MLPs together (``const_delta_w_alpha``).
  - ``alpha_from=N`` runs the authors' two stages in one cell. Steps 1..N train Δw alone (stage 2,
    ``const_delta_w``). Later steps keep that Δw fixed and train only the MLPs (stage 3, ``learn_alpha_cdw``).
* ``adapt`` (``adapt_delta_w``): ``w_k + MLP_k(w_k)``, with one MLP per style layer, Linear(w, w), ReLU,
  Linear(w, w).

Other options:

* ``init=normal`` (the authors' code: Δw ~ N(0, 1), drawn from the cell's seeded torch stream, so training
  starts from a randomly moved source G) or ``zero`` (starts at the source G). For ``adapt``, normal leaves
  the MLPs at torch's default init, as theirs, and zero zeroes each MLP's last layer. The α MLPs always
  start at torch's default init.
* ``reg=perp``: the perpendicular regulariser λ·mean_i Σ_k <w_i − w_(i+1 mod B), Δw_k>², on the pre-offset
  latents, pairs taken by rolling the batch by one, λ 1e-4 as in the README.
* ``reg=alpha_l2``: λ·mean_i Σ_k α_ik², λ 0.1 as in the README. ``reg=auto`` (the default) is alpha_l2 for
  ``variant=alpha`` and nothing otherwise. With ``alpha_from``, alpha_l2 acts only in stage 3 and perp only
  in stage 2, while Δw trains.
* ``cl=g|gd`` (λ 0.5, τ 0.07, the README's ``--cl gd_feat``): InfoNCE between adapted and source features.
  - ``g``: every synthesis block's feature output of the adapted G (anchor) against the source G's on the
    same latents. The positive is the same sample; the negatives are the other samples' source features.
    Added to G's loss.
  - ``gd`` also adds the same term on the outputs of every D block but the 4x4 epilogue. D sees the fake
    batch (anchor) and the source images of the same latents. Added to D's loss.
  - The source is the loop's frozen source G (``Needs(source=True)``), with the same weights as the frozen G,
    without the offsets, and with its own noise draw, as the authors' ``mod_intensity=0`` pass.
* ``from_block=b``: only synthesis blocks b and above get offsets (the authors' ``mod_w_range`` start;
  default 0, all blocks).
* ``lr_mult``: the offsets' and MLPs' learning rate relative to G's. The default is 1: the ffhq-10shot
  protocol's 0.002 is the authors' 0.0025·4/5.

``WeditGAN.intensity`` (an attribute, 1 in training) scales the offsets for editing after training. It is the
authors' ``mod_intensity`` in generate.py; 0 gives the source G.

Checked against the authors' code, Ldhlwh/WeditGAN at commit 8c87a365b41c1881d7afeda6b752c9793a305bf7.
tests/plugins/test_weditgan.py holds the following to numbers their code computed:
* the per-layer latents for const, intensity, range, alpha and adapt;
* α and alpha_l2;
* perp;
* the G- and D-side InfoNCE.

Deviations from the authors' code (architecture-independent version):

* one W per sample (the loop has no style mixing): every style layer gets the same pre-offset w, so perp is
  Σ_k <w_i − w_(i+1), Δw_k>² (theirs: the mixed per-layer ws);
* the EMA copy of G synthesizes with the current offsets and MLPs, not with an average of them (theirs lerps
  Δw into G_ema; the loop keeps no EMA of strategy modules);
* the D-side contrastive term uses the source images of the step's own latents. Theirs calls G a second
  time, which redraws the mixing cutoff, the mixing latents and the noise;
* the InfoNCE is computed as logsumexp(C_i·) − C_ii in float32 (float64 inputs stay float64). Theirs
  computes −log(e^pos / (e^pos + Σ e^neg)) in float32. Mathematically equal;
* reg=perp also works with variant=alpha (on the constant Δw) and with from_block > 0. Theirs crashes in
  both cases. reg=perp with variant=adapt is refused (there is no constant Δw);
* stage 3 (``alpha_from``) runs in the same cell, at the cell's learning rates. Theirs resumes the stage-2
  pickle with lr 0.0005 for the MLPs and D;
* left to the loop and the grid, not this strategy: path-length regularisation, style mixing, ADA, lazy R1
  with γ 0.8192, Adam (0, 0.99), batch 16, 25 000 steps, and Freeze-D (``--freezed``, default 0 in theirs);
  D always trains fully here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import Option, at_least

VARIANTS = ("const", "alpha", "adapt")
README_LAMBDA = {"perp": 1e-4, "alpha_l2": 0.1}  # the README's --lambda-reg for each --reg


def mlp(width: int, out: int) -> nn.Sequential:
    """The authors' AlphaNet branch: Linear(width, width), ReLU, Linear(width, out), torch's default init."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, out))


def perp_penalty(w: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Per sample, Σ_k <w_i,k − w_(i+1 mod B),k, Δ_k>². ``w`` is ``(B, K, D)``, the pre-offset latent each of
    the K layers receives; ``deltas`` is ``(K, D)``. The result has shape (B,)."""
    diff = w - torch.cat([w[1:], w[:1]])
    return ((diff * deltas).sum(-1) ** 2).sum(1)


def info_nce(source: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-sample InfoNCE, shape (B,). Each target (anchor) sample i has its own source sample as the positive
    and the other samples' source features as the negatives. The score is the cosine of the flattened
    features over τ, and the loss is −log(e^C_ii / Σ_j e^C_ij). Computed in float32, float64 kept."""
    dtype = torch.promote_types(target.dtype, torch.float32)
    s = F.normalize(source.flatten(1).to(dtype), dim=1, eps=1e-8)
    t = F.normalize(target.flatten(1).to(dtype), dim=1, eps=1e-8)
    scores = t @ s.T / tau  # scores[i, j] = cos(target_i, source_j) / tau
    return torch.logsumexp(scores, dim=1) - scores.diagonal()


def contrastive(source: list[torch.Tensor], target: list[torch.Tensor], tau: float, weight: float) -> torch.Tensor:
    """``weight`` times the sum over blocks of :func:`info_nce`, per sample, shape (B,). The loss is its mean
    over the batch."""
    return weight * torch.stack([info_nce(s, t, tau) for s, t in zip(source, target)]).sum(0)


def synthesis_block_of(G: nn.Module) -> list[int]:
    """For each of ``G.styles``, the position of the synthesis block that holds it among ``G.blocks[1:]``."""
    owners = []
    for k, style in enumerate(G.styles):
        found = [i for i, block in enumerate(G.blocks[1:]) if any(m is style for m in block.modules())]
        if len(found) != 1:
            raise ganbench.GanbenchError(f"weditgan: style layer {k} belongs to no single synthesis block of G.blocks")
        owners.append(found[0])
    return owners


def _style_width(style: nn.Module) -> int:
    width = getattr(style, "in_features", None)
    return int(width) if width is not None else int(style.weight.shape[-1])


class Offsets(nn.Module):
    """WeditGAN's trainable parts. ``delta`` has one row per style layer with an offset (const and alpha).
    ``alpha`` has one MLP per synthesis block with offsets (alpha). ``adapt`` has one MLP per style layer with
    an offset (adapt)."""

    def __init__(self, variant: str, layers: int, blocks: int, width: int, init: str) -> None:
        super().__init__()
        self.delta = None
        if variant in ("const", "alpha"):
            start = torch.randn(layers, width) if init == "normal" else torch.zeros(layers, width)
            self.delta = nn.Parameter(start)
        self.alpha = nn.ModuleList(mlp(width, 1) for _ in range(blocks)) if variant == "alpha" else None
        self.adapt = nn.ModuleList(mlp(width, width) for _ in range(layers)) if variant == "adapt" else None
        if self.adapt is not None and init == "zero":
            with torch.no_grad():
                for net in self.adapt:
                    net[2].weight.zero_(), net[2].bias.zero_()


class WeditGAN(ganbench.Strategy):
    """Frozen G, a trainable W offset per style layer, D fine-tuned (WeditGAN, Duan et al. 2024)."""

    name = "weditgan"
    card = ganbench.MethodCard(
        paper="Duan, Niu, Hong & Zhang: WeditGAN: Few-Shot Image Generation via Latent Space Relocation, AAAI",
        year=2024,
        trains="one W offset per style layer of the frozen G (variant=alpha/adapt: small MLPs), all of D",
        losses="none by default; reg=perp (perpendicular regulariser), reg=alpha_l2, cl=g|gd (InfoNCE between "
        "adapted and source G / D features)",
        code="Ldhlwh/WeditGAN@8c87a365b41c1881d7afeda6b752c9793a305bf7",
        parity="tests/plugins/test_weditgan.py",
    )
    options = (
        Option("variant", str, "const", "const: w + Δw (the base method); alpha: w + Δw·(1 + tanh(MLP(w))); "
               "adapt: w + MLP(w)", choices=VARIANTS),
        Option("init", str, "normal", "Δw's start: normal = N(0, 1), as the authors' code; zero = the source G",
               choices=("normal", "zero")),
        Option("alpha_from", int, 0, "variant=alpha: 0 trains Δw and α together; N trains Δw alone for N steps, "
               "then α alone (the authors' stages 2 and 3)", check=at_least(0)),
        Option("reg", str, "auto", "regulariser: perp, alpha_l2, none, or auto (alpha_l2 with variant=alpha, "
               "else none)", choices=("auto", "none", "perp", "alpha_l2")),
        Option("lambda_reg", float, None, "the regulariser's weight (default: the README's, 1e-4 for perp, 0.1 for "
               "alpha_l2)", check=at_least(0)),
        Option("cl", str, "none", "contrastive term against the source G's features: none, g (G blocks) or gd "
               "(G and D blocks)", choices=("none", "g", "gd")),
        Option("lambda_cl", float, 0.5, "weight of the contrastive terms", check=at_least(0)),
        Option("tau", float, 0.07, "temperature of the contrastive terms", check=lambda v: None if v > 0 else
               "must be > 0"),
        Option("from_block", int, 0, "first synthesis block (0: 4x4) whose style layers get an offset",
               check=at_least(0)),
        Option("lr_mult", float, 1.0, "learning rate of the offsets (and MLPs) relative to G's", check=at_least(0)),
    )  # fmt: skip

    intensity: float = 1.0

    # ---------------------------------------------------------------------------------------- setup

    @property
    def regulariser(self) -> str:
        reg = self.config["reg"]
        if reg == "auto":
            return "alpha_l2" if self.config["variant"] == "alpha" else "none"
        return reg

    @property
    def lambda_reg(self) -> float:
        chosen = self.config["lambda_reg"]
        return README_LAMBDA.get(self.regulariser, 0.0) if chosen is None else chosen

    def check(self, nets):
        G = nets.G
        styles = getattr(G, "styles", None)
        if not isinstance(styles, nn.ModuleList) or len(styles) == 0:
            raise ganbench.GanbenchError(
                "weditgan offsets the W each style layer receives, but this generator has no style layers "
                "(G.styles): use it with stylegan2 or stylegan2-lite"
            )
        if self.regulariser in ("perp", "alpha_l2") and not isinstance(getattr(G, "mapping", None), nn.Module):
            raise ganbench.GanbenchError(f"weditgan:reg={self.regulariser} reads G's W latents, but this generator "
                                         "has no mapping network (G.mapping)")  # fmt: skip
        blocks = len(G.blocks) - 1
        if self.config["from_block"] >= blocks:
            raise ganbench.GanbenchError(f"weditgan:from_block={self.config['from_block']}: this G has {blocks} "
                                         f"synthesis blocks (0-{blocks - 1})")  # fmt: skip
        if self.regulariser == "perp" and self.config["variant"] == "adapt":
            raise ganbench.GanbenchError("weditgan:reg=perp needs a constant Δw: use variant=const or alpha")
        if self.regulariser == "alpha_l2" and self.config["variant"] != "alpha":
            raise ganbench.GanbenchError("weditgan:reg=alpha_l2 needs variant=alpha (there is no α otherwise)")
        if self.config["alpha_from"] and self.config["variant"] != "alpha":
            raise ganbench.GanbenchError("weditgan:alpha_from needs variant=alpha")
        widths = {_style_width(s) for s in styles}
        if len(widths) != 1:
            raise ganbench.GanbenchError(f"weditgan: G's style layers take latents of different widths {widths}")
        synthesis_block_of(G)

    def adapt(self, nets, source):
        self.check(nets)
        nets = super().adapt(nets, source)
        G = nets.G
        G.requires_grad_(False)  # G frozen; D trains as built
        owner = synthesis_block_of(G)
        first = self.config["from_block"]
        covered_blocks = sorted({b for b in owner if b >= first})
        self.row: list[int | None] = []  # style layer k -> its row in delta / adapt, or None (no offset)
        self.alpha_of: list[int | None] = []  # style layer k -> its block's alpha MLP
        for b in owner:
            self.row.append(sum(r is not None for r in self.row) if b >= first else None)
            self.alpha_of.append(covered_blocks.index(b) if b >= first else None)
        layers = len(self.covered)
        width = _style_width(G.styles[0])
        device = next(G.parameters()).device
        self.offsets = Offsets(self.config["variant"], layers, len(covered_blocks), width, self.config["init"])
        self.offsets.to(device)
        self.step = 0
        self.synthesis = tuple(range(1, len(G.blocks)))
        self.d_blocks = tuple(range(len(nets.D.blocks) - 1))  # every D block but the 4x4 epilogue
        return nets

    def needs(self):
        cl = self.config["cl"]
        return ganbench.Needs(
            transform_styles=True,
            g_features=self.synthesis if cl != "none" else (),
            source=cl != "none",
            d_features=self.d_blocks if cl == "gd" else (),
        )

    def modules(self):
        return {"offsets": ganbench.StrategyModule(self.offsets, "G", lr_mult=self.config["lr_mult"])}

    # ---------------------------------------------------------------------------------------- the offsets

    @property
    def stage3(self) -> bool:
        """variant=alpha with alpha_from=N, after step N: Δw is held, α trains."""
        return self.config["alpha_from"] > 0 and self.step > self.config["alpha_from"]

    @property
    def uses_alpha(self) -> bool:
        return self.config["variant"] == "alpha" and (self.config["alpha_from"] == 0 or self.stage3)

    def alpha(self, index: int, w: torch.Tensor) -> torch.Tensor:
        """α of style layer ``index`` for its pre-offset latents ``w`` (N, w_dim): (N, 1)."""
        return torch.tanh(self.offsets.alpha[self.alpha_of[index]](w))

    def offset(self, index: int, w: torch.Tensor) -> torch.Tensor | None:
        """The offset of style layer ``index`` for its pre-offset latents ``w``, before ``intensity``."""
        row = self.row[index]
        if row is None:
            return None
        if self.offsets.adapt is not None:
            return self.offsets.adapt[row](w)
        delta = self.offsets.delta[row]
        if not self.uses_alpha:
            return delta
        if self.stage3:
            delta = delta.detach()  # stage 3: Δw from stage 2, held (no gradient: Adam leaves it)
        return delta * (1.0 + self.alpha(index, w))

    def transform_style_input(self, index, w):
        shift = self.offset(index, w)
        return w if shift is None else w + self.intensity * shift

    def begin_step(self, step, z):
        self.step = step
        return z

    # ---------------------------------------------------------------------------------------- losses

    @property
    def covered(self) -> list[int]:
        """The style layers that get an offset (all of them unless ``from_block`` > 0), in order."""
        return [k for k, row in enumerate(self.row) if row is not None]

    def layer_latents(self, nets, z: torch.Tensor) -> torch.Tensor:
        """The pre-offset latent each covered style layer receives on latents ``z``: (B, K, w_dim). ganbench has one
        W per sample (no style mixing), so every layer receives the mapping's output."""
        with torch.no_grad():
            w = nets.G.mapping(z).float()
        return w.unsqueeze(1).expand(-1, len(self.covered), -1)

    def alpha_penalty(self, w: torch.Tensor) -> torch.Tensor:
        """Per sample, Σ_k α_k²: ``w`` (B, K, w_dim) holds the pre-offset latents of the covered layers. (B,)"""
        alphas = [self.alpha(k, w[:, i]) for i, k in enumerate(self.covered)]  # each (B, 1)
        return torch.cat(alphas, 1).square().sum(1)

    def generator_loss(self, nets, step):
        terms: dict[str, torch.Tensor] = {}
        reg, lam = self.regulariser, self.lambda_reg
        if reg == "perp" and lam > 0 and not self.stage3:  # stage 3 holds Δw
            terms["perp"] = lam * perp_penalty(self.layer_latents(nets, step.z), self.offsets.delta).mean()
        if reg == "alpha_l2" and lam > 0 and self.uses_alpha:
            terms["alpha_l2"] = lam * self.alpha_penalty(self.layer_latents(nets, step.z)).mean()
        if self.config["cl"] != "none":
            source = step.source
            src = [source.features[b] for b in self.synthesis]
            tgt = [step.g[b] for b in self.synthesis]
            terms["cl"] = contrastive(src, tgt, self.config["tau"], self.config["lambda_cl"]).mean()
        return terms or None

    def discriminator_loss(self, nets, step):
        if self.config["cl"] != "gd":
            return None
        on_source = step.discriminate(step.source.images, "fake")  # positives and negatives: source images
        src = [on_source.features[b] for b in self.d_blocks]
        tgt = [step.d_fake.features[b] for b in self.d_blocks]  # anchors: the fake batch's D pass
        return {"cl_d": contrastive(src, tgt, self.config["tau"], self.config["lambda_cl"]).mean()}

    # ---------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step} if self.config["alpha_from"] > 0 else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state.get("step", 0))


@ganbench.hookimpl
def register_strategies(register):
    register(WeditGAN)
