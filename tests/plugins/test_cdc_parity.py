"""CDC's consistency term against the authors' code: utkarshojha/few-shot-gan-adaptation at commit 5617920
(train.py lines 297-341, run at development time on the fixed features below; the numbers are theirs).

Their term takes, for each row i of a batch of latents, one G layer ``feat_ind[i]``, the softmax over row i's
cosine similarities to the other rows in that layer (source G and adapted G alike), and ``kl_wt`` times torch's
``KLDivLoss()`` (mean over all entries) of the adapted distributions against the source's. ganbench's
``cdc:layers=random,reduction=mean`` computes the same; the features here are built from a seeded recipe (the
source features, then the adapted ones as the source plus noise) and the layer draws are theirs, recorded."""

import pytest
import torch

from ganbench import row_consistency

SHAPES = [(8, 4, 4), (8, 8, 8), (8, 8, 8), (4, 16, 16), (4, 16, 16)]  # layer 0: their 4x4 conv, never drawn


def features(seed, batch, shapes, noise):
    g = torch.Generator().manual_seed(seed)
    source = [torch.randn((batch, *s), generator=g, dtype=torch.float64) for s in shapes]
    adapted = [
        (s + noise * torch.randn(s.shape, generator=g, dtype=torch.float64)).requires_grad_(True) for s in source
    ]
    return source, adapted


@pytest.mark.parametrize(
    ("seed", "batch", "shapes", "noise", "feat_ind", "kl_wt", "theirs"),
    [
        (0, 4, SHAPES, 0.5, [1, 4, 2, 1], 1000, 0.07543493851213297),  # their defaults: batch 4, kl_wt 1000
        (1, 5, SHAPES, 1.0, [3, 1, 2, 4, 1], 10, 0.0006399531219013765),
        (2, 3, [(2, 2, 2)] * 3, 0.7, [2, 2, 1], 1, 0.0022115371283732096),
    ],
)
def test_consistency_equals_the_authors(seed, batch, shapes, noise, feat_ind, kl_wt, theirs):
    source, adapted = features(seed, batch, shapes, noise)
    ours = kl_wt * row_consistency(source, adapted, feat_ind, reduction="mean")
    assert ours.item() == pytest.approx(theirs, rel=1e-5)
    assert ours.dtype == torch.float64


def test_consistency_gradient_equals_the_authors():
    source, adapted = features(2, 3, [(2, 2, 2)] * 3, 0.7)
    row_consistency(source, adapted, [2, 2, 1], reduction="mean").backward()
    assert adapted[0].grad is None or adapted[0].grad.abs().sum() == 0  # layer 0 is never drawn
    theirs = [0.00010311809904951568, 1.6818401310802722e-05]  # their sum of squared gradients, layers 1 and 2
    assert [adapted[i].grad.square().sum().item() for i in (1, 2)] == pytest.approx(theirs, rel=1e-5)
    first = [[0.001552886469902944, -0.0009982498572948164], [-0.0006574357939629249, -0.00028948811494472536]]
    torch.testing.assert_close(adapted[1].grad[0, 0], torch.tensor(first, dtype=torch.float64), rtol=1e-5, atol=0)


def test_batchmean_is_the_per_row_sum():
    source, adapted = features(0, 4, SHAPES, 0.5)
    mean = row_consistency(source, adapted, [1, 4, 2, 1], reduction="mean")
    batchmean = row_consistency(source, adapted, [1, 4, 2, 1], reduction="batchmean")
    assert batchmean.item() == pytest.approx(mean.item() * 3, rel=1e-12)  # N (N - 1) entries vs N rows
