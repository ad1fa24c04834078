"""Nearest-neighbour metrics on features (or flattened pixels): precision, recall, density and coverage of
generated samples, and two memorization scores that hold generated samples against the training shots.

Distances are Euclidean, in float64, on the inputs' device, in row blocks: never an N x M matrix in memory
(5,000 x 5,000 sets of 2,048-d features go through in 128 MiB blocks). Blocks use ``|x|^2 + |y|^2 - 2 x.y``
(a matrix product: fast everywhere), whose cancellation in float32 moves near neighbours by ~1e-2 on
Inception-like features -- the very distances radii and memorization are about -- and by ~1e-6 in float64.
Both sets are first shifted by the first set's mean (distances do not change, the cancellation shrinks:
Inception features are non-negative with a large common mean), and the memorization scores recompute each
nearest distance as ``|x - y|``, so a copy of a shot is at exactly 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ganbench.errors import GanbenchError
from ganbench.metrics.arithmetic import Features, as_float64

BLOCK_ELEMENTS = 1 << 22  # distances per block: 32 MiB of float64 (larger blocks buy no speed on a CPU)


def _sets(what: str, **named: Features) -> list[torch.Tensor]:
    tensors = as_float64(*named.values())
    widths = {t.shape[1] if t.ndim == 2 else None for t in tensors}
    if None in widths or len(widths) != 1:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in zip(named, tensors))
        raise GanbenchError(f"{what} needs (N, d) sets of one width d, got {shapes}")
    origin = tensors[0].mean(0)
    return [t - origin for t in tensors]


def _blocks(x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, distances from rows x[first:first+k] to every row of y), block by block."""
    y_sq = (y * y).sum(1)
    rows = max(1, BLOCK_ELEMENTS // max(1, len(y)))
    for start in range(0, len(x), rows):
        part = x[start : start + rows]
        squared = (part @ y.T).mul_(-2).add_((part * part).sum(1, keepdim=True)).add_(y_sq)  # one block in memory
        yield start, squared.clamp_min_(0).sqrt_()


def _kth_nearest(x: torch.Tensor, k: int, name: str) -> torch.Tensor:
    """Distance from each sample to its k-th nearest other sample of the same set (duplicates of a sample
    count, at distance 0): prdc's radii."""
    if not 1 <= k < len(x):
        raise GanbenchError(f"k={k} nearest neighbours need k >= 1 and more than k {name} samples, got {len(x)}")
    out = []
    for start, block in _blocks(x, x):
        rows = torch.arange(len(block), device=block.device)
        block[rows, rows + start] = torch.inf  # a sample is not its own neighbour
        out.append(block.topk(k, dim=1, largest=False).values[:, -1])
    return torch.cat(out)


def _nearest(x: torch.Tensor, y: torch.Tensor, *, self_excluded: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each row of x's nearest row of y, the row of x itself left out when
    ``self_excluded`` (y is x). The distance is recomputed as ``|x - y_nearest|``: a copy is at exactly 0."""
    index = []
    for start, block in _blocks(x, y):
        if self_excluded:
            rows = torch.arange(len(block), device=block.device)
            block[rows, rows + start] = torch.inf
        index.append(block.min(1).indices)
    index = torch.cat(index)
    return (x - y[index]).norm(dim=1), index


def knn_radii(real: Features, k: int = 5) -> torch.Tensor:
    """The real set's k-NN radii as :func:`prdc` computes them: they depend on the real set alone, so an
    evaluation loop computes them once and passes them back as ``prdc(..., real_radii=...)``."""
    (shifted,) = _sets("prdc", real=real)
    return _kth_nearest(shifted, k, "real")


def prdc(real: Features, fake: Features, k: int = 5, real_radii: torch.Tensor | None = None) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020), exactly as
    the reference ``prdc.compute_prdc`` defines them. With r(x) the distance from x to its k-th nearest other
    sample of its own set, and B(x) the open ball of radius r(x) around x:

    - precision: the fraction of fake samples inside some real ball;
    - recall: the fraction of real samples inside some fake ball;
    - density: the number of real balls a fake sample is in, averaged over fake samples, over k (about 1
      when fake samples are distributed like real ones; above 1 where they crowd dense real regions);
    - coverage: the fraction of real samples whose ball holds at least one fake sample.
    """
    real, fake = _sets("prdc", real=real, fake=fake)
    real_r = _kth_nearest(real, k, "real") if real_radii is None else real_radii.to(real)
    fake_r = _kth_nearest(fake, k, "fake")
    in_real_balls = torch.zeros(len(fake), dtype=torch.float64, device=real.device)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for start, block in _blocks(real, fake):  # rows: real samples, columns: fake samples
        radii = real_r[start : start + len(block), None]
        in_real_balls += (block < radii).sum(0)
        recalled[start : start + len(block)] = (block < fake_r).any(1)
        covered[start : start + len(block)] = block.min(1).values < radii[:, 0]
    return {
        "precision": _mean(in_real_balls > 0),
        "recall": _mean(recalled),
        "density": _mean(in_real_balls) / k,
        "coverage": _mean(covered),
    }


def authenticity(train: Features, generated: Features) -> float:
    """The fraction of generated samples that are authentic, after Alaa et al. 2022, "How faithful is your
    synthetic data?". A generated sample g, whose nearest training sample is t, is authentic when
    ``d(g, t) > d(t, t')``, t' the training sample nearest to t other than t itself: g must sit farther from
    t than t's own closest neighbour does. A copy of a shot (``d(g, t) = 0``) never is; next to a
    duplicated shot (``d(t, t') = 0``) everything but a copy is. 1: nothing near-copied. This is the paper's per-generated-sample
    definition; the authors' released code (and synthcity's copy of it) instead looks up each *real*
    sample's nearest generated sample and indexes the real radii with that generated sample's index."""
    train, generated = _sets("authenticity", train=train, generated=generated)
    if len(train) < 2 or len(generated) < 1:
        raise GanbenchError(
            f"authenticity needs at least 2 training and 1 generated samples, got {len(train)} and {len(generated)}"
        )
    train_r, _ = _nearest(train, train, self_excluded=True)
    distance, nearest = _nearest(generated, train)
    return _mean(distance > train_r[nearest])


def copy_ratio(train: Features, generated: Features, heldout: Features) -> float:
    """Mean distance from generated samples to their nearest training sample over the same mean for held-out
    real samples the model never saw. Below 1, the generator sits closer to its shots than fresh real images
    do (it memorizes); 0, its samples are copies of them."""
    train, generated, heldout = _sets("copy_ratio", train=train, generated=generated, heldout=heldout)
    if min(len(train), len(generated), len(heldout)) < 1:
        raise GanbenchError("copy_ratio needs at least 1 training, 1 generated and 1 held-out sample")
    unseen = _mean(_nearest(heldout, train)[0])
    if unseen == 0:
        raise GanbenchError("copy_ratio: every held-out sample equals a training sample; hold out other images")
    return _mean(_nearest(generated, train)[0]) / unseen


def _mean(values: torch.Tensor) -> float:
    return float(values.double().mean())
