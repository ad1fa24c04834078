"""Cross-domain correspondence (Ojha, Li, Lu, Efros, Lee, Shechtman & Zhang, CVPR 2021, "Few-shot Image
Generation via Cross-domain Correspondence").

Fine-tunes every weight, and keeps a frozen copy of the source generator as an anchor. Two parts, as the
paper:

* **Cross-domain consistency.** For each batch, the pairwise similarities between the samples' intermediate
  G features are turned into one distribution per sample (softmax over the other samples); a KL term asks
  the adapted G to keep the source's distributions, so the relative structure of the latent space -- which
  z's look alike -- survives adaptation while appearance changes.
* **Anchor regions and a patch-level discriminator.** With 10 images, only a few latents can be held to
  whole-image realism. ``anchors`` latents are drawn once; every ``anchor_every``-th step trains on latents
  from small balls (std ``anchor_std``) around them, judged by the whole-image D; the other steps train on
  random latents judged only patch by patch: a 3x3 convolution head on the feature map one D block outputs
  (by default the first at 1/8 of the image side or smaller: 32x32 at 256 px, where the paper's code reads
  it), one logit per patch. The head is a strategy module trained with D (and checkpointed with it).

``cdc:patch=false`` keeps only the consistency term.

Checked against the authors' code (utkarshojha/few-shot-gan-adaptation at 5617920, read and run at development
time; tests/plugins/test_cdc_parity.py holds ``row_consistency`` to their numbers). ``cdc:layers=random,
reduction=mean,lambda=1000`` is their consistency term; the defaults differ, and so does the rest.

Deviations from the authors' code:

* layers: every intermediate G block, averaged (theirs: one StyledConv per row, drawn each step, 256 px
  included, the 4x4 one never); reduction: KL per row (``batchmean``) with lambda 10 (theirs: per entry, with
  kl_wt 1000, i.e. 333 in per-row units at batch 4);
* latents: the consistency term uses the step's own latents and features (theirs: a fresh batch of 4);
* anchors: taken in turn, std 0.05, the first anchor step is step 4, one draw per step (theirs: drawn with
  replacement, std 0.1, from step 0, separate draws for the D and the G step);
* the patch head: a plain 3x3 convolution with a bias on the output of the D block at 1/8 of the image side
  (theirs: an equalized-learning-rate convolution and a leaky ReLU on the residual branch of the 32 px block);
* the source: the cell's source G as trained (theirs: the checkpoint's ``g``, not ``g_ema``); no style mixing
  or path-length regularization (the loop has neither).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ganbench
from ganbench import Option, at_least, block_feature_shapes, patch_block, row_consistency, similarity_distributions


def anchor_latents(anchors: torch.Tensor, turn: int, noise: torch.Tensor, std: float) -> torch.Tensor:
    """Latents from the anchor regions: the anchors taken in turn (turn 0: the first ``len(noise)``), each
    moved by ``std`` times the matching row of ``noise`` (standard normal, the loop's draw)."""
    n, k = noise.shape[0], anchors.shape[0]
    index = (torch.arange(n, device=anchors.device) + turn * n) % k
    return anchors[index] + std * noise


class CDC(ganbench.Strategy):
    """Fine-tune all weights, a cross-domain consistency loss against the frozen source G, and anchor regions
    with a patch-level D elsewhere (Ojha et al. 2021)."""

    name = "cdc"
    card = ganbench.MethodCard(
        paper="Ojha, Li, Lu, Efros, Lee, Shechtman & Zhang: Few-shot Image Generation via Cross-domain Correspondence (CDC), CVPR",
        year=2021,
        trains="all of G and D, a patch head on one D block",
        losses="cross-domain consistency (KL of pairwise-similarity distributions, adapted vs source G); patch-level adversarial loss away from the anchors",
        code="utkarshojha/few-shot-gan-adaptation@5617920",
        parity="tests/plugins/test_cdc_parity.py",
    )
    options = (
        Option("lambda", float, 10.0, "weight of the consistency loss", check=at_least(0)),
        Option("patch", bool, True, "anchor regions + patch-level D (false: the consistency loss only)"),
        Option("anchors", int, 10, "anchor latents (the paper: one per training image)", check=at_least(1)),
        Option("anchor_every", int, 4, "every N-th step trains on anchor latents with the image-level D",
               check=at_least(1)),
        Option("anchor_std", float, 0.05, "radius (std) of each anchor region in z", check=at_least(0)),
        Option("patch_block", int, None, "D block whose feature map the patch head reads (default: the first "
               "at most 1/8 of the image side)", check=at_least(0)),
        Option("layers", str, "all", "consistency over every intermediate G block, averaged (all), or one block "
               "per sample drawn each step (random: the authors' code)", choices=("all", "random")),
        Option("reduction", str, "batchmean", "KL reduction: per sample (batchmean) or per entry (mean: the "
               "authors' code, with lambda 1000)", choices=("batchmean", "mean")),
    )  # fmt: skip

    def check(self, nets):
        if self.config["patch"]:  # the patch head's block must exist and output a feature map
            patch_block(*block_feature_shapes(nets), self.config["patch_block"], "cdc", "cdc:patch=false")

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        if source is None:
            raise ganbench.GanbenchError("cdc needs a source model")
        self.consistency_blocks = tuple(range(len(nets.G.blocks) - 1))  # intermediate blocks, not the image
        self.patch_head: nn.Conv2d | None = None
        self.patch_level = False
        if not self.config["patch"]:
            return nets
        shapes, side = block_feature_shapes(nets)
        device = next(nets.D.parameters()).device
        self.block = patch_block(shapes, side, self.config["patch_block"], "cdc", "cdc:patch=false")
        self.patch_head = nn.Conv2d(shapes[self.block][0], 1, 3, padding=1).to(device)  # one logit per patch
        self.anchor_z = torch.randn(self.config["anchors"], nets.G.z_dim)  # the cell's seeded torch RNG
        return nets

    def needs(self):
        patch = (self.block,) if self.patch_head is not None else ()
        return ganbench.Needs(g_features=self.consistency_blocks, source=True, d_features=patch)

    def modules(self):
        return {"patch_head": ganbench.StrategyModule(self.patch_head, "D")} if self.patch_head is not None else {}

    def begin_step(self, step, z):
        if self.patch_head is None:
            return z
        anchored = step % self.config["anchor_every"] == 0
        self.patch_level = not anchored
        if not anchored:
            return z
        self.anchor_z = self.anchor_z.to(z.device)
        turn = step // self.config["anchor_every"] - 1
        return anchor_latents(self.anchor_z, turn, z, self.config["anchor_std"])

    def discriminator_logits(self, d, step):
        # the whole of D runs on patch steps too (its blocks after the patch block are the cheap, low-resolution
        # ones): stopping it early would need each architecture's D to be a plain chain of its blocks
        return self.patch_head(d.features[self.block]).flatten(1) if self.patch_level else d.logits

    def generator_loss(self, nets, step):
        source = step.source  # the frozen source G on this step's latents
        blocks, reduction = self.consistency_blocks, self.config["reduction"]
        if self.config["layers"] == "random":  # one block per sample, from the cell's seeded torch stream
            drawn = torch.randint(len(blocks), (len(step.z),)).tolist()
            source_feats, adapted = [source.features[b] for b in blocks], [step.g[b] for b in blocks]
            return self.config["lambda"] * row_consistency(source_feats, adapted, drawn, reduction)
        terms = [
            row_consistency([source.features[i]], [step.g[i]], [0] * len(step.z), reduction)
            if reduction == "mean" else
            F.kl_div(similarity_distributions(step.g[i]).log(), similarity_distributions(source.features[i]),
                     reduction="batchmean")
            for i in blocks
        ]  # fmt: skip
        return self.config["lambda"] * torch.stack(terms).mean() if terms else None

    def state_dict(self) -> dict[str, Any]:
        return {"anchor_z": self.anchor_z.cpu()} if self.patch_head is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "anchor_z" in state:
            self.anchor_z = state["anchor_z"]


@ganbench.hookimpl
def register_strategies(register):
    register(CDC)
