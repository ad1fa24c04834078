import pytest
import torch
from ganbench_l2sp import L2SP

from ganbench.testing import check_strategy, fake_source, tiny_nets


def test_l2sp_passes_the_conformance_checks():
    counts = check_strategy(L2SP(alpha=0.1))
    assert counts["trainable"] == counts["total"]


def test_the_pull_is_zero_at_the_source_and_grows_with_distance():
    strategy = L2SP(alpha=2.0)
    nets = strategy.adapt(tiny_nets(), fake_source())
    assert strategy.generator_loss(nets, None).item() == 0.0
    with torch.no_grad():
        nets.D.head.weight.add_(0.5)
    assert strategy.discriminator_loss(nets, None).item() == pytest.approx(nets.D.head.weight.numel() * 0.25)
