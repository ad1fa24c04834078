"""Masked discrimination (Zhu, Ma, Chen & Yuan, "Few-shot Image Generation via Masked Discrimination", arXiv
2210.15194, 2022; IEEE Transactions on Image Processing 2024 as "High-quality and Diverse Few-shot Image Generation
via Masked Discrimination").

Code read: bbzhu-jy16/MaskDis at commit 2d16188cf27bf959323b536baf91a3c35680c3af (2024-04-12; its last code change
is 3b36c0d). tests/plugins/test_maskdis.py holds the masked head, the patch loss with R1 and both consistency terms
to the numbers their code computes.

MaskDis is CDC (Ojha et al. 2021, ganbench's ``cdc``) with three additions. Every weight of G and D fine-tunes from
the source; the frozen source G and a frozen copy of the source D are the anchors. Steps alternate as in CDC:

* **anchor steps** (every ``anchor_every``-th): latents from small balls (std ``anchor_std``) around ``anchors``
  latents drawn once, judged by the image-level D -- and here the image-level D is *masked*: the flattened features
  that feed D's classifier have a random ``ratio`` of their elements set to zero (one mask for the whole batch, a
  new one at every D pass, no rescaling of the kept elements), and a **fresh image-level head** (a 2-layer
  equalized-learning-rate MLP, new weights, trained with D) judges what is left; D's own head is never used;
* **patch steps** (the others): random latents, judged patch by patch by a new 3x3 head on one D block's map.

Two consistency terms, each the CDC term in the authors' form (``ganbench.row_consistency``, reduction ``mean``: for each
sample i one block drawn at random, the softmax over i's cosine similarities to the other samples in that block, the
KL of the source's distributions against the adapted ones averaged over all N (N - 1) entries), times ``kl_wt``:

* **G side** (CDC's): on G block features, adapted G against the source G;
* **D side** (new in MaskDis): on D block features at 1/8 and 1/16 of the image side, the adapted D on the adapted
  G's fake batch against the frozen source D on the source G's images of the same latents; added to D's loss
  (only D trains by it), on every step.

Options (the authors' 10-shot FFHQ defaults): ``ratio`` = 6192/8192 (their hard-coded count of masked elements out
of StyleGAN2-256's 8192; the count is ``round(ratio * n)`` for n features), ``kl_wt`` = 2500 (both terms),
``anchors`` = 10, ``anchor_every`` = 4, ``anchor_std`` = 0.1, ``patch_block`` (default: the first D block at most
1/8 of the image side wide: 32 px at 256, where their patch head reads).

Where things sit, on any architecture: the mask and the fresh head act on the flattened output of the D block(s)
that feed ``D.head`` (the last block; for a D with one head per block, Projected GAN's, all of them, concatenated);
the MLP's hidden width is that block's channel count (theirs: 8192 -> 512 -> 1). The mask is applied in
``discriminator_logits`` on the kept block features, not with ``transform_d_features``: the fresh head is the only
consumer of the masked vector (D's own head, which a transform would feed, is dead weight here, as their
``final_linear``), so masking the features the head reads is their arithmetic exactly, with one draw per D pass.
D-side blocks: the D blocks whose maps are 1/16 to 1/8 of the image side (their four maps at 32 and 16 px), or the
patch block when none is. G-side blocks: every G block that outputs a feature map, except the smallest (their 4x4
conv) and G's image.

Deviations from the authors' code:

* the D-side term runs on every step, on the D block features of the step's fake pass: their code asks D for its
  features on anchor steps too, where their D returns none, so their train.py stops with an IndexError at its first
  iteration; this is the reading that runs (the other reading, patch steps only, is not offered);
* StyleGAN2 (and -lite): the mask acts on the output of D's last block, the 512 outputs of the epilogue's first
  fully connected layer (pretrained, trained), and the fresh MLP replaces only the last layer; theirs masks the 8192
  final-conv outputs before that layer and replaces both fully connected layers;
* other D's: the fresh MLP on the flattened last block replaces the architecture's own head (and its pooling:
  ResNet-SNGAN's ReLU-sum, Projected GAN's per-scale heads and mean); D.head is frozen, as it never judges;
* random draws (masks, anchor indices, the consistency terms' blocks) come from a torch generator held in the
  strategy's state (resumed exactly); theirs use NumPy's global generator, never seeded, so their draws are not
  reproducible; the mask is a uniform draw of round(ratio * n) elements without replacement as theirs, other draws;
* R1 (the loop's, when the recipe asks for it) reads the real pass's mask; theirs draws one more mask for its R1
  pass. With their r1_every 16 and anchor_every 4, R1 falls on anchor steps as theirs does;
* anchor steps are the steps ``step % anchor_every == 0`` with steps counted from 1 (so the loop's lazy R1 lands on
  them as theirs); theirs start at iteration 0. One latent draw serves the D and the G step (theirs: one each);
* both consistency terms use the step's own latents and passes (anchor latents on anchor steps; the loop's batch
  size), not a fresh N(0, I) batch of 4; with an augmentation on, the adapted D's features are those of the
  augmented fake pass while the source D sees the source images as they are;
* the patch head reads a D block output (skip added) at 1/8 of the side; theirs reads the residual branch of the
  32 px ResBlock, before the skip; same head (equalized-lr 3x3 conv to 1 channel, bias, leaky ReLU x sqrt 2);
* feature sets: D blocks (StyleGAN2 at 256: the 32 and 16 px stage outputs, two maps) instead of their four inner
  conv outputs; G blocks (one map per resolution, the block's last conv) instead of every StyledConv output;
* sqrt(2) in the leaky ReLUs is float64 here; their CUDA kernel takes it as a C float (1.7e-8 relative);
* left to the loop and the grid: the non-saturating loss, R1, EMA, Adam and its settings, batch size; no style
  mixing or path-length regularization (the loop has neither).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import BlockOutputs, Option, at_least

SQRT2 = math.sqrt(2.0)
RATIO = 6192 / 8192  # their hard-coded masked count out of StyleGAN2-256's flattened final-conv features


def masked_count(n: int, ratio: float) -> int:
    """How many of ``n`` features one mask zeroes: ``round(ratio * n)`` (their 6192 of 8192)."""
    return min(n, int(math.floor(ratio * n + 0.5)))


def draw_keep(n: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """A (n,) bool mask, False at ``masked_count(n, ratio)`` positions drawn uniformly without replacement."""
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=generator)[: masked_count(n, ratio)]] = False
    return keep


class EqualLinear(nn.Module):
    """Equalized-learning-rate linear layer (weight N(0, 1), used times 1/sqrt(in); bias 0); with ``activate``,
    the bias is added before a leaky ReLU (0.2) times sqrt(2), as StyleGAN2's ``fused_lrelu``."""

    def __init__(self, n_in: int, n_out: int, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.scale, self.activate = 1 / math.sqrt(n_in), activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale) + self.bias
        return F.leaky_relu(out, 0.2) * SQRT2 if self.activate else out


class ImageHead(nn.Module):
    """The fresh image-level head: flattened features (N, n), masked, -> EqualLinear(n, hidden) with leaky ReLU ->
    EqualLinear(hidden, 1) -> (N,) logits."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.hidden, self.out = EqualLinear(n_in, hidden, activate=True), EqualLinear(hidden, 1)

    def forward(self, features: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is not None:  # zeroed, not rescaled; one mask for every sample
            features = features.masked_fill(~keep, 0.0)
        return self.out(self.hidden(features)).flatten()


class PatchHead(nn.Module):
    """One logit per position of a (N, C, H, W) map: equalized-lr 3x3 convolution to 1 channel (no conv bias), then
    a bias and a leaky ReLU (0.2) times sqrt(2) (their ``ConvLayer(C, 1, 3)``) -> (N, 1, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(1))
        self.scale = 1 / math.sqrt(channels * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight * self.scale, padding=1) + self.bias.view(1, -1, 1, 1)
        return F.leaky_relu(out, 0.2) * SQRT2


@torch.no_grad()
def net_layout(
    nets: ganbench.Nets,
) -> tuple[list[tuple[int, ...] | None], list[bool], list[tuple[int, ...] | None], int]:
    """One pass of G and D on two latents (both in eval mode): each G block's per-sample output shape, whether it
    is G's image, each D block's output shape (None where the pass did not run a block), and the image side."""
    G, D = nets.G, nets.D
    modes = G.training, D.training
    g_watch, d_watch = BlockOutputs(G.blocks), BlockOutputs(D.blocks)
    try:
        G.eval(), D.eval()
        images = G(torch.zeros(2, G.z_dim, device=next(G.parameters()).device))
        D(images)
        shape = [None if out is None else tuple(out.shape[1:]) for out in g_watch.outputs]
        image = [out is not None and out.shape == images.shape and torch.equal(out, images) for out in g_watch.outputs]
        d_shape = [None if out is None else tuple(out.shape[1:]) for out in d_watch.outputs]
        return shape, image, d_shape, images.shape[-1]
    finally:
        g_watch.remove(), d_watch.remove()
        G.train(modes[0]), D.train(modes[1])


def g_consistency_blocks(shapes: list[tuple[int, ...] | None], is_image: list[bool]) -> list[int]:
    """G blocks that output a feature map, but the smallest ones (their 4x4 conv, never drawn) and G's image."""
    maps = [i for i, s in enumerate(shapes) if s is not None and len(s) == 3 and not is_image[i]]
    smallest = min((shapes[i][-1] for i in maps), default=0)
    return [i for i in maps if shapes[i][-1] > smallest]


def d_consistency_blocks(shapes: list[tuple[int, ...] | None], side: int, patch: int) -> list[int]:
    """D blocks whose maps are 1/16 to 1/8 of the image side (theirs: the maps at 32 and 16 px of 256), or the
    patch block when no map is."""
    maps = [i for i, s in enumerate(shapes) if s is not None and len(s) == 3 and side / 16 <= s[-1] <= side / 8]
    return maps or [patch]


def head_blocks(D: nn.Module) -> list[int]:
    """The D blocks whose outputs feed D's head: every block when D has one head per block (Projected GAN's
    per-scale heads), else the last."""
    head = getattr(D, "head", None)
    if isinstance(head, nn.ModuleList) and len(head) == len(D.blocks):
        return list(range(len(D.blocks)))
    return [len(D.blocks) - 1]


def anchor_draw(anchors: torch.Tensor, noise: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Latents from the anchor regions: for each row of ``noise`` (standard normal) an anchor drawn uniformly with
    replacement, moved by ``std`` times that row."""
    index = torch.randint(len(anchors), (len(noise),), generator=generator)
    return anchors[index.to(anchors.device)] + std * noise


def consistency_term(
    source: list[torch.Tensor], adapted: list[torch.Tensor], layer_of_row: list[int], kl_wt: float
) -> torch.Tensor:
    """``kl_wt`` times CDC's consistency in the authors' form (``ganbench.row_consistency``, KL averaged over all
    N (N - 1) entries), row i's distributions taken in block ``layer_of_row[i]``: their G-side and D-side term."""
    return kl_wt * ganbench.row_consistency(source, adapted, layer_of_row, reduction="mean")


def _ratio(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be in [0, 1): the fraction of the head's input features zeroed"


class MaskDis(ganbench.Strategy):
    """CDC with a masked, fresh image-level D head and a D-side consistency term (Zhu et al. 2022/2024)."""

    name = "maskdis"
    card = ganbench.MethodCard(
        paper="Zhu, Ma, Chen & Yuan: Few-shot Image Generation via Masked Discrimination (MaskDis), IEEE TIP "
        "(arXiv 2210.15194)",
        year=2024,
        trains="all of G and D but D's own head, a fresh image-level head and a patch head with D",
        losses="random element masks on the features D's fresh image-level head reads (anchor steps); patch-level "
        "adversarial loss away from the anchors; cross-domain consistency on G features and on D features",
        code="bbzhu-jy16/MaskDis@2d16188",
        parity="tests/plugins/test_maskdis.py",
    )
    options = (
        Option("ratio", float, RATIO, "fraction of the image-level head's input features zeroed at each D pass "
               "(theirs: 6192 of 8192)", check=_ratio),
        Option("kl_wt", float, 2500.0, "weight of both consistency terms (KL per entry, G side and D side)",
               check=at_least(0)),
        Option("anchors", int, 10, "anchor latents (theirs: one per training image)", check=at_least(1)),
        Option("anchor_every", int, 4, "every N-th step trains on anchor latents with the masked image-level D",
               check=at_least(1)),
        Option("anchor_std", float, 0.1, "radius (std) of each anchor region in z", check=at_least(0)),
        Option("patch_block", int, None, "D block whose feature map the patch head reads (default: the first at "
               "most 1/8 of the image side)", check=at_least(0)),
    )  # fmt: skip

    def layout(self, nets: ganbench.Nets) -> dict[str, Any]:
        """Which blocks each part reads, and the head's sizes; one line of GanbenchError when they do not fit."""
        g_shapes, is_image, d_shapes, side = net_layout(nets)
        patch = ganbench.patch_block(d_shapes, side, self.config["patch_block"], "maskdis")
        g_blocks = g_consistency_blocks(g_shapes, is_image)
        if not g_blocks:
            raise ganbench.GanbenchError("maskdis: this G has no intermediate feature map above its smallest for "
                                         "the consistency term")  # fmt: skip
        fed = head_blocks(nets.D)
        if any(d_shapes[b] is None for b in fed):
            raise ganbench.GanbenchError("maskdis: a D block that feeds D's head did not run on a forward pass")
        n = sum(math.prod(d_shapes[b]) for b in fed)
        if masked_count(n, self.config["ratio"]) >= n:
            raise ganbench.GanbenchError(
                f"maskdis:ratio={self.config['ratio']}: masks all {n} features D's head reads; use a smaller ratio"
            )
        return {"patch": patch, "patch_channels": d_shapes[patch][0], "d_blocks": d_consistency_blocks(d_shapes, side,
                patch), "g_blocks": g_blocks, "head_blocks": fed, "n": n, "hidden": d_shapes[fed[-1]][0]}  # fmt: skip

    def check(self, nets):
        self.layout(nets)

    def adapt(self, nets, source):
        if source is None:
            raise ganbench.GanbenchError("maskdis needs a source model")
        nets = super().adapt(nets, source)
        found = self.layout(nets)
        self.patch, self.d_blocks, self.g_blocks = found["patch"], tuple(found["d_blocks"]), tuple(found["g_blocks"])
        self.head_blocks = tuple(found["head_blocks"])
        device = next(nets.D.parameters()).device
        # from the cell's seeded torch stream, in this order: the heads' weights, the anchors, the generator's seed
        self.image_head = ImageHead(found["n"], found["hidden"]).to(device)
        self.patch_head = PatchHead(found["patch_channels"]).to(device)
        self.anchor_z = torch.randn(self.config["anchors"], nets.G.z_dim)
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        nets.D.head.requires_grad_(False)  # never judges: the fresh head does on anchor steps, the patch head else
        # the frozen source D of the D-side term (eval: spectral norms keep their source estimate)
        self.source_D = copy.deepcopy(nets.D).requires_grad_(False).eval()
        return nets

    def needs(self):
        kept = (self.patch, *self.d_blocks, *self.head_blocks)
        return ganbench.Needs(d_features=tuple(sorted(set(kept))), g_features=self.g_blocks, source=True)

    def modules(self):
        return {"image_head": ganbench.StrategyModule(self.image_head, "D"),
                "patch_head": ganbench.StrategyModule(self.patch_head, "D")}  # fmt: skip

    def anchored(self, step: int) -> bool:
        return step % self.config["anchor_every"] == 0

    def begin_step(self, step, z):
        if not self.anchored(step):
            return z
        self.anchor_z = self.anchor_z.to(z.device)
        return anchor_draw(self.anchor_z, z, self.config["anchor_std"], self.generator)

    def discriminator_logits(self, d, step):
        if not self.anchored(step):  # (N, positions): one logit per patch
            return self.patch_head(d.features[self.patch]).flatten(1)
        features = torch.cat([d.features[b].flatten(1) for b in self.head_blocks], dim=1)
        keep = draw_keep(features.shape[1], self.config["ratio"], self.generator)  # a new mask at every D pass
        return self.image_head(features, keep.to(features.device))

    def consistency(self, source: list[torch.Tensor], adapted: list[torch.Tensor]) -> torch.Tensor | None:
        if self.config["kl_wt"] == 0 or len(adapted[0]) < 2:
            return None
        drawn = torch.randint(len(adapted), (len(adapted[0]),), generator=self.generator).tolist()
        # float32, as their distance buffers (and whatever precision the loop's passes ran in)
        source, adapted = [f.float() for f in source], [f.float() for f in adapted]
        return consistency_term(source, adapted, drawn, self.config["kl_wt"])

    @torch.no_grad()
    def source_d_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The frozen source D's outputs of the D-side blocks on ``images``."""
        watcher = BlockOutputs(self.source_D.blocks)
        try:
            self.source_D(images)
            return [watcher.outputs[b] for b in self.d_blocks]
        finally:
            watcher.remove()

    def discriminator_loss(self, nets, step):
        if self.config["kl_wt"] == 0:
            return None
        source = self.source_d_features(step.source.images)  # the source D on the source G's images
        term = self.consistency(source, [step.d_fake.features[b] for b in self.d_blocks])  # fake detached: D alone
        return None if term is None else {"consistency": term}

    def generator_loss(self, nets, step):
        if self.config["kl_wt"] == 0:
            return None
        term = self.consistency([step.source.features[b] for b in self.g_blocks], [step.g[b] for b in self.g_blocks])
        return None if term is None else {"consistency": term}

    def state_dict(self) -> dict[str, Any]:
        return {"anchor_z": self.anchor_z.cpu(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchor_z = state["anchor_z"]
        self.generator.set_state(state["generator"])


@ganbench.hookimpl
def register_strategies(register):
    register(MaskDis)
