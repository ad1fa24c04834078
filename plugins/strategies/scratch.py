"""Training from scratch: random initialization, no source model. The baseline every transfer strategy
must beat, at the same fine-tuning budget."""

from __future__ import annotations

import ganbench


class Scratch(ganbench.Strategy):
    """Random init, every weight trained on the target only (the baseline)."""

    name = "scratch"
    uses_source = False


@ganbench.hookimpl
def register_strategies(register):
    register(Scratch)
