"""FreezeD (Mo, Cho & Shin, CVPR-W 2020): fine-tune from the source model with the first ``layers``
discriminator blocks (input side) frozen, so D keeps its low-level source features."""

from __future__ import annotations

import ganbench
from ganbench import Option, at_least, freeze_first


class FreezeD(ganbench.Strategy):
    """Fine-tune with D's first k blocks (input side) frozen (Mo et al. 2020)."""

    name = "freeze-d"
    card = ganbench.MethodCard(
        paper="Mo, Cho & Shin: Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs (FreezeD), CVPR-W",
        year=2020,
        trains="all of G; D but its first `layers` blocks (input side)",
    )
    options = (Option("layers", int, 2, "number of D blocks, from the input side, kept frozen", check=at_least(0)),)

    def check(self, nets):
        """layers at most the net's blocks (freezing the check's own nets says so in adapt's words)."""
        freeze_first(nets.D.blocks, self.config["layers"], "the discriminator", "freeze-d:layers")

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        freeze_first(nets.D.blocks, self.config["layers"], "the discriminator", "freeze-d:layers")
        return nets


@ganbench.hookimpl
def register_strategies(register):
    register(FreezeD)
