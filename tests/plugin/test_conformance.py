"""The ganbench.testing checks, run over every registered plugin (timm-style)."""

import re

import pytest
import torch
from tiny_settings import TINY_ARCH_OPTIONS, tiny_strategy

from ganbench import Strategy
from ganbench.plugin.manager import load_registry
from ganbench.testing import (
    check_architecture,
    check_dataset,
    check_metric,
    check_strategy,
    refusal,
    tiny_architecture,
)

REGISTRY = load_registry()


def _entries(kind):
    return [pytest.param(e, id=e.name) for e in REGISTRY.entries(kind)]


# Options that make any architecture tiny (each one applies where the architecture declares it), so every
# strategy can be run on every architecture in seconds.
TINY = TINY_ARCH_OPTIONS


def tiny(entry):
    declared = {o.name for o in entry.options}
    return entry.cls(**{k: v for k, v in TINY.items() if k in declared})


@pytest.mark.parametrize("entry", _entries("architecture"))
@pytest.mark.parametrize("channels", [1, 3])
def test_architecture_contract(entry, channels):
    arch = tiny(entry)  # tiny widths: every declared resolution (stylegan2's go to 1024 px)
    for resolution in arch.resolutions:
        counts = check_architecture(arch, resolution=resolution, channels=channels)
        assert counts["params_g"] > 0 and counts["params_d"] > 0


@pytest.mark.parametrize("entry", _entries("strategy"))
@pytest.mark.parametrize("arch_entry", _entries("architecture"))
def test_strategy_contract(entry, arch_entry):
    """Every strategy on every architecture it applies to (tiny widths): trains, freezes what it says,
    deterministic, resumes exactly; on the others, its check() refuses in one line (a W-space method on DCGAN)."""
    strategy, arch = tiny_strategy(entry), tiny(arch_entry)
    if refusal(strategy, arch) is not None:
        assert arch_entry.name in ("dcgan", "resnet-sngan", "projected"), "only W-less nets may be refused"
        return
    counts = check_strategy(strategy, arch)
    assert 0 < counts["trainable"] <= counts["total"]


@pytest.mark.parametrize("entry", _entries("strategy"))
def test_every_strategy_applies_to_a_built_in_architecture(entry):
    applies = [e.name for e in REGISTRY.entries("architecture") if refusal(tiny_strategy(entry), tiny(e)) is None]
    assert "stylegan2" in applies and "stylegan2-lite" in applies  # the few-shot papers' architecture


def test_strategies_train_what_they_say():
    """Trainable counts on the tiny DCGAN, derived from its layer shapes."""
    reg, arch = REGISTRY, tiny_architecture()
    G, D = arch.build(32, 1)
    total_g = sum(p.numel() for p in G.parameters())
    total_d = sum(p.numel() for p in D.parameters())
    assert check_strategy(reg.get("strategy", "scratch").cls()) == {
        "trainable": total_g + total_d,
        "total": total_g + total_d,
    }
    assert check_strategy(reg.get("strategy", "finetune").cls())["trainable"] == total_g + total_d
    frozen = sum(p.numel() for p in D.blocks[:2].parameters())
    assert check_strategy(reg.get("strategy", "freeze-d").cls(layers=2))["trainable"] == total_g + total_d - frozen
    adapter = check_strategy(reg.get("strategy", "adapter").cls(rank=1))
    head = sum(p.numel() for p in D.head.parameters())
    # rank-1 updates: one row and one column per weight matrix (rows = dim 0, cols = the rest)
    lora = sum(
        w.shape[0] + w[0].numel()
        for net in (G, D)
        for n, w in net.blocks.named_parameters()
        if n.endswith("weight") and w.ndim == 4
    )
    assert adapter["trainable"] == lora + head
    assert adapter["total"] == total_g + total_d + lora


def test_fake_sources_are_trained_once_and_handed_out_as_copies():
    """A fake source is trained once per architecture and size; every call gets the numbers (and leaves torch's
    generator where) a first call does, in tensors of its own."""
    from ganbench.testing import _train_fake_source, fake_source

    arch = tiny_architecture()
    trained_g, trained_d, rng_after = _train_fake_source(arch, 32, 1)
    first = fake_source(arch)
    assert torch.equal(torch.get_rng_state(), rng_after)
    for tensor in (*first.generator.values(), *first.discriminator.values()):
        tensor.add_(1)  # a caller that modifies its copy
    torch.manual_seed(99)
    again = fake_source(tiny_architecture())  # another object of the same architecture and options
    assert torch.equal(torch.get_rng_state(), rng_after)
    assert again.generator.keys() == trained_g.keys() and again.discriminator.keys() == trained_d.keys()
    assert all(torch.equal(again.generator[k], v) for k, v in trained_g.items())
    assert all(torch.equal(again.discriminator[k], v) for k, v in trained_d.items())
    other = fake_source(REGISTRY.create(REGISTRY.resolve("architecture", "dcgan:width=8,z_dim=8")))
    assert other.generator[next(iter(trained_g))].shape != next(iter(trained_g.values())).shape


class _Doubling(Strategy):
    """Scratch training plus a G term whose weight doubles at every step: state that changes in training."""

    name = "doubling"
    uses_source = False

    def adapt(self, nets, source):
        self.weight = torch.ones(())
        return nets

    def generator_loss(self, nets, step):
        self.weight = self.weight * 2
        return self.weight * step.fake.square().mean()


class _Unsaved(_Doubling):
    """Keeps its weight out of the checkpoint: a resumed cell starts it over."""


class _Unrestored(_Doubling):
    """Saves its weight but never takes it back."""

    def state_dict(self):
        return {"weight": self.weight}


class _NotPlainData(_Doubling):
    """Saves an object a checkpoint cannot hold."""

    def state_dict(self):
        return {"weight": self.weight, "schedule": object()}

    def load_state_dict(self, state):
        self.weight = state["weight"]


class _RoundTrips(_Unrestored):
    def load_state_dict(self, state):
        self.weight = state["weight"]


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (_Unsaved, "a run resumed after step 1 of 3 ends with another G than the uninterrupted run"),
        (_Unrestored, "gives back another state: state['weight'] holds other values"),
        (_NotPlainData, "a checkpoint holding its state cannot be loaded back"),
    ],
)  # fmt: skip
def test_check_strategy_refuses_state_that_does_not_round_trip(strategy, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_strategy(strategy())
    assert check_strategy(_RoundTrips())["trainable"] > 0


def test_freeze_d_refuses_more_layers_than_d_has():
    from ganbench.errors import GanbenchError
    from ganbench.testing import tiny_nets

    strategy = REGISTRY.get("strategy", "freeze-d").cls(layers=9)
    with pytest.raises(GanbenchError, match="only 3 blocks"):
        strategy.adapt(tiny_nets(), None)


@pytest.mark.parametrize("entry", _entries("dataset"))
def test_dataset_contract(entry, monkeypatch):
    from ganbench.data.roots import DataNotFound

    monkeypatch.setenv("GANBENCH_OFFLINE", "1")  # the data already on this machine; never a download
    try:
        counts = check_dataset(entry.cls())
    except DataNotFound as exc:
        # file-backed datasets absent from this machine must say, in one line, what to do (their parsing is
        # tested on files written in their formats: tests/plugins/test_datasets.py)
        message = str(exc)
        assert "\n" not in message and entry.name in message
        assert "path=" in message or "GANBENCH_DATA" in message or "/" in message, message
        return
    assert counts["images"] == entry.cls().size_hint()


@pytest.fixture(scope="session")
def random_alexnet(tmp_path_factory):
    """torchvision's AlexNet layout with random weights: intra-LPIPS's trunk is a download this machine lacks."""
    import torch
    import torchvision

    path = tmp_path_factory.mktemp("lpips") / "random-alexnet.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


@pytest.mark.parametrize("entry", _entries("metric"))
def test_metric_contract(entry, session_cache, random_alexnet):
    names = {o.name for o in entry.cls.declared_options()}
    config = {"backbone_weights": str(random_alexnet)} if "backbone_weights" in names else {}
    values = check_metric(entry.cls(**config), session_cache)
    assert all(v == v for v in values.values())
