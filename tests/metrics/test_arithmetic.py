"""FID and KID arithmetic in torch float64 against clean-fid's own NumPy formulas on the same features:
``fid_from_feats`` (np.cov + scipy's sqrtm) and ``kernel_distance`` (its subsets drawn after the same
``np.random.seed``). Small widths keep sqrtm cheap; the shapes cover both FID branches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid.fid import fid_from_feats, kernel_distance

from ganbench.errors import GanbenchError
from ganbench.metrics.arithmetic import fid_from_features, kid_from_features

RTOL = 1e-6


def _features(n_a: int, n_b: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 0.3, size=(n_a, d))  # non-negative with a common mean, like Inception pool features
    b = rng.gamma(2.2, 0.3, size=(n_b, d)) + rng.normal(0, 0.05, size=d)
    return a, b


def _rel(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs)


@pytest.mark.parametrize(
    "n_a, n_b, d",
    [
        (30, 40, 64),  # n < d: the SVD of A B^T
        (16, 40, 16),  # min(n) == d: still the SVD
        (17, 40, 16),  # both sets larger than d: the symmetric eigh form
        (300, 200, 24),
    ],
)
def test_fid_equals_cleanfid(n_a, n_b, d):
    a, b = _features(n_a, n_b, d)
    theirs = fid_from_feats(a, b)
    ours = fid_from_features(a, b)
    assert type(ours) is float and ours > 0.1  # different distributions: a distance well above rounding
    assert _rel(ours, theirs) <= RTOL
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ours, rel=1e-12)


def test_fid_of_a_set_with_itself_is_zero_and_symmetric():
    a, b = _features(50, 60, 8)
    assert abs(fid_from_features(a, a)) < 1e-12
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-12)


def test_float32_features_are_computed_in_float64():
    a, b = _features(40, 30, 32)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    exact = fid_from_features(a32.astype(np.float64), b32.astype(np.float64))
    assert fid_from_features(a32, b32) == exact
    assert fid_from_features(torch.from_numpy(a32), torch.from_numpy(b32)) == exact
    kid = kid_from_features(a32.astype(np.float64), b32.astype(np.float64), num_subsets=5, seed=1)
    assert kid_from_features(torch.from_numpy(a32), b32, num_subsets=5, seed=1) == pytest.approx(kid, rel=1e-12)


@pytest.mark.parametrize(
    "n_a, n_b, d, subsets, cap, seed",
    [
        (30, 40, 8, 100, 1000, 0),  # subsets of all 30 images
        (120, 90, 16, 20, 50, 3),  # capped subsets of 50
        (25, 25, 64, 10, 1000, 7),
    ],
)
def test_kid_equals_cleanfid(n_a, n_b, d, subsets, cap, seed):
    a, b = _features(n_a, n_b, d, seed)
    np.random.seed(seed)
    theirs = kernel_distance(a, b, num_subsets=subsets, max_subset_size=cap)
    ours = kid_from_features(a, b, num_subsets=subsets, max_subset_size=cap, seed=seed)
    assert type(ours) is float and abs(theirs) > 1e-3
    assert _rel(ours, theirs) <= RTOL
    other_seed = kid_from_features(a, b, num_subsets=subsets, max_subset_size=cap, seed=seed + 1)
    if min(cap, n_a, n_b) == max(n_a, n_b):  # every subset is all images, reordered: the seed cannot matter
        assert _rel(other_seed, ours) <= 1e-12
    else:
        assert _rel(other_seed, ours) > 1e-3  # the seed picks the subsets


def test_too_few_or_mismatched_features_are_one_line_errors():
    a, b = _features(10, 10, 4)
    with pytest.raises(GanbenchError, match="at least 2 images"):
        fid_from_features(a[:1], b)
    with pytest.raises(GanbenchError, match="at least 2 images"):
        kid_from_features(a, b, max_subset_size=1)
    with pytest.raises(GanbenchError, match=r"one width, got \(10, 4\) and \(10, 3\)"):
        fid_from_features(a, b[:, :3])
    with pytest.raises(GanbenchError, match="one width"):
        kid_from_features(a, b[:, :3])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (this machine has none)")
@pytest.mark.parametrize("n", [100, 3000])  # the SVD branch, then the eigh one at Inception's width
def test_cuda_matches_cpu_and_cleanfid(n):
    a, b = _features(n, n + 50, 2048)
    cuda_a, cuda_b = torch.from_numpy(a).float().cuda(), torch.from_numpy(b).float().cuda()
    cpu_fid = fid_from_features(cuda_a.cpu(), cuda_b.cpu())
    assert _rel(fid_from_features(cuda_a, cuda_b), cpu_fid) <= 1e-9
    a64, b64 = cuda_a.cpu().double().numpy(), cuda_b.cpu().double().numpy()
    np.random.seed(0)
    theirs = kernel_distance(a64, b64, num_subsets=10, max_subset_size=1000)
    assert _rel(kid_from_features(cuda_a, cuda_b, num_subsets=10, seed=0), theirs) <= RTOL
