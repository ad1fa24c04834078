"""TransferGAN (Wang et al., ECCV 2018): initialize G and D from the source model and fine-tune every
weight on the target. Freezes nothing, adds nothing, regularizes nothing."""

from __future__ import annotations

import ganbench


class Finetune(ganbench.Strategy):
    """All weights from the source, all trained (TransferGAN, Wang et al. 2018)."""

    name = "finetune"
    card = ganbench.MethodCard(
        paper="Wang, Wu, van de Weijer, Gonzalez-Garcia, Raducanu & Yang: Transferring GANs: generating images from limited data (TransferGAN), ECCV",
        year=2018,
        trains="all of G and D, from the source weights",
    )


@ganbench.hookimpl
def register_strategies(register):
    register(Finetune)
