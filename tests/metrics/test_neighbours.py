"""Precision/recall/density/coverage and the memorization scores: hand cases worked out on paper, agreement
with clovaai's ``prdc`` package, and each paper's formula written out with plain loops on small sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganbench.errors import GanbenchError
from ganbench.metrics import neighbours
from ganbench.metrics.neighbours import authenticity, copy_ratio, prdc

KEYS = ("precision", "recall", "density", "coverage")


def _points(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def _cloud(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, d))


# -- the papers' formulas, one sample at a time -----------------------------------------------------------


def _kth_other(points: list, i: int, k: int) -> float:
    return sorted(math.dist(points[i], q) for j, q in enumerate(points) if j != i)[k - 1]


def _brute_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """Kynkaanniemi et al. 2019 and Naeem et al. 2020, with prdc's strict ``<`` (the papers write ``<=``;
    the same on data without ties)."""
    real, fake = real.tolist(), fake.tolist()
    r_real = [_kth_other(real, i, k) for i in range(len(real))]
    r_fake = [_kth_other(fake, j, k) for j in range(len(fake))]
    d = [[math.dist(x, y) for y in fake] for x in real]
    rows, cols = range(len(real)), range(len(fake))
    return {
        "precision": sum(any(d[i][j] < r_real[i] for i in rows) for j in cols) / len(fake),
        "recall": sum(any(d[i][j] < r_fake[j] for j in cols) for i in rows) / len(real),
        "density": sum(d[i][j] < r_real[i] for i in rows for j in cols) / (k * len(fake)),
        "coverage": sum(min(d[i]) < r_real[i] for i in rows) / len(real),
    }


def _nearest_index(point: list, points: list) -> int:
    return min(range(len(points)), key=lambda i: math.dist(point, points[i]))


def _brute_authenticity(train: np.ndarray, generated: np.ndarray) -> float:
    train, generated = train.tolist(), generated.tolist()
    authentic = 0
    for g in generated:
        t = _nearest_index(g, train)
        authentic += math.dist(g, train[t]) > _kth_other(train, t, 1)
    return authentic / len(generated)


def _brute_copy_ratio(train: np.ndarray, generated: np.ndarray, heldout: np.ndarray) -> float:
    train = train.tolist()

    def mean_nearest(points: np.ndarray) -> float:
        return sum(min(math.dist(p, t) for t in train) for p in points.tolist()) / len(points)

    return mean_nearest(generated) / mean_nearest(heldout)


# -- prdc ---------------------------------------------------------------------------------------------------


def test_prdc_hand_case():
    """Real 0, 1, 2, 3 (k=1 radii all 1); fake 0.5, 0.7, 9 (radii 0.2, 0.2, 8.3). Fake 0.5 and 0.7 lie in the
    balls of real 0 and 1, fake 9 in none: precision 2/3, density (2 + 2 + 0) / 3. Real 1, 2, 3 lie in fake
    9's wide ball, real 0 in no fake ball: recall 3/4. Real 0 and 1 have a fake within 1, real 2 and 3 not:
    coverage 1/2."""
    scores = prdc(_points(0, 1, 2, 3), _points(0.5, 0.7, 9), k=1)
    assert scores == pytest.approx({"precision": 2 / 3, "recall": 3 / 4, "density": 4 / 3, "coverage": 1 / 2})


def test_prdc_of_a_set_with_itself():
    """Each real ball holds its own sample and the k-1 strictly nearer ones: density is exactly 1 too."""
    real = _cloud(60, 8, seed=0)
    scores = prdc(real, real.copy(), k=5)
    assert scores == pytest.approx(dict.fromkeys(KEYS, 1.0), abs=1e-12)


def test_prdc_of_far_apart_sets_is_zero():
    assert prdc(_cloud(40, 8, seed=0), _cloud(50, 8, seed=1, shift=100.0), k=3) == dict.fromkeys(KEYS, 0.0)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_prdc_equals_the_prdc_package(k):
    from prdc import compute_prdc

    real, fake = _cloud(300, 16, seed=k), _cloud(250, 16, seed=k + 100, shift=0.3) * 1.2
    theirs = compute_prdc(real, fake, nearest_k=k)
    ours = prdc(real, fake, k=k)
    assert all(type(ours[key]) is float for key in KEYS)
    assert 0.05 < ours["coverage"] < 0.95  # a partial overlap, where every comparison counts
    assert ours == pytest.approx({key: float(theirs[key]) for key in KEYS}, rel=1e-6, abs=0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_prdc_equals_the_papers_formulas(k):
    real, fake = _cloud(25, 5, seed=k), _cloud(20, 5, seed=k + 10, shift=0.5)
    assert prdc(real, fake, k=k) == pytest.approx(_brute_prdc(real, fake, k), rel=1e-12)


def test_blocks_do_not_change_the_answer(monkeypatch):
    """One row per block, then 7 (a ragged last block): the self-exclusion must follow the block offset."""
    real, fake = _cloud(50, 6, seed=0), _cloud(45, 6, seed=1, shift=0.4)
    train, heldout = real[:20], real[20:]
    whole = prdc(real, fake, k=3), authenticity(train, fake), copy_ratio(train, fake, heldout)
    for rows in (1, 7):
        monkeypatch.setattr(neighbours, "BLOCK_ELEMENTS", rows * 50)
        assert (prdc(real, fake, k=3), authenticity(train, fake), copy_ratio(train, fake, heldout)) == whole


def test_tensors_and_float32_give_the_float64_answer():
    real, fake = _cloud(80, 8, seed=0).astype(np.float32), _cloud(70, 8, seed=1, shift=0.3).astype(np.float32)
    exact = prdc(real.astype(np.float64), fake.astype(np.float64), k=4)
    assert prdc(torch.from_numpy(real), torch.from_numpy(fake), k=4) == exact
    assert authenticity(torch.from_numpy(real), fake) == authenticity(real.astype(np.float64), fake)


def test_prdc_with_too_few_samples_says_so():
    with pytest.raises(GanbenchError, match="k=5 nearest neighbours need .* more than k real samples, got 5"):
        prdc(_cloud(5, 3, seed=0), _cloud(10, 3, seed=1), k=5)
    with pytest.raises(GanbenchError, match="more than k fake samples, got 3"):
        prdc(_cloud(10, 3, seed=0), _cloud(3, 3, seed=1), k=3)
    with pytest.raises(GanbenchError, match="k=0"):
        prdc(_cloud(10, 3, seed=0), _cloud(10, 3, seed=1), k=0)
    with pytest.raises(GanbenchError, match=r"one width d, got real \(10, 3\), fake \(10, 4\)"):
        prdc(_cloud(10, 3, seed=0), _cloud(10, 4, seed=1))


# -- memorization ---------------------------------------------------------------------------------------------


def test_authenticity_hand_case():
    """Shots 0, 1, 5: their nearest other shots lie 1, 1 and 4 away. 0.4 (shot 0 at 0.4 < 1) and 7 (shot 5 at
    2 < 4) sit closer to a shot than its neighbour does; -3 (3 > 1) and 10 (5 > 4) do not: 2 of 4."""
    assert authenticity(_points(0, 1, 5), _points(0.4, 7, -3, 10)) == 0.5


def test_copies_of_the_shots_are_neither_authentic_nor_distant():
    shots = _cloud(10, 32, seed=0) + 5.0  # off the origin, where cancellation would show
    copies = np.concatenate([shots, shots[:4]])
    assert authenticity(shots, copies) == 0.0
    assert copy_ratio(shots, copies, _cloud(8, 32, seed=1) + 5.0) == 0.0
    assert authenticity(shots, _cloud(12, 32, seed=2, shift=50.0)) == 1.0


def test_next_to_a_duplicated_shot_only_its_copies_are_unauthentic():
    """Shot 0 twice (its nearest other shot at 0), shot 10 (nearest other 10 away). 0 is a copy; 0.001 is
    farther from shot 0 than 0; 12 sits 2 < 10 from shot 10; 30 sits 20 > 10 from it: 2 of 4."""
    assert authenticity(_points(0, 0, 10), _points(0, 0.001, 12, 30)) == 0.5


def test_copy_ratio_hand_case():
    """Shots 0, 10. Held-out 2 and 13 lie 2 and 3 from a shot (mean 2.5); generated 1, 9.5, 11 lie 1, 0.5, 1
    (mean 5/6): ratio 1/3."""
    assert copy_ratio(_points(0, 10), _points(1, 9.5, 11), _points(2, 13)) == pytest.approx(1 / 3, rel=1e-12)


def test_memorization_scores_equal_the_formulas():
    train, heldout = _cloud(15, 4, seed=0), _cloud(12, 4, seed=1)
    generated = np.concatenate([_cloud(20, 4, seed=2, shift=0.2), train[:5] + 0.01])  # some near-copies
    ours = authenticity(train, generated)
    assert ours == _brute_authenticity(train, generated) and 0 < ours < 1
    assert copy_ratio(train, generated, heldout) == pytest.approx(
        _brute_copy_ratio(train, generated, heldout), rel=1e-12
    )


def test_memorization_errors_say_what_is_missing():
    with pytest.raises(GanbenchError, match="at least 2 training and 1 generated samples, got 1 and 4"):
        authenticity(_points(0), _points(1, 2, 3, 4))
    with pytest.raises(GanbenchError, match="every held-out sample equals a training sample"):
        copy_ratio(_points(0, 1), _points(3), _points(1, 0))
    with pytest.raises(GanbenchError, match="at least 1 training, 1 generated and 1 held-out"):
        copy_ratio(_points(0, 1), _points(3), np.zeros((0, 1)))


# -- CUDA --------------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (this machine has none)")
def test_cuda_matches_cpu_and_5000_by_5000_fits_in_blocks():
    real, fake = _cloud(500, 64, seed=0), _cloud(400, 64, seed=1, shift=0.2)
    cuda = {key: torch.from_numpy(x).cuda() for key, x in (("real", real), ("fake", fake))}
    assert prdc(cuda["real"], cuda["fake"], k=5) == pytest.approx(prdc(real, fake, k=5), rel=1e-12)
    assert authenticity(cuda["real"], cuda["fake"]) == authenticity(real, fake)

    big_real = torch.rand(5000, 2048, device="cuda") * 0.8  # Inception-sized sets
    big_fake = torch.rand(5000, 2048, device="cuda") * 0.8 + 0.01
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    scores = prdc(big_real, big_fake, k=5)
    peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    assert 0 < scores["precision"] <= 1 and 0 < scores["coverage"] <= 1
    assert peak_mib < 1024  # the 5000 x 5000 float64 matrix alone would be 191 MiB, a 2048-wide gather 78 GiB


def test_precomputed_real_radii_give_the_same_scores():
    from ganbench.metrics.neighbours import knn_radii

    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(60, 16, generator=g), torch.randn(40, 16, generator=g) + 0.3
    assert prdc(real, fake, k=4, real_radii=knn_radii(real, 4)) == prdc(real, fake, k=4)
