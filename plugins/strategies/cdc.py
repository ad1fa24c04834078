"""Cross-domain correspondence (Ojha, Li, Lu, Efros, Lee, Shechtman & Zhang, CVPR 2021, "Few-shot Image
Generation via Cross-domain Correspondence").

Fine-tunes every weight, and keeps a frozen copy of the source generator as an anchor. For each batch, the
pairwise similarities between the samples' intermediate G features are turned into one distribution per
sample (softmax over the other samples); a KL term asks the adapted G to keep the source's distributions,
so the relative structure of the latent space -- which z's look alike -- survives adaptation while
appearance changes. The paper's second component (a patch-level discriminator for anchor regions) is not
included.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

import ganbench
from ganbench import BlockOutputs, Option, at_least


def similarity_distributions(features: torch.Tensor) -> torch.Tensor:
    """(N, ...) features -> (N, N-1) softmax over each sample's cosine similarity to the others."""
    flat = F.normalize(features.flatten(1), dim=1)
    sim = flat @ flat.T
    n = sim.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    return F.softmax(sim[off_diagonal].view(n, n - 1), dim=1)


class CDC(ganbench.Strategy):
    """Fine-tune all weights plus a cross-domain consistency loss against the frozen source G (Ojha et al. 2021)."""

    name = "cdc"
    options = (Option("lambda", float, 10.0, "weight of the consistency loss", check=at_least(0)),)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        if source is None:
            raise ganbench.GanbenchError("cdc needs a source model")
        self.anchor = copy.deepcopy(nets.G).requires_grad_(False)
        self.anchor_features = BlockOutputs(self.anchor.blocks)
        self.features = BlockOutputs(nets.G.blocks)  # filled by the training loop's G(z)
        return nets

    def generator_loss(self, nets, step):
        with torch.no_grad():
            self.anchor(step.z)
        layers = range(len(self.features.outputs) - 1)  # intermediate blocks, not the image
        terms = []
        for i in layers:
            target = similarity_distributions(self.anchor_features.outputs[i])
            adapted = similarity_distributions(self.features.outputs[i])
            terms.append(F.kl_div(adapted.log(), target, reduction="batchmean"))
        return self.config["lambda"] * torch.stack(terms).mean() if terms else None


@ganbench.hookimpl
def register_strategies(register):
    register(CDC)
