"""Elastic weight consolidation for few-shot GAN adaptation (Li, Zhang, Liu, Yang & Wang, NeurIPS 2020,
"Few-shot Image Generation with Elastic Weight Consolidation").

Fine-tunes every weight, and regularizes G: each weight is pulled back towards its source value in
proportion to its Fisher information under the source model, ``F = E_z[(d log D(G(z)) / d theta)^2]``,
estimated once from the frozen source G and D before training. Important weights barely move; the rest
adapt freely. Here the Fisher values are normalized to mean 1, and the penalty is
``lambda * mean_i F_i (theta_i - theta_source_i)^2``, so ``lambda`` does not depend on the model's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import ganbench
from ganbench import Option, at_least, source_parameters


def fisher_information(G, D, samples: int, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of G's parameters under log D(G(z)), averaged over mini-batches."""
    device = next(G.parameters()).device
    params = {name: p for name, p in G.named_parameters()}
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    generator = torch.Generator(device=device).manual_seed(seed)
    batches = max(1, samples // batch)
    was_training = G.training
    G.eval()  # batch-norm statistics of the source model are left as they are
    for _ in range(batches):
        z = torch.randn(batch, G.z_dim, device=device, generator=generator)
        log_likelihood = F.logsigmoid(D(G(z))).mean()
        grads = torch.autograd.grad(log_likelihood, list(params.values()), allow_unused=True)
        for (name, _), grad in zip(params.items(), grads):
            if grad is not None:
                fisher[name] += grad.detach() ** 2 / batches
    G.train(was_training)
    total = sum(f.sum() for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    mean = (total / count).clamp_min(1e-30)
    return {name: f / mean for name, f in fisher.items()}


class EWC(ganbench.Strategy):
    """Fine-tune all weights; G pulled to the source in proportion to its Fisher information (Li et al. 2020)."""

    name = "ewc"
    card = ganbench.MethodCard(
        paper="Li, Zhang, Liu, Yang & Wang: Few-shot Image Generation with Elastic Weight Consolidation, NeurIPS",
        year=2020,
        trains="all of G and D",
        losses="Fisher-weighted L2 pull of G towards the source (EWC)",
    )
    options = (
        Option("lambda", float, 1e4, "weight of the Fisher-weighted pull towards the source", check=at_least(0)),
        Option("fisher_samples", int, 256, "latents used to estimate the Fisher information", check=at_least(1)),
    )

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        if source is None:
            raise ganbench.GanbenchError("ewc needs a source model")
        self.anchor = source_parameters(nets.G, source.generator)
        batch = min(32, self.config["fisher_samples"])
        self.fisher = fisher_information(nets.G, nets.D, self.config["fisher_samples"], batch, seed=0)
        self.count = sum(f.numel() for f in self.fisher.values())
        return nets

    def generator_loss(self, nets, step):
        penalty = sum((self.fisher[name] * (p - self.anchor[name]) ** 2).sum() for name, p in nets.G.named_parameters())
        return self.config["lambda"] * penalty / self.count


@ganbench.hookimpl
def register_strategies(register):
    register(EWC)
