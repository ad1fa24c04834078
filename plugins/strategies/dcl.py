"""Dual Contrastive Learning (Zhao, Ding, Huang & Cheung, CVPR 2022, "A Closer Look at Few-shot Image
Generation", arXiv 2205.03805).

**The authors released no loss code.** Their repository, yunqing-me/A-Closer-Look-at-FSIG (read at commit
7b837f37e194a0e49e01a15bc960ff8b673f3952, its last), holds only ``model.py`` (CDC's StyleGAN2 with feature taps),
data preparation and FID/KID utilities: no training script, no contrastive loss. This implementation follows the
paper's two InfoNCE terms, and is held to the only public reproduction, a third party's:
btheodorou99/MRI2PET at deb0829d1e9797852e8381db7e30228f1226253d (``src/baselines/models/dclGAN.py``,
``compute_dcl_loss`` of its Generator and Discriminator; ``src/baselines/train_scripts/train_dclGAN.py`` for the
constants). tests/plugins/test_dcl.py holds both terms to the numbers that reproduction's functions compute.

The setup is CDC's (Ojha et al. 2021), which the released ``model.py`` comes from: every weight of G and D
fine-tunes from the source; a frozen copy of the source generator G_s is the anchor (the loop's
``Needs(source=True)`` pass, on the step's own latents). Two terms, each one InfoNCE over cosine similarities of
flattened block features at temperature ``tau``:

* **Generator CL** (added to G's loss, weight ``lambda_g``). For each latent z_i of the batch, the adapted G's
  features G_t^l(z_i) are the anchor, the source G's G_s^l(z_i) the positive, the source G's features of the
  other latents G_s^l(z_j) the negatives:
  ``-log( e^{s_ii} / sum_j e^{s_ij} )``, ``s_ij = cos(G_t^l(z_i), G_s^l(z_j)) / tau``, averaged over i.
* **Discriminator CL** (added to D's loss, weight ``lambda_d``). The adapted D is the encoder: the anchor is D's
  block features of the fake G_t(z_i), the positive D's features of the source G's image G_s(z_i) of the same
  latent (one extra D pass per step, ``StepInfo.discriminate``), the negatives D's features of the real target
  images x_j of the step's batch:
  ``-log( e^{p_i} / (e^{p_i} + sum_j e^{n_ij}) )``, ``p_i = cos(a_i, D^l(G_s(z_i))) / tau``,
  ``n_ij = cos(a_i, D^l(x_j)) / tau``, averaged over i.

Options:

* ``tau`` (0.07), ``lambda_g`` (2), ``lambda_d`` (0.5): the reproduction's ``DCL_TAU``, ``DCL_LAMBDA1``,
  ``DCL_LAMBDA2``; no authors' script confirms them (there is no 10-shot FFHQ script). A weight of 0 drops its
  term (and, for the D term, its extra D pass).
* ``layers=random`` (default): each term reads one block l, drawn uniformly among its candidate blocks at every
  step (one draw for the D term at the D step, one for the G term at the G step), from torch's global generator:
  the cell's seeded stream, which every checkpoint saves and restores, so a resumed cell draws the same blocks.
  ``layers=all``: the mean of the term over every candidate block.
* ``g_blocks`` / ``d_blocks``: the candidate blocks (indices into ``G.blocks`` / ``D.blocks``). Default: every
  G block whose output is a feature map other than G's image (StyleGAN2: the synthesis blocks, 4 px up to the
  image side; DCGAN / ResNet: all but the last, which outputs the image), and every D block whose output is a
  feature map (StyleGAN2: the residual stages, the 4x4 epilogue excluded, as their PatchGAN feature list stops
  before it; Projected GAN: the per-scale heads).
* ``form=paper`` (default): the equations above. ``form=mri2pet``: the reproduction's arithmetic, which differs
  in two places: its G term leaves the positive out of the denominator (``sum_{j != i}``, so the term can be
  negative), and its D term takes the negatives from the first N real images except the one at index i (an
  index artefact: reals are not paired with latents).
* ``d_term_trains``: who minimizes the D term. ``d`` (default): D alone, on the D step (the fake batch
  detached), as the reproduction intends; ``g``: G alone, through the fake batch of the G step, with D's
  features of the source images and of the real batch recomputed under the current D as constants; ``dg``:
  both. The paper's text on this could not be checked.

Deviations from the authors' (unreleased) code, as far as their ``model.py`` and the reproduction show it:

* the G features are ganbench's G block outputs (StyleGAN2: one per resolution, the block's last StyledConv),
  not every StyledConv output (their ``return_feats``: 13 at 256 px);
* the D features are D block outputs (StyleGAN2: each residual stage after the skip sum), not their PatchGAN
  ``feat_list`` (the from-RGB output, then each ResBlock's conv1 and conv2 output, conv2 listed twice, so a
  uniform draw over their list would weigh it double);
* the layer is drawn from torch's seeded generator, uniformly over the candidate blocks, independently for the
  two terms (the reproduction: Python's ``random.randint`` over its blocks, per term);
* the reproduction's G update also receives the gradient of its D loss, DCL term included (its D step does not
  detach the fake batch and G's gradients are not zeroed in between); not reproduced: ``d_term_trains`` chooses
  who minimizes the D term, on purpose;
* the negatives of the D term are the step's real batch, of the fake batch's size (the paper: M real images);
* the source images of the D term are the loop's source-G pass on the step's latents (the one the G term reads,
  in training mode with its own noise draw), judged by D exactly as the loop judges the fake batch
  (augmentation included);
* no CDC patch-level D or anchor latents: their ``model.py`` keeps CDC's PatchGAN with its Extra head, but
  nothing shows DCL trains with it; D's minibatch-std group is the architecture's (theirs: 25, i.e. the batch);
* left to the loop and the grid, not this strategy: the non-saturating loss, R1, EMA, Adam and its learning
  rate, batch size, style mixing and path-length regularization (the loop has neither).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import ganbench
from ganbench import BlockOutputs, Option, parse_int_set

FORMS = ("paper", "mri2pet")


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    """(N, ...) features -> (N, d) rows of unit length, in float32 at least (float64 stays float64)."""
    flat = features.flatten(1)
    return F.normalize(flat.to(torch.promote_types(flat.dtype, torch.float32)), dim=1, eps=1e-12)


def generator_nce(
    adapted: torch.Tensor, source: torch.Tensor, tau: float, positive_in_denominator: bool = True
) -> torch.Tensor:
    """The generator term per sample, shape (N,): anchor ``adapted[i]`` (G_t^l(z_i)), positive ``source[i]``
    (G_s^l(z_i)), negatives ``source[j]``, j != i; ``-log(e^{s_ii} / sum_j e^{s_ij})`` with
    ``s_ij = cos(adapted_i, source_j) / tau``. ``positive_in_denominator=False`` sums the denominator over
    j != i only (the MRI2PET reproduction)."""
    scores = _unit_rows(adapted) @ _unit_rows(source).T / tau
    positive = scores.diagonal()
    if not positive_in_denominator:
        n = scores.shape[0]
        if n < 2:
            raise ganbench.GanbenchError("dcl:form=mri2pet needs a batch of at least 2 (its G term has no negatives)")
        scores = scores.masked_fill(torch.eye(n, dtype=torch.bool, device=scores.device), float("-inf"))
    return torch.logsumexp(scores, dim=1) - positive


def discriminator_nce(
    fake: torch.Tensor, source: torch.Tensor, real: torch.Tensor, tau: float, skip_same_index: bool = False
) -> torch.Tensor:
    """The discriminator term per sample, shape (N,): anchor ``fake[i]`` (D^l(G_t(z_i))), positive ``source[i]``
    (D^l(G_s(z_i))), negatives every ``real[j]`` (D^l(x_j)); ``-log(e^{p_i} / (e^{p_i} + sum_j e^{n_ij}))``.
    ``skip_same_index=True`` takes the negatives from ``real[:N]`` without ``real[i]`` (the MRI2PET
    reproduction; it needs at least as many real images as fakes)."""
    anchor = _unit_rows(fake)
    positive = (anchor * _unit_rows(source)).sum(1, keepdim=True) / tau
    reals = _unit_rows(real)
    n = anchor.shape[0]
    if skip_same_index:
        if reals.shape[0] < n:
            raise ganbench.GanbenchError(f"dcl:form=mri2pet needs at least as many real images as fakes "
                                         f"({reals.shape[0]} < {n})")  # fmt: skip
        reals = reals[:n]
    negatives = anchor @ reals.T / tau
    if skip_same_index:
        negatives = negatives.masked_fill(torch.eye(n, dtype=torch.bool, device=negatives.device), float("-inf"))
    return torch.logsumexp(torch.cat([positive, negatives], dim=1), dim=1) - positive[:, 0]


@torch.no_grad()
def block_maps(nets: ganbench.Nets) -> tuple[list[tuple[int, ...] | None], list[bool], list[tuple[int, ...] | None]]:
    """One pass of G and D on two latents (both in eval mode, so no statistic moves): the per-sample output shape
    of each G block, whether each G block's output is G's image itself, and each D block's output shape (None
    for a block the pass did not run)."""
    G, D = nets.G, nets.D
    modes = G.training, D.training
    g_watch, d_watch = BlockOutputs(G.blocks), BlockOutputs(D.blocks)
    try:
        G.eval(), D.eval()
        device = next(G.parameters()).device
        images = G(torch.zeros(2, G.z_dim, device=device))
        D(images)
        g_shapes = [None if out is None else tuple(out.shape[1:]) for out in g_watch.outputs]
        is_image = [
            out is not None and (out is images or (out.shape == images.shape and torch.equal(out, images)))
            for out in g_watch.outputs
        ]
        d_shapes = [None if out is None else tuple(out.shape[1:]) for out in d_watch.outputs]
        return g_shapes, is_image, d_shapes
    finally:
        g_watch.remove(), d_watch.remove()
        G.train(modes[0]), D.train(modes[1])


def _chosen(which: str, chosen: tuple[int, ...] | None, shapes: list, default: list[int]) -> tuple[int, ...]:
    option = f"{which.lower()}_blocks"
    if chosen is None:
        if not default:
            raise ganbench.GanbenchError(f"dcl: no {which} block of this architecture outputs a feature map; name "
                                         f"the blocks with dcl:{option}=...")  # fmt: skip
        return tuple(default)
    bad = [i for i in chosen if not 0 <= i < len(shapes) or shapes[i] is None]
    if bad or not chosen:
        raise ganbench.GanbenchError(
            f"dcl:{option}={'+'.join(map(str, chosen))}: this {which} has blocks 0-{len(shapes) - 1} "
            f"(feature maps: {'+'.join(map(str, default)) or 'none'}); block(s) {'+'.join(map(str, bad))} do not exist"
        )
    return tuple(chosen)


class DCL(ganbench.Strategy):
    """Fine-tune all of G and D with two InfoNCE terms against the frozen source G: adapted vs source G features,
    and D's features of the fake vs the source image of the same latent, real images as negatives (DCL, Zhao et
    al. 2022)."""

    name = "dcl"
    card = ganbench.MethodCard(
        paper="Zhao, Ding, Huang & Cheung: A Closer Look at Few-shot Image Generation (Dual Contrastive Learning, "
        "DCL), CVPR",
        year=2022,
        trains="all of G and D (frozen source G as the anchor)",
        losses="generator InfoNCE (adapted vs source G block features, other latents' source features as "
        "negatives); discriminator InfoNCE (D features of the fake vs of the source image of the same latent, "
        "real images as negatives); one random block per step",
        code="no authors' loss code (yunqing-me/A-Closer-Look-at-FSIG@7b837f3 has model.py only); checked against "
        "the third-party reproduction btheodorou99/MRI2PET@deb0829 (src/baselines/models/dclGAN.py)",
        parity="tests/plugins/test_dcl.py",
    )
    options = (
        Option("lambda_g", float, 2.0, "weight of the generator contrastive term", check=ganbench.at_least(0)),
        Option("lambda_d", float, 0.5, "weight of the discriminator contrastive term", check=ganbench.at_least(0)),
        Option("tau", float, 0.07, "temperature of both terms", check=lambda v: None if v > 0 else "must be > 0"),
        Option("layers", str, "random", "one candidate block per term, drawn each step (random), or the mean over "
               "all candidate blocks (all)", choices=("random", "all")),
        Option("g_blocks", parse_int_set, None, "G blocks the generator term reads (default: every block whose "
               "output is a feature map other than the image)"),
        Option("d_blocks", parse_int_set, None, "D blocks the discriminator term reads (default: every block whose "
               "output is a feature map)"),
        Option("form", str, "paper", "paper: the paper's InfoNCE; mri2pet: the reproduction's (G term without "
               "the positive in its denominator, D term without the real image of the same index)", choices=FORMS),
        Option("d_term_trains", str, "d", "who minimizes the discriminator term: d (D, on the D step), g (G, "
               "through the G step's fake batch) or dg (both)", choices=("d", "g", "dg")),
    )  # fmt: skip

    # ---------------------------------------------------------------------------------------- setup

    def candidates(self, nets: ganbench.Nets) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The G and D blocks each term draws from (the options, or the feature-map blocks)."""
        g_shapes, is_image, d_shapes = block_maps(nets)
        g_maps = [i for i, s in enumerate(g_shapes) if s is not None and len(s) == 3 and not is_image[i]]
        d_maps = [i for i, s in enumerate(d_shapes) if s is not None and len(s) == 3]
        g = _chosen("G", self.config["g_blocks"], g_shapes, g_maps) if self.config["lambda_g"] > 0 else ()
        d = _chosen("D", self.config["d_blocks"], d_shapes, d_maps) if self.config["lambda_d"] > 0 else ()
        return g, d

    def check(self, nets):
        self.candidates(nets)

    def adapt(self, nets, source):
        if source is None:
            raise ganbench.GanbenchError("dcl needs a source model (its contrastive terms compare with the source G)")
        nets = super().adapt(nets, source)  # every weight of G and D trains, as built
        self.g_blocks, self.d_blocks = self.candidates(nets)
        return nets

    def needs(self):
        return ganbench.Needs(
            g_features=self.g_blocks, d_features=self.d_blocks, source=bool(self.g_blocks or self.d_blocks)
        )

    # ---------------------------------------------------------------------------------------- losses

    def _blocks(self, candidates: tuple[int, ...]) -> tuple[int, ...]:
        """The blocks a term reads this time: one drawn from torch's seeded stream, or all of them."""
        if self.config["layers"] == "all":
            return candidates
        return (candidates[int(torch.randint(len(candidates), ()))],)

    def generator_term(self, step: ganbench.StepInfo) -> torch.Tensor:
        """``lambda_g`` times the generator InfoNCE on this step's adapted and source G features."""
        source = step.source
        paper = self.config["form"] == "paper"
        terms = [
            generator_nce(step.g[b], source.features[b], self.config["tau"], positive_in_denominator=paper).mean()
            for b in self._blocks(self.g_blocks)
        ]
        return self.config["lambda_g"] * torch.stack(terms).mean()

    def discriminator_term(self, fake, on_source, on_real) -> torch.Tensor:
        """``lambda_d`` times the discriminator InfoNCE on D's passes over the fake batch (anchors), the source
        images of the same latents (positives) and the real batch (negatives)."""
        skip = self.config["form"] == "mri2pet"
        terms = [
            discriminator_nce(fake.features[b], on_source.features[b], on_real.features[b], self.config["tau"],
                              skip_same_index=skip).mean()
            for b in self._blocks(self.d_blocks)
        ]  # fmt: skip
        return self.config["lambda_d"] * torch.stack(terms).mean()

    def discriminator_loss(self, nets, step):
        if not self.d_blocks or "d" not in self.config["d_term_trains"]:
            return None
        on_source = step.discriminate(step.source.images, "fake")  # G_s(z_i) through the adapted D
        return {"dcl_d": self.discriminator_term(step.d_fake, on_source, step.d_real)}

    def generator_loss(self, nets, step):
        terms: dict[str, torch.Tensor] = {}
        if self.g_blocks:
            terms["dcl_g"] = self.generator_term(step)
        if self.d_blocks and "g" in self.config["d_term_trains"]:
            with torch.no_grad():  # constants for G, under the D that judges this G step
                on_source = step.discriminate(step.source.images, "fake")
                on_real = step.discriminate(step.real, "real")
            terms["dcl_d_on_g"] = self.discriminator_term(step.d_fake, on_source, on_real)
        return terms or None

    # ---------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        return {}  # the block draws come from torch's global stream, which every checkpoint saves


@ganbench.hookimpl
def register_strategies(register):
    register(DCL)
