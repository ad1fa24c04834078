"""FreezeD (Mo, Cho & Shin, CVPR-W 2020): fine-tune from the source model with the first ``layers``
discriminator blocks (input side) frozen, so D keeps its low-level source features."""

from __future__ import annotations

import ganbench
from ganbench import Option
from ganbench.registry import at_least


class FreezeD(ganbench.Strategy):
    """Fine-tune with D's first k blocks (input side) frozen (Mo et al. 2020)."""

    name = "freeze-d"
    options = (Option("layers", int, 2, "number of D blocks, from the input side, kept frozen", check=at_least(0)),)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        k = self.config["layers"]
        if k > len(nets.D.blocks):
            raise ganbench.GanbenchError(
                f"freeze-d:layers={k} but the discriminator has only {len(nets.D.blocks)} blocks; "
                f"use layers <= {len(nets.D.blocks)}"
            )
        for block in nets.D.blocks[:k]:
            block.requires_grad_(False)
        return nets


@ganbench.hookimpl
def register_strategies(register):
    register(FreezeD)
