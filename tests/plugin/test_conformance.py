"""The ganbench.testing checks, run over every registered plugin (timm-style)."""

import pytest
from tiny_settings import TINY_ARCH_OPTIONS

from ganbench.plugin.manager import load_registry
from ganbench.testing import check_architecture, check_dataset, check_metric, check_strategy, tiny_architecture

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
    """Every strategy on every architecture (tiny widths): trains, freezes what it says, deterministic."""
    counts = check_strategy(entry.cls(), tiny(arch_entry))
    assert 0 < counts["trainable"] <= counts["total"]


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
