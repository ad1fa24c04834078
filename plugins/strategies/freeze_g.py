"""FreezeG: the generator-side counterpart of FreezeD, from the public StyleGAN2 transfer recipe of
B. Lee (2020, "FreezeG"). Fine-tune from the source model with the first ``layers`` generator blocks
(latent side: coarse structure) frozen, so only the later, appearance-level blocks adapt to the target.
D is fine-tuned fully."""

from __future__ import annotations

import ganbench
from ganbench import Option, at_least, freeze_first


class FreezeG(ganbench.Strategy):
    """Fine-tune with G's first k blocks (latent side) frozen (FreezeG)."""

    name = "freeze-g"
    card = ganbench.MethodCard(
        paper="Lee: FreezeG (a public StyleGAN2 transfer recipe, no paper)",
        year=2020,
        trains="G but its first `layers` blocks (latent side); all of D",
    )
    options = (Option("layers", int, 1, "number of G blocks, from the latent side, kept frozen", check=at_least(0)),)

    def check(self, nets):
        """layers at most the net's blocks (freezing the check's own nets says so in adapt's words)."""
        freeze_first(nets.G.blocks, self.config["layers"], "the generator", "freeze-g:layers")

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)
        freeze_first(nets.G.blocks, self.config["layers"], "the generator", "freeze-g:layers")
        return nets


@ganbench.hookimpl
def register_strategies(register):
    register(FreezeG)
