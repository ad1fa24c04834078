"""L2-SP (Li, Grandvalet & Davoine, ICML 2018, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks") for GAN transfer: fine-tune every weight of G and D, with a penalty on the squared
distance between each network's weights and their source values (the "starting point")."""

import ganbench
from ganbench import Option, at_least, source_parameters


class L2SP(ganbench.Strategy):
    """Fine-tune all weights with an L2 pull towards the source weights (L2-SP, Li et al. 2018)."""

    name = "l2sp"
    options = (Option("alpha", float, 0.01, "weight of the squared distance to the source weights", check=at_least(0)),)

    def adapt(self, nets, source):
        nets = super().adapt(nets, source)  # loads the source weights
        if source is None:
            raise ganbench.GanbenchError("l2sp needs a source model")
        self.start = {
            "G": source_parameters(nets.G, source.generator),
            "D": source_parameters(nets.D, source.discriminator),
        }
        return nets

    def _pull(self, net, start):
        distance = sum(((p - start[name]) ** 2).sum() for name, p in net.named_parameters())
        return self.config["alpha"] / 2 * distance

    def generator_loss(self, nets, step):
        return self._pull(nets.G, self.start["G"])

    def discriminator_loss(self, nets, step):
        return self._pull(nets.D, self.start["D"])


@ganbench.hookimpl
def register_strategies(register):
    register(L2SP)
